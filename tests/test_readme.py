"""Every code block of the README works as written.

- ``python`` blocks run as they are, in an empty folder (they make whatever files they need);
- ``bash`` blocks are checked command by command in a cheap form, so that a long command (a
  training run, a whole folder) costs nothing: every ``video-lstm COMMAND`` exists and answers
  ``--help``, every ``python tools/X.py`` / ``configs/...`` / ``make TARGET`` it names exists;
- the "first ten minutes" block runs for real on a tiny demo (slow).

The blocks are found by their fences, wherever they are, so sections can move and grow.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(README.read_text()) if kind == lang]


def commands(block: str) -> list[list[str]]:
    """Shell commands of a block: comments dropped, ``\\`` continuations joined, split on
    ``&&``, ``;`` and ``|``."""
    text = re.sub(r"\\\n", " ", block)
    out = []
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:  # an unbalanced quote
            raise AssertionError(f"README: cannot parse {line!r}: {exc}") from exc
        cmd: list[str] = []
        for w in [*words, ";"]:
            if w in ("&&", ";", "|", "||"):
                if cmd:
                    out.append(cmd)
                cmd = []
            else:
                cmd.append(w)
    return out


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _python(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``cwd`` with the project importable, output captured as text."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def _subcommands() -> set[str]:
    from pipelines.cli import COMMANDS

    return set(COMMANDS)


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.M))


def test_the_readme_has_runnable_blocks():
    assert blocks("python"), "the README lost its library snippet"
    assert len(blocks("bash")) >= 4


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_block_runs_as_written(index: int, tmp_path: Path):
    code = blocks("python")[index]
    proc = _python(["-c", code], tmp_path, timeout=600)
    assert proc.returncode == 0, f"README python block {index}:\n{code}\n{proc.stderr[-3000:]}"


def test_bash_blocks_name_real_commands_files_and_targets():
    subs, targets = _subcommands(), _make_targets()
    checked: set[str] = set()
    for block in blocks("bash"):
        for cmd in commands(block):
            prog = cmd[0]
            if prog.endswith("video-lstm"):
                sub = cmd[1]
                assert sub in subs or sub in ("--help", "-h"), f"README: no subcommand {sub!r}"
                checked.add(sub)
            elif prog == "make":
                for t in cmd[1:]:
                    if "=" not in t and not t.startswith("-"):
                        assert t in targets, f"README: no make target {t!r}"
            elif prog in ("python", "python3") or prog.endswith("/python"):
                script = next((w for w in cmd[1:] if w.endswith(".py")), None)
                if script:
                    assert (ROOT / script).is_file(), f"README: {script} does not exist"
            for word in cmd:
                for path in re.findall(r"\bconfigs/[\w./{},-]+\.yaml", word):
                    for p in _expand_braces(path):
                        assert (ROOT / p).is_file(), f"README: {p} does not exist"
    for sub in sorted(checked - {"--help", "-h"}):
        proc = _python(["-m", "pipelines.cli", sub, "--help"], ROOT, timeout=300)
        assert proc.returncode == 0, f"video-lstm {sub} --help: {proc.stderr[-2000:]}"


def _expand_braces(path: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    return [
        q
        for alt in m.group(1).split(",")
        for q in _expand_braces(path[: m.start()] + alt + path[m.end() :])
    ]


def test_readme_links_resolve():
    for target in re.findall(r"\]\(([^)#\s]+)\)", README.read_text()):
        if "://" in target:
            continue
        assert (ROOT / target).exists(), f"README links to {target}, which is not in the repository"


@pytest.mark.slow
def test_first_ten_minutes_block_runs_on_a_tiny_demo(tmp_path: Path):
    """The block under "First ten minutes", with ``make demo`` made tiny (same code path, a
    smaller dataset and fewer epochs); activation and opening a browser are skipped."""
    text = README.read_text()
    section = text[text.index("## First ten minutes") :]
    block = next(body for kind, body in FENCE.findall(section) if kind == "bash")
    ran = []
    for cmd in commands(block):
        if cmd[:2] == ["make", "demo"]:
            argv = ["demo", "--out_dir", "demo_output", "--train_videos", "6", "--max_epochs", "2"]
        elif cmd[0] in ("source", "python") or cmd[0].endswith("python"):
            continue  # activation / opening a browser
        elif cmd[0].endswith("video-lstm"):
            argv = cmd[1:]
        else:
            raise AssertionError(f"README first ten minutes: unexpected command {cmd}")
        proc = _python(["-m", "pipelines.cli", *argv], tmp_path, timeout=900)
        assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        ran.append((argv[0], proc.stdout))
    out = dict(ran)
    demo = out["demo"]
    for step in ("dataset", "features", "training", "calibration", "annotating", "scoring"):
        assert re.search(rf"^\[\d/6\] {step}", demo, re.M), step
    assert re.search(r"epoch 2/2 .*val acc \d\.\d{3}", demo)
    assert re.search(r"Frame accuracy on the \d held-out videos: \d+\.\d%", demo)
    assert "Open in a browser: demo_output/annotated/index.html" in demo
    assert (tmp_path / "demo_output" / "annotated" / "index.html").is_file()
    assert (tmp_path / "my_run" / "index.html").is_file()


@pytest.mark.slow
def test_deploy_block_runs_as_written(tmp_path: Path):
    """The block under "Deploy", run for real: a small checkpoint and test videos where the
    demo puts them, then export, annotate and run with ``--runtime onnx`` as written (slow:
    three processes, one of them loading torch; ``tests/test_onnx.py`` covers the same
    commands in ``make test``)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_annotate import make_checkpoint, write_video

    text = README.read_text()
    section = text[text.index("## Deploy") :]
    block = next(body for kind, body in FENCE.findall(section) if kind == "bash")
    (tmp_path / "demo_output").mkdir()
    make_checkpoint(tmp_path / "demo_output" / "model.ckpt")
    test = tmp_path / "demo_output" / "data" / "videos" / "test"
    test.mkdir(parents=True)
    for i, n in enumerate((40, 25)):
        write_video(test / f"test_{i:03d}.mp4", n)
    ran = []
    for cmd in commands(block):
        assert cmd[0].endswith("video-lstm"), f"README Deploy: unexpected command {cmd}"
        proc = _python(["-m", "pipelines.cli", *cmd[1:], "--debug"], tmp_path, timeout=300)
        assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        ran.append(cmd[1])
    assert ran == ["export", "annotate", "run"]
    assert (tmp_path / "deploy" / "model.onnx.json").is_file()
    assert (tmp_path / "one" / "test_000.json").is_file()
    assert (tmp_path / "all" / "test_001.mp4.json").is_file()


@pytest.mark.slow
def test_deploy_int8_block_runs_as_written(tmp_path: Path):
    """The int8 block under "Deploy": a trained checkpoint (the colour model of test_annotate)
    with val and test videos where the demo puts them, then its ``video-lstm`` commands as
    written (the study script it names is the demo's, run by hand)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_annotate import colour_frames, train_colour_checkpoint

    from video_lstm.io.video import VideoWriter

    text = README.read_text()
    section = text[text.index("**int8.**") :]
    block = next(body for kind, body in FENCE.findall(section) if kind == "bash")
    data = tmp_path / "demo_output" / "data" / "videos"
    train_colour_checkpoint(tmp_path / "demo_output" / "model.ckpt")
    rng = np.random.default_rng(0)
    for name, plan in {
        "val/val_000.mp4": [("red", 20), ("none", 10), ("blue", 20)],
        "val/val_001.mp4": [("green", 20), ("red", 20)],
        "test/test_000.mp4": [("none", 10), ("blue", 25), ("green", 25)],
    }.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        with VideoWriter(data / name, fps=25, width=64, height=64, crf=12) as w:
            w.write(np.concatenate([colour_frames(label, n, rng) for label, n in plan]))
    ran = []
    for cmd in commands(block):
        if cmd[0] != "video-lstm":
            continue
        proc = _python(["-m", "pipelines.cli", *cmd[1:], "--debug"], tmp_path, timeout=300)
        assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        ran.append(cmd[1])
    assert ran == ["export", "run"]
    meta = json.loads((tmp_path / "deploy" / "int8" / "model.onnx.json").read_text())
    assert meta["precision"] == "int8" and meta["quantisation"]["top1_agreement"] >= 0.98
    result = json.loads((tmp_path / "int8_out" / "test_000.mp4.json").read_text())
    assert [s["label"] for s in result["segments"]][-2:] == ["blue", "green"]
