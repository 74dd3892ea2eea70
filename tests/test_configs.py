"""Every training YAML under configs/ parses against the CLI's signatures and names real models.

configs/pipeline/ holds the annotation pipeline's own format and is skipped here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from video_lstm.models import list_models, model_config
from video_lstm.training.cli import parse_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TRAINING_YAMLS = sorted(
    p for p in CONFIGS.rglob("*.yaml") if "pipeline" not in p.relative_to(CONFIGS).parts
)


def test_there_are_training_configs():
    names = {p.relative_to(CONFIGS).as_posix() for p in TRAINING_YAMLS}
    assert {"synthetic_demo.yaml", "data/synthetic.yaml", "data/ucf101.yaml"} <= names
    assert {"data/hmdb51.yaml", "data/kinetics.yaml", "data/folder.yaml"} <= names


@pytest.mark.parametrize("path", TRAINING_YAMLS, ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_config_parses(path: Path):
    raw = yaml.safe_load(path.read_text())
    assert set(raw) <= {"model", "data", "trainer", "seed_everything", "ckpt_path"}, raw.keys()
    cfg = parse_config(["--config", str(path)])
    if "model" in raw:
        assert cfg.model.model_name in [*list_models(), "default"]
        # the overrides build a valid architecture config (no weights are loaded here)
        args = {**(cfg.model.model_args or {}), "pretrained": False}
        model_config(cfg.model.model_name, num_classes=8, **args)
    if "trainer" in raw:
        assert cfg.trainer.precision is not None  # picked for the device when not given


def test_a_temporal_option_on_the_command_line_keeps_the_configs_others():
    """``--model.temporal_args.KEY V`` changes one option of the temporal model; the config's
    other ``temporal_args`` stay (values arrive as the CLI parsed them)."""
    from video_lstm.training.module import VideoLSTMModule

    cfg = parse_config(
        ["--config", str(CONFIGS / "study" / "convlstm.yaml"),
         "--model.temporal_args.hidden_sizes=[16]", "--model.temporal_args.time_pool=mean"]
    )  # fmt: skip
    module = VideoLSTMModule(
        cfg.model.model_name,
        {**cfg.model.model_args, "pretrained": False},
        cfg.model.temporal_args,
        class_names=["a", "b"],
    )
    args = module.model.config.temporal_args
    assert (args["hidden_sizes"], args["time_pool"]) == ([16], "mean")
    assert (args["motion_radius"], args["motion_only"]) == (2, True)  # from the YAML
