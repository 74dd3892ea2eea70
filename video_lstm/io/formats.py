"""The one list of file extensions treated as videos (folder discovery, datasets, the CLI).

Every container the decoder opens through PyAV/FFmpeg and that people keep videos in. ``.ogg`` is left out: it is
mostly audio (an audio-only file would be reported as a failed video in every run). Kept
free of heavy imports so the CLI can read it without loading the decoder. Also the one walk of a
folder for its videos (:func:`discover_videos`: ``run``'s inputs, ``export``'s calibration).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from video_lstm.io.checks import require_dir

__all__ = ["VIDEO_EXTENSIONS", "discover_videos", "is_video_file"]

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


def discover_videos(
    input_dir: str | Path,
    *,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    recursive: bool = True,
    exclude: Sequence[str | Path] = (),
) -> list[Path]:
    """Video files under ``input_dir``, sorted, matched by extension (case-insensitive).

    Hidden files and folders (name starting with ``.``) are skipped, and so is anything under
    ``exclude`` (e.g. the output folder when it lies inside the input folder). One walk over the
    tree; excluded and hidden folders are not entered.

    Args:
        input_dir: Folder to search.
        extensions: Accepted extensions, with or without the dot.
        recursive: Search sub-folders too.
        exclude: Folders to leave out.

    Returns:
        Absolute paths, sorted by their path relative to ``input_dir``.

    Raises:
        UsageError: ``input_dir`` is not a folder.
    """
    root = require_dir(input_dir, "input folder").resolve()
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    excluded = {os.path.normcase(str(Path(e).resolve())) for e in exclude}
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [
            d
            for d in dirs
            if recursive
            and not d.startswith(".")
            and os.path.normcase(os.path.join(folder, d)) not in excluded
        ]
        for name in files:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in exts:
                continue
            path = Path(folder, name)
            if path.is_file():  # follows links; skips broken ones
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())
