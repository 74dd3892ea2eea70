"""video_lstm: video action recognition with CNN frame encoders and (Conv)LSTM temporal models."""

from video_lstm.errors import (
    BackendUnavailableError,
    CorruptVideoError,
    EmptyVideoError,
    FrameIndexError,
    NotAVideoError,
    NoVideoStreamError,
    VideoError,
    VideoNotFoundError,
)
from video_lstm.io.decode import VideoReader, open_video
from video_lstm.types import Segment, VideoInfo

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "CorruptVideoError",
    "EmptyVideoError",
    "FrameIndexError",
    "NoVideoStreamError",
    "NotAVideoError",
    "Segment",
    "VideoError",
    "VideoInfo",
    "VideoNotFoundError",
    "VideoReader",
    "open_video",
]
