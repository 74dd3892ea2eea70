"""The ``video-lstm`` console script: a table of subcommands, each a typed library function.

    video-lstm annotate VIDEO CHECKPOINT OUT_DIR [--threshold 0.6 ...]
    video-lstm run IN_DIR CHECKPOINT OUT_DIR [--limit 10 --dry_run true --threads 2 ...]
    video-lstm watch SOURCE CHECKPOINT OUT_DIR [--realtime true --state carry ...]
    video-lstm export CHECKPOINT OUT.onnx            (then: annotate/run ... --runtime onnx)
    video-lstm train fit --config configs/synthetic_demo.yaml [--threads 2]
    video-lstm export-labels RUN_DIR OUT --format label-studio|cvat|activitynet|fiftyone
    video-lstm demo
    video-lstm --plugin my_writer.py annotate VIDEO CHECKPOINT OUT_DIR --outputs json,my_writer

``--plugin FILE.py|module.name`` (repeatable, before the command) imports a plugin that
registers writers, dataset kinds, temporal models or decoder backends (``video_lstm.plugins``;
``VIDEO_LSTM_PLUGINS`` and the ``video_lstm.plugins`` entry points load too). It is passed on
to worker processes through ``VIDEO_LSTM_PLUGINS``.

One way to parse: every subcommand is a typed library function parsed by :func:`_cli`
(jsonargparse ``CLI(fn)``), ``train`` by LightningCLI; ``video-lstm COMMAND --help`` shows the
function's typed parameters and docstring. Options are spelled with underscores (``--dry_run``,
``--videos_per_class``); booleans take a value (``--dry_run true``, ``--progress false``); a
list takes several values, a repeated option or one list (``--configs a.yaml b.yaml``,
``--grid x --grid y``, ``--classes [grow,shrink]``); ``--config FILE.yaml`` gives any of them
from YAML (``extract-features`` and ``compare`` hand ``--config`` and the options after ``--``
to the training parser). A new subcommand is one entry of :data:`COMMANDS` calling ``_cli``. Modules are imported only for the
command that runs, and torch only when a model runs, so ``--help`` answers at once (``train``
excepted: its options come from the Lightning module and data module classes).

A user error (a wrong option or value, a missing or unreadable file, an output path that is a
file, an empty input folder) prints one line on stderr, ``video-lstm CMD: error: ...``, and exits
with code 2; ``--debug`` shows the traceback instead. ``tools/*.py`` call :func:`main`.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _expand_short_options(argv: Sequence[str]) -> list[str]:
    """``--threshold 0.6`` -> ``--settings.segments.threshold 0.6``: every field of
    ``AnnotateSettings`` also answers to its own name (field names are unique across groups)."""
    from video_lstm.inference.settings import AnnotateSettings

    paths = AnnotateSettings.flat_fields()
    out = []
    for arg in argv:
        key, eq, value = arg[2:].partition("=")
        if arg.startswith("--") and key in paths:
            arg = f"--settings.{paths[key]}{eq}{value}"
        out.append(arg)
    return out


def _short_help() -> str:
    """The epilog of ``annotate`` / ``run``: the short options, from the settings' own fields,
    and the outputs, from the writer table (a ``--plugin``'s writers included)."""
    from video_lstm.inference.settings import AnnotateSettings
    from video_lstm.inference.writers import list_writers

    short = ", ".join(f"--{name}" for name in AnnotateSettings.flat_fields())
    outputs = "; ".join(f"{w.name}: {w.description or '(no description)'}" for w in list_writers())
    return (
        f"Short options: {short} stand for --settings.GROUP.FIELD (e.g. --threshold 0.6 = "
        "--settings.segments.threshold 0.6, --threads 2 = --settings.runtime.threads 2). A YAML "
        "given with --config nests them under settings: (configs/pipeline/). Segment rules left "
        "unset (null) take the checkpoint's calibrated value if it has one, else the default. "
        f"Outputs (--outputs json,csv): {outputs}."
    )


def _cli(
    command: str,
    function: Callable[..., Any],
    argv: Sequence[str],
    *,
    as_positional: bool = True,
    epilog: str | None = None,
    formatter_class: type | None = None,
) -> Any:
    """Parse ``argv`` against ``function``'s signature (jsonargparse) and call it.

    Every subcommand but ``train`` (LightningCLI) goes through here. A list parameter takes
    several values (``--configs a.yaml b.yaml``), a repeated option (``--grid a=1,2 --grid
    b=3``) or one YAML/JSON list (``--classes [grow,shrink]``): :func:`_gather_lists`.
    A parse error raises ``argparse.ArgumentError`` (:func:`main` prints it as one line);
    ``--help`` prints and exits 0.
    """
    from jsonargparse import CLI

    from video_lstm.training.evaluate import doc_summary

    return CLI(
        function,
        args=_gather_lists(argv, _list_params(function)),
        as_positional=as_positional,
        prog=f"video-lstm {command}",
        description=doc_summary(function),
        exit_on_error=False,
        epilog=epilog,
        **({"formatter_class": formatter_class} if formatter_class else {}),
    )


def _list_params(function: Callable[..., Any]) -> set[str]:
    """The names of ``function``'s parameters typed as lists (``list[...]``, ``Sequence[...]``,
    ``tuple[X, ...]``, optional or not)."""
    names = set()
    for name, param in inspect.signature(function).parameters.items():
        text = str(param.annotation).replace("typing.", "").removeprefix("Optional[")
        if re.match(r"(list|Sequence)\[|tuple\[[^]]*, \.\.\.\]", text):
            names.add(name)
    return names


def _gather_lists(argv: Sequence[str], names: set[str]) -> list[str]:
    """``--configs a b --grid x --grid y`` -> ``--configs ["a", "b"] --grid ["x", "y"]``.

    The values of a list option run up to the next option; a repeated one appends, as argparse's
    ``nargs="+"`` and ``action="append"`` did. One value that already is a list (``[a,b]``) and
    ``--name=value`` are left as they are.
    """
    out: list[str | list[str]] = []
    gathered: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        key = argv[i][2:] if argv[i].startswith("--") else None
        end = i + 1
        while key in names and end < len(argv) and not argv[end].startswith("-"):
            end += 1
        values = list(argv[i + 1 : end])
        if key not in names or not values or (len(values) == 1 and values[0].startswith("[")):
            out.append(argv[i])
            i += 1
            continue
        if key not in gathered:
            gathered[key] = []
            out += [argv[i], gathered[key]]  # the list holds its place; repeats extend it
        gathered[key] += values
        i = end
    return [json.dumps(a) if isinstance(a, list) else a for a in out]


def _bind_first(function: Callable[..., Any], value: Any) -> Callable[..., Any]:
    """``function`` with its first parameter given: what :func:`_cli` reads (the signature and
    docstring) lists the other parameters only."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        return function(value, *args, **kwargs)

    signature = inspect.signature(function)
    call.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
    return call


def _split_options(argv: Sequence[str], names: set[str]) -> tuple[list[str], list[str]]:
    """``(options named in names (with their values) and -h/--help, everything else)``."""
    mine: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        key = argv[i][2:].partition("=")[0] if argv[i].startswith("--") else None
        if argv[i] in ("-h", "--help"):
            mine.append(argv[i])
        elif key in names:
            takes = 0 if "=" in argv[i] else 1
            mine += argv[i : i + 1 + takes]
            i += takes
        else:
            rest.append(argv[i])
        i += 1
    return mine, rest


def _one_line(message: str) -> str:
    """jsonargparse's multi-line type errors, as one line: the key and the value given."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    if not lines:
        return "invalid arguments"
    given = [ln for ln in lines if ln.startswith("Given value:")]
    head = lines[0].rstrip(":")
    if given and head.startswith("Parser key"):
        key = head.removeprefix("Parser key").strip().strip('"')
        return f"invalid value for --{key}: {given[0].removeprefix('Given value:').strip()}"
    return "; ".join(lines) if len(lines) <= 2 else lines[0]


def _annotate(argv: Sequence[str]) -> int:
    from video_lstm.inference.annotate import annotate_video

    result = _cli("annotate", annotate_video, _expand_short_options(argv), epilog=_short_help())
    for seg in result.segments:
        print(f"{seg.start_s:9.2f}-{seg.end_s:9.2f} s  {seg.label}  {seg.score:.2f}")
    print(f"{len(result.segments)} segments; wrote {len(result.output_files)} files")
    return 0


def _run(argv: Sequence[str]) -> int:
    from pipelines.batch import run_folder

    summary = _cli("run", run_folder, _expand_short_options(argv), epilog=_short_help())
    print(summary.format())
    index = Path(summary.output_dir) / "index.html"
    if not summary.dry_run and index.is_file():
        print(f"report: {index}")
    return summary.exit_code


def _watch(argv: Sequence[str]) -> int:
    from pipelines.watch import watch

    argv = list(argv)
    takes_value = [a.startswith("--") and "=" not in a for a in argv]
    positional = [a for i, a in enumerate(argv) if a[:1] != "-" and not (i and takes_value[i - 1])]
    if any(a.split("=")[0] == "--sources" for a in argv) and len(positional) == 2:
        argv.insert(0, "-")  # SOURCE is the list's: `watch --sources LIST.txt CKPT OUT`
    summary = _cli("watch", watch, argv)
    print(summary.format())
    return summary.exit_code


def _export(argv: Sequence[str]) -> int:
    from video_lstm.inference.export import export_onnx

    print(_cli("export", export_onnx, argv).format())
    return 0


def _adapt_stream(argv: Sequence[str]) -> int:
    from video_lstm.training.stream_adapt import adapt_for_streaming

    print(f"adapted checkpoint: {_cli('adapt-stream', adapt_for_streaming, argv)}")
    return 0


def _demo(argv: Sequence[str]) -> int:
    from pipelines.demo import run_demo

    summary = _cli("demo", run_demo, argv, as_positional=False)
    return summary.exit_code


def _report(argv: Sequence[str]) -> int:
    from pipelines.report import build_report

    print(f"report: {_cli('report', build_report, argv)}")
    return 0


def _export_labels(argv: Sequence[str]) -> int:
    from pipelines.labels import export_labels

    summary = _cli("export-labels", export_labels, argv)
    print(summary.format_line())
    for line in summary.variable_frame_rate[:3]:
        print(f"warning: {line}", file=sys.stderr)
    return 0


def _make_dataset(argv: Sequence[str]) -> int:
    from video_lstm.data.synthetic import write_dataset

    t0 = time.perf_counter()
    root = _cli("make-dataset", write_dataset, argv, as_positional=False)
    print(f"wrote the dataset to {root} in {time.perf_counter() - t0:.1f} s")
    return 0


def _make_untrimmed(argv: Sequence[str]) -> int:
    from video_lstm.data.synthetic import make_untrimmed

    t0 = time.perf_counter()
    root = _cli("make-untrimmed", make_untrimmed, argv, as_positional=False)
    print(f"wrote the untrimmed dataset to {root} in {time.perf_counter() - t0:.1f} s")
    return 0


def _extract_features(argv: Sequence[str]) -> int:
    from video_lstm.data.datasets import describe_dataset_kinds
    from video_lstm.errors import UsageError
    from video_lstm.training.evaluate import epilog_as_written
    from video_lstm.training.extract import extract_for_config

    own = set(inspect.signature(extract_for_config).parameters) - {"config_args"}
    mine, training = _split_options(_gather_lists(argv, _list_params(extract_for_config)), own)
    if not training and not {"-h", "--help"} & set(mine):
        raise UsageError("give the training config, e.g. --config configs/compare/lstm.yaml")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    epilog = ("--config and every other option (--data.*, --model.*, --threads) go to the "
              "training parser: see video-lstm train fit --help.\n\n"
              + describe_dataset_kinds(prefix="data."))  # fmt: skip
    _cli("extract-features", _bind_first(extract_for_config, training), mine, epilog=epilog,
         formatter_class=epilog_as_written())  # fmt: skip
    return 0


def _compare(argv: Sequence[str]) -> int:
    from video_lstm.training.compare import compare

    argv = list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)  # after --: for every training run
    argv, extra = argv[:cut], argv[cut + 1 :]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = [*argv, *(["--extra", json.dumps(extra)] if extra else [])]
    epilog = "Arguments after -- go to every training run (e.g. -- --trainer.max_epochs 8)."

    @functools.wraps(compare)
    def run(*args: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], Path]:
        bound = inspect.signature(compare).bind(*args, **kwargs)
        bound.apply_defaults()
        return compare(*args, **kwargs), Path(bound.arguments["out"])

    run.__signature__ = inspect.signature(compare)  # type: ignore[attr-defined]
    rows, out = _cli("compare", run, args, as_positional=False, epilog=epilog)
    for table in ("compare.md", "compare_seeds.md"):
        if (out / table).is_file():
            print((out / table).read_text())
    print(f"{len(rows)} runs; table and plot in {out}")
    return 0


def _entry(module: str, name: str) -> Callable[[Sequence[str]], int | None]:
    def call(argv: Sequence[str]) -> int | None:
        result = getattr(importlib.import_module(module), name)(list(argv))
        return result if isinstance(result, int) else 0

    return call


# name -> (one-line help, entry taking the remaining argv and returning an exit code)
COMMANDS: dict[str, tuple[str, Callable[[Sequence[str]], int | None]]] = {
    "annotate": ("annotate one video: segments, subtitles, annotated video, clips", _annotate),
    "run": ("annotate a folder of videos (resumable, per-video errors)", _run),
    "export": (
        "a checkpoint as ONNX graphs + metadata for --runtime onnx (checked against torch)",
        _export,
    ),
    "train": (
        "LightningCLI: fit / validate / test / predict",
        _entry("video_lstm.training.cli", "main"),
    ),
    "extract-features": ("cache per-frame backbone features for fast training", _extract_features),
    "evaluate": (
        "video-level top-1/top-5, per-class CSV, confusion matrix",
        _entry("video_lstm.training.evaluate", "main"),
    ),
    "calibrate": (
        "choose the segment rules on validation videos, store them in the checkpoint",
        _entry("video_lstm.training.calibrate", "main"),
    ),
    "compare": ("train several configs on the same data and tabulate them", _compare),
    "make-dataset": (
        "write the synthetic action dataset (UCF101 layout) and demo videos",
        _make_dataset,
    ),
    "make-untrimmed": (
        "write synthetic untrimmed videos (actions between idle stretches) + annotations",
        _make_untrimmed,
    ),
    "export-labels": (
        "a run's segments for Label Studio, CVAT, ActivityNet or FiftyOne (to correct)",
        _export_labels,
    ),
    "watch": ("annotate live streams (URL, webcam, growing file) as they play: events", _watch),
    "adapt-stream": (
        "fine-tune a recurrent model for carried state (watch --state carry)",
        _adapt_stream,
    ),
    "demo": ("dataset -> brief training -> annotate demo videos", _demo),
    "report": (
        "HTML report of a run, training run, compare or evaluate folder (index.html)",
        _report,
    ),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: video-lstm [--plugin FILE.py|MODULE ...] COMMAND [ARGS...]"
        "   (video-lstm COMMAND --help for its options)",
        "",
    ]
    lines += [f"  {name:<{width}}  {doc}" for name, (doc, _) in COMMANDS.items()]
    return "\n".join(lines)


def _user_errors() -> tuple[type[BaseException], ...]:
    """What a user can fix (a wrong argument or path, a bad video or checkpoint): one line, exit 2.
    Anything else is a bug and keeps its traceback."""
    from video_lstm.errors import UsageError, VideoError

    return (UsageError, VideoError, ValueError, FileNotFoundError, NotADirectoryError,
            IsADirectoryError, PermissionError)  # fmt: skip


def _global_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """``--plugin X`` / ``--plugin=X`` before the command: ``(plugins, the rest)``."""
    plugins: list[str] = []
    while argv and argv[0].startswith("--plugin"):
        option, eq, value = argv[0].partition("=")
        if option != "--plugin":
            break
        if not eq:
            if len(argv) < 2:
                raise argparse.ArgumentError(None, "--plugin needs a file or module name")
            value, argv = argv[1], argv[1:]
        plugins.append(value)
        argv = argv[1:]
    return plugins, argv


# What `pip install 'video_lstm[train]'` adds to the torch-free core (see pyproject.toml).
TRAIN_MODULES = ("torch", "torchvision", "lightning", "torchmetrics", "tensorboard")


def _missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The one-line hint for a command run without the training stack, else ``None``."""
    root = (exc.name or "").split(".")[0]
    if root not in TRAIN_MODULES:
        return None
    return (
        f"this needs {root}, which the torch-free install leaves out: pip install "
        "'video_lstm[train]' (training, evaluation, export and --runtime torch); an exported "
        "model runs without it: --runtime onnx MODEL.onnx"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``argv[0]`` to its subcommand; returns the process exit code.

    User errors print as one line on stderr (``video-lstm CMD: error: ...``) with exit code 2;
    ``--debug`` anywhere on the line shows the full traceback instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        plugins, argv = _global_options(argv)
        # Only when there are some: --help stays fast (video_lstm itself is not imported).
        if plugins or os.environ.get("VIDEO_LSTM_PLUGINS"):
            from video_lstm.plugins import load_plugins

            load_plugins(plugins)  # before parsing: a plugin may add choices (--outputs)
    except Exception as exc:
        if debug or not isinstance(exc, (argparse.ArgumentError, *_user_errors())):
            raise
        print(f"video-lstm: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"video-lstm: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        code = COMMANDS[name][1](rest)
    except KeyboardInterrupt:
        print(f"video-lstm {name}: interrupted", file=sys.stderr)
        return 130
    except argparse.ArgumentError as exc:  # a wrong option: point to this command's --help
        if debug:
            raise
        sub = f" {rest[0]}" if name == "train" and rest and not rest[0].startswith("-") else ""
        message = f"{_one_line(str(exc))} (see video-lstm {name}{sub} --help)"
        print(f"video-lstm {name}: error: {message}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        hint = _missing_extra(exc)
        if debug or hint is None:
            raise
        print(f"video-lstm {name}: error: {hint}", file=sys.stderr)
        return 2
    except Exception as exc:
        if debug or not isinstance(exc, _user_errors()):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"video-lstm {name}: error: {message}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
