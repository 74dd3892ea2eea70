"""AnnotateSettings is the one declaration of the annotation knobs: signatures, YAML, the CLI,
the resume hash and the segment rules' resolution all derive from it (issue 12, defect 11)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml
from jsonargparse import CLI, capture_parser

from pipelines.batch import run_folder, settings_hash
from pipelines.cli import _expand_short_options
from video_lstm.inference.annotate import annotate_video
from video_lstm.inference.settings import (
    AnnotateSettings,
    RuntimeOptions,
    SegmentRules,
)
from video_lstm.inference.writers import DEFAULT_OUTPUTS, writer_names

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_CONFIGS = {"annotate": annotate_video, "run": run_folder}


def _parse(function, args: list[str]):
    parser = capture_parser(lambda: CLI(function, as_positional=True, args=[]))
    return parser.instantiate(parser.parse_args(args))


def test_no_annotation_knob_is_declared_outside_the_settings():
    knobs = set(AnnotateSettings.flat_fields())
    assert {"threshold", "merge_gap_s", "device", "threads", "outputs"} <= knobs
    for function in (annotate_video, run_folder):
        params = inspect.signature(function).parameters
        assert params["settings"].annotation in ("AnnotateSettings", AnnotateSettings)
        assert not knobs & set(params), function.__name__


@pytest.mark.parametrize("command", sorted(PIPELINE_CONFIGS))
def test_pipeline_yaml_parses_into_the_default_settings(command):
    path = ROOT / "configs" / "pipeline" / f"{command}.yaml"
    raw = yaml.safe_load(path.read_text())
    assert set(raw["settings"]) == {f.name for f in dataclasses.fields(AnnotateSettings)}
    cfg = _parse(PIPELINE_CONFIGS[command], ["--config", str(path), "a", "b", "c"])
    assert cfg.settings == AnnotateSettings()
    # The function's own arguments in the YAML are its defaults too.
    params = inspect.signature(PIPELINE_CONFIGS[command]).parameters
    for key, value in raw.items():
        if key != "settings":
            assert value == params[key].default, key


def test_short_and_long_options_and_yaml_give_the_same_settings(tmp_path):
    long = _parse(annotate_video, ["a", "b", "c", "--settings.segments.threshold", "0.6"])
    argv = _expand_short_options(["a", "b", "c", "--threshold", "0.6", "--threads=3"])
    short = _parse(annotate_video, argv)
    config = tmp_path / "mine.yaml"
    config.write_text("settings:\n  segments:\n    threshold: 0.6\n")
    from_yaml = _parse(annotate_video, ["--config", str(config), "a", "b", "c"])
    assert long.settings.segments.threshold == short.settings.segments.threshold == 0.6
    assert from_yaml.settings == long.settings
    assert short.settings.runtime.threads == 3
    with pytest.raises(ValueError, match="threshold"):
        _parse(annotate_video, ["a", "b", "c", "--settings.segments.threshold", "2"])


def test_segment_rules_resolve_explicit_then_calibrated_then_default():
    calibrated = {"threshold": 0.3, "merge_gap_s": 1.0, "background": "idle"}
    rules = SegmentRules(threshold=0.7).resolve(calibrated)
    assert rules == SegmentRules(
        threshold=0.7, smoothing_s=0.5, min_duration_s=0.5, merge_gap_s=1.0, background="idle"
    )
    assert SegmentRules().resolve(None) == SegmentRules(**SegmentRules.DEFAULTS)
    assert SegmentRules().resolve(SegmentRules(smoothing_s=0.0)).smoothing_s == 0.0
    with pytest.raises(ValueError, match="unknown segment rules"):
        SegmentRules().resolve({"treshold": 0.3})


def test_resume_hash_follows_results_not_speed(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights")
    base = settings_hash(AnnotateSettings(), ckpt)
    faster = AnnotateSettings(runtime=RuntimeOptions(threads=1, chunk_size=8, device="cpu"))
    assert settings_hash(faster, ckpt) == base
    assert settings_hash(AnnotateSettings.from_flat(threshold=0.6), ckpt) != base
    assert settings_hash(AnnotateSettings(outputs=["json"]), ckpt) != base


def test_settings_round_trip_through_plain_values():
    s = AnnotateSettings.from_flat(threshold=0.6, stride=2, device="cpu", outputs=["json"])
    assert AnnotateSettings(**s.to_dict()) == s
    assert s.segments.threshold == 0.6 and s.windows.stride == 2 and s.runtime.device == "cpu"
    with pytest.raises(TypeError, match="unknown settings"):
        AnnotateSettings.from_flat(treshold=0.6)


def test_every_output_has_a_writer_and_json_is_written_last():
    assert set(DEFAULT_OUTPUTS) <= set(writer_names())
    assert AnnotateSettings().outputs == list(DEFAULT_OUTPUTS)
    assert writer_names()[-1] == "json"
    assert AnnotateSettings(outputs="json, csv").outputs == ["json", "csv"]  # --outputs json,csv
    with pytest.raises(ValueError, match="unknown outputs.*choose from"):
        AnnotateSettings(outputs=["json", "tsv"])
