"""Folder runs people can trust: names that cannot collide, claims shared by many runners,
records and manifest, disk-full and odd file names, leftovers cleaned, O(n) bookkeeping.

Every test writes real videos (``tests.test_batch.write_video``, H.264 through PyAV) and runs
the real pipeline; failures are injected only where a real one cannot be made on demand (a
full disk)."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_batch import FAST, _run, write_video

import pipelines.jobs as jobs_mod
from pipelines.cli import main as cli_main
from pipelines.jobs import (
    build_manifest,
    claim,
    is_complete,
    plan_jobs,
    read_record,
    read_run,
    record_files,
)
from video_lstm.io.claims import HOST, read_claim, try_claim
from video_lstm.models import DEFAULT_MODEL, create_model
from video_lstm.models.checkpoint import ModelMeta, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def make_checkpoint(path: Path, class_names=("sit", "stand")) -> Path:
    torch.manual_seed(0)
    model = create_model(DEFAULT_MODEL, num_classes=len(class_names), frame_size=32)
    meta = ModelMeta.for_model(model, list(class_names), clip_len=4, frame_interval=2)
    return save_checkpoint(path, model, meta)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt")


def records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / ".video_lstm/records").glob("*.json"))]


# ------------------------------------------------------------------ defect 2: colliding names


def test_names_that_sanitise_alike_get_separate_outputs(checkpoint, tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    lengths = {"a b.mp4": 20, "a_b.mp4": 24, "x.mp4": 28, "x.mkv": 32, "x_mp4.mp4": 36}
    for name, n in lengths.items():
        write_video(root / name, n)
    kwargs = {**FAST, "outputs": ["json", "clips"], "min_duration_s": 0.0}
    summary = _run(root, checkpoint, out, **kwargs)
    assert sorted(summary.done) == sorted(lengths) and summary.exit_code == 0

    clips = sorted(p.relative_to(out).as_posix() for p in (out / "clips").rglob("*.mp4"))
    listed = []
    for name, n in lengths.items():
        doc = json.loads((out / f"{name}.json").read_text())
        assert Path(doc["video"]["path"]).name == name and doc["video"]["num_frames"] == n
        own = [p for p in clips if Path(p).name.startswith(f"{name}_")]
        assert len(own) == len(doc["segments"]) >= 1, (name, clips)
        listed += own
    assert sorted(listed) == clips  # every clip belongs to exactly one video
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["done"] == 5 and set(manifest["videos"]) == set(lengths)
    # A rerun finds all five complete (none was overwritten by another).
    again = _run(root, checkpoint, out, **kwargs)
    assert sorted(again.skipped) == sorted(lengths) and again.done == []


# ------------------------------------------------------------------ defect 3: undecodable names


def test_a_non_utf8_file_name_does_not_stop_the_batch(checkpoint, tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    write_video(root / "tmp.mp4")
    os.rename(os.fsencode(root / "tmp.mp4"), os.fsencode(root) + b"/caf\xe9 \xff.mp4")
    write_video(root / "z.mp4")  # sorted after the odd name
    for _ in range(2):  # the first run and a rerun
        summary = _run(root, checkpoint, out, **FAST)
        assert summary.manifest_error is None and summary.exit_code == 0, summary.format()
        assert len(summary.done) + len(summary.skipped) == 2
    manifest = json.loads((out / "manifest.json").read_bytes().decode("utf-8"))
    assert sorted(manifest["videos"]) == ["caf\\xe9 \\xff.mp4", "z.mp4"]
    assert all(r["status"] == "done" for r in manifest["videos"].values())
    odd = manifest["videos"]["caf\\xe9 \\xff.mp4"]["outputs"]
    assert all((out / p).is_file() for p in odd) and all(p.isascii() is False or p for p in odd)


# ------------------------------------------------------------------ defect 4: many runners


def _runner(root: Path, checkpoint: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipelines.cli", "run", str(root), str(checkpoint), str(out)]
    cmd += ["--outputs", "[json,csv,clips]", "--progress", "false", "--device", "cpu"]
    cmd += ["--threshold", "0.0", "--min_duration_s", "0.0", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_three_runners_on_one_folder_do_each_video_once(checkpoint, tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    names = [f"v{i}.mp4" for i in range(6)]
    for i, name in enumerate(names):
        write_video(root / ("sub" if i % 2 else "") / name, 40 + 10 * i)
    (root / "broken.mp4").write_text("not a video\n")
    procs = [_runner(root, checkpoint, out) for _ in range(3)]
    results = [p.communicate(timeout=600) for p in procs]
    done = []
    for proc, (stdout, stderr) in zip(procs, results, strict=True):
        assert proc.returncode == 1, stderr  # broken.mp4 fails (in the runner that took it)
        assert "Traceback" not in stderr, stderr
        line = next(x for x in stdout.splitlines() if x.startswith("done:"))
        done.append(int(re.match(r"done: (\d+)", line).group(1)))
    assert sum(done) == len(names), results  # no video done twice, none missed

    recs = records(out)
    good = [r for r in recs if r["status"] == "done"]
    assert len(recs) == len(names) + 1 and len(good) == len(names)
    assert len({r["video"] for r in recs}) == len(recs)  # one record (one owner) per video
    assert {r["pid"] for r in recs} <= {p.pid for p in procs}
    jobs = plan_jobs(root, out)
    digest = good[0]["settings_hash"]
    assert all(is_complete(j, digest) for j in jobs if j.name != "broken.mp4")
    assert not list((out / ".video_lstm" / "claims").iterdir())  # every claim given back
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"done": len(names), "failed": 1, "outdated": 0}
    for r in good:
        assert manifest["videos"][r["video"]]["owner"] == r["owner"]
        assert all((out / p).is_file() for p in r["outputs"])
        assert sum("/clips/" in f"/{p}" for p in r["outputs"]) == r["segments"]


def test_a_killed_runners_claim_is_taken_over(checkpoint, tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    write_video(root / "a.mp4")
    write_video(root / "b.mp4")
    job = {j.name: j for j in plan_jobs(root, out)}["a.mp4"]
    # A real process claims a.mp4 and is killed (kill -9) while holding it.
    code = (
        "import sys, time; from video_lstm.io.claims import try_claim; "
        "assert try_claim(sys.argv[1], 'victim'); print('held', flush=True); time.sleep(600)"
    )
    victim = subprocess.Popen(
        [sys.executable, "-c", code, str(job.claim_path)],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert victim.stdout.readline().strip() == "held"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert read_claim(job.claim_path)["owner"] == "victim"

    summary = _run(root, checkpoint, out, **FAST)
    assert sorted(summary.done) == ["a.mp4", "b.mp4"] and summary.elsewhere == []
    assert read_record(job)["pid"] == os.getpid() and not job.claim_path.exists()


def test_claims_live_stale_and_taken_over(tmp_path):
    path = tmp_path / "claims" / "v.claim"
    first = try_claim(path, "one", stale_after=30)
    assert first is not None and first.held()
    assert try_claim(path, "two", stale_after=30) is None  # live: nobody else gets it
    assert first.refresh() and read_claim(path)["heartbeat"] >= first.created

    # Another host's claim: live while its heartbeat is fresh, stale after the timeout.
    info = {**first.info(), "host": "elsewhere", "pid": 1, "token": "t" * 32}
    path.write_text(json.dumps({**info, "heartbeat": time.time()}))
    assert try_claim(path, "two", stale_after=30) is None
    path.write_text(json.dumps({**info, "heartbeat": time.time() - 60}))
    second = try_claim(path, "two", stale_after=30)
    assert second is not None and second.taken_over["host"] == "elsewhere"
    assert not first.held() and not first.refresh()  # the first holder learns it lost it
    first.release()  # and does not delete the new holder's claim
    assert second.held()

    # A process on this host that is gone: taken over at once, whatever the heartbeat.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text(json.dumps({**info, "host": HOST, "pid": dead.pid, "heartbeat": time.time()}))
    third = try_claim(path, "three", stale_after=3600)
    assert third is not None and third.owner == "three"
    with third.keep_alive(0.05):
        before = read_claim(path)["heartbeat"]
        time.sleep(0.3)
        assert read_claim(path)["heartbeat"] > before
    third.release()
    assert not path.exists() and not list(path.parent.iterdir())


def test_a_claimed_video_is_left_to_its_runner(checkpoint, tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    write_video(root / "a.mp4")
    write_video(root / "b.mp4")
    job = {j.name: j for j in plan_jobs(root, out)}["a.mp4"]
    held = claim(job, "someone else")  # a live runner (this process) is working on a.mp4
    # A temporary that runner is writing: cleanup must not touch it.
    job.out_dir.mkdir(parents=True, exist_ok=True)
    theirs = job.out_dir / ".a.mp4.json.0123abcd.json.part"
    theirs.write_text("{")
    summary = _run(root, checkpoint, out, **FAST)
    assert summary.done == ["b.mp4"] and summary.elsewhere == ["a.mp4"]
    assert "in progress elsewhere: 1" in summary.format() and summary.exit_code == 0
    assert theirs.exists() and held.held()
    held.release()
    resumed = _run(root, checkpoint, out, **FAST)
    assert resumed.done == ["a.mp4"] and not theirs.exists()  # now its own leftover: removed


# ------------------------------------------------------------------ defect 5: disk full


def test_disk_full_ends_in_the_summary_with_a_nonzero_exit(
    checkpoint, tmp_path, monkeypatch, capsys
):
    root, out = tmp_path / "in", tmp_path / "out"
    write_video(root / "a.mp4")
    write_video(root / "b.mp4")
    real_write_json = jobs_mod.write_json

    def manifest_disk_full(path, obj, **kw):
        if Path(path).name == "manifest.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write_json(path, obj, **kw)

    monkeypatch.setattr(jobs_mod, "write_json", manifest_disk_full)
    argv = ["run", str(root), str(checkpoint), str(out), "--outputs", "[json]"]
    argv += ["--progress", "false", "--device", "cpu"]
    assert cli_main(argv) == 1
    printed = capsys.readouterr().out
    assert "done: 2" in printed and "MANIFEST NOT WRITTEN" in printed
    assert "No space left on device" in printed

    # Full everywhere: every output and record write fails; each video is reported, the run ends.
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("video_lstm.io.files.os.replace", disk_full)
    summary = _run(root, checkpoint, tmp_path / "out2", **FAST)
    assert sorted(summary.failed) == ["a.mp4", "b.mp4"] and summary.exit_code == 1
    assert all("No space left" in r for r in summary.failed.values()), summary.failed
    assert summary.manifest_error and "No space left" in summary.manifest_error
    assert not list((tmp_path / "out2").rglob("*.part"))
    assert not list((tmp_path / "out2" / ".video_lstm" / "claims").iterdir())


# ------------------------------------------------------------------ defect 6: hostile labels


def test_hostile_class_names_give_safe_paths_subtitles_and_csv(tmp_path):
    long = "=" + "x" * 300  # a formula, and a name longer than a file name may be
    cue = "sit\n\n99\n00:00:00,000 --> 00:09:00,000\nINJECTED"
    ckpt = make_checkpoint(tmp_path / "m.pt", class_names=(long, cue))
    root, out = tmp_path / "in", tmp_path / "out"
    write_video(root / "a.mp4", 40)
    kwargs = {**FAST, "outputs": ["json", "csv", "srt", "vtt", "clips"], "min_duration_s": 0.0}
    summary = _run(root, ckpt, out, **kwargs)
    assert summary.done == ["a.mp4"], summary.format()
    doc = json.loads((out / "a.mp4.json").read_text())
    labels = [s["label"] for s in doc["segments"]]
    assert labels and set(labels) <= {long, cue}
    for clip in (out / "clips").rglob("*.mp4"):
        assert all(len(part.encode()) <= 255 for part in clip.relative_to(out).parts)
    srt = (out / "a.mp4.srt").read_text()
    blocks = [b for b in srt.split("\n\n") if b.strip()]
    assert len(blocks) == len(labels) and "INJECTED" not in srt.replace(" INJECTED", "")
    assert all(len(b.strip().splitlines()) == 3 for b in blocks)  # index, timing, one text line
    vtt = (out / "a.mp4.vtt").read_text().split("\n\n")[1:]
    assert all(len(b.strip().splitlines()) == 2 for b in vtt if b.strip())
    rows = (out / "a.mp4.csv").read_text().splitlines()[1:]
    assert rows and not any(r.startswith(("=", '"=')) for r in rows)
    if long in labels:
        assert any(r.startswith("'=xxx") for r in rows)


# ------------------------------------------------------------------ defect 7: leftovers, mode


def _killed_while_writing(final: Path) -> None:
    """A real process killed (-9) inside ``atomic_path(final)``: leaves its temporary behind."""
    code = (
        "import os, sys; from video_lstm.io.files import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    open(tmp, 'w').write('{half')\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(final)], env=ENV, check=False)


def test_temporaries_of_killed_writes_are_removed_on_resume(checkpoint, tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    write_video(root / "a.mp4")
    _killed_while_writing(out / "manifest.json")
    _killed_while_writing(out / "a.mp4.json")
    old_style = out / ".manifest.k2j3_x9a.json.part"  # what the mkstemp-based writer left
    old_style.write_text("{")
    assert len(list(out.glob(".*.part"))) == 3
    _run(root, checkpoint, out, **FAST)
    assert not list(out.rglob("*.part"))
    json.loads((out / "manifest.json").read_text())


def test_outputs_honour_the_umask(checkpoint, tmp_path):
    root = tmp_path / "in"
    write_video(root / "a.mp4")
    old = os.umask(0o027)
    try:
        kwargs = {**FAST, "outputs": ["json", "csv", "srt", "vtt", "video", "clips"]}
        _run(root, checkpoint, tmp_path / "out", **kwargs)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix != ".claim"]
    assert len(files) >= 7
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o640)}


def test_atomic_write_fsyncs_file_then_folder(tmp_path, monkeypatch):
    from video_lstm.io import files

    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or real_fsync(fd))  # fmt: skip
    monkeypatch.setattr(files.os, "replace", lambda a, b: calls.append(("replace", str(b))) or real_replace(a, b))  # fmt: skip
    target = files.write_json(tmp_path / "r.json", {"v": 1})
    kinds = [c[0] for c in calls]
    assert kinds == ["fsync", "replace", "fsync"], calls
    assert calls[0][1].endswith(".part") and calls[2][1] == str(tmp_path)
    assert json.loads(target.read_text()) == {"v": 1}


# ------------------------------------------------------------------ defect 8: O(n) bookkeeping


def _empty_videos(root: Path, n: int) -> Path:
    for i in range(n):
        folder = root / f"d{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"v{i:05d}.mp4").touch()
    return root


def test_bookkeeping_grows_linearly_with_the_number_of_videos(checkpoint, tmp_path):
    def python_calls(n: int) -> int:
        """Python function calls of a dry run over ``n`` files: a machine-independent cost."""
        root = _empty_videos(tmp_path / f"in{n}", n)
        calls = 0

        def count(frame, event, arg):
            nonlocal calls
            calls += event == "call"

        sys.setprofile(count)
        try:
            summary = _run(root, checkpoint, tmp_path / f"out{n}", dry_run=True)
        finally:
            sys.setprofile(None)
        assert len(summary.done) == n
        return calls

    small, large = python_calls(500), python_calls(2000)
    # Linear: ~4x the calls for 4x the files; the quadratic version (`j not in todo` over a list
    # of dataclasses, one __eq__ call per pair) made 2000 files cost ~16x 500 files.
    assert large / small < 5, (small, large)


def test_a_10000_file_dry_run_finishes(checkpoint, tmp_path):
    root = _empty_videos(tmp_path / "in", 10_000)

    def too_slow(*_):
        raise TimeoutError("a 10,000-file dry run took over 120 s")

    # ~2 s on 2 quiet cores (~10 s at load 12); the generous bound only catches a hang.
    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(120)
    try:
        summary = _run(root, checkpoint, tmp_path / "out", dry_run=True)
    finally:
        signal.alarm(0)
    assert len(summary.done) == 10_000 and len(set(summary.done)) == 10_000
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_manifest_is_a_view_over_the_records(checkpoint, tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    write_video(root / "a.mp4")
    _run(root, checkpoint, out, **FAST)
    (out / "manifest.json").unlink()
    path = build_manifest(out)  # any runner (or a user) can rebuild it from the records
    manifest = json.loads(path.read_text())
    assert manifest["counts"]["done"] == 1 and manifest["settings"]["segments"]["threshold"] == 0.0
    changed = _run(root, checkpoint, out, **{**FAST, "threshold": 0.3})
    assert changed.done == ["a.mp4"]
    assert (
        json.loads((out / "manifest.json").read_text())["settings"]["segments"]["threshold"] == 0.3
    )


def test_read_run_gives_the_records_and_each_writers_files(checkpoint, tmp_path, monkeypatch):
    """The public reader of a run (the report and export-labels use it): the header, each
    video's record, and its files by writer, a plugin writer's in a sub-folder too."""
    import video_lstm.inference.writers as writers
    from video_lstm.io.files import write_text

    monkeypatch.setattr(writers, "_WRITERS", dict(writers._WRITERS))

    def paths(out_dir, name):
        return [Path(out_dir) / "notes" / f"{name}.md"]

    def write(result, reader, out_dir, name):
        (path,) = paths(out_dir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return [write_text(path, f"{len(result.segments)} segments\n")]

    writers.register_writer(writers.Writer(name="notes", write=write, files=paths))
    root, out = tmp_path / "in", tmp_path / "out"
    write_video(root / "a.mp4")
    _run(root, checkpoint, out, **{**FAST, "outputs": ["json", "notes"]})
    header, videos = read_run(out)
    assert header["settings"]["outputs"] == ["json", "notes"] and list(videos) == ["a.mp4"]
    files = record_files(out, "a.mp4", videos["a.mp4"])
    assert files == {"notes": [out / "notes" / "a.mp4.md"], "json": [out / "a.mp4.json"]}
    with pytest.raises(FileNotFoundError, match="not a folder run"):
        read_run(tmp_path / "in")
