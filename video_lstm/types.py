"""Small data contracts shared by the stages (decode -> sample -> model -> segments -> writers)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
