"""Labelling tools: export-labels (Label Studio, CVAT, ActivityNet, FiftyOne) from a real run,
and their exports read back as dataset kinds (label-studio, cvat-video, fiftyone)."""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from test_batch import _run, make_checkpoint, write_video

from pipelines.cli import main as cli
from pipelines.labels import export_labels
from video_lstm.data.datasets import TemporalSegment, load_manifest
from video_lstm.data.datasets.tools import checkpoint_classes
from video_lstm.io.labels.common import ToolSpan, VideoFinder, frame_rate, resolve_overlaps


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """A real folder run over two small videos (25 fps, 30 and 40 frames; one in a subfolder)."""
    root = tmp_path_factory.mktemp("labels")
    ckpt = make_checkpoint(root / "m.pt")
    videos = root / "videos"
    write_video(videos / "a.mp4", 30)
    write_video(videos / "sub" / "b.mp4", 40)
    _run(videos, ckpt, root / "run", outputs=["json"], device="cpu", threshold=0.0, threads=1)
    results = {rel: json.loads((root / "run" / f"{rel}.json").read_text())
               for rel in ("a.mp4", "sub/b.mp4")}  # fmt: skip
    return {"root": root, "ckpt": ckpt, "videos": videos, "run": root / "run", "results": results}


def _truth(run: dict) -> dict[str, list[tuple[float, float, str]]]:
    return {rel: [(s["start_frame"] / 25, s["end_frame"] / 25, s["label"])
                  for s in doc["segments"]] for rel, doc in run["results"].items()}  # fmt: skip


def _read(manifest, videos: Path) -> dict[str, list[tuple[float, float, str]]]:
    return {str(Path(v.path).resolve().relative_to(videos.resolve())):
            [(round(g.start_s, 4), round(g.end_s, 4), g.label) for g in v.segments]
            for v in manifest.videos}  # fmt: skip


def _as_annotated(tasks: list[dict]) -> list[dict]:
    """What Label Studio exports once a person accepted every prediction as is."""
    out = copy.deepcopy(tasks)
    for n, task in enumerate(out):
        task["id"] = n + 1
        task["annotations"] = [{"id": n + 1, "result": task["predictions"][0]["result"],
                                "was_cancelled": False, "updated_at": "2026-12-07T10:00:00Z"}]  # fmt: skip
    return out


def test_label_studio_export_and_import_round_trip(run, tmp_path):
    summary = export_labels(str(run["run"]), str(tmp_path / "ls"), format="label-studio")
    assert summary.videos == 2 and summary.segments == sum(
        len(d["segments"]) for d in run["results"].values()
    )
    config = (tmp_path / "ls" / "labeling_config.xml").read_text()
    assert '<TimelineLabels name="action" toName="video">' in config
    assert 'frameRate="$fps"' in config and '<Label value="sit"' in config
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    by_name = {t["data"]["name"]: t for t in tasks}
    # Served from the folder above the run's input folder ("videos"), as Label Studio wants it.
    assert by_name["sub/b.mp4"]["data"]["video"] == "/data/local-files/?d=videos/sub/b.mp4"
    pred = by_name["sub/b.mp4"]["predictions"][0]
    assert (
        pred["model_version"]
        == "m.pt@" + json.loads((run["run"] / "manifest.json").read_text())["settings_hash"][:8]
    )
    first = run["results"]["sub/b.mp4"]["segments"][0]
    value = pred["result"][0]["value"]
    assert value["ranges"] == [{"start": first["start_frame"] + 1, "end": first["end_frame"]}]
    assert pred["result"][0]["score"] == pytest.approx(first["score"], abs=1e-4)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_as_annotated(tasks)))
    m = load_manifest("label-studio", run["videos"], annotations=export)
    assert _read(m, run["videos"]) == _truth(run)


def test_label_studio_frames_count_at_the_task_rate_and_checks(run, tmp_path, caplog):
    """Frames at the task's fps (not the file's), unknown videos reported, overlaps resolved."""
    tasks = [
        {"id": 1, "data": {"video": "/data/upload/3/0a1b2c3d-a.mp4", "fps": 50},
         "annotations": [{"id": 1, "result": [
             {"type": "timelinelabels", "from_name": "action", "to_name": "video",
              "value": {"ranges": [{"start": 1, "end": 20}], "timelinelabels": ["sit"]}},
             {"type": "timelinelabels", "from_name": "action", "to_name": "video",
              "value": {"ranges": [{"start": 11, "end": 40}], "timelinelabels": ["stand"]}},
             {"type": "timelinelabels", "from_name": "action", "to_name": "video",
              "value": {"ranges": [{"start": 41, "end": 200}], "timelinelabels": ["stand"]}},
         ]}]},
        {"id": 2, "data": {"video": "/data/local-files/?d=elsewhere/gone.mp4"},
         "annotations": [{"id": 2, "result": []}]},
        {"id": 3, "data": {"video": "/data/local-files/?d=sub/b.mp4"}, "annotations": []},
    ]  # fmt: skip
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    with caplog.at_level(logging.WARNING):
        m = load_manifest("label-studio", run["videos"], annotations=export)
    # 50 fps frames: [0, 20) -> 0-0.4 s; stand from frame 10 takes the overlap; touching
    # "stand" spans merge; the end is cut at the video's 1.2 s.
    assert _read(m, run["videos"]) == {"a.mp4": [(0.0, 0.2, "sit"), (0.2, 1.2, "stand")]}
    text = caplog.text
    assert "1 of 2 labelled videos match no file" in text and "gone.mp4" in text
    assert "1 tasks have no annotation yet" in text and "1 overlaps" in text
    with pytest.raises(FileNotFoundError, match="match no file"):
        load_manifest("label-studio", run["videos"], annotations=export, missing="error")
    # Fine-tuning: the checkpoint's classes keep their order, new labels come after them.
    tasks[0]["annotations"][0]["result"][2]["value"]["timelinelabels"] = ["wave"]
    export.write_text(json.dumps(tasks))
    m = load_manifest("label-studio", run["videos"], annotations=export,
                      checkpoint=str(run["ckpt"]))  # fmt: skip
    assert checkpoint_classes(run["ckpt"]) == ["sit", "stand"]
    assert m.class_names == ["sit", "stand", "wave"]


def _write_vfr(path: Path, steps_ms: list[int]) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for i, step in enumerate(steps_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 8, np.uint8), "rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            out.mux(stream.encode(frame))
            pts += step
        out.mux(stream.encode())
    return path


def test_label_studio_video_rectangles_count_where_their_box_is_shown(run, tmp_path):
    box = {"x": 10, "y": 10, "width": 20, "height": 20, "rotation": 0}
    seq = [{"frame": 3, "enabled": True, **box}, {"frame": 8, "enabled": False, **box},
           {"frame": 20, "enabled": True, **box}]  # fmt: skip
    result = [{"type": "videorectangle", "from_name": "box", "to_name": "video",
               "value": {"sequence": seq, "labels": ["stand"], "framesCount": 30}}]  # fmt: skip
    export = tmp_path / "e.json"
    export.write_text(json.dumps([{"data": {"video": "/data/local-files/?d=a.mp4", "fps": 25},
                                   "annotations": [{"result": result}]}]))  # fmt: skip
    m = load_manifest("label-studio", run["videos"], annotations=export)
    assert _read(m, run["videos"]) == {"a.mp4": [(0.08, 0.32, "stand"), (0.76, 1.2, "stand")]}


def test_variable_frame_rate_is_refused_with_a_clear_message(tmp_path):
    videos = tmp_path / "v"
    videos.mkdir()
    _write_vfr(videos / "vfr.mp4", [40] * 10 + [80] * 10)
    write_video(videos / "cfr.mp4", 20)
    assert not frame_rate(videos / "vfr.mp4").constant and frame_rate(videos / "cfr.mp4").constant
    result = [{"type": "timelinelabels", "value": {"ranges": [{"start": 2, "end": 5}],
                                                   "timelinelabels": ["sit"]}}]  # fmt: skip
    export = tmp_path / "e.json"
    export.write_text(json.dumps([{"data": {"video": "/data/local-files/?d=vfr.mp4"},
                                   "annotations": [{"result": result}]}]))  # fmt: skip
    with pytest.raises(ValueError, match=r"vfr\.mp4: variable frame rate .* re-encode"):
        load_manifest("label-studio", videos, annotations=export)
    m = load_manifest("label-studio", videos, annotations=export, allow_vfr=True)
    assert len(m.videos[0].segments) == 1


def test_cvat_export_and_import_round_trip(run, tmp_path):
    export_labels(str(run["run"]), str(tmp_path / "cvat"), format="cvat")
    xml = (tmp_path / "cvat" / "sub" / "b.mp4.xml").read_text()
    assert "<version>1.1</version>" in xml and "<mode>interpolation</mode>" in xml
    assert '<attribute name="score">' in xml and "<name>sub/b.mp4</name>" in xml
    m = load_manifest("cvat-video", run["videos"], annotations=tmp_path / "cvat")
    assert _read(m, run["videos"]) == _truth(run)
    # One task's XML alone, its video found by the task's name.
    m = load_manifest(
        "cvat-video", run["videos"], annotations=tmp_path / "cvat" / "sub" / "b.mp4.xml"
    )
    assert _read(m, run["videos"]) == {"sub/b.mp4": _truth(run)["sub/b.mp4"]}


def test_cvat_tracks_tags_and_project_exports(run, tmp_path):
    """A CVAT-made XML: a box track of a person that leaves and comes back, frame tags."""
    xml = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><id>7</id><name>clip</name><size>30</size>
<mode>interpolation</mode><start_frame>0</start_frame><stop_frame>29</stop_frame></task>
<source>a.mp4</source></meta>
<track id="0" label="stand" source="manual">
  <box frame="5" outside="0" occluded="0" keyframe="1" xtl="1" ytl="2" xbr="9" ybr="9" z_order="0"/>
  <box frame="6" outside="0" occluded="0" keyframe="0" xtl="1" ytl="2" xbr="9" ybr="9" z_order="0"/>
  <box frame="10" outside="1" occluded="0" keyframe="1" xtl="1" ytl="2" xbr="9" ybr="9" z_order="0"/>
  <box frame="20" outside="0" occluded="0" keyframe="1" xtl="1" ytl="2" xbr="9" ybr="9" z_order="0"/>
</track>
<tag frame="0" label="sit" source="manual"/><tag frame="1" label="sit" source="manual"/>
</annotations>"""
    (tmp_path / "task.xml").write_text(xml)
    m = load_manifest("cvat-video", run["videos"], annotations=tmp_path / "task.xml")
    assert _read(m, run["videos"]) == {"a.mp4": [(0.0, 0.08, "sit"), (0.2, 0.4, "stand"),
                                                 (0.8, 1.2, "stand")]}  # fmt: skip
    # A job's export of a task made from every 2nd frame from frame 4 of the video.
    job = (xml.replace("<task><id>7</id>", "<job><id>7</id>").replace("</task>", "</job>")
           .replace("<start_frame>0</start_frame>", "<start_frame>4</start_frame>"
                    "<frame_filter>step=2</frame_filter>"))  # fmt: skip
    (tmp_path / "job.xml").write_text(job)
    m = load_manifest("cvat-video", run["videos"], annotations=tmp_path / "job.xml")
    assert _read(m, run["videos"]) == {"a.mp4": [(0.16, 0.32, "sit"), (0.56, 0.96, "stand")]}
    (tmp_path / "img.xml").write_text('<annotations><version>1.1</version><meta/>'
                                      '<image id="0" name="x.jpg"/></annotations>')  # fmt: skip
    with pytest.raises(ValueError, match="CVAT for images"):
        load_manifest("cvat-video", run["videos"], annotations=tmp_path / "img.xml")


def test_fiftyone_and_activitynet_exports(run, tmp_path):
    export_labels(str(run["run"]), str(tmp_path / "fo"), format="fiftyone")
    labels = json.loads((tmp_path / "fo" / "labels.json").read_text())
    data = json.loads((tmp_path / "fo" / "data.json").read_text())
    assert labels["classes"] == ["sit", "stand"] and set(labels["labels"]) == {"a", "sub/b"}
    assert Path(data["sub/b.mp4"]) == (run["videos"] / "sub" / "b.mp4").resolve()
    first = run["results"]["sub/b.mp4"]["segments"][0]
    det = labels["labels"]["sub/b"][0]
    assert det["support"] == [first["start_frame"] + 1, first["end_frame"]] and "confidence" in det
    m = load_manifest("fiftyone", run["videos"], annotations=tmp_path / "fo" / "labels.json")
    assert _read(m, run["videos"]) == _truth(run)

    export_labels(str(run["run"]), str(tmp_path / "an"), format="activitynet",
                  url_prefix="https://videos.example/clips")  # fmt: skip
    doc = json.loads((tmp_path / "an" / "activitynet.json").read_text())
    assert doc["version"] == "VERSION 1.3"
    entry = doc["database"]["sub/b.mp4"]
    assert entry["url"] == "https://videos.example/clips/sub/b.mp4" and entry["duration"] == 1.6
    assert doc["results"]["sub/b.mp4"][0]["score"] == pytest.approx(first["score"], abs=1e-4)
    m = load_manifest(
        "activitynet", run["videos"], annotations=tmp_path / "an" / "activitynet.json"
    )
    assert _read(m, run["videos"]) == _truth(run)


def test_export_labels_cli(run, tmp_path, capsys):
    assert cli(["export-labels", str(run["run"]), str(tmp_path / "o"), "--format", "cvat"]) == 0
    assert "cvat: 2 videos" in capsys.readouterr().out
    assert cli(["export-labels", str(tmp_path), str(tmp_path / "o"), "--format", "cvat"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("video-lstm export-labels: error:") and "not a folder run" in err
    assert len(err.splitlines()) == 1
    assert cli(["export-labels", str(run["run"]), str(tmp_path / "o"), "--format", "xml"]) == 2
    assert "label-studio" in capsys.readouterr().err


def test_overlap_rule_and_video_finder(tmp_path):
    spans = [ToolSpan(0, 10, "a"), ToolSpan(2, 4, "b"), ToolSpan(9, 12, "a"), ToolSpan(11, 15, "c")]
    disjoint, overlaps = resolve_overlaps(spans)
    assert [(s.start_s, s.end_s, s.label) for s in disjoint] == [
        (0, 2, "a"), (2, 4, "b"), (4, 11, "a"), (11, 15, "c")]  # fmt: skip
    assert overlaps == 2
    write_video(tmp_path / "v" / "x y.mp4", 4)
    finder = VideoFinder(tmp_path, url_prefix="https://h/videos/")
    target = tmp_path / "v" / "x y.mp4"
    assert finder.find("/data/local-files/?d=v/x%20y.mp4") == target
    assert finder.find("/data/local-files/?d=data/v/x%20y.mp4") == target  # root below the doc root
    assert finder.find("https://h/videos/v/x%20y.mp4") == target
    assert finder.find("/data/upload/2/1a2b3c4d-x y.mp4") == target
    assert finder.find("s3://bucket/none.mp4") is None
    assert TemporalSegment(0, 1, "a").label == "a"


ROOT = Path(__file__).resolve().parents[1]


def tool_python(venv: str, env: str, target: str) -> Path:
    """The Python of a tool's own venv (``make TARGET`` builds it; ``$ENV`` points elsewhere);
    missing: the test is skipped, except in CI, where ``make test`` built it."""
    python = Path(os.environ.get(env) or ROOT / venv / "bin" / "python")
    if not python.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{python} is missing: `make {target}` should have built it")
        pytest.skip(f"{python} is missing: `make {target}` installs it")
    return python


def test_cvat_xml_meets_the_published_format_and_datumaro_reads_it(run, tmp_path):
    """The XML against the XSD of CVAT's documented format, and read by datumaro's importer
    (its own venv: datumaro pins pandas and numpy), giving back every segment and score."""
    python = tool_python(".venv-datumaro", "VIDEO_LSTM_DATUMARO_PYTHON", "datumaro")
    export_labels(str(run["run"]), str(tmp_path / "cvat"), format="cvat")
    files = sorted((tmp_path / "cvat").rglob("*.xml"))
    schema = ROOT / "tests" / "data" / "cvat_video_1.1.xsd"
    proc = subprocess.run([str(python), str(ROOT / "tests" / "cvat_check.py"), str(schema),
                           *map(str, files)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    checked = json.loads(proc.stdout)
    for file in files:
        doc = checked[str(file)]
        assert doc["valid"], doc["errors"]
        assert doc["labels"] == ["sit", "stand"]
        rel = str(file.relative_to(tmp_path / "cvat")).removesuffix(".xml")
        frames = run["results"][rel]["video"]["num_frames"]
        spans = []
        for track in doc["tracks"].values():
            (start, outside, score), *rest = track["keyframes"]
            assert not outside and all(o for _, o, _ in rest)
            spans.append((start, rest[0][0] if rest else frames, track["label"], round(score, 4)))
        want = [(s["start_frame"], s["end_frame"], s["label"], round(s["score"], 4))
                for s in run["results"][rel]["segments"]]  # fmt: skip
        assert sorted(spans) == sorted(want)
    # The schema does refuse what the format does not allow.
    bad = tmp_path / "bad.xml"
    bad.write_text(files[0].read_text().replace('outside="0"', 'outside="maybe"', 1))
    proc = subprocess.run([str(python), str(ROOT / "tests" / "cvat_check.py"), str(schema),
                           str(bad)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode != 0 or not json.loads(proc.stdout)[str(bad)]["valid"]


def test_label_studio_annotation_choice_and_frame_rate_option(run, tmp_path):
    """Ground truth first, else the latest annotation not cancelled; frames at ``frame_rate``
    when the task has no ``fps`` (Label Studio's own default is 24)."""

    def ann(i, label, updated, **kw):
        r = {"type": "timelinelabels", "value": {"ranges": [{"start": 1, "end": 12}],
                                                 "timelinelabels": [label]}}  # fmt: skip
        return {"id": i, "result": [r], "updated_at": updated, **kw}

    task = {"data": {"video": "/data/local-files/?d=videos/a.mp4"},
            "annotations": [ann(1, "sit", "2026-12-01T10:00:00Z"),
                            ann(2, "stand", "2026-12-02T10:00:00Z"),
                            ann(3, "sit", "2026-12-03T10:00:00Z", was_cancelled=True)]}  # fmt: skip
    export = tmp_path / "e.json"
    export.write_text(json.dumps([task]))
    m = load_manifest("label-studio", run["videos"], annotations=export, frame_rate=24.0)
    assert _read(m, run["videos"]) == {"a.mp4": [(0.0, 0.5, "stand")]}  # 12 frames at 24 fps
    task["annotations"][0]["ground_truth"] = True
    export.write_text(json.dumps([task]))
    m = load_manifest("label-studio", run["videos"], annotations=export)
    assert _read(m, run["videos"]) == {"a.mp4": [(0.0, 0.48, "sit")]}  # the file's 25 fps
