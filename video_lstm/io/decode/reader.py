"""The reader and the backend policy: :func:`open_video`, :class:`VideoReader`, the backend table.

**Backends are a table.** :func:`register_backend` adds a name, an opener
``(path, DecodeOptions) -> FrameSource`` and, optionally, an ``accepts`` predicate on the file's
:class:`~video_lstm.io.decode.probe.Probe`. ``open_video(path, backend=NAME)`` opens with that
backend; ``backend="auto"`` walks the backends that accept the file, highest ``priority``
first, and uses the first one that opens (one that raises a ``VideoError`` hands over to the
next). Built in: ``decord`` (priority 20: where its frames are FFmpeg's) and ``pyav`` (0: every
file). A backend without ``accepts`` is used only by name.

**The built-in reader** (:class:`VideoReader`) gives exactly the frames FFmpeg shows on either
built-in backend: the probe predicts or measures the index (``probe``, ``index``), PyAV
(``pyav``) decodes any file frame-exactly and checks the index while it reads from the start,
decord (``decord_source``) is used only where its index is the same, and a decord that fails
after open, or whose last frame is padding, hands over to PyAV (under ``auto``). A forced
``backend="decord"`` on a file it cannot read frame-exactly raises ``BackendUnavailableError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from video_lstm.errors import BackendUnavailableError, CorruptVideoError, VideoError
from video_lstm.io.decode.decord_source import (
    DecordSource,
    PaddedEnd,
    decord_refusal,
    decord_resize_works,
    open_decord,
)
from video_lstm.io.decode.probe import Probe, probe_file
from video_lstm.io.decode.pyav import IndexChanged, PyAVSource
from video_lstm.io.decode.source import (
    DecodeOptions,
    FrameSource,
    IndexedSource,
    clean_message,
    output_size,
)
from video_lstm.plugins import load_plugins

__all__ = [
    "Backend",
    "VideoReader",
    "get_backend",
    "list_backends",
    "open_video",
    "register_backend",
]

Opener = Callable[[Path, DecodeOptions], FrameSource]


@dataclass(frozen=True)
class Backend:
    """A decoder backend: how to open a file and which files ``auto`` may give it.

    Attributes:
        name: What ``open_video(backend=...)``, ``--backend`` and the settings accept.
        open: ``opener(path, options) -> FrameSource``.
        accepts: ``accepts(probe) -> bool`` on the PyAV probe of the file; ``None``: never
            chosen by ``auto``, only by name.
        priority: ``auto`` tries accepting backends from the highest priority down.
        hwaccel: Whether it decodes on a device when ``options.hwaccel`` asks for one
            (``auto`` passes over backends that cannot).
    """

    name: str
    open: Opener
    accepts: Callable[[Probe], bool] | None = None
    priority: int = 10
    hwaccel: bool = False


_BACKENDS: dict[str, Backend] = {}
_LOCK = threading.Lock()


def register_backend(
    name: str,
    opener: Opener,
    *,
    accepts: Callable[[Probe], bool] | None = None,
    priority: int = 10,
    hwaccel: bool = False,
    replace: bool = False,
) -> Backend:
    """Add a decoder backend to the table (see :class:`Backend` for the fields).

    Args:
        name: The backend's name (not ``"auto"``).
        opener: ``opener(path: Path, options: DecodeOptions) -> FrameSource``; raise a
            :class:`~video_lstm.errors.VideoError` naming the file for what it cannot open.
        accepts: Predicate on the file's probe for ``auto``; ``None``: by name only.
        priority: Order for ``auto`` (decord 20, pyav 0).
        hwaccel: Whether it honours ``options.hwaccel``.
        replace: Replace a backend of the same name instead of refusing it.

    Returns:
        The registered :class:`Backend`.

    Raises:
        ValueError: ``"auto"``, an empty name, or a name already taken (without ``replace``).
    """
    if not name or name == "auto":
        raise ValueError(f"a backend cannot be named {name!r}")
    backend = Backend(name, opener, accepts=accepts, priority=priority, hwaccel=hwaccel)
    with _LOCK:
        if name in _BACKENDS and not replace:
            raise ValueError(f"decoder backend {name!r} is already registered")
        _BACKENDS[name] = backend
    return backend


def _table() -> list[Backend]:
    """The registered backends, highest priority first."""
    load_plugins()  # a worker process finds what the command line's --plugin registered
    with _LOCK:
        return sorted(_BACKENDS.values(), key=lambda b: -b.priority)


def list_backends() -> tuple[str, ...]:
    """``"auto"`` and every registered backend's name (plugins loaded first)."""
    return ("auto", *(b.name for b in _table()))


def get_backend(name: str) -> Backend:
    """The registered backend ``name``.

    Raises:
        ValueError: No such backend (the message lists the registered ones).
    """
    for backend in _table():
        if backend.name == name:
            return backend
    hint = " (a plugin's backend needs --plugin FILE.py or VIDEO_LSTM_PLUGINS)"
    raise ValueError(f"backend must be one of {list_backends()}, got {name!r}{hint}")


def open_video(
    path: str | Path, *, backend: str = "auto", skip: Sequence[str] = (), **options: Any
) -> FrameSource:
    """Open a video for frame-exact random access and streaming.

    Args:
        path: Video file (or whatever a registered backend opens, e.g. a folder of frames).
        backend: ``"auto"`` (the first registered backend that accepts the file and opens it:
            decord where it is frame-exact, PyAV elsewhere or when decord fails) or a
            registered name (:func:`list_backends`). ``reader.backend`` says which one is used.
        skip: Backends ``auto`` passes over (the pipeline's CPU passes skip decord, see
            ``inference.scoring.pass_backends``); a plugin's backend that accepts the file is
            still tried in its turn.
        **options: The fields of :class:`~video_lstm.io.decode.source.DecodeOptions`:
            ``size``, ``num_threads``, ``on_error``, ``hwaccel``.

    Returns:
        An open :class:`~video_lstm.io.decode.source.FrameSource`; for the built-in backends
        a :class:`VideoReader`.

    Raises:
        VideoNotFoundError, EmptyVideoError, NotAVideoError, NoVideoStreamError,
        CorruptVideoError, BackendUnavailableError: what is wrong with which file.
    """
    opts = DecodeOptions(**options)
    path = Path(path)
    if backend != "auto":
        return _named(get_backend(backend).open(path, opts), backend)
    probe = probe_file(path)
    candidates = [
        b
        for b in _table()
        if b.accepts is not None
        and b.name not in skip
        and (b.hwaccel or not opts.hwaccel)
        and b.accepts(probe)
    ]
    if not candidates:
        raise BackendUnavailableError(path, "no registered decoder backend accepts this file")
    for i, b in enumerate(candidates):
        try:
            source = b.open(path, opts)
        except VideoError:
            if i == len(candidates) - 1:
                raise
            continue  # the next backend in the table may read it
        if isinstance(source, VideoReader):
            source._strict = False  # under auto, decord hands over to PyAV after open too
        return _named(source, b.name)
    raise AssertionError("unreachable")


def _named(source: FrameSource, name: str) -> FrameSource:
    """``source``, its ``backend`` set to the table's name where the source left it empty."""
    if isinstance(source, IndexedSource) and not source.backend:
        source.backend = name
    return source


# open_video's keywords are DecodeOptions' fields (one definition), shown by help() and
# inspect.signature as typed keyword-only parameters.
_params = [
    inspect.Parameter("path", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="str | Path"),
    inspect.Parameter("backend", inspect.Parameter.KEYWORD_ONLY, default="auto", annotation="str"),
    inspect.Parameter(
        "skip", inspect.Parameter.KEYWORD_ONLY, default=(), annotation="Sequence[str]"
    ),
]
_params += [
    inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
    for f in dataclasses.fields(DecodeOptions)
]
open_video.__signature__ = inspect.Signature(_params, return_annotation="FrameSource")  # type: ignore[attr-defined]
del _params


class VideoReader(IndexedSource):
    """An open video on a built-in backend. Use :func:`open_video` to create one; close it
    (or use ``with``).

    Attributes:
        path: The file.
        backend: ``"decord"`` or ``"pyav"``, the backend actually used for this file.
        num_frames: Frames FFmpeg decodes (may be fewer than the container claims).
        fps: Average frame rate.
        width: Frame width after rotation and any resize.
        height: Frame height after rotation and any resize.
        rotation: Clockwise display rotation applied (0, 90, 180, 270).
        frames_lost: Frames of a damaged stream that do not decode (``on_error="skip"``).
    """

    def __init__(
        self, path: str | Path, options: DecodeOptions | None = None, *, backend: str = "pyav"
    ) -> None:
        if backend not in ("decord", "pyav"):
            raise ValueError(f"VideoReader backend must be 'decord' or 'pyav', got {backend!r}")
        options = options or DecodeOptions()
        self.path = Path(path)
        self.on_error = options.on_error
        self._requested = backend
        self._strict = True  # named backend: refuse rather than hand over (auto clears it)
        self._threads = options.num_threads
        self._hwaccel = options.hwaccel
        probe = probe_file(self.path)
        self._probe = probe
        self.width, self.height = output_size(probe.width, probe.height, options.size)
        self.fps = probe.fps
        self.rotation = probe.rotation
        self._source: DecordSource | PyAVSource | None = None

        if backend == "decord":
            refusal = decord_refusal(probe)
            if refusal:
                raise BackendUnavailableError(self.path, f"{refusal}; use backend='auto' or 'pyav'")
            self.backend = "decord"
            self._source = DecordSource(self._open_decord())
        else:
            self._use_pyav()
        self._check_damage()

    def _open_decord(self) -> Any:
        probe = self._probe
        resize = (self.width, self.height) != (probe.width, probe.height)
        try:
            vr = open_decord(self.path, self.width, self.height, self._threads, resize)
        except BackendUnavailableError:
            raise  # not installed: said as it is
        except Exception as exc:  # decord raises DECORDError / RuntimeError on any failure
            raise CorruptVideoError(
                self.path, f"decord cannot open it: {clean_message(exc)}"
            ) from None
        if resize and not decord_resize_works(vr, self.width, self.height):
            raise BackendUnavailableError(
                self.path,
                f"decord cannot resize to {self.width}x{self.height}; use backend='auto' or 'pyav'",
            )
        if len(vr) != probe.packets:
            raise BackendUnavailableError(
                self.path,
                f"decord counts {len(vr)} frames where the stream holds {probe.packets}; "
                "use backend='auto' or 'pyav'",
            )
        return vr

    def _use_pyav(self) -> None:
        if self._source is not None:
            self._source.close()
        self.backend = "pyav"
        self._source = PyAVSource(
            self.path, self._probe, self.width, self.height, self._threads, self._hwaccel
        )
        if self._probe.index is None:
            self._source.measure()

    def _check_damage(self) -> None:
        probe = self._probe
        if self.num_frames == 0:
            raise CorruptVideoError(self.path, "no frame of the video stream decodes")
        if self.on_error == "raise" and (self.frames_lost or probe.damaged):
            reason = probe.damaged or f"{self.frames_lost} of {self._expected} frames do not decode"
            raise CorruptVideoError(self.path, f"damaged stream: {reason} (on_error='raise')")

    def measure(self) -> int:
        """Decode the whole stream once so that ``num_frames`` is exact, and return it.

        Not needed for reading (a damaged stream is re-measured when it is read from the
        start); for a caller that learnt from another process that frames are missing.
        """
        probe = self._probe
        if probe.index is None or not probe.index.exact:
            source = self._source
            if isinstance(source, PyAVSource):
                source.measure()
            else:
                tmp = PyAVSource(self.path, probe, self.width, self.height, self._threads)
                try:
                    tmp.measure()
                finally:
                    tmp.close()
                if decord_refusal(probe):
                    self._use_pyav()  # the measured index is one decord cannot follow
        self._check_damage()
        return self.num_frames

    # ----------------------------------------------------------------------------- metadata

    @property
    def num_frames(self) -> int:  # type: ignore[override]
        index = self._probe.index
        return len(index) if index is not None else self._probe.packets

    @property
    def hwaccel(self) -> str | None:
        """The device decoding (``"cuda"``: NVDEC), or ``None`` for CPU decode."""
        return getattr(self._source, "hwaccel", None)

    @property
    def _expected(self) -> int:
        probe = self._probe
        return max(probe.packets, probe.header_frames - probe.discarded)

    @property
    def frames_lost(self) -> int:
        """Frames the stream should hold (packets, or the header's count) that do not decode."""
        return max(0, self._expected - self.num_frames)

    def __repr__(self) -> str:
        return (
            f"VideoReader({str(self.path)!r}, backend={self.backend!r}, num_frames={self.num_frames}, "
            f"fps={self.fps:g}, size={self.width}x{self.height}, rotation={self.rotation})"
        )

    # ----------------------------------------------------------------------------- frames

    def get_frames(
        self, indices: Sequence[int] | np.ndarray, *, pixel_format: str = "rgb24"
    ) -> np.ndarray:
        """Decode frames by index, in the order given (repeats allowed).

        Args:
            indices: Frame indices; negatives count from the end (``-1`` = last frame).
            pixel_format: ``"rgb24"``, or ``"yuv420p"`` for the decoder's own I420 planes with
                no colour conversion (PyAV backend, even size, no resize: what the H.264
                writers want, see :attr:`supports_i420`).

        Returns:
            ``(N, H, W, 3)`` uint8 RGB, ``out[k]`` is frame ``indices[k]``; for ``yuv420p``
            ``(N, H * 3 // 2, W)`` (Y, then U and V packed).

        Raises:
            FrameIndexError: An index outside ``[-num_frames, num_frames)``.
            CorruptVideoError: A frame that should exist does not decode.
        """
        if self._source is None:
            raise ValueError(f"{self.path}: reader is closed")
        if pixel_format not in ("rgb24", "yuv420p"):
            raise ValueError(f"pixel_format must be 'rgb24' or 'yuv420p', got {pixel_format!r}")
        if pixel_format == "yuv420p" and not self.supports_i420:
            raise ValueError(
                f"{self.path}: yuv420p frames need the PyAV backend, an even size and no "
                f"resize (backend {self.backend}, {self.width}x{self.height})"
            )
        for _ in range(3):
            try:
                return super().get_frames(indices, pixel_format=pixel_format)
            except IndexChanged:
                self._check_damage()  # on_error="raise" refuses the file here
        raise CorruptVideoError(self.path, "the frame index keeps changing while decoding")

    @property
    def supports_i420(self) -> bool:
        """Whether ``pixel_format="yuv420p"`` works: PyAV, even size, decoded at source size."""
        source = self._source
        return (
            isinstance(source, PyAVSource)
            and not source.resize
            and self.width % 2 == 0
            and self.height % 2 == 0
        )

    def read(self, targets: np.ndarray, pixel_format: str = "rgb24") -> np.ndarray:
        """Decode sorted unique valid ``targets`` (see :meth:`get_frames`).

        Raises:
            IndexChanged: The index was re-measured; :meth:`get_frames` validates again.
        """
        shape: tuple[int, ...] = (self.height, self.width, 3)
        if pixel_format == "yuv420p":
            shape = (self.height * 3 // 2, self.width)
        out = np.empty((len(targets), *shape), dtype=np.uint8)
        if not len(targets):
            return out
        source = self._source
        if isinstance(source, DecordSource):
            try:
                source.read(targets, out)
                return out
            except PaddedEnd:
                self._verify_end()  # decord stays only if FFmpeg counts the same frames
                if isinstance(self._source, DecordSource):
                    return out  # a static ending: decord's frames were right
                raise IndexChanged from None
            except Exception as exc:  # DECORDError: never let a native traceback escape
                source._pos = -1
                if self._strict:
                    raise CorruptVideoError(
                        self.path, f"decord failed to decode: {clean_message(exc)}"
                    ) from None
            # A stream decord opens but cannot decode (e.g. some VP9): PyAV from here on.
            self._use_pyav()
            source = self._source
        assert isinstance(source, PyAVSource)
        source.pixel_format = pixel_format
        source.read(targets, out)
        return out

    def _verify_end(self) -> None:
        """decord padded its end (or the video ends on identical frames): count with PyAV."""
        before = self.num_frames
        self.measure()
        if self.num_frames != before and isinstance(self._source, DecordSource):
            self._use_pyav()
        if self._strict and not isinstance(self._source, DecordSource):
            raise BackendUnavailableError(
                self.path,
                f"decord pads a damaged stream: FFmpeg decodes {self.num_frames} of its "
                f"{before} frames; use backend='auto' or 'pyav'",
            )

    # ----------------------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Release the native reader. Safe to call twice."""
        if self._source is not None:
            self._source.close()
            self._source = None

    def __enter__(self) -> VideoReader:
        return self

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _open_builtin(name: str) -> Opener:
    def opener(path: Path, options: DecodeOptions) -> FrameSource:
        return VideoReader(path, options, backend=name)

    opener.__name__ = f"open_{name}"
    return opener


register_backend(
    "decord",
    _open_builtin("decord"),
    accepts=lambda probe: not decord_refusal(probe),
    priority=20,
)
register_backend(
    "pyav", _open_builtin("pyav"), accepts=lambda probe: True, priority=0, hwaccel=True
)
