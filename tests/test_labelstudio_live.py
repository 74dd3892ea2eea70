"""The labelling loop against a real Label Studio on 127.0.0.1 (marker ``labelstudio``; ``make
test`` runs it as its own pytest invocation, with the server from ``make labelstudio``).

run -> export-labels -> Label Studio (project with our labelling config, local-files storage,
tasks + predictions imported) -> a person's corrections through the API (one boundary moved,
one segment relabelled) -> the project's JSON export -> extract-features + one epoch of
``train fit`` with ``--data.kind label-studio`` -> the corrected labels are what training read.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from test_batch import _run
from test_labels import tool_python

from pipelines.cli import main as cli
from pipelines.labels import export_labels
from video_lstm.data.datasets import BACKGROUND
from video_lstm.io.labels.common import ToolSpan, resolve_overlaps
from video_lstm.models import create_model
from video_lstm.models.checkpoint import ModelMeta, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.labelstudio

TOKEN = "0123456789abcdef0123456789abcdef01234567"  # a throwaway server's, never a real one
CLASSES = ["zoom_in", "zoom_out"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabelStudio:
    """A Label Studio server of its own venv, a throwaway data dir (a copy of the migrated
    template ``make labelstudio`` made) and a known API token."""

    def __init__(self, venv_python: Path, data_dir: Path, document_root: Path) -> None:
        template = Path(os.environ.get("VIDEO_LSTM_LABELSTUDIO_TEMPLATE")
                        or venv_python.parent.parent / "template")  # fmt: skip
        if template.is_dir():  # migrations take minutes on 2 cores; the copy is instant
            shutil.copytree(template, data_dir)
        else:
            data_dir.mkdir(parents=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "label-studio.log"
        env = {
            **os.environ,
            "LABEL_STUDIO_USERNAME": "ci@example.com",
            "LABEL_STUDIO_PASSWORD": "throwaway-password-1",
            "LABEL_STUDIO_USER_TOKEN": TOKEN,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LOCAL_FILES_SERVING_ENABLED": "true",
            "LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "COLLECT_ANALYTICS": "false",
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
        }
        env.pop("HOST", None)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(venv_python.parent / "label-studio"), "start", "--no-browser",
                 "--internal-host", "127.0.0.1", "--port", str(self.port),
                 "--data-dir", str(data_dir)],
                env=env, cwd=data_dir, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Label Studio exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"Label Studio did not answer in 240 s: {self.log.read_text()[-3000:]}")

    def api(self, method: str, path: str, body: object = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                raw = r.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(raw) if raw else None

    def fetch(self, path: str) -> bytes:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Token {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the server and its children
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def label_studio(tmp_path):
    python = tool_python(".venv-labelstudio", "VIDEO_LSTM_LABELSTUDIO_PYTHON", "labelstudio")
    server = LabelStudio(python, tmp_path / "ls-data", document_root=tmp_path)
    yield server
    server.stop()


def _checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    model = create_model(
        "video_lstm_compact", num_classes=2, frame_size=64, temporal_args={"hidden_sizes": [8]}
    )
    return save_checkpoint(path, model, ModelMeta.for_model(model, CLASSES, clip_len=4,
                                                            frame_interval=2))  # fmt: skip


def _correct(tasks: list[dict]) -> dict[int, list[tuple[int, int, str]]]:
    """A person's annotations: the predictions, with the first segment's end moved 4 frames
    earlier (its start later if it ends the video) and the last segment relabelled. Returns the
    corrected 0-based ``[start, end)`` frames per task id."""
    results = {t["id"]: json.loads(json.dumps(t["predictions"][0]["result"])) for t in tasks}
    flat = [(tid, r) for tid, rs in results.items() for r in rs]
    assert len(flat) >= 2, "the run found fewer than two segments to correct"
    tid, first = flat[0]
    rng = first["value"]["ranges"][0]
    frames = next(t for t in tasks if t["id"] == tid)["data"]["num_frames"]
    if rng["end"] < frames and rng["end"] - rng["start"] > 5:
        rng["end"] -= 4  # a boundary moved
    else:
        rng["start"] += 4
    last = flat[-1][1]["value"]
    last["timelinelabels"] = [next(c for c in CLASSES if c != last["timelinelabels"][0])]
    for rs in results.values():
        for r in rs:
            r.pop("score", None)  # a person's labels have no score
    return results


def test_label_studio_round_trip(label_studio, tmp_path):
    data = tmp_path / "data"
    assert cli(["make-untrimmed", "--out", str(data), "--train", "3", "--val", "0", "--test", "0",
                "--classes", *CLASSES, "--actions", "1-2", "--frames", "16-20",
                "--gap_frames", "8-12", "--size", "64", "--workers", "1"]) == 0  # fmt: skip
    videos = data / "videos" / "train"
    ckpt = _checkpoint(tmp_path / "model.pt")
    _run(videos, ckpt, tmp_path / "run", outputs=["json"], device="cpu", threshold=0.0, threads=1)
    export_labels(str(tmp_path / "run"), str(tmp_path / "ls"), format="label-studio")
    # The tool serves LOCAL_FILES_DOCUMENT_ROOT = tmp_path: the exported names are relative to
    # the run's input folder, so the URLs take that folder's path below the root.
    below = videos.relative_to(tmp_path).as_posix()
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    for t in tasks:
        t["data"]["video"] = f"/data/local-files/?d={below}/{t['data']['name']}"

    ls = label_studio
    config = (tmp_path / "ls" / "labeling_config.xml").read_text()
    project = ls.api("POST", "/api/projects", {"title": "video_lstm round trip",
                                               "label_config": config})  # fmt: skip
    pid = project["id"]
    ls.api("POST", "/api/storages/localfiles", {"project": pid, "path": str(videos),
                                                "title": "videos", "use_blob_urls": True})  # fmt: skip
    imported = ls.api("POST", f"/api/projects/{pid}/import", tasks)
    assert imported["task_count"] == 3 and imported["prediction_count"] == 3
    listed = ls.api("GET", f"/api/tasks?project={pid}&fields=all&page_size=100")["tasks"]
    assert {t["data"]["name"] for t in listed} == {t["data"]["name"] for t in tasks}
    pred = listed[0]["predictions"][0]
    assert pred["model_version"] == tasks[0]["predictions"][0]["model_version"]
    assert pred["result"][0]["score"] == tasks[0]["predictions"][0]["result"][0]["score"]
    # The video is where the task points: Label Studio serves the file itself.
    name = listed[0]["data"]["name"]
    assert ls.fetch(listed[0]["data"]["video"]) == (videos / name).read_bytes()

    corrected = _correct(listed)
    for tid, result in corrected.items():
        ls.api("POST", f"/api/tasks/{tid}/annotations", {"result": result, "lead_time": 3.0})
    export = tmp_path / "export.json"
    export.write_text(json.dumps(ls.api("GET", f"/api/projects/{pid}/export?exportType=JSON")))

    fps = {t["data"]["name"]: float(t["data"]["fps"]) for t in listed}
    want = {}
    for t in listed:
        spans = [(r["value"]["ranges"][0]["start"] - 1, r["value"]["ranges"][0]["end"],
                  r["value"]["timelinelabels"][0]) for r in corrected[t["id"]]]  # fmt: skip
        # The import's stated rule: touching spans of one label merge, overlaps go to the later.
        disjoint, _ = resolve_overlaps(ToolSpan(*s) for s in spans)
        want[t["data"]["name"]] = [(int(s.start_s), int(s.end_s), s.label) for s in disjoint]

    predicted = {
        t["data"]["name"]: sorted(
            (
                r["value"]["ranges"][0]["start"] - 1,
                r["value"]["ranges"][0]["end"],
                r["value"]["timelinelabels"][0],
            )
            for r in t["predictions"][0]["result"]
        )
        for t in listed
    }
    assert want != predicted  # the corrections are there to be read

    import yaml

    cfg = {
        "model": {"model_name": "video_lstm_compact",
                  "model_args": {"frame_size": 64, "temporal_args": {"hidden_sizes": [8]}}, "lr": 0.01},
        "data": {"root": str(videos), "kind": "label-studio",
                 "manifest_args": {"annotations": str(export), "checkpoint": str(ckpt)},
                 "features_dir": str(tmp_path / "features"), "clip_len": 4, "frame_interval": 2,
                 "frame_size": 64, "decode_size": 64, "num_clips": 1, "batch_size": 8,
                 "samples_per_epoch": 16},
        "trainer": {"accelerator": "cpu", "max_epochs": 1, "enable_progress_bar": False},
    }  # fmt: skip
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert cli(["extract-features", "--config", str(tmp_path / "cfg.yaml"),
                "--progress", "false"]) == 0  # fmt: skip
    from video_lstm.training.cli import main as train_main

    fit = train_main(["fit", "--config", str(tmp_path / "cfg.yaml")],
                     root_dir=str(tmp_path / "runs"), name="ls")  # fmt: skip
    _, meta = load_checkpoint(fit.trainer.checkpoint_callback.last_model_path)
    assert meta.class_names == [BACKGROUND, *CLASSES]
    # What training read: the segments of the feature cache the windows were drawn from.
    index = json.loads((tmp_path / "features" / "train" / "index.json").read_text())
    read = {}
    for v in index["videos"]:
        rel = Path(v["path"]).resolve().relative_to(videos.resolve()).as_posix()
        read[rel] = sorted(
            (round(a * fps[rel]), round(b * fps[rel]), c) for a, b, c in v["segments"]
        )
    assert read == want
    # evaluate and calibrate read the same export through the same kind.
    last = fit.trainer.checkpoint_callback.last_model_path
    spec = ["--root", str(videos), "--kind", "label-studio",
            "--manifest_args", json.dumps({"annotations": str(export)})]  # fmt: skip
    assert cli(["calibrate", last, *spec, "--subset", "val", "--device", "cpu"]) == 0
    assert cli(["evaluate", last, str(tmp_path / "eval"), *spec, "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert len(list((tmp_path / "eval" / "predictions").glob("*.json"))) == 3
    assert not metrics["missing"] and 0 <= metrics["frame_accuracy"] <= 1
