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
from test_labels import ROOT, tool_python

from pipelines.cli import main as cli
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

    def __init__(self, venv_python: Path, data_dir: Path, readme_env: dict[str, str]) -> None:
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
            **readme_env,  # local-files serving, as the README starts it
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


def _readme_blocks() -> list[list[list[str]]]:
    """The bash blocks of the README's "Correct and retrain" section, as commands."""
    from test_readme import FENCE, README, commands

    text = README.read_text()
    section = text[text.index("## 2c. Correct and retrain") :]
    section = section[: section.index("\n## ", 4)]
    return [commands(body) for kind, body in FENCE.findall(section) if kind == "bash"]


def test_readme_correct_and_retrain_against_label_studio(tmp_path, monkeypatch):
    """The README section as written, in an empty folder: its commands run (training made
    tiny: one epoch of 16 windows), its Label Studio steps done through the REST API."""
    python = tool_python(".venv-labelstudio", "VIDEO_LSTM_LABELSTUDIO_PYTHON", "labelstudio")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "configs").symlink_to(ROOT / "configs")
    # The README's inputs: new videos (the demo's generator) and a model to pre-annotate them.
    assert cli(["make-untrimmed", "--out", str(tmp_path / "gen"), "--train", "3", "--val", "0",
                "--test", "0", "--classes", f"[{','.join(CLASSES)}]", "--actions", "[1,2]",
                "--frames", "[16,20]", "--gap_frames", "[8,12]", "--size", "64",
                "--workers", "1"]) == 0  # fmt: skip
    shutil.copytree(tmp_path / "gen" / "videos" / "train", work / "data" / "new_videos")
    videos = work / "data" / "new_videos"
    ckpt = work / "runs" / "video_lstm" / "version_0" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    _checkpoint(ckpt)

    pre, retrain, *_ = _readme_blocks()  # the CVAT block after them is checked by test_readme
    readme_env: dict[str, str] = {}
    for cmd in pre:
        if cmd[0].endswith("video-lstm"):
            extra = ["--device", "cpu", "--threads", "1"] if cmd[1] == "run" else []
            assert cli([*cmd[1:], *extra]) == 0, cmd
        elif cmd[0] == "make":
            assert cmd[1:] == ["labelstudio"]  # built by `make test` (tool_python checks it)
        else:  # VAR=value ... label-studio start: the server below gets the same variables
            assert cmd[-3:-2] == ["start"] and cmd[-4].endswith("bin/label-studio"), cmd
            readme_env = dict(w.replace("$PWD", str(work)).split("=", 1) for w in cmd if "=" in w)
    assert readme_env["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"] == str(videos.parent)
    ls = LabelStudio(python, tmp_path / "ls-data", readme_env)
    try:
        _label(ls, work, videos)
    finally:
        ls.stop()
    want = json.loads((work / "want.json").read_text())

    for cmd in retrain:
        argv = cmd[1:]
        if argv[:2] == ["train", "fit"]:
            argv += ["--trainer.max_epochs", "1", "--data.samples_per_epoch", "16"]
        assert cli(argv) == 0, cmd
    runs = sorted((work / "runs" / "video_lstm").glob("version_*/checkpoints/last.ckpt"))
    last = str(runs[-1])
    assert last != str(ckpt)
    _, meta = load_checkpoint(last)
    assert meta.class_names == [BACKGROUND, *CLASSES]
    # What training read: the segments of the feature cache its windows were drawn from.
    index = json.loads((videos / "features" / "train" / "index.json").read_text())
    read = {}
    for v in index["videos"]:
        rel = Path(v["path"]).resolve().relative_to(videos.resolve()).as_posix()
        fps = float(v["fps"])
        read[rel] = [[round(a * fps), round(b * fps), c] for a, b, c in sorted(v["segments"])]
    assert read == want
    # evaluate and calibrate read the same export through the same kind.
    export = work / "data" / "label_studio_export.json"
    spec = ["--root", str(videos), "--kind", "label-studio",
            "--manifest_args", json.dumps({"annotations": str(export)})]  # fmt: skip
    assert cli(["calibrate", last, *spec, "--subset", "val", "--device", "cpu"]) == 0
    assert cli(["evaluate", last, str(tmp_path / "eval"), *spec, "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert len(list((tmp_path / "eval" / "predictions").glob("*.json"))) == 3
    assert not metrics["missing"] and 0 <= metrics["frame_accuracy"] <= 1


def _label(ls: LabelStudio, work: Path, videos: Path) -> None:
    """The README's steps in the browser, through the API: a project with our labelling config,
    a local-files storage, the tasks imported, every task corrected and submitted, the JSON
    export saved where the README says. Writes the expected corrected spans to want.json."""
    out = work / "runs" / "round1" / "label-studio"
    tasks = json.loads((out / "tasks.json").read_text())
    project = ls.api("POST", "/api/projects", {"title": "video_lstm round trip",
                                               "label_config": (out / "labeling_config.xml").read_text()})  # fmt: skip
    pid = project["id"]
    ls.api("POST", "/api/storages/localfiles", {"project": pid, "path": str(videos),
                                                "title": "videos", "use_blob_urls": True})  # fmt: skip
    imported = ls.api("POST", f"/api/projects/{pid}/import", tasks)
    assert imported["task_count"] == 3 and imported["prediction_count"] == 3
    listed = ls.api("GET", f"/api/tasks?project={pid}&fields=all&page_size=100")["tasks"]
    assert {t["data"]["name"] for t in listed} == {t["data"]["name"] for t in tasks}
    pred = listed[0]["predictions"][0]
    mine = next(t for t in tasks if t["data"]["name"] == listed[0]["data"]["name"])
    assert pred["model_version"] == mine["predictions"][0]["model_version"]
    assert pred["result"][0]["score"] == mine["predictions"][0]["result"][0]["score"]
    # The video is where the task points: Label Studio serves the file itself.
    name = listed[0]["data"]["name"]
    assert ls.fetch(listed[0]["data"]["video"]) == (videos / name).read_bytes()

    corrected = _correct(listed)
    for tid, result in corrected.items():
        ls.api("POST", f"/api/tasks/{tid}/annotations", {"result": result, "lead_time": 3.0})
    export = ls.api("GET", f"/api/projects/{pid}/export?exportType=JSON")
    (work / "data" / "label_studio_export.json").write_text(json.dumps(export))

    want, predicted = {}, {}
    for t in listed:
        spans = [(r["value"]["ranges"][0]["start"] - 1, r["value"]["ranges"][0]["end"],
                  r["value"]["timelinelabels"][0]) for r in corrected[t["id"]]]  # fmt: skip
        # The import's stated rule: touching spans of one label merge, overlaps go to the later.
        disjoint, _ = resolve_overlaps(ToolSpan(*s) for s in spans)
        want[t["data"]["name"]] = [[int(s.start_s), int(s.end_s), s.label] for s in disjoint]
        predicted[t["data"]["name"]] = sorted(
            [r["value"]["ranges"][0]["start"] - 1, r["value"]["ranges"][0]["end"],
             r["value"]["timelinelabels"][0]] for r in t["predictions"][0]["result"])  # fmt: skip
    assert want != predicted  # the corrections are there to be read
    (work / "want.json").write_text(json.dumps(want))
