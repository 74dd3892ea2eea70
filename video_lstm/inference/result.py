"""What annotating one video produced, in memory: the input of every writer.

A module of its own (plain values, no torch) so that the stages, which make it, and the
writers, which read it, both import it and not each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from video_lstm.types import Segment, VideoInfo

if TYPE_CHECKING:
    from video_lstm.inference.scoring import WindowScores

__all__ = ["AnnotationResult"]


@dataclass
class AnnotationResult:
    """What :func:`~video_lstm.inference.annotate.annotate_video` found and wrote."""

    video: str
    info: VideoInfo  # of the source at full resolution
    class_names: list[str]
    segments: list[Segment]
    windows: WindowScores
    frame_probs: np.ndarray  # (num_frames, K) smoothed
    settings: dict[str, Any]  # resolved: every None filled in as used
    model: dict[str, Any] = field(default_factory=dict)  # checkpoint, classes, sampling
    output_files: list[str] = field(default_factory=list)
    # writer name -> the files it wrote (a writer that wrote none, e.g. clips of a video
    # without segments, is still listed: it ran)
    files: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
