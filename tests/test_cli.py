"""The console script: one style for every subcommand, fast --help, one-line user errors with
exit code 2 (checked before the model loads), --threads (issue 12, defects 9 and 10)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

import pipelines.batch
import video_lstm.inference.annotate
from pipelines.cli import COMMANDS, main
from video_lstm import threads as threads_mod
from video_lstm.errors import UsageError
from video_lstm.io.video import VideoWriter
from video_lstm.models import DEFAULT_MODEL, create_model
from video_lstm.models.checkpoint import ModelMeta, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_usage_and_unknown_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    assert main([]) == 2
    assert main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help_with_typed_options(name, capsys):
    """Every command parses through CLI(fn) (train: LightningCLI), so --help lists typed options."""
    argv = [name, "fit", "--help"] if name == "train" else [name, "--help"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "usage" in out.lower()
    assert f"video-lstm {name}" in out  # the prog names the subcommand, not the script alone
    assert "type: " in out, out[-1500:]  # e.g. "(type: int, default: 64)", "(required, type: str)"


def _record(
    configs: list[str], out: str = "runs/x", *, grid: Sequence[str] = (), extra: list[str] = ()
) -> dict:
    """A typed function to parse against: returns what it was given."""
    return {"configs": configs, "out": out, "grid": list(grid), "extra": extra}


def test_list_options_take_several_values_repeats_or_one_list():
    from pipelines.cli import _cli

    def parse(*argv):
        return _cli("x", _record, list(argv), as_positional=False)

    assert parse("--configs", "a.yaml", "b.yaml", "--out", "o", "--grid", "lr=1,2",
                 "--grid", "seed=0") == {"configs": ["a.yaml", "b.yaml"], "out": "o",
                                         "grid": ["lr=1,2", "seed=0"], "extra": []}  # fmt: skip
    assert parse("--configs", "[a.yaml,b.yaml]")["configs"] == ["a.yaml", "b.yaml"]
    assert parse("--configs=[c.yaml]", "--extra", '["--trainer.max_epochs=1"]')["extra"] == [
        "--trainer.max_epochs=1"
    ]


# ------------------------------------------------------------------ inputs made by the tests


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    model = create_model(DEFAULT_MODEL, num_classes=2, frame_size=32)
    meta = ModelMeta.for_model(model, ["a", "b"], clip_len=4, frame_interval=1)
    frames = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    video = root / "in" / "clip.mp4"
    with VideoWriter(video, fps=10, width=32, height=32) as w:
        w.write(frames)
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("not a model\n")
    (root / "a_file").write_text("x")
    return {
        "ckpt": save_checkpoint(root / "model.pt", model, meta),
        "video": video,
        "in": video.parent,
        "empty": root / "empty",
        "text": root / "notes.txt",
        "file": root / "a_file",
        "out": root / "out",
    }


def _error_line(capsys, argv: list[str]) -> str:
    """Run the console script's main; it must fail with exit code 2 and ONE line on stderr."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"video-lstm {argv[0]}: error: "), lines[0]
    return lines[0]


# (argv built from the fixture's paths, what the line must say)
USER_ERRORS = {
    "missing video": (["annotate", "/no/such.mp4", "{text}", "{out}"], "/no/such.mp4: video not found"),
    "missing checkpoint": (["annotate", "{video}", "/no/model.pt", "{out}"], "checkpoint not found"),
    "text file as checkpoint": (["annotate", "{video}", "{text}", "{out}"], "not a checkpoint"),
    "threshold 2": (["annotate", "{video}", "{ckpt}", "{out}", "--threshold", "2"], "threshold must be in [0, 1]"),
    "annotate output is a file": (["annotate", "{video}", "{ckpt}", "{file}"], "output folder is a file"),
    "run output is a file": (["run", "{in}", "{ckpt}", "{file}"], "output folder is a file"),
    "run output under a file": (["run", "{in}", "{ckpt}", "{file}/sub"], "which is a file"),
    "empty input folder": (["run", "{empty}", "{ckpt}", "{out}"], "no video files found"),
    "missing input folder": (["run", "/no/folder", "{ckpt}", "{out}"], "input folder not found"),
    "run unknown option": (["run", "{in}", "{ckpt}", "{out}", "--bogus", "1"], "(see video-lstm run --help)"),
    "bad value": (["annotate", "{video}", "{ckpt}", "{out}", "--threads", "x"], "--settings.runtime.threads: x"),
    "dash spelling": (["make-dataset", "--out", "{out}", "--videos-per-class", "2"], "(see video-lstm make-dataset --help)"),
    "compare unknown option": (["compare", "--bogus"], "(see video-lstm compare --help)"),
    "extract without config": (["extract-features"], "give the training config"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(USER_ERRORS))
def test_user_errors_are_one_line_with_exit_code_2(case, files, capsys, monkeypatch):
    argv, expected = USER_ERRORS[case]
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(video_lstm.inference.annotate, "load_predictor", no_model)
    monkeypatch.setattr(pipelines.batch, "load_predictor", no_model)
    assert expected in _error_line(capsys, argv)
    assert not files["out"].exists()  # nothing was written


def test_missing_dataset_is_one_line(files, capsys, monkeypatch):
    import video_lstm.models.checkpoint

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(video_lstm.models.checkpoint, "load_checkpoint", no_model)
    argv = ["evaluate", str(files["ckpt"]), str(files["out"]), "--root", "/no/data"]
    assert "/no/data: dataset not found" in _error_line(capsys, argv)


def test_train_points_to_its_subcommand_help(capsys):
    line = _error_line(capsys, ["train", "fit", "--bogus", "1"])
    assert "unrecognized arguments: --bogus" in line and "video-lstm train fit --help" in line


def test_debug_shows_the_traceback(files):
    with pytest.raises(UsageError, match="video not found"):
        main(["annotate", "/no/such.mp4", str(files["ckpt"]), str(files["out"]), "--debug"])


def test_help_and_input_errors_do_not_import_torch(files):
    """A fresh interpreter: --help of the light commands and an input error before the model
    loads must not import torch (it costs seconds on a busy machine)."""
    script = f"""
import sys
from pipelines.cli import main
for argv in (["run", "--help"], ["annotate", "--help"], ["demo", "--help"],
             ["make-dataset", "--help"], ["compare", "--help"], ["extract-features", "--help"],
             ["evaluate", "--help"], ["evaluate", "--kind", "segments_csv", "--help"],
             ["calibrate", "--help"], ["report", "--help"], ["make-untrimmed", "--help"]):
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code == 0, argv
assert main(["annotate", "/no/such.mp4", {str(files["ckpt"])!r}, "out"]) == 2
print("torch imported:", "torch" in sys.modules)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "torch imported: False" in proc.stdout
    assert proc.stderr.strip().splitlines() == [
        "video-lstm annotate: error: /no/such.mp4: video not found"
    ]


# ------------------------------------------------------------------------------------ threads


def test_default_threads_never_oversubscribe(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_mod, "available_cores", lambda: 8)
    monkeypatch.setattr(threads_mod, "physical_cores", lambda: 4)
    for load, expected in ((0.0, 4), (5.6, 2), (7.9, 1), (30.0, 1)):
        monkeypatch.setattr(threads_mod.os, "getloadavg", lambda load=load: (load, load, load))
        assert threads_mod.default_threads() == expected, load
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads_mod.default_threads() == 3  # the user's choice wins
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads_mod.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert 1 <= threads_mod.default_threads() <= threads_mod.physical_cores()


def test_physical_cores_is_within_the_logical_count():
    import os

    assert 1 <= threads_mod.physical_cores() <= (os.cpu_count() or 1)
    assert 1 <= threads_mod.available_cores() <= (os.cpu_count() or 1)


@pytest.mark.parametrize(
    "argv", [["run", "--help"], ["annotate", "--help"], ["extract-features", "--help"]]
)
def test_threads_option_is_offered(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert "--threads" in capsys.readouterr().out


def test_train_has_a_threads_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "fit", "--help"])
    assert "--threads THREADS" in capsys.readouterr().out


@pytest.fixture
def keep_torch_threads():
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


def test_annotate_runs_with_the_threads_asked_for(files, tmp_path, capsys, keep_torch_threads):
    out = tmp_path / "out"
    argv = ["annotate", str(files["video"]), str(files["ckpt"]), str(out), "--threads", "1"]
    argv += ["--outputs", "[json]", "--device", "cpu", "--progress", "false"]
    assert main(argv) == 0, capsys.readouterr().err
    assert torch.get_num_threads() == 1
    doc = json.loads((out / "clip.json").read_text())
    assert doc["settings"]["runtime"]["threads"] == 1
    assert doc["settings"]["segments"]["threshold"] == 0.5  # resolved: the default


@pytest.mark.parametrize("command", ["report", "evaluate", "calibrate", "run"])
def test_help_shows_the_whole_summary(command, capsys):
    """A subcommand's description is its docstring's first paragraph, not its first line
    (``report --help`` stopped at "a training run, ``compare`` or")."""
    import re

    from pipelines.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    summary = {
        "report": "``compare`` or ``evaluate`` output) and return the path of its ``index.html``.",
        "evaluate": "The kind's ``temporal`` flag decides, wherever the kind was given",
        "calibrate": "and store them in the checkpoint (:func:`calibrate_checkpoint`).",
        "run": "mirroring the tree under ``output_dir``.",
    }[command]
    assert re.sub(r"\s+", " ", summary) in text
