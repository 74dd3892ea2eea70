"""VideoClassifier = frame encoder (CNN per frame) + temporal model + linear head.

The contract (timm-style), which training, inference and the tests rely on::

    logits = model(clip)                          # float (B, T, C, H, W) -> (B, K)
    feats = model.forward_features(clip)          # CNN per frame only: (B, T, D) or (B, T, C, h, w)
    logits = model.forward_head(feats)            # temporal model + pooling + dropout + linear
    emb = model.forward_head(feats, pre_logits=True)  # clip embedding before the linear

    state = model.init_state(batch, feats[:, 0])  # a stream, one sampled step at a time
    logits, state = model.step_features(feats[:, t], state)  # == forward_head(feats[:, : t + 1])

so a long video's per-frame features are computed once and shared by overlapping windows, and
training can run on cached features. The architecture is described by :class:`ClassifierConfig`,
plain values that round-trip through YAML and checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from video_lstm.models.backbone import BACKBONES, NUM_STAGES, FrameEncoder
from video_lstm.models.temporal import (
    ConvRecurrentTemporal,
    MeanPoolTemporal,
    PooledRecurrentTemporal,
    RecurrentTemporal,
)

__all__ = ["TEMPORAL_MODELS", "ClassifierConfig", "VideoClassifier"]

# Which temporal models read maps (B, T, C, h, w); the others read vectors (B, T, D).
TEMPORAL_MODELS = ("convlstm", "convgru", "lstm", "gru", "meanpool")
_MAP_MODELS = ("convlstm", "convgru")


@dataclass
class ClassifierConfig:
    """The architecture as plain values (round-trips through YAML and checkpoints).

    Args:
        backbone: Frame encoder name (``video_lstm.models.backbone.BACKBONES``).
        temporal: ``"convlstm"``, ``"convgru"`` (over maps), ``"lstm"``, ``"gru"`` (over pooled
            vectors) or ``"meanpool"`` (no temporal model; over vectors).
        num_classes: Output classes ``K``.
        hidden_sizes: Hidden size of each recurrent layer (its length is the number of layers;
            ``lstm``/``gru`` need all equal).
        kernel_size: ConvLSTM/ConvGRU kernel (odd or even).
        stage: Backbone stage whose output is used, 0..4 (output stride ``2 ** (stage + 1)``).
        pool_size: For vector models: per-frame average pool to ``s x s`` then flatten
            (1 = global pooling; 2-3 keep coarse position).
        peephole: ConvLSTM peepholes: ``"none"``, ``"channel"`` or ``"spatial"`` (spatial fixes
            the map size, so the model then only accepts ``frame_size`` inputs).
        time_pool: Pooling of the recurrent outputs over time: ``"last"``, ``"mean"``,
            ``"attention"``.
        temporal_dropout: Dropout between recurrent layers.
        dropout: Dropout on the clip embedding before the linear head.
        bidirectional: Bidirectional recurrence (sees the whole window; not for streaming).
        frame_diff: Feed the recurrent model each step's change ``x_t - x_{t-1}`` beside the
            features (``StepInput``): motion as input, not only through the recurrence. Not
            for ``meanpool``, whose point is to ignore order.
        proj_channels: ConvLSTM/ConvGRU: 1x1 conv of the step input to this many channels
            before the recurrence (0: none); cheaper recurrent convolutions. LSTM/GRU: > 0 makes
            the model read maps through a trainable 3x3 conv adapter to this many channels,
            pooled per frame to ``pool_size x pool_size`` (:class:`PooledRecurrentTemporal`).
        motion_radius: For models over maps: feed each step's local correlation with the
            previous step within this many cells (``(2r + 1) ** 2`` channels; 0: none), see
            :func:`~video_lstm.models.temporal.step_correlation`. What camera motion (pan, tilt,
            zoom, roll) is made of.
        motion_only: Feed the temporal model only the motion inputs (``frame_diff`` and/or
            ``motion_radius``), not the features themselves: for classes that motion alone
            defines (camera motion), so that what a training scene shows cannot be learnt
            instead (on held-out photos: see the README's study).
        space_pool: ``"max"`` or ``"mean"`` over space: of each step's ConvLSTM/ConvGRU output,
            or of the LSTM/GRU adapter's maps.
        frame_size: Square input resolution in pixels.
        pretrained: Load the backbone's ImageNet weights at construction.
        weights_path: Local backbone state dict (instead of downloading).
        freeze: Backbone freezing: ``"none"``, ``"all"`` or N (train only the last N stages).
    """

    backbone: str = "resnet18"
    temporal: str = "convlstm"
    num_classes: int = 10
    hidden_sizes: list[int] = field(default_factory=lambda: [64])
    kernel_size: int = 3
    stage: int = 4
    pool_size: int = 1
    peephole: str = "none"
    time_pool: str = "last"
    temporal_dropout: float = 0.0
    dropout: float = 0.0
    bidirectional: bool = False
    frame_diff: bool = False
    proj_channels: int = 0
    motion_radius: int = 0
    motion_only: bool = False
    space_pool: str = "max"
    frame_size: int = 112
    pretrained: bool = False
    weights_path: str | None = None
    freeze: str | int = "none"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {list(BACKBONES)}, got {self.backbone!r}")
        if self.temporal not in TEMPORAL_MODELS:
            raise ValueError(f"temporal must be one of {TEMPORAL_MODELS}, got {self.temporal!r}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if isinstance(self.hidden_sizes, int):
            self.hidden_sizes = [self.hidden_sizes]
        self.hidden_sizes = [int(h) for h in self.hidden_sizes]
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be positive ints, got {self.hidden_sizes}")
        if self.temporal in ("lstm", "gru") and len(set(self.hidden_sizes)) != 1:
            raise ValueError(
                f"temporal={self.temporal!r} needs the same hidden size in every layer, "
                f"got {self.hidden_sizes}"
            )
        if self.kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {self.kernel_size}")
        if not 0 <= self.stage < NUM_STAGES:
            raise ValueError(f"stage must be in 0..{NUM_STAGES - 1}, got {self.stage}")
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {self.pool_size}")
        if self.peephole not in ("none", "channel", "spatial"):
            raise ValueError(f"peephole must be none/channel/spatial, got {self.peephole!r}")
        if self.peephole != "none" and self.temporal != "convlstm":
            raise ValueError(f"peephole is a ConvLSTM option, not for {self.temporal!r}")
        if self.frame_diff and self.temporal == "meanpool":
            raise ValueError("frame_diff would give the order-free meanpool baseline an order")
        if self.proj_channels < 0 or (self.proj_channels and self.temporal == "meanpool"):
            raise ValueError(
                f"proj_channels must be 0, or > 0 with convlstm/convgru/lstm/gru, got "
                f"{self.proj_channels} with {self.temporal!r}"
            )
        if self.motion_radius < 0 or (self.motion_radius and not self.uses_maps):
            raise ValueError(
                f"motion_radius must be 0, or > 0 with a model over maps (convlstm, convgru, or "
                f"lstm/gru with proj_channels), got {self.motion_radius} with {self.temporal!r}"
            )
        if self.motion_only and not (self.frame_diff or self.motion_radius):
            raise ValueError("motion_only needs frame_diff or motion_radius (the motion inputs)")
        if self.space_pool not in ("max", "mean"):
            raise ValueError(f"space_pool must be 'max' or 'mean', got {self.space_pool!r}")
        if self.time_pool not in ("last", "mean", "attention"):
            raise ValueError(f"time_pool must be last/mean/attention, got {self.time_pool!r}")
        for name in ("temporal_dropout", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.frame_size < 32:
            raise ValueError(f"frame_size must be >= 32 pixels, got {self.frame_size}")
        if not (
            self.freeze in ("none", "all")
            or (isinstance(self.freeze, int) and not isinstance(self.freeze, bool))
        ):
            raise ValueError(f"freeze must be 'none', 'all' or an int, got {self.freeze!r}")

    @property
    def uses_maps(self) -> bool:
        """True when the temporal model reads feature maps (ConvLSTM/ConvGRU, or LSTM/GRU
        through a conv adapter)."""
        return self.temporal in _MAP_MODELS or (
            self.temporal != "meanpool" and self.proj_channels > 0
        )

    @property
    def map_size(self) -> int:
        """Side of the backbone's maps at ``frame_size`` (each stage halves, rounding up)."""
        side = self.frame_size
        for _ in range(self.stage + 1):
            side = math.ceil(side / 2)
        return side

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class VideoClassifier(nn.Module):
    """Backbone per frame -> temporal model -> dropout -> linear head.

    Args:
        backbone: A :class:`FrameEncoder` (maps for ConvLSTM/ConvGRU, vectors otherwise).
        temporal: A temporal model with ``out_dim`` (see :mod:`video_lstm.models.temporal`).
        head: The linear classifier ``nn.Linear(temporal.out_dim, K)``.
        dropout: Dropout on the clip embedding.
        config: The config it was built from (``None`` when assembled by hand).
    """

    def __init__(
        self,
        backbone: FrameEncoder,
        temporal: nn.Module,
        head: nn.Linear,
        *,
        dropout: float = 0.0,
        config: ClassifierConfig | None = None,
    ) -> None:
        super().__init__()
        if head.in_features != temporal.out_dim:
            raise ValueError(
                f"head takes {head.in_features} features but the temporal model gives "
                f"{temporal.out_dim}"
            )
        self.backbone = backbone
        self.temporal = temporal
        self.head_drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = head
        self.config = config

    @classmethod
    def from_config(cls, config: ClassifierConfig) -> VideoClassifier:
        """Build the model a :class:`ClassifierConfig` describes."""
        c = config
        backbone = FrameEncoder(
            c.backbone,
            output="maps" if c.uses_maps else "vector",
            stage=c.stage,
            pool_size=c.pool_size,
            pretrained=c.pretrained,
            weights_path=c.weights_path,
            freeze=c.freeze,
        )
        backbone.frame_size = c.frame_size
        rnn = dict(  # LSTM/GRU options, over pooled maps or over vectors
            hidden_size=c.hidden_sizes[0],
            num_layers=len(c.hidden_sizes),
            cell=c.temporal,
            dropout=c.temporal_dropout,
            bidirectional=c.bidirectional,
            time_pool=c.time_pool,
        )
        if c.uses_maps and c.temporal not in _MAP_MODELS:
            temporal: nn.Module = PooledRecurrentTemporal(
                backbone.out_channels,
                proj_channels=c.proj_channels,
                pool_size=c.pool_size,
                space_pool=c.space_pool,
                frame_diff=c.frame_diff,
                motion_radius=c.motion_radius,
                content=not c.motion_only,
                **rnn,
            )
        elif c.uses_maps:
            temporal = ConvRecurrentTemporal(
                backbone.out_channels,
                hidden_sizes=c.hidden_sizes,
                kernel_size=c.kernel_size,
                cell=c.temporal,
                peephole=c.peephole,
                spatial_size=(c.map_size, c.map_size),
                dropout=c.temporal_dropout,
                bidirectional=c.bidirectional,
                time_pool=c.time_pool,
                frame_diff=c.frame_diff,
                proj_channels=c.proj_channels,
                space_pool=c.space_pool,
                motion_radius=c.motion_radius,
                content=not c.motion_only,
            )
        elif c.temporal == "meanpool":
            temporal = MeanPoolTemporal(backbone.out_dim)
        else:
            temporal = RecurrentTemporal(backbone.out_dim, frame_diff=c.frame_diff, **rnn)
        head = nn.Linear(temporal.out_dim, c.num_classes)
        return cls(backbone, temporal, head, dropout=c.dropout, config=dataclasses.replace(c))

    # ------------------------------------------------------------------ contract

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    @property
    def num_features(self) -> int:
        """Size of the clip embedding (``forward_head(..., pre_logits=True)``)."""
        return self.head.in_features

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel normalisation mean for inputs scaled to 0..1 (from the backbone)."""
        return self.backbone.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.backbone.std

    @property
    def frame_size(self) -> int:
        """Square input resolution in pixels."""
        return self.config.frame_size if self.config is not None else self.backbone.frame_size

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the linear head with a fresh one for ``num_classes`` classes."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.head = nn.Linear(self.head.in_features, num_classes).to(self.head.weight.device)
        if self.config is not None:
            self.config = dataclasses.replace(self.config, num_classes=num_classes)

    def forward_features(self, clip: Tensor) -> Tensor:
        """The CNN on every frame: ``(B, T, C, H, W)`` -> ``(B, T, D)`` or ``(B, T, C', h, w)``."""
        return self.backbone(clip)

    def forward_head(self, feats: Tensor, pre_logits: bool = False) -> Tensor:
        """Temporal model + pooling + dropout + linear on per-frame features.

        Args:
            feats: Output of :meth:`forward_features` (possibly cached or windowed).
            pre_logits: Return the clip embedding ``(B, num_features)`` instead of logits.

        Returns:
            ``(B, K)`` logits, or the ``(B, num_features)`` embedding.
        """
        return self.classify(self.temporal(feats), pre_logits=pre_logits)

    def classify(self, emb: Tensor, pre_logits: bool = False) -> Tensor:
        """Dropout + linear on a clip embedding ``(B, num_features)`` (the temporal model's
        output, or the ``out`` of its :meth:`step`): logits ``(B, K)``."""
        emb = self.head_drop(emb)
        return emb if pre_logits else self.head(emb)

    # ------------------------------------------------------------------ streaming

    @property
    def stateful(self) -> bool:
        """Whether the temporal model carries a state worth keeping from step to step
        (recurrent and unidirectional; see :mod:`video_lstm.models.temporal`)."""
        return bool(getattr(self.temporal, "stateful", False))

    def init_state(self, batch: int, like: Tensor) -> tuple[Tensor, ...]:
        """The temporal model's state before a stream's first step.

        Args:
            batch: Streams (or videos) stepped together.
            like: One step's backbone features, ``(B, D)`` or ``(B, C, h, w)``
                (``forward_features(clip)[:, t]``): its layout, device and dtype are used.

        Returns:
            A flat tuple of tensors, each with the batch in dim 0.
        """
        return self.temporal.init_state(batch, like)

    def step_features(
        self, feat_t: Tensor, state: tuple[Tensor, ...]
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One sampled step: the temporal model's step, then the head.

        ``T`` calls from :meth:`init_state` give the logits :meth:`forward_head` gives on those
        ``T`` steps' features.

        Args:
            feat_t: One step's backbone features ``(B, D)`` or ``(B, C, h, w)``.
            state: From :meth:`init_state` or the previous call.

        Returns:
            ``(logits (B, K), new state)``.
        """
        emb, state = self.temporal.step(feat_t, state)
        return self.classify(emb), state

    def forward(self, clip: Tensor) -> Tensor:
        """``(B, T, C, H, W)`` float, normalised -> logits ``(B, K)``."""
        return self.forward_head(self.forward_features(clip))
