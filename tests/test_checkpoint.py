"""Checkpoints load without unpickling code: ours and Lightning's load, a crafted one is refused."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from video_lstm.models import DEFAULT_MODEL, create_model
from video_lstm.models.checkpoint import (
    ModelMeta,
    UnsafeCheckpointError,
    load_checkpoint,
    save_checkpoint,
)


class _RunsCode:
    """Unpickling this calls ``os.system``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _model_and_meta():
    torch.manual_seed(0)
    model = create_model(DEFAULT_MODEL, num_classes=2, frame_size=32)
    return model, ModelMeta.for_model(model, ["a", "b"], clip_len=4, frame_interval=2)


def test_own_checkpoint_roundtrips(tmp_path):
    model, meta = _model_and_meta()
    path = save_checkpoint(tmp_path / "m.pt", model, meta)
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded_meta == meta
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)


@pytest.mark.skipif(sys.platform == "win32", reason="uses touch")
def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    model, meta = _model_and_meta()
    marker = tmp_path / "code_ran"
    state = {k: v.detach() for k, v in model.state_dict().items()}
    evil = tmp_path / "evil.pt"
    # A valid-looking checkpoint with one extra object whose unpickling runs a shell command.
    torch.save({"video_lstm": meta.to_dict(), "state_dict": state, "x": _RunsCode(marker)}, evil)
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pt: refused to load.*system"):
        load_checkpoint(evil)
    assert not marker.exists(), "the checkpoint's code ran while loading"

    from video_lstm.inference.predictor import Predictor

    with pytest.raises(UnsafeCheckpointError):
        Predictor.from_checkpoint(evil, device="cpu")
    assert not marker.exists()


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n")
    with pytest.raises(ValueError, match=r"notes\.pt: not a readable checkpoint") as info:
        load_checkpoint(text)
    assert not isinstance(info.value, UnsafeCheckpointError)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="not a video_lstm checkpoint"):
        load_checkpoint(plain)


# Every field of the flat ClassifierConfig that checkpoints held until the temporal model table,
# with its defaults then: what `asdict(config)` wrote into ModelMeta.model.
OLD_FLAT_DEFAULTS = dict(
    backbone="resnet18", temporal="convlstm", num_classes=10, hidden_sizes=[64], kernel_size=3,
    stage=4, pool_size=1, peephole="none", time_pool="last", temporal_dropout=0.0, dropout=0.0,
    bidirectional=False, frame_diff=False, proj_channels=0, motion_radius=0, motion_only=False,
    space_pool="max", frame_size=112, pretrained=False, weights_path=None, freeze="none",
)  # fmt: skip

# (old flat overrides, the same architecture in today's layout)
OLD_AND_NEW = [
    (  # the compact default: ConvLSTM over maps and their change, 1x1-projected
        dict(
            backbone="efficientnet_lite0",
            stage=2,
            hidden_sizes=[8],
            frame_diff=True,
            proj_channels=4,
            freeze="all",
            dropout=0.2,
        ),
        dict(
            backbone="efficientnet_lite0",
            stage=2,
            freeze="all",
            dropout=0.2,
            temporal="convlstm",
            temporal_args=dict(hidden_sizes=[8], frame_diff=True, proj_channels=4),
        ),
    ),
    (  # the demo's: an LSTM over motion inputs through the conv adapter, 3x3 cells
        dict(
            backbone="efficientnet_lite0",
            temporal="lstm",
            stage=2,
            motion_radius=1,
            motion_only=True,
            proj_channels=4,
            pool_size=3,
            hidden_sizes=[8],
        ),
        dict(
            backbone="efficientnet_lite0",
            stage=2,
            temporal="adapter_lstm",
            temporal_args=dict(
                motion_radius=1, motion_only=True, proj_channels=4, pool_size=3, hidden_size=8
            ),
        ),
    ),
    (  # a 2-layer GRU over 2x2-pooled vectors
        dict(
            backbone="mobilenet_v3_small",
            temporal="gru",
            pool_size=2,
            hidden_sizes=[6, 6],
            temporal_dropout=0.1,
            time_pool="attention",
        ),
        dict(
            backbone="mobilenet_v3_small",
            temporal="gru",
            pool_size=2,
            temporal_args=dict(hidden_size=6, num_layers=2, dropout=0.1, time_pool="attention"),
        ),
    ),
    (
        dict(backbone="mobilenet_v3_small", temporal="meanpool", pool_size=2),
        dict(backbone="mobilenet_v3_small", temporal="meanpool", pool_size=2),
    ),
]


@pytest.mark.parametrize("old, new", OLD_AND_NEW, ids=["compact", "adapter", "gru", "meanpool"])
def test_a_checkpoint_with_the_flat_config_of_before_loads(tmp_path, old, new):
    """A checkpoint as the code before the temporal model table wrote it (flat model config)
    loads into today's nested config, with the same weights and outputs."""
    from video_lstm.models import ClassifierConfig, VideoClassifier

    torch.manual_seed(0)
    shared = dict(num_classes=2, frame_size=32)
    model = VideoClassifier.from_config(ClassifierConfig(**new, **shared)).eval()
    meta = ModelMeta.for_model(model, ["a", "b"], clip_len=3, frame_interval=1)
    meta.model = {**OLD_FLAT_DEFAULTS, **old, **shared}
    path = save_checkpoint(tmp_path / "old.pt", model, meta)
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded.config == model.config
    assert loaded_meta.model == model.config.to_dict()  # results then show today's layout
    clip = torch.randn(1, 3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip), model(clip))


def test_a_checkpoint_whose_temporal_model_is_not_registered_says_to_load_its_plugin(tmp_path):
    model, meta = _model_and_meta()
    meta.model = {**meta.model, "temporal": "my_tcn", "temporal_args": {}}
    path = save_checkpoint(tmp_path / "m.pt", model, meta)
    with pytest.raises(ValueError, match=r"m\.pt: .*'my_tcn' is not registered.*--plugin"):
        load_checkpoint(path)
    meta.model = {**OLD_FLAT_DEFAULTS, "temporal": "transformer"}
    path = save_checkpoint(tmp_path / "old.pt", model, meta)
    with pytest.raises(ValueError, match=r"old\.pt: .*flat model config .*'transformer'"):
        load_checkpoint(path)
