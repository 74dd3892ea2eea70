"""The temporal model table: built-ins, registering a model, its options checked by it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from video_lstm.models import (
    ClassifierConfig,
    VideoClassifier,
    create_model,
    list_temporal_models,
    register_temporal_model,
    temporal_model,
    temporal_table,
)


@pytest.fixture
def table(monkeypatch):
    """A copy of the table for the test to register into (the real one is left as it was)."""
    monkeypatch.setattr(temporal_table, "_TABLE", dict(temporal_table._TABLE))


@dataclass
class _LastOptions:
    scale: float = 1.0


class _Last(nn.Module):
    """The last step's vector, scaled: the smallest stateful model."""

    def __init__(self, dim: int, scale: float) -> None:
        super().__init__()
        self.out_dim = dim
        self.scale = nn.Parameter(torch.tensor(scale))

    def forward(self, x):
        return x[:, -1] * self.scale

    def init_state(self, batch, like):
        return ()

    def step(self, x, state):
        return x * self.scale, ()


def _build_last(options: _LastOptions, *, in_channels: int, map_size: int) -> nn.Module:
    return _Last(in_channels, options.scale)


def test_the_built_in_models_and_what_they_read():
    names = list_temporal_models()
    assert {"convlstm", "convgru", "lstm", "gru", "adapter_lstm", "adapter_gru", "meanpool"} <= set(
        names
    )
    maps = set(list_temporal_models("maps"))
    assert {"convlstm", "convgru", "adapter_lstm", "adapter_gru"} <= maps
    assert not maps & {"lstm", "gru", "meanpool"}
    assert temporal_model("convgru").stateful and not temporal_model("meanpool").stateful


def test_a_registered_model_is_built_by_name_and_trains(table):
    register_temporal_model(
        "last", _build_last, options=_LastOptions, inputs="vectors", stateful=True
    )
    model = create_model(
        "lstm_resnet18", temporal="last", temporal_args={"scale": "2.0"}, num_classes=3
    )  # the preset's LSTM options are not the new model's: dropped
    assert model.config.temporal_args == {"scale": 2.0}  # a CLI string read as YAML
    assert isinstance(model.temporal, _Last) and model.stateful
    feats = torch.randn(2, 4, model.backbone.out_dim)
    model.forward_head(feats).sum().backward()
    assert model.temporal.scale.grad is not None
    state = model.init_state(2, feats[:, 0])
    for t in range(4):
        logits, state = model.step_features(feats[:, t], state)
    torch.testing.assert_close(logits, model.forward_head(feats))
    with pytest.raises(
        ValueError, match=r"'last' has no option\(s\) \['scal'\]; its options: \['scale'\]"
    ):
        ClassifierConfig(temporal="last", temporal_args={"scal": 2})


def test_registering_is_checked(table):
    register_temporal_model(
        "last", _build_last, options=_LastOptions, inputs="vectors", stateful=True
    )
    with pytest.raises(ValueError, match="already registered"):
        register_temporal_model(
            "last", _build_last, options=_LastOptions, inputs="vectors", stateful=True
        )
    with pytest.raises(ValueError, match="inputs must be 'maps' or 'vectors'"):
        register_temporal_model("x", _build_last, options=_LastOptions, inputs="map", stateful=1)
    with pytest.raises(TypeError, match="must be a dataclass"):
        register_temporal_model("x", _build_last, options=dict, inputs="maps", stateful=True)

    def no_step(options, *, in_channels, map_size):
        return nn.Linear(in_channels, 2)  # no out_dim, no step

    register_temporal_model(
        "broken", no_step, options=_LastOptions, inputs="vectors", stateful=True
    )
    with pytest.raises(
        TypeError, match=r"'broken'.*Linear without \['out_dim', 'init_state', 'step'\]"
    ):
        VideoClassifier.from_config(ClassifierConfig(temporal="broken"))


def test_option_values_from_a_command_line_are_read_as_yaml():
    config = ClassifierConfig(
        temporal="convlstm",
        temporal_args={"hidden_sizes": "[4, 4]", "frame_diff": "true", "space_pool": "mean"},
    )
    args = config.temporal_args
    assert (args["hidden_sizes"], args["frame_diff"], args["space_pool"]) == ([4, 4], True, "mean")
    assert config.options == temporal_table.ConvLSTMOptions(**args)
