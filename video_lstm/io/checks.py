"""Input and output paths checked up front, before anything slow (a model load, a decode) runs.

Each check raises :class:`~video_lstm.errors.UsageError` naming the path and the problem.
"""

from __future__ import annotations

from pathlib import Path

from video_lstm.errors import UsageError

__all__ = ["require_dir", "require_file", "require_output_dir"]


def require_file(path: str | Path, what: str) -> Path:
    """``path`` is an existing regular file (``what``: "video", "checkpoint", ... for the message)."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: {what} not found")
    if not p.is_file():
        raise UsageError(f"{path}: {what} is not a file")
    return p


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` is an existing folder."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: {what} not found")
    if not p.is_dir():
        raise UsageError(f"{path}: {what} is not a folder")
    return p


def require_output_dir(path: str | Path) -> Path:
    """``path`` is a folder or can be created as one: no file in the way, on it or above it."""
    p = Path(path)
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                where = "is a file" if q == p else f"lies under {q}, which is a file"
                raise UsageError(f"{path}: output folder {where}")
            break
    return p
