"""The one list of file extensions treated as videos (folder discovery, datasets, the CLI).

Every container the decoder opens through PyAV/FFmpeg and that people keep videos in. ``.ogg`` is left out: it is
mostly audio (an audio-only file would be reported as a failed video in every run). Kept
free of heavy imports so the CLI can read it without loading the decoder.
"""

from __future__ import annotations

__all__ = ["VIDEO_EXTENSIONS", "is_video_file"]

VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".wmv",
    ".asf",
    ".flv",
    ".mpg",
    ".mpeg",
    ".m2v",
    ".vob",
    ".ts",
    ".mts",
    ".m2ts",
    ".ogv",
    ".3gp",
    ".3g2",
    ".mxf",
    ".nut",
    ".y4m",
)


def is_video_file(name: str) -> bool:
    """Whether ``name`` ends with one of :data:`VIDEO_EXTENSIONS` (case-insensitive)."""
    return name.lower().endswith(VIDEO_EXTENSIONS)
