"""The writer table (``video_lstm.inference.writers``): its contract, and a writer registered
from a plugin file outside the package, accepted by ``--outputs``, written by ``annotate`` and
``run``, linked by the report and counted by resume as part of a complete video (issue 19)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_batch import make_checkpoint, write_video

from pipelines.cli import main
from pipelines.jobs import is_complete, plan_jobs, settings_hash
from video_lstm import plugins
from video_lstm.inference import writers
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.inference.writers import (
    JSON_ORDER,
    Writer,
    get_writer,
    list_writers,
    register_writer,
    writer_names,
)
from video_lstm.plugins import ENV_VAR

# A writer in one file: one line per segment, tab-separated; it records each write in
# TSV_LOG (one line per call) so the test sees which process ran it.
PLUGIN = """
import os
from pathlib import Path

from video_lstm.inference.writers import Writer, register_writer
from video_lstm.io.files import write_text


def write_tsv(result, reader, out_dir, name):
    with open(os.environ["TSV_LOG"], "a") as f:
        f.write(f"{name}\\n")
    rows = [f"{s.label}\\t{s.start_s:.3f}\\t{s.end_s:.3f}\\t{s.score:.3f}" for s in result.segments]
    return [write_text(Path(out_dir) / f"{name}.tsv", "".join(r + "\\n" for r in rows))]


register_writer(Writer(name="tsv", write=write_tsv, files=(".tsv",), description="segments TSV"))
"""


@pytest.fixture
def table(monkeypatch):
    """The writer table and plugin state as they are; restored after the test."""
    monkeypatch.setattr(writers, "_WRITERS", dict(writers._WRITERS))
    monkeypatch.setattr(plugins, "_loaded", {})
    monkeypatch.setenv(ENV_VAR, "")  # so that undo removes what main() sets
    monkeypatch.delenv(ENV_VAR)
    return writers._WRITERS


def _noop(result, reader, out_dir, name):
    return []


def test_table_contract(table):
    names = writer_names()
    assert names[-1] == "json" and {"video", "clips", "csv", "srt", "vtt"} <= set(names)
    assert get_writer("csv").paths(Path("o"), "a.mp4") == [Path("o/a.mp4.csv")]
    assert get_writer("clips").paths("o", "a.mp4") == []  # one per segment: not known ahead
    with pytest.raises(ValueError, match="writer 'csv' is already registered"):
        register_writer(Writer("csv", _noop, (".csv",)))
    with pytest.raises(ValueError, match="order must be below"):
        Writer("late", _noop, order=JSON_ORDER)
    with pytest.raises(ValueError, match="no comma"):
        Writer("a,b", _noop)
    with pytest.raises(TypeError, match="takes a Writer"):
        register_writer(_noop)
    with pytest.raises(ValueError, match="unknown output 'nope'"):
        get_writer("nope")
    first = register_writer(Writer("first", _noop, files=lambda d, n: [d / n / "x"], order=5))
    assert list_writers()[0] is first and writer_names()[-1] == "json"
    assert first.paths(Path("o"), "v") == [Path("o/v/x")]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A tiny untrained checkpoint and two short videos (outside the repository)."""
    root = tmp_path_factory.mktemp("writers")
    ckpt = make_checkpoint(root / "m.pt")
    for name in ("a.mp4", "b.mp4"):
        write_video(root / "in" / name, 20, width=48, height=32)
    plugin = root / "plugin dir" / "tsv_writer.py"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN)
    return {"ckpt": ckpt, "in": root / "in", "plugin": plugin}


def test_a_plugin_writer_is_written_by_annotate_and_run_and_counted_by_resume(
    table, inputs, tmp_path, monkeypatch, capsys
):
    log = tmp_path / "tsv.log"
    monkeypatch.setenv("TSV_LOG", str(log))
    fast = ["--device", "cpu", "--threshold", "0.0", "--threads", "1"]

    # Without the plugin the name is refused, with a hint.
    out = tmp_path / "one"
    video = inputs["in"] / "a.mp4"
    argv = ["annotate", str(video), str(inputs["ckpt"]), str(out), "--outputs", "json,tsv"]
    assert main(argv + fast) == 2
    assert "unknown outputs ['tsv']" in capsys.readouterr().err

    with pytest.raises(SystemExit):  # --help lists the table's writers, the plugin's too
        main(["--plugin", str(inputs["plugin"]), "annotate", "--help"])
    assert "tsv: segments TSV; json: the result JSON" in " ".join(capsys.readouterr().out.split())
    assert main(["--plugin", str(inputs["plugin"]), *argv, *fast]) == 0
    tsv, result = out / "a.tsv", json.loads((out / "a.json").read_text())
    assert tsv.read_text().count("\n") == len(result["segments"]) > 0
    assert result["settings"]["outputs"] == ["json", "tsv"]
    assert (out / "a.tsv").stat().st_mtime_ns <= (out / "a.json").stat().st_mtime_ns  # JSON last

    # run: written for every video, listed by writer in the records, linked by the report.
    out = tmp_path / "run"
    run = ["run", str(inputs["in"]), str(inputs["ckpt"]), str(out), "--outputs", "json,tsv"]
    run += [*fast, "--progress", "false"]
    assert main(run) == 0
    assert sorted(p.name for p in out.glob("*.tsv")) == ["a.mp4.tsv", "b.mp4.tsv"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["videos"]["a.mp4"]["files"]["tsv"] == ["a.mp4.tsv"]
    assert 'href="a.mp4.tsv"' in (out / "a.mp4.html").read_text()

    # Resume: complete while the plugin's file is there; redone once it is gone.
    settings = AnnotateSettings.from_flat(outputs=["json", "tsv"], device="cpu", threshold=0.0)
    digest = settings_hash(settings, inputs["ckpt"])
    jobs = {j.rel: j for j in plan_jobs(inputs["in"], out)}
    assert all(is_complete(j, digest) for j in jobs.values())
    (out / "b.mp4.tsv").unlink()
    assert not is_complete(jobs["b.mp4"], digest) and is_complete(jobs["a.mp4"], digest)
    log.unlink()
    capsys.readouterr()
    assert main(run) == 0
    assert "done: 1, skipped (complete): 1" in capsys.readouterr().out
    assert log.read_text().split() == ["b.mp4"] and (out / "b.mp4.tsv").is_file()

    # A leftover temporary of the plugin's file is removed when its video is redone.
    temp = out / ".b.mp4.tsv.0123abcd.tsv.part"
    temp.write_text("killed mid-write")
    (out / "b.mp4.tsv").unlink()
    assert main(run) == 0
    assert not temp.exists() and os.environ[ENV_VAR] == str(inputs["plugin"].resolve())


# ------------------------------------------------------------------ the result JSON schema


def _older_layouts(doc: dict) -> tuple[dict, dict]:
    """The layouts result JSONs had before ``schema_version``, made from a fresh result.

    Returns:
        ``(unversioned, oldest)``: the layout of the previous release (the same fields, no
        version), and the older one (``video`` a path relative to the JSON's folder, ``fps``,
        ``num_frames`` and ``classes`` at the top level, segments in seconds only).
    """
    unversioned = {k: v for k, v in doc.items() if k != "schema_version"}
    info = doc["video"]
    oldest = {
        "video": Path(info["path"]).name,
        "fps": info["fps"],
        "num_frames": info["num_frames"],
        "classes": doc["model"]["class_names"],
        "segments": [{k: s[k] for k in ("start_s", "end_s", "label")} for s in doc["segments"]],
    }
    return unversioned, oldest


def test_result_json_is_versioned_and_older_files_keep_loading(table, inputs, tmp_path):
    from pipelines.report import build_report
    from video_lstm.data.datasets import load_manifest
    from video_lstm.io.results import RESULT_SCHEMA_VERSION, ResultDoc, load_result
    from video_lstm.training.evaluate import read_results

    out = tmp_path / "run"
    argv = ["run", str(inputs["in"]), str(inputs["ckpt"]), str(out), "--outputs", "json"]
    assert main([*argv, "--device", "cpu", "--threshold", "0.0", "--progress", "false"]) == 0
    current = out / "a.mp4.json"
    doc = json.loads(current.read_text())
    assert doc["schema_version"] == RESULT_SCHEMA_VERSION
    result = load_result(current)
    assert result.file == current and result.class_names == ["sit", "stand"]
    assert result.segments and result.video.path == str(inputs["in"] / "a.mp4")
    assert ResultDoc.from_json(json.loads(json.dumps(result.to_json()))) == result

    unversioned, oldest = _older_layouts(doc)
    current.write_text(json.dumps(unversioned))  # what the previous release wrote
    assert load_result(current) == result
    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(inputs["in"] / "a.mp4", folder / "a.mp4")  # next to its JSON, as named there
    (folder / "a.json").write_text(json.dumps(oldest))
    (folder / "manifest.json").write_text(json.dumps({"videos": {}}))
    old = load_result(folder / "a.json")
    assert old.video.path == str(folder / "a.mp4") and old.class_names == result.class_names
    assert [(s.label, s.start_s, s.end_s) for s in old.segments] == [
        (s.label, s.start_s, s.end_s) for s in result.segments
    ]
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**doc, "schema_version": RESULT_SCHEMA_VERSION + 1}))
    with pytest.raises(ValueError, match="newer than this video_lstm reads"):
        load_result(newer)

    # The three readers, on the previous release's files (records and manifest skipped).
    found = read_results(out)
    assert sorted(Path(k).name for k in found) == ["a.mp4", "b.mp4"]
    key = str((inputs["in"] / "a.mp4").resolve())
    assert found[key]["segments"] == [s.to_dict() for s in result.segments]
    manifest = load_manifest("results", out)
    assert sorted(v.path.name for v in manifest.videos) == ["a.mp4", "b.mp4"]
    assert load_manifest("results", folder).videos[0].path == folder / "a.mp4"
    build_report(str(out))
    page = (out / "a.mp4.html").read_text()
    assert page.count('class="seg"') == len(result.segments)


@pytest.mark.slow  # starts a local Ray: 10-20 s
def test_ray_workers_load_the_plugin_writer(table, inputs, tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray")
    monkeypatch.setenv("TSV_LOG", str(tmp_path / "tsv.log"))
    out = tmp_path / "ray"
    argv = ["--plugin", str(inputs["plugin"]), "run", str(inputs["in"]), str(inputs["ckpt"])]
    argv += [str(out), "--outputs", "json,tsv", "--engine", "ray", "--workers", "1"]
    assert main([*argv, "--device", "cpu", "--threshold", "0.0", "--progress", "false"]) == 0
    assert sorted(p.name for p in out.glob("*.tsv")) == ["a.mp4.tsv", "b.mp4.tsv"]
    records = json.loads((out / "manifest.json").read_text())["videos"]
    assert all(r["files"]["tsv"] == [f"{v}.tsv"] for v, r in records.items())
    assert all(r["pid"] != os.getpid() for r in records.values())  # written by the Ray worker
