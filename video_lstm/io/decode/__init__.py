"""Open a video and read frames by index (see :mod:`video_lstm.io.decode.reader`)."""

from video_lstm.io.decode.reader import (
    BACKENDS,
    ON_ERROR,
    VIDEO_EXTENSIONS,
    VideoReader,
    open_video,
    output_size,
)

__all__ = ["BACKENDS", "ON_ERROR", "VIDEO_EXTENSIONS", "VideoReader", "open_video", "output_size"]
