"""decord as a frame source, on the files where its frames are FFmpeg's.

The one module that imports decord (lazily: the package works without it). It is named
``decord_source`` so that nothing can mistake it for the ``decord`` package itself.

decord's index is FFmpeg's only on MP4/MOV and Matroska/WebM with no discarded packets, no
rotation, 8-bit 4:2:0 at an even size and a consistent container index (decord reads the
header's count and can hang in native code decoding past the real end, dmlc/decord#373), and
where its resize gives the right size (it returns mis-sized buffers for some widths):
:func:`decord_refusal` says why not, for the rest.

A stream whose decoder loses frames (bytes flipped inside ``mdat`` with an intact index) is
not refused by any of that: decord still returns the header's count, padding the end with
copies of the last frame it decoded (measured, decord 0.6.0: FFmpeg decodes 89 of 90 frames,
decord returns 90, the last a copy of the one before). :class:`DecordSource` therefore reads
the frame before the last one with the last one (the same run: one frame more to decode, none
when streaming), once per reader, and reports :class:`PaddedEnd` when the two are identical;
the reader then counts the frames with PyAV (a static ending is identical too: it costs that
one pass and keeps decord).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from video_lstm.errors import BackendUnavailableError
from video_lstm.io.decode.probe import Probe

__all__ = ["DecordSource", "PaddedEnd", "decord_refusal", "open_decord"]

# Demuxers where decord's index matches FFmpeg's (when the file passes the other checks).
_DECORD_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
# Pixel formats decord converts exactly as PyAV does (8-bit 4:2:0, and lossless RGB layouts).
_DECORD_PIX_FMTS = frozenset({"yuv420p", "yuvj420p", "bgr0", "bgra", "rgba", "rgb24", "bgr24"})


class PaddedEnd(Exception):
    """decord's last frame is a copy of the one before: the stream may have lost frames."""


class _DLPack:
    """A decord NDArray seen through the DLPack protocol, so NumPy can view its buffer."""

    def __init__(self, array: Any) -> None:
        self.array = array

    def __dlpack__(self, stream: Any = None, **kwargs: Any) -> Any:
        return self.array.to_dlpack()

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU, device 0: decord is only opened on the CPU here


def _copy_into(array: Any, dst: np.ndarray) -> None:
    """Copy a decord NDArray straight into ``dst`` (uint8 of the same shape).

    ``asnumpy()`` allocates a new array and we would copy it again into the output batch; a
    DLPack view (decord's public ``to_dlpack``) is the one copy (~10% of streaming time at
    360p, measured). NumPy checks the shape on assignment.
    """
    dst[...] = np.from_dlpack(_DLPack(array))


class DecordSource:
    """decord's VideoReader; indices reach it only after validation against the true count.

    Runs of consecutive frames are read with ``seek_accurate`` + ``next()``: at 720p decord's
    ``get_batch`` decodes 3-4x slower than ``next()`` even for consecutive indices (measured,
    decord 0.6.0), and a run that continues where the last read stopped needs no seek at all.
    Scattered single frames go through one ``get_batch`` call (decord's own keyframe logic).
    """

    def __init__(self, vr: Any) -> None:
        self.vr = vr
        self._pos = 0  # frame next() returns; -1 when unknown (after get_batch)
        self._end_checked = False  # the last two frames were compared once

    def read(self, targets: np.ndarray, out: np.ndarray) -> None:
        """Decode sorted unique ``targets`` into ``out[i]``.

        Raises:
            PaddedEnd: The last frame was read (``out`` is filled) and equals the one before.
        """
        last = len(self.vr) - 1
        if self._end_checked or not len(targets) or int(targets[-1]) != last or last < 1:
            self._read(targets, out)
            return
        self._end_checked = True
        if len(targets) >= 2 and int(targets[-2]) == last - 1:
            self._read(targets, out)
            before = out[-2]
        else:  # the frame before the last one too: the same run, one frame more to decode
            both = np.empty((len(targets) + 1, *out.shape[1:]), dtype=out.dtype)
            self._read(np.insert(targets, len(targets) - 1, last - 1), both)
            out[:-1], out[-1] = both[:-2], both[-1]
            before = both[-2]
        if np.array_equal(before, out[-1]):
            raise PaddedEnd

    def _read(self, targets: np.ndarray, out: np.ndarray) -> None:
        vr = self.vr
        # Split sorted unique targets into runs of consecutive indices.
        breaks = np.flatnonzero(np.diff(targets) != 1) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [len(targets)]])
        singles: list[int] = []
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            first = int(targets[a])
            if b - a == 1 and first != self._pos:
                singles.append(a)
                continue
            if first != self._pos:
                vr.seek_accurate(first)
            for slot in range(a, b):
                _copy_into(vr.next(), out[slot])
            self._pos = int(targets[b - 1]) + 1
        if singles:
            out[singles] = vr.get_batch(targets[singles]).asnumpy()
            self._pos = -1

    def close(self) -> None:
        self.vr = None


def open_decord(path: Path, width: int, height: int, threads: int, resize: bool) -> Any:
    """decord's VideoReader on the CPU, resizing in the decoder when ``resize``."""
    try:
        import decord
    except ImportError as exc:
        raise BackendUnavailableError(
            path, f"decord is not installed ({exc}); pip install decord"
        ) from None
    kwargs = {"width": width, "height": height} if resize else {}
    return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads, **kwargs)


def decord_resize_works(vr: Any, width: int, height: int) -> bool:
    """Whether decord's resized frames have the asked size (decord 0.6.0 returns mis-sized
    buffers for some target widths, 16, 24, 48, 72 measured, and then fails every read)."""
    try:
        shape = vr.get_batch([0]).shape
    except Exception:  # DECORDError: buffer size mismatch
        return False
    vr.seek(0)
    return tuple(shape) == (1, height, width, 3)


def decord_refusal(probe: Probe) -> str:
    """Why decord's frames would not be FFmpeg's for this file ("" when they are)."""
    if probe.format_name not in _DECORD_FORMATS:
        return f"decord is not frame-exact on {probe.format_name!r} containers"
    if probe.damaged:
        return f"decord is not frame-exact on a damaged file: {probe.damaged}"
    if not probe.predicted or probe.index is None:
        return "decord is not frame-exact on this file: its timestamps do not give the frame order"
    if len(probe.index) != probe.packets:
        return (
            f"decord is not frame-exact on a damaged stream: FFmpeg decodes {len(probe.index)} "
            f"of its {probe.packets} frames"
        )
    if probe.discarded:
        return f"decord is not frame-exact on files with edit lists ({probe.discarded} packets discarded)"
    if probe.rotation:
        return f"decord does not apply the display rotation ({probe.rotation} degrees)"
    if probe.pix_fmt not in _DECORD_PIX_FMTS or probe.coded_width % 2 or probe.coded_height % 2:
        return (
            f"decord converts {probe.pix_fmt} at {probe.coded_width}x{probe.coded_height} "
            "differently from FFmpeg"
        )
    return ""
