"""One exception family for everything that can be wrong with an input video.

Every message names the file and the problem, so a batch report can show it as is.
"""

from __future__ import annotations

from pathlib import Path


class VideoError(Exception):
    """A video cannot be read. ``path`` names the file, ``reason`` says why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple:
        # Rebuilt from (path, reason): the batch pipeline's decode worker sends errors across
        # processes, and the default (the formatted message as the only argument) cannot be.
        return type(self), (self.path, self.reason)


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The file does not exist."""


class EmptyVideoError(VideoError):
    """The file is empty (0 bytes) or holds no decodable frame."""


class NotAVideoError(VideoError):
    """The file is not a media container any backend can open (e.g. text named .mp4)."""


class NoVideoStreamError(VideoError):
    """The container opens but has no video stream (e.g. audio only)."""


class CorruptVideoError(VideoError):
    """The container opens but frames cannot be decoded (truncated or damaged)."""


class FrameIndexError(VideoError, IndexError):
    """A requested frame index lies outside ``[0, num_frames)``."""


class BackendUnavailableError(VideoError):
    """The requested decoding backend is not installed or cannot be imported."""


class UsageError(ValueError):
    """A wrong argument or input path (missing file, a file where a folder belongs, an
    out-of-range option). The console script prints it as one line and exits with code 2."""
