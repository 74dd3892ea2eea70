"""Input and output paths checked up front, before anything slow (a model load, a decode) runs.

Each check raises :class:`~video_lstm.errors.UsageError` naming the path and the problem.
"""

from __future__ import annotations

from pathlib import Path

from video_lstm.errors import UsageError

__all__ = ["require_checkpoint", "require_dir", "require_file", "require_output_dir"]


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


def require_checkpoint(path: str | Path) -> Path:
    """``path`` is a file that can be a torch checkpoint: ``torch.save`` writes a zip archive
    (older ones a pickle), or an exported ``.onnx`` model (a protobuf whose first field is the
    IR version: byte ``0x08``). A text or video file given by mistake is named at once, before
    the model code loads; whether the checkpoint is valid and safe is ``load_checkpoint``'s
    call (or, for ``.onnx``, ``inference.runtime.ort.read_export``'s)."""
    p = require_file(path, "checkpoint")
    with open(p, "rb") as f:
        head = f.read(4)
    if p.suffix.lower() == ".onnx":
        if head[:1] != b"\x08":
            raise UsageError(f"{path}: not an ONNX model (written by video-lstm export)")
        return p
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise UsageError(
            f"{path}: not a checkpoint (a .pt/.ckpt file written by torch.save is a zip archive)"
        )
    return p
