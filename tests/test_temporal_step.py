"""The stateful step API: ``T`` calls of ``step`` from ``init_state`` equal ``forward`` on ``T``,
and the step exports to ONNX.

Every temporal model is checked on random backbone features, after each step against the
window of the steps so far, in training mode (where no BatchNorm makes a batch of steps differ
from one step), in eval mode, and in eval mode with BatchNorm folded as the Predictor runs it.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from video_lstm.models import ClassifierConfig, VideoClassifier
from video_lstm.models.backbone import fold_batchnorm
from video_lstm.models.convlstm import ConvGRU, ConvLSTM

B, T = 2, 5

# (id, ClassifierConfig fields): every temporal model and the step inputs that need a memory of
# the previous step (frame_diff, motion_radius, motion_only), every time pooling.
CASES = [
    ("lstm", ("lstm", dict(hidden_size=6, num_layers=2))),
    ("gru-mean", ("gru", dict(time_pool="mean"))),
    ("lstm-attention-diff", ("lstm", dict(time_pool="attention", frame_diff=True))),
    ("convlstm", ("convlstm", dict(hidden_sizes=[4, 3], kernel_size=2))),
    ("convlstm-peephole", ("convlstm", dict(peephole="spatial", time_pool="mean"))),
    ("convgru-attention", ("convgru", dict(time_pool="attention", space_pool="mean"))),
    ("convlstm-compact", ("convlstm", dict(frame_diff=True, proj_channels=4))),
    (
        "convgru-motion-only",
        ("convgru", dict(frame_diff=True, motion_radius=1, motion_only=True)),
    ),
    (
        "lstm-adapter-motion",
        ("adapter_lstm", dict(proj_channels=4, pool_size=2, motion_radius=1, frame_diff=True)),
    ),
    (
        "gru-adapter-motion-only",
        ("adapter_gru", dict(proj_channels=4, motion_radius=1, motion_only=True)),
    ),
    ("meanpool", ("meanpool", {})),
]


def _model(case: tuple[str, dict]) -> VideoClassifier:
    torch.manual_seed(0)
    temporal, args = case
    size = (
        {}
        if temporal == "meanpool"
        else {"hidden_sizes": [5]}
        if "conv" in temporal
        else {"hidden_size": 5}
    )
    config = ClassifierConfig(
        backbone="resnet18", stage=1, frame_size=32, num_classes=3, temporal=temporal,
        temporal_args={**size, **args},
    )  # fmt: skip
    # stage 1 at 32 px: 64-channel 8x8 maps, or 64-d vectors
    model = VideoClassifier.from_config(config)
    for m in model.temporal.modules():  # BatchNorm away from identity, so folding shows
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 2)
                m.bias.uniform_(-1, 1)
    return model


def _features(model: VideoClassifier) -> torch.Tensor:
    torch.manual_seed(1)
    if model.config.uses_maps:
        return torch.randn(B, T, model.backbone.out_channels, *[model.config.map_size] * 2)
    return torch.randn(B, T, model.backbone.out_dim)


def _assert_steps_equal_windows(model: VideoClassifier, feats: torch.Tensor) -> None:
    state = model.init_state(B, feats[:, 0])
    assert all(s.shape[0] == B for s in state)  # batch first: streams concatenate on dim 0
    for t in range(T):
        logits, state = model.step_features(feats[:, t], state)
        want = model.forward_head(feats[:, : t + 1])
        torch.testing.assert_close(logits, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_steps_equal_the_window(case: tuple[str, dict]) -> None:
    model = _model(case)
    feats = _features(model)
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.temporal.modules())
    with torch.no_grad():
        if not has_bn:  # training BatchNorm normalises over the window's steps, not one step
            _assert_steps_equal_windows(model.train(), feats)
        _assert_steps_equal_windows(model.eval(), feats)
        folded = fold_batchnorm(copy.deepcopy(model))
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.temporal.modules())
        _assert_steps_equal_windows(folded, feats)


def test_stateful_flag_and_what_cannot_step() -> None:
    assert _model(("convlstm", {})).stateful
    assert _model(("gru", {})).stateful
    assert not _model(("meanpool", {})).stateful
    for temporal in ("lstm", "convgru"):
        model = _model((temporal, dict(bidirectional=True)))
        assert not model.stateful
        feats = _features(model)
        with pytest.raises(ValueError, match="bidirectional.*cannot step"):
            model.init_state(B, feats[:, 0])
    model = _model(("convlstm", {}))
    feats = _features(model)
    state = model.init_state(B, feats[:, 0])
    with pytest.raises(ValueError, match="state of 2 tensors, got 1"):
        model.step_features(feats[:, 0], state[:1])
    with pytest.raises(ValueError, match="one step's maps"):
        model.step_features(feats, state)


def test_streams_stepped_together_equal_each_alone() -> None:
    """States concatenated on dim 0 step two streams as one batch (a live watcher's CNN and
    temporal model batch across streams)."""
    model = _model(("convlstm", dict(frame_diff=True, proj_channels=4))).eval()
    feats = _features(model)
    with torch.no_grad():
        a = model.init_state(1, feats[:1, 0])
        b = model.init_state(1, feats[1:, 0])
        for t in range(T):
            (la, a), (lb, b) = (
                model.step_features(feats[:1, t], a),
                model.step_features(feats[1:, t], b),
            )
        both = model.init_state(B, feats[:, 0])
        for t in range(T):
            logits, both = model.step_features(feats[:, t], both)
    torch.testing.assert_close(logits, torch.cat([la, lb]))
    for joint, sa, sb in zip(both, a, b, strict=True):
        torch.testing.assert_close(joint, torch.cat([sa, sb]))


@pytest.mark.parametrize("layer", [ConvLSTM, ConvGRU])
def test_conv_layers_step_like_forward(layer) -> None:
    torch.manual_seed(0)
    rnn = layer(3, [4, 2], kernel_sizes=[3, 2])
    x = torch.randn(2, 4, 3, 6, 6)
    whole, _ = rnn(x)
    state = rnn.init_state(2, x[:, 0])
    assert len(state) == rnn.state_size
    for t in range(4):
        out, state = rnn.step(x[:, t], state)
        torch.testing.assert_close(out, whole[:, t])


@pytest.mark.parametrize(
    "temporal", ["lstm-attention-diff", "convlstm-compact", "lstm-adapter-motion"]
)
def test_step_exports_to_onnx(temporal: str, tmp_path) -> None:
    """No Python branch on the data: the step exported to ONNX (flat state in, flat state out)
    gives the eager step's outputs on ONNX Runtime at every step, the first (zero state, and
    attention's -inf running maximum) included."""
    ort = pytest.importorskip("onnxruntime")
    model = _model(dict(CASES)[temporal]).eval()
    fold_batchnorm(model)
    feats = _features(model)
    state = model.init_state(B, feats[:, 0])
    names = [f"state_{i}" for i in range(len(state))]

    class Step(nn.Module):  # the graph an export records: flat inputs, flat outputs
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x, *state):
            logits, new = self.model.step_features(x, state)
            return (logits, *new)

    path = tmp_path / "step.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes (legacy exporter, folding)
        _, later = model.step_features(feats[:, 0], state)  # traced away from the zero state
        torch.onnx.export(
            Step(), (feats[:, 1], *later), str(path), input_names=["features", *names],
            opset_version=17, dynamo=False,
        )  # fmt: skip
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        ort_state = [s.numpy() for s in state]
        for t in range(T):
            logits, state = model.step_features(feats[:, t], state)
            got = session.run(
                None, {"features": feats[:, t].numpy(), **dict(zip(names, ort_state, strict=True))}
            )
            torch.testing.assert_close(torch.from_numpy(got[0]), logits, rtol=1e-4, atol=1e-5)
            ort_state = got[1:]
