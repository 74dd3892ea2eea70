"""Folder runs: discovery, mirrored outputs, bad files reported, resume, interruption, CLI exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import torch

import video_lstm.io.video as video_mod  # the video writer imports its encoder from here
from pipelines.batch import discover_videos, run_folder
from pipelines.jobs import plan_jobs, read_record
from video_lstm.errors import UsageError
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.io.video import VideoWriter
from video_lstm.models import DEFAULT_MODEL, create_model
from video_lstm.models.checkpoint import ModelMeta, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
FAST = {"outputs": ["json", "csv", "video"], "device": "cpu", "threshold": 0.0}
RUN_ARGS = ("extensions", "recursive", "resume", "dry_run", "limit")


def _run(folder: Path, checkpoint: Path, out: Path, **kwargs):
    """run_folder with its own arguments and the settings given by their short names."""
    run_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in RUN_ARGS}
    settings = AnnotateSettings.from_flat(**kwargs)
    return run_folder(str(folder), str(checkpoint), str(out), settings, progress=False, **run_kw)


def make_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    model = create_model(DEFAULT_MODEL, num_classes=2, frame_size=32)
    meta = ModelMeta.for_model(model, ["sit", "stand"], clip_len=4, frame_interval=2)
    return save_checkpoint(path, model, meta)


def write_video(path: Path, num_frames: int = 30, *, width: int = 64, height: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = torch.linspace(0, 255, num_frames).to(torch.uint8)[:, None, None, None]
    frames = frames.expand(num_frames, height, width, 3).numpy()
    with VideoWriter(path, fps=25, width=width, height=height) as w:
        w.write(frames)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt")


@pytest.fixture
def folder(tmp_path) -> Path:
    """Two good videos (one nested), a truncated one, an empty one, text named .mp4, a .txt."""
    root = tmp_path / "in"
    write_video(root / "a.mp4")
    write_video(root / "sub" / "b.mp4", 40)
    good = (root / "a.mp4").read_bytes()
    (root / "sub" / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("these are not frames\n")
    (root / "readme.txt").write_text("ignored: not a video extension\n")
    return root


def test_discovery_filters_and_mirrors(tmp_path):
    root = tmp_path / "in"
    for rel in ("b.MP4", "a.avi", "x/c.mkv", "x/.hidden.mp4", ".cache/d.mp4", "x/e.txt", "a.mp4"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"0")
    found = [p.relative_to(root).as_posix() for p in discover_videos(root)]
    assert found == ["a.avi", "a.mp4", "b.MP4", "x/c.mkv"]
    assert [p.name for p in discover_videos(root, extensions=["mkv"])] == ["c.mkv"]
    assert [p.name for p in discover_videos(root, recursive=False, extensions=["mkv"])] == []
    assert discover_videos(root, exclude=[root / "x"]) == discover_videos(root, recursive=False)
    jobs = plan_jobs(root, tmp_path / "out")
    assert [(j.out_dir.relative_to(tmp_path / "out").as_posix(), j.name) for j in jobs] == [
        (".", "a.avi"),  # outputs keep the file name with its extension: a.avi.json, ...
        (".", "a.mp4"),
        (".", "b.MP4"),
        ("x", "c.mkv"),
    ]
    assert len({j.key for j in jobs}) == 4
    with pytest.raises(UsageError, match="nowhere"):
        discover_videos(tmp_path / "nowhere")


@pytest.mark.parametrize("prefetch", [0, 2])  # decoding inline or in a worker process
def test_bad_files_are_reported_and_the_run_goes_on(folder, checkpoint, tmp_path, prefetch):
    out = tmp_path / "out"
    summary = _run(folder, checkpoint, out, prefetch=prefetch, **FAST)
    assert sorted(summary.done) == ["a.mp4", "sub/b.mp4"]
    assert sorted(summary.failed) == ["empty.mp4", "notes.mp4", "sub/truncated.mp4"]
    assert all(reason for reason in summary.failed.values())
    assert summary.exit_code == 1
    assert "FAILED empty.mp4" in summary.format()
    for rel in ("a.mp4", "sub/b.mp4"):
        assert (out / f"{rel}.json").is_file() and (out / f"{rel}_annotated.mp4").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"done": 2, "failed": 3, "outdated": 0}
    outputs = ["a.mp4_annotated.mp4", "a.mp4.csv", "a.mp4.json"]
    assert manifest["videos"]["a.mp4"]["outputs"] == outputs
    assert manifest["videos"]["empty.mp4"]["status"] == "failed"
    assert manifest["settings"]["segments"]["threshold"] == 0.0
    # Failed videos leave nothing behind under their names.
    left = [p for p in out.rglob("*") if p.name.startswith(("empty", "notes"))]
    assert all(p.parent == out / ".video_lstm" / "records" for p in left), left  # records only


def test_resume_redoes_nothing_until_settings_change(folder, checkpoint, tmp_path):
    out = tmp_path / "out"
    _run(folder, checkpoint, out, **FAST)
    # manifest.json and the report's index.html are views over the records, rebuilt by every run
    outputs = sorted(
        p
        for p in out.rglob("*")
        if p.is_file()
        and p.name not in ("manifest.json", "index.html")
        and ".video_lstm" not in p.parts
    )
    mtimes = {p: p.stat().st_mtime_ns for p in outputs}

    again = _run(folder, checkpoint, out, **FAST)
    assert again.done == [] and sorted(again.skipped) == ["a.mp4", "sub/b.mp4"]
    assert {p: p.stat().st_mtime_ns for p in outputs} == mtimes
    assert again.exit_code == 1  # the bad files are still bad

    # A deleted output makes its video incomplete; only that one is redone.
    (out / "sub" / "b.mp4.csv").unlink()
    third = _run(folder, checkpoint, out, **FAST)
    assert third.done == ["sub/b.mp4"]

    changed = _run(folder, checkpoint, out, **{**FAST, "threshold": 0.3})
    assert sorted(changed.done) == ["a.mp4", "sub/b.mp4"]


def test_dry_run_and_limit(folder, checkpoint, tmp_path):
    out = tmp_path / "out"
    dry = _run(folder, checkpoint, out, dry_run=True, **FAST)
    assert len(dry.done) == 5 and not out.exists()
    limited = _run(folder, checkpoint, out, limit=1, extensions=[".mp4"], **FAST)
    assert limited.done == ["a.mp4"] and limited.exit_code == 0


def test_interrupted_run_resumes_cleanly(folder, checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_write = video_mod.write_annotated_video

    def interrupt_on_b(reader, path, **kwargs):
        if Path(path).name.startswith("b"):
            raise KeyboardInterrupt  # like Ctrl-C while b is being processed
        return real_write(reader, path, **kwargs)

    monkeypatch.setattr(video_mod, "write_annotated_video", interrupt_on_b)
    with pytest.raises(KeyboardInterrupt):
        _run(folder, checkpoint, out, extensions=[".mp4"], **FAST)
    jobs = {j.rel: j for j in plan_jobs(folder, out)}
    assert read_record(jobs["a.mp4"])["status"] == "done"
    assert read_record(jobs["sub/b.mp4"]) is None and not jobs["sub/b.mp4"].claim_path.exists()
    assert not (out / "sub" / "b.mp4.json").exists() and not list(out.rglob("*.part"))

    monkeypatch.undo()
    resumed = _run(folder, checkpoint, out, **FAST)
    assert resumed.skipped == ["a.mp4"] and resumed.done == ["sub/b.mp4"]


@pytest.mark.slow  # a fresh interpreter importing torch: a few seconds on 2 cores
def test_cli_exits_nonzero_when_a_video_fails(folder, checkpoint, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "tools" / "run_pipeline.py"), str(folder), str(checkpoint)]
    cmd += [str(out), "--outputs", "[json]", "--progress", "false", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "FAILED notes.mp4" in proc.stdout and (out / "a.mp4.json").is_file()


@pytest.mark.slow
def test_killed_process_leaves_no_partial_outputs(checkpoint, tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    write_video(root / "long.mp4", 600, width=320, height=240)
    cmd = [sys.executable, str(ROOT / "tools" / "run_pipeline.py"), str(root), str(checkpoint)]
    cmd += [str(out), "--outputs", "[json,video]", "--progress", "false", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(out.rglob("*.part")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        was_writing = bool(list(out.rglob("*.part")))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    if not was_writing:
        pytest.skip("the run finished before a temporary file could be observed")
    assert read_record(plan_jobs(root, out)[0]) is None
    if (out / "long.mp4_annotated.mp4").exists():  # finished before the kill: then it is whole
        with av.open(str(out / "long.mp4_annotated.mp4")) as c:
            assert sum(1 for _ in c.decode(video=0)) == 600
    resumed = _run(root, checkpoint, out, **{**FAST, "outputs": ["json", "video"]})
    assert resumed.done == ["long.mp4"] and not list(out.rglob("*.part"))


def test_redoing_a_video_removes_its_old_clips(folder, checkpoint, tmp_path):
    out = tmp_path / "out"
    kwargs = {**FAST, "limit": 1, "min_duration_s": 0.0}
    _run(folder, checkpoint, out, **{**kwargs, "outputs": ["json", "clips"]})
    assert list((out / "clips").rglob("a.mp4_*.mp4"))
    (out / "clips" / "sit").mkdir(exist_ok=True)
    others = ["ab.mp4_000000-000010.mp4", "a.mp4_000000-000010.mp4_000001-000002.mp4"]
    for name in others:
        (out / "clips" / "sit" / name).write_bytes(b"another video's clip")
    _run(folder, checkpoint, out, **{**kwargs, "outputs": ["json"]})
    assert sorted(p.name for p in (out / "clips").rglob("*.mp4")) == sorted(others)


def test_inputs_folder_list_file_or_glob(tmp_path):
    """``run`` takes a folder, a list file (paths relative to it, comments and blank lines
    skipped) or a glob; outputs mirror the tree below the videos' common folder."""
    for rel in ("in/a.mp4", "in/sub/b.mp4", "in/sub/c.avi", "in/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"0")
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"PK\x03\x04 weights")  # a dry run checks and hashes it, never loads it
    listing = tmp_path / "videos.txt"
    listing.write_text("in/a.mp4\n# a comment\n\nin/sub/b.mp4\nin/a.mp4\n")

    def would_do(spec) -> list[str]:
        return _run(spec, ckpt, tmp_path / "out", dry_run=True).done

    assert would_do(tmp_path / "in") == ["a.mp4", "sub/b.mp4", "sub/c.avi"]
    assert would_do(listing) == ["a.mp4", "sub/b.mp4"]  # listed twice: one job
    assert would_do(f"{tmp_path}/in/**/*.mp4") == ["a.mp4", "sub/b.mp4"]
    assert would_do(f"{tmp_path}/in/sub/*") == ["b.mp4", "c.avi"]  # mirrored below in/sub
    assert would_do(tmp_path / "in" / "sub" / "b.mp4") == ["b.mp4"]
    listing.write_text("in/a.mp4\nin/nope.mp4\n")
    with pytest.raises(UsageError, match=r"videos.txt:2: in/nope.mp4: video not found"):
        would_do(listing)
    with pytest.raises(UsageError, match="no video files match"):
        would_do(f"{tmp_path}/in/*.mkv")
    with pytest.raises(UsageError, match="input folder not found"):
        would_do(tmp_path / "missing")
