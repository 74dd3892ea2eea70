"""The Ray engines on a local Ray (``ray.init(num_cpus=2)``, one session for the module):
``run --engine ray`` against ``--engine local`` on the same videos (same outputs, resume across
engines, a killed worker's video retried, a video that keeps killing workers recorded failed)
and ``compare --engine ray`` (Ray Tune trials on a shared feature cache)."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import pytest
import yaml
from test_batch import make_checkpoint, write_video
from test_training import MODEL_ARGS, _write_config, features, tiny  # noqa: F401 (fixtures)

from pipelines.batch import run_folder
from pipelines.jobs import build_manifest, plan_jobs, read_record, settings_hash
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.io.claims import read_claim
from video_lstm.training.compare import compare, expand_grid

ray = pytest.importorskip("ray")  # the dev extra installs it; a bare install skips


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the module (starting Ray takes seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield ray
    ray.shutdown()


FAST = {"outputs": ["json", "csv", "srt", "video"], "device": "cpu", "threshold": 0.0}
RUN_ARGS = ("limit", "engine", "workers", "resume")


def _run(videos: Path | str, checkpoint: Path, out: Path, **kwargs):
    """run_folder with its own arguments and the settings (FAST + kwargs) by their short names."""
    run_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in RUN_ARGS}
    settings = AnnotateSettings.from_flat(**{**FAST, **kwargs})
    return run_folder(str(videos), str(checkpoint), str(out), settings, progress=False, **run_kw)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Three short videos (one nested, one with a space) and one that cannot be read."""
    root = tmp_path_factory.mktemp("videos")
    for i, rel in enumerate(["a.mp4", "c c.mp4", "sub/d.mp4"]):
        write_video(root / rel, 30 + 10 * i)
    (root / "broken.mp4").write_bytes(b"not a video")
    return root


def _outputs(out: Path) -> dict[str, bytes]:
    """Every file of a run by relative path (bookkeeping under .video_lstm and the manifest left
    out), with its bytes; result JSONs by their segments (they also hold timings), the HTML
    report by name only (it shows who did each video and how long it took)."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if not p.is_file() or rel.startswith(".video_lstm") or rel == "manifest.json":
            continue
        data = p.read_bytes()
        if p.suffix == ".json":
            data = json.dumps(json.loads(data)["segments"], sort_keys=True).encode()
        elif p.suffix == ".html" or rel.startswith("_report/"):
            data = b""
        files[rel] = data
    return files


def test_ray_engine_matches_local_and_resumes_across_engines(
    ray_local, checkpoint, videos, tmp_path
):
    """Two Ray workers produce the local engine's files (same names, same segments, same
    subtitles, CSV and annotated videos); a run interrupted after one video by the local engine is finished by
    the Ray engine without redoing them, and a local rerun then finds everything complete."""
    local = _run(videos, checkpoint, tmp_path / "local")
    assert local.failed.keys() == {"broken.mp4"} and len(local.done) == 3

    out = tmp_path / "mixed"
    first = _run(videos, checkpoint, out, limit=1)
    assert first.done == ["a.mp4"]
    ray_run = _run(videos, checkpoint, out, engine="ray", workers=2, threads=1)
    assert ray_run.skipped == ["a.mp4"]
    assert sorted(ray_run.done) == ["c c.mp4", "sub/d.mp4"]
    assert ray_run.failed.keys() == {"broken.mp4"}
    owners = {ray_run.owners[v] for v in ray_run.done}  # worker-N@host:pid (who was ready)
    assert all(re.fullmatch(r"worker-[01]@.+:\d+", o) for o in owners), owners
    assert ray_run.owners.keys() == {"c c.mp4", "sub/d.mp4", "broken.mp4"}  # who did each
    assert _outputs(out) == _outputs(tmp_path / "local")

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["done"] == 3 and manifest["counts"]["failed"] == 1
    assert manifest["videos"]["c c.mp4"]["owner"] in owners
    again = _run(videos, checkpoint, out)
    assert sorted(again.skipped) == sorted(local.done) and not again.done


def _kill_when_claimed(kill: dict[str, int], killed: list[str]):
    """``on_dispatch`` hook: ``ray.kill`` the worker given a video named in ``kill`` once it
    holds the video's claim (it is mid-video then), at most ``kill[video]`` times."""

    def hook(job, actor, name):
        if killed.count(job.rel) >= kill.get(job.rel, 0):
            return
        deadline = time.monotonic() + 120
        while (read_claim(job.claim_path) or {}).get("owner") != name:
            assert time.monotonic() < deadline, f"{name} never claimed {job.rel}"
            time.sleep(0.005)
        ray.kill(actor)
        killed.append(job.rel)

    return hook


def _run_with_kills(checkpoint, root: Path, out: Path, kill: dict[str, int], **kw):
    from pipelines.ray_engine import run_jobs_on_ray

    jobs = plan_jobs(root, out)
    settings = AnnotateSettings.from_flat(**{**FAST, "outputs": ["json", "csv"], "threads": 1})
    digest = settings_hash(settings, checkpoint)
    killed: list[str] = []
    result = run_jobs_on_ray(
        jobs, checkpoint, settings, digest, workers=2, progress=False,
        on_dispatch=_kill_when_claimed(kill, killed), **kw,
    )  # fmt: skip
    outcomes: dict[str, list[str]] = {}
    for video, _, outcome in result.history:
        outcomes.setdefault(video, []).append(outcome)
    build_manifest(out, digest)
    assert not list((out / ".video_lstm" / "claims").glob("*.claim"))  # none left behind
    return result, outcomes, killed, {j.rel: read_record(j) for j in jobs}


def test_ray_engine_runs_an_exported_model_on_onnx_runtime(ray_local, checkpoint, videos, tmp_path):
    """``--runtime onnx`` on Ray workers: the export's segments are the torch run's."""
    from video_lstm.inference.export import export_onnx

    model = export_onnx(checkpoint, tmp_path / "model.onnx").encoder
    onnx_run = _run(videos, model, tmp_path / "onnx", engine="ray", workers=2, threads=1,
                    runtime="onnx", outputs=["json"])  # fmt: skip
    assert sorted(onnx_run.done) == ["a.mp4", "c c.mp4", "sub/d.mp4"]
    local = _run(videos, checkpoint, tmp_path / "torch", outputs=["json"])
    assert sorted(local.done) == sorted(onnx_run.done)
    for rel in local.done:
        got, want = (
            json.loads((tmp_path / d / f"{rel}.json").read_text()) for d in ("onnx", "torch")
        )
        assert [s["label"] for s in got["segments"]] == [s["label"] for s in want["segments"]]
        assert got["settings"]["runtime"]["runtime"] == "onnx"


def test_killed_worker_video_is_retried_elsewhere_and_done_once(ray_local, checkpoint, tmp_path):
    """``ray.kill`` on the worker doing ``long.mp4`` while it holds the claim: another worker
    does the video (at once, without waiting for the claim to go stale), nothing is done
    twice, and a replacement worker is started."""
    write_video(tmp_path / "in" / "long.mp4", 400)
    write_video(tmp_path / "in" / "short.mp4", 30)
    result, outcomes, killed, records = _run_with_kills(
        checkpoint, tmp_path / "in", tmp_path / "out", {"long.mp4": 1}
    )
    assert killed == ["long.mp4"] and result.retried == {"long.mp4": 1}
    assert outcomes == {"long.mp4": ["lost", "done"], "short.mp4": ["done"]}
    lost_on = next(w for v, w, o in result.history if o == "lost")
    assert records["long.mp4"]["status"] == "done" and records["long.mp4"]["owner"] != lost_on
    assert records["short.mp4"]["status"] == "done"
    assert len(result.workers) == 3  # the two, and a replacement for the killed one
    counts = json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]
    assert counts["done"] == 2 and counts["failed"] == 0


@pytest.mark.slow
def test_video_that_keeps_killing_workers_is_recorded_failed(ray_local, checkpoint, tmp_path):
    """Every worker given ``doomed.mp4`` dies mid-video: after ``max_attempts`` it is recorded
    as failed with the reason, and the other videos are done."""
    write_video(tmp_path / "in" / "doomed.mp4", 400)
    write_video(tmp_path / "in" / "ok.mp4", 30)
    result, outcomes, killed, records = _run_with_kills(
        checkpoint, tmp_path / "in", tmp_path / "out", {"doomed.mp4": 9}, max_attempts=2
    )
    assert killed == ["doomed.mp4"] * 2
    assert outcomes == {"doomed.mp4": ["lost", "lost"], "ok.mp4": ["done"]}
    assert records["doomed.mp4"]["status"] == "failed"
    assert records["doomed.mp4"]["reason"].startswith("gave up after 2 attempts (last on worker-")
    assert records["ok.mp4"]["status"] == "done"
    counts = json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]
    assert counts["done"] == 1 and counts["failed"] == 1


def test_expand_grid_names_and_arguments():
    trials = expand_grid(
        ["a/lstm.yaml", "b/gru.yaml"], grid=["model.lr=0.1,0.2", "data.batch_size=4"]
    )
    assert trials == [
        ("lstm_lr=0.1_batch_size=4", "a/lstm.yaml", ["--model.lr=0.1", "--data.batch_size=4"]),
        ("lstm_lr=0.2_batch_size=4", "a/lstm.yaml", ["--model.lr=0.2", "--data.batch_size=4"]),
        ("gru_lr=0.1_batch_size=4", "b/gru.yaml", ["--model.lr=0.1", "--data.batch_size=4"]),
        ("gru_lr=0.2_batch_size=4", "b/gru.yaml", ["--model.lr=0.2", "--data.batch_size=4"]),
    ]
    assert expand_grid(["x.yaml"], names=["x1"]) == [("x1", "x.yaml", [])]
    with pytest.raises(ValueError, match="KEY=V1,V2"):
        expand_grid(["x.yaml"], grid=["model.lr"])
    with pytest.raises(ValueError, match="2 names for 1 configs"):
        expand_grid(["x.yaml"], names=["a", "b"])


def test_compare_on_ray_tune_trials_match_the_table(ray_local, tiny, features, tmp_path):  # noqa: F811
    """Two configs x a grid as parallel Tune trials on one feature cache: the same table and
    plot as the local engine, rows in config order, each trial with its own logs and the
    learning rate the grid gave it (not the config's 0.01)."""
    base = _write_config(tmp_path, tiny, features_dir=str(features))
    entry = tmp_path / "gru.yaml"
    entry.write_text(
        yaml.safe_dump({"model": {"model_args": {**MODEL_ARGS, "temporal": "convgru"}}})
    )
    out = tmp_path / "cmp"
    rows = compare(
        [base, entry],
        out,
        base=[base],
        names=["convlstm", "convgru"],
        grid=["model.lr=0.003"],
        extra=["--trainer.max_epochs=1"],
        engine="ray",
    )
    names = ["convlstm_lr=0.003", "convgru_lr=0.003"]
    assert [r["name"] for r in rows] == names
    assert [r["temporal"] for r in rows] == ["convlstm", "convgru"]
    assert all(r["epochs"] == 1 and 0 <= r["video_top1"] <= 1 for r in rows)
    with open(out / "compare.csv", newline="") as f:
        assert [r["name"] for r in csv.DictReader(f)] == names
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for r in rows:
        resolved = yaml.safe_load((Path(r["checkpoint"]).parents[1] / "config.yaml").read_text())
        assert resolved["model"]["lr"] == 0.003
        assert resolved["data"]["features_dir"] == str(features)


@pytest.mark.slow
def test_ctrl_c_stops_the_ray_run_cleanly_and_a_rerun_finishes(checkpoint, tmp_path):
    """SIGINT to the process group of ``video-lstm run --engine ray`` (what Ctrl-C in a
    terminal sends) while videos are in flight: the run stops within seconds, no claim is left,
    no Ray process of the run survives, and a rerun does every video."""
    import os
    import signal
    import subprocess
    import sys

    for i in range(4):
        write_video(tmp_path / "in" / f"v{i}.mp4", 400)
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "pipelines.cli", "run", str(tmp_path / "in"), str(checkpoint),
        str(out), "--engine", "ray", "--workers", "2", "--threads", "1", "--progress", "false",
        "--device", "cpu", "--outputs", '["json"]',
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE, text=True)
    claims = out / ".video_lstm" / "claims"
    deadline = time.monotonic() + 180
    while not list(claims.glob("*.claim")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no video was ever claimed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the run did not stop within 60 s of Ctrl-C")
    err = proc.stderr.read()
    assert proc.returncode in (130, -signal.SIGINT), err
    assert not list(claims.glob("*.claim")), "claims left behind"
    left = subprocess.run(["ps", "-eo", "sid=,pid=,args="], capture_output=True, text=True).stdout
    assert not [line for line in left.splitlines() if line.split()[0] == str(proc.pid)], left
    rerun = _run(tmp_path / "in", checkpoint, out)
    assert len(rerun.done) + len(rerun.skipped) == 4 and not rerun.failed
    assert rerun.done  # the interrupted videos, done now


def test_worker_sizing():
    from pipelines.ray_engine import worker_resources
    from video_lstm.errors import UsageError

    assert worker_resources({"CPU": 2}) == (2, 1, 0.0)  # a single-thread worker per core
    assert worker_resources({"CPU": 8}, threads=2) == (4, 2, 0.0)
    assert worker_resources({"CPU": 8}, workers=2) == (2, 4, 0.0)
    assert worker_resources({"CPU": 16, "GPU": 2}, gpus_per_worker=0.5) == (4, 4, 0.5)
    with pytest.raises(
        UsageError, match="3 workers x 1 threads need 3 CPUs; the Ray cluster has 2"
    ):
        worker_resources({"CPU": 2}, workers=3)
    with pytest.raises(UsageError, match="the Ray cluster has 0 GPUs"):
        worker_resources({"CPU": 2}, gpus_per_worker=1)
