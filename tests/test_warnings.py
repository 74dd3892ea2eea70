"""No warning a user cannot act on: ``--help``, feature caching and a short fit print none of the
third-party noise that used to read as bugs (each one silenced or fixed at its source)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_clip_dataset import make_tiny_dataset

ROOT = Path(__file__).resolve().parents[1]

# What each defect printed; none may appear.
NOISE = {
    "LightningCLI args": "LightningCLI's args parameter",
    "jsonargparse logger": "Unable to serialize instance",
    "cloud advert": "💡 Tip",
    "litlogger": "litlogger",
    "eval-mode modules": "module(s) in eval mode",
    "LeafSpec": "LeafSpec",
    "Trainer during caching": "GPU available",
}


def _cli(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _assert_quiet(output: str, *, allow: tuple[str, ...] = ()) -> None:
    found = {k: v for k, v in NOISE.items() if v in output and k not in allow}
    assert not found, f"printed {sorted(found)}:\n{output[-4000:]}"


def test_train_help_prints_no_warning(tmp_path: Path):
    out = _cli("train", "fit", "--help", cwd=tmp_path)
    assert "--trainer.max_epochs" in out
    _assert_quiet(out)


@pytest.mark.slow
def test_feature_cache_and_short_fit_print_no_warning(tmp_path: Path):
    tiny = make_tiny_dataset(tmp_path / "tiny")
    cfg = {
        "model": {
            "model_name": "video_lstm_compact",
            "model_args": {"frame_size": 64, "temporal_args": {"hidden_sizes": [8]}},
        },
        "data": {
            "root": str(tiny), "clip_len": 6, "frame_interval": 2, "frame_size": 64,
            "batch_size": 2, "num_clips": 1, "features_dir": str(tmp_path / "features"),
        },
        "trainer": {"accelerator": "cpu", "max_epochs": 1, "log_every_n_steps": 1},
    }  # fmt: skip
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg))
    cached = _cli("extract-features", "--config", str(config), "--progress", "false", cwd=tmp_path)
    _assert_quiet(cached)
    fitted = _cli("train", "fit", "--config", str(config), cwd=tmp_path)
    assert "max_epochs=1` reached" in fitted
    # Training does use a Trainer, whose device line is information, not a warning.
    _assert_quiet(fitted, allow=("Trainer during caching",))
    saved = yaml.safe_load(next((tmp_path / "runs").rglob("config.yaml")).read_text())
    assert [lg["class_path"].rsplit(".", 1)[1] for lg in saved["trainer"]["logger"]] == [
        "CSVLogger",
        "TensorBoardLogger",
    ]


def test_frozen_backbone_trains_with_no_eval_mode_module_and_fixed_statistics():
    import torch

    from video_lstm.models import create_model

    model = create_model("video_lstm_compact", num_classes=3, frame_size=64).train()
    assert [n for n, m in model.named_modules() if not m.training] == []
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    clip = torch.rand(2, 4, 3, 64, 64)
    trained = model.backbone(clip)  # train mode: must still use the ImageNet statistics
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    torch.testing.assert_close(trained, model.eval().backbone(clip))
    model.backbone.set_freeze("none")  # unfrozen BatchNorm learns again
    model.train().backbone(clip)
    assert any(not torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())
