"""Small data contracts shared by the stages (decode -> sample -> model -> segments -> writers).

Plain values only, no torch: :class:`ModelMeta` (what a trained model needs besides its weights)
lives here so that an exported model is described without the training stack.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of an opened video.

    ``num_frames`` is what FFmpeg decodes; ``width``/``height`` are as displayed (after the
    display ``rotation``, clockwise degrees, and any decoder-side resize); ``frames_lost``
    counts frames of a damaged stream that do not decode.
    """

    path: str
    backend: str  # "decord" or "pyav"
    num_frames: int
    fps: float
    width: int
    height: int
    rotation: int = 0
    frames_lost: int = 0

    @property
    def duration(self) -> float:
        """Length in seconds (``num_frames / fps``)."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration": self.duration}


@dataclass(frozen=True)
class Segment:
    """One detected action: frames ``[start_frame, end_frame)`` and the same span in seconds."""

    start_frame: int
    end_frame: int  # exclusive
    label: str
    score: float
    start_s: float
    end_s: float

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelMeta:
    """What a trained model needs besides its weights.

    Args:
        class_names: Label of each output index.
        model: The classifier config as a plain dict (``ClassifierConfig`` fields).
        clip_len: Frames per clip (and per inference window) the model was trained on.
        frame_interval: The model sees every ``frame_interval``-th source frame.
        frame_size: Square input size in pixels after resize + centre crop.
        mean: Per-channel normalisation mean (from the backbone's weights).
        std: Per-channel normalisation std.
        extra: Free-form provenance (training config, metrics, dataset).
        decode_size: Short side the frames were decoded at before the centre crop to
            ``frame_size`` (``None``: ``frame_size``); inference and evaluation decode the same.
        segment_rules: Segment rules the model comes with (fields of
            ``inference.settings.SegmentRules`` as plain values): ``background`` for a model
            trained with a background class, and the rules ``video-lstm calibrate`` chose on
            validation videos. Annotation uses them unless told otherwise. ``None``: none.
    """

    class_names: list[str]
    model: dict[str, Any]
    clip_len: int
    frame_interval: int
    frame_size: int
    mean: list[float]
    std: list[float]
    extra: dict[str, Any] = field(default_factory=dict)
    decode_size: int | None = None
    segment_rules: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.class_names:
            raise ValueError("ModelMeta.class_names must not be empty")
        if self.clip_len < 1 or self.frame_interval < 1 or self.frame_size < 1:
            raise ValueError(
                f"clip_len, frame_interval and frame_size must be >= 1, got "
                f"{self.clip_len}, {self.frame_interval}, {self.frame_size}"
            )
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values, got {self.mean}, {self.std}")

    @classmethod
    def for_model(
        cls,
        model: Any,
        class_names: list[str],
        *,
        clip_len: int,
        frame_interval: int,
        frame_size: int | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        extra: dict[str, Any] | None = None,
        decode_size: int | None = None,
        segment_rules: dict[str, Any] | None = None,
    ) -> ModelMeta:
        """The metadata of a ``VideoClassifier``: its config, and its input size and
        normalisation unless the data pipeline used others (``frame_size``, ``mean``, ``std``)."""
        cfg = model.config
        return cls(
            class_names=list(class_names),
            model=asdict(cfg) if is_dataclass(cfg) else dict(cfg),
            clip_len=int(clip_len),
            frame_interval=int(frame_interval),
            frame_size=int(frame_size or cfg.frame_size),
            mean=[float(m) for m in (model.mean if mean is None else mean)],
            std=[float(s) for s in (model.std if std is None else std)],
            extra=dict(extra or {}),
            decode_size=int(decode_size) if decode_size else None,
            segment_rules=dict(segment_rules) if segment_rules else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
