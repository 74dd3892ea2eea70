"""The ``video-lstm`` console script: a table of subcommands, each a typed library function.

    video-lstm annotate VIDEO CHECKPOINT OUT_DIR [--threshold 0.6 ...]
    video-lstm run IN_DIR CHECKPOINT OUT_DIR [--limit 10 --dry_run true ...]
    video-lstm train fit --config configs/synthetic_demo.yaml
    video-lstm demo

``video-lstm COMMAND --help`` shows the function's parameters and docstring. Modules are imported
only for the command that runs, so ``video-lstm --help`` answers at once. ``tools/*.py`` call the
same entries.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence


def _annotate(argv: Sequence[str]) -> int:
    from jsonargparse import CLI

    from pipelines.annotate import annotate_video

    result = CLI(annotate_video, args=list(argv), as_positional=True)
    for seg in result.segments:
        print(f"{seg.start_s:9.2f}-{seg.end_s:9.2f} s  {seg.label}  {seg.score:.2f}")
    print(f"{len(result.segments)} segments; wrote {len(result.output_files)} files")
    return 0


def _run(argv: Sequence[str]) -> int:
    from jsonargparse import CLI

    from pipelines.batch import run_folder

    summary = CLI(run_folder, args=list(argv), as_positional=True)
    print(summary.format())
    return summary.exit_code


def _demo(argv: Sequence[str]) -> int:
    from jsonargparse import CLI

    from pipelines.demo import run_demo

    summary = CLI(run_demo, args=list(argv))
    return summary.exit_code


def _entry(module: str, name: str) -> Callable[[Sequence[str]], int | None]:
    def call(argv: Sequence[str]) -> int | None:
        result = getattr(importlib.import_module(module), name)(list(argv))
        return result if isinstance(result, int) else 0

    return call


# name -> (one-line help, entry taking the remaining argv and returning an exit code)
COMMANDS: dict[str, tuple[str, Callable[[Sequence[str]], int | None]]] = {
    "annotate": ("annotate one video: segments, subtitles, annotated video, clips", _annotate),
    "run": ("annotate a folder of videos (resumable, per-video errors)", _run),
    "train": (
        "LightningCLI: fit / validate / test / predict",
        _entry("video_lstm.training.cli", "main"),
    ),
    "extract-features": (
        "cache per-frame backbone features for fast training",
        _entry("video_lstm.training.extract", "main"),
    ),
    "evaluate": (
        "video-level top-1/top-5, per-class CSV, confusion matrix",
        _entry("video_lstm.training.evaluate", "main"),
    ),
    "compare": (
        "train several configs on the same data and tabulate them",
        _entry("video_lstm.training.compare", "main"),
    ),
    "make-dataset": (
        "write the synthetic action dataset (UCF101 layout) and demo videos",
        _entry("video_lstm.data.synthetic", "main"),
    ),
    "demo": ("dataset -> brief training -> annotate demo videos", _demo),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: video-lstm COMMAND [ARGS...]   (video-lstm COMMAND --help for its options)",
        "",
    ]
    lines += [f"  {name:<{width}}  {doc}" for name, (doc, _) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``argv[0]`` to its subcommand; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"video-lstm: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    code = COMMANDS[name][1](rest)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
