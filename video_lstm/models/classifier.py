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
from video_lstm.models.temporal_table import TemporalModel, temporal_model

__all__ = ["ClassifierConfig", "VideoClassifier"]


@dataclass
class ClassifierConfig:
    """The architecture as plain values (round-trips through YAML and checkpoints).

    The fields every model shares, plus the temporal model's own options in ``temporal_args``,
    checked by its entry in :mod:`video_lstm.models.temporal_table` (a name -> builder table).

    Args:
        backbone: Frame encoder name (``video_lstm.models.backbone.BACKBONES``).
        temporal: A registered temporal model
            (:func:`~video_lstm.models.temporal_table.list_temporal_models`): ``"convlstm"``,
            ``"convgru"`` (over maps), ``"lstm"``, ``"gru"`` (over vectors), ``"adapter_lstm"``,
            ``"adapter_gru"`` (over maps, through a conv adapter pooled to vectors),
            ``"meanpool"`` (no temporal model; over vectors), or one a plugin registered.
        temporal_args: The temporal model's options (fields of its options dataclass, e.g.
            ``{"hidden_sizes": [32], "frame_diff": true}`` for ``convlstm``); missing ones take
            their defaults, and the config keeps them all, so a checkpoint records every value.
        num_classes: Output classes ``K``.
        stage: Backbone stage whose output is used, 0..4 (output stride ``2 ** (stage + 1)``).
        pool_size: For models over vectors: the backbone's per-frame average pool to ``s x s``,
            flattened (1 = global pooling; 2-3 keep coarse position). Models over maps get the
            maps whole.
        dropout: Dropout on the clip embedding before the linear head.
        frame_size: Square input resolution in pixels.
        pretrained: Load the backbone's ImageNet weights at construction.
        weights_path: Local backbone state dict (instead of downloading).
        freeze: Backbone freezing: ``"none"``, ``"all"`` or N (train only the last N stages).
    """

    backbone: str = "resnet18"
    temporal: str = "convlstm"
    temporal_args: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 10
    stage: int = 4
    pool_size: int = 1
    dropout: float = 0.0
    frame_size: int = 112
    pretrained: bool = False
    weights_path: str | None = None
    freeze: str | int = "none"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {list(BACKBONES)}, got {self.backbone!r}")
        # the model's own checks; kept as plain values with every default filled in
        self.temporal_args = dataclasses.asdict(self.temporal_entry.parse(self.temporal_args))
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if not 0 <= self.stage < NUM_STAGES:
            raise ValueError(f"stage must be in 0..{NUM_STAGES - 1}, got {self.stage}")
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {self.pool_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.frame_size < 32:
            raise ValueError(f"frame_size must be >= 32 pixels, got {self.frame_size}")
        if not (
            self.freeze in ("none", "all")
            or (isinstance(self.freeze, int) and not isinstance(self.freeze, bool))
        ):
            raise ValueError(f"freeze must be 'none', 'all' or an int, got {self.freeze!r}")

    @property
    def temporal_entry(self) -> TemporalModel:
        """The temporal model's table entry."""
        return temporal_model(self.temporal)

    @property
    def options(self) -> Any:
        """The temporal model's options as its dataclass."""
        return self.temporal_entry.parse(self.temporal_args)

    @property
    def uses_maps(self) -> bool:
        """True when the temporal model reads feature maps (its entry's ``inputs``)."""
        return self.temporal_entry.inputs == "maps"

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
        temporal = c.temporal_entry.build(
            c.options,
            in_channels=backbone.out_channels if c.uses_maps else backbone.out_dim,
            map_size=c.map_size,
        )
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
        """Whether the temporal model carries a state worth keeping from step to step: its
        table entry says so (and the module, where it says, e.g. not when bidirectional)."""
        table = self.config.temporal_entry.stateful if self.config is not None else True
        return table and bool(getattr(self.temporal, "stateful", self.config is not None))

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
