"""The Ray engines on a local Ray (``ray.init(num_cpus=2)``, one session for the module):
``compare --engine ray`` (Ray Tune trials on a shared feature cache)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from test_training import MODEL_ARGS, _write_config, features, tiny  # noqa: F401 (fixtures)

from video_lstm.training.compare import compare, expand_grid

ray = pytest.importorskip("ray")  # the dev extra installs it; a bare install skips


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the module (starting Ray takes seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield ray
    ray.shutdown()


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
        base_configs=[base],
        names=["convlstm", "convgru"],
        grid=["model.lr=0.003"],
        extra_args=["--trainer.max_epochs=1"],
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
