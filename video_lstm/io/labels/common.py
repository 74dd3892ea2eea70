"""What every labelling-tool format shares: the exported item, video references, frame rates,
overlapping labels.

A :class:`LabelItem` is one annotated video as the formats see it: where the video is (a local
path, the name a tool knows it by, the URL the tool loads it from), its frame rate and size, and
its segments ``[start_frame, end_frame)`` with scores. Readers of tool exports return
:class:`ToolVideo`: the tool's reference to the video and labelled spans in seconds.

Frames and seconds. Our frame ``i`` is the ``i``-th decoded frame (0-based), a segment covers
frames ``[start_frame, end_frame)``. Label Studio and FiftyOne count frames from 1 and include
the last one (``[start_frame + 1, end_frame]``); CVAT counts from 0 (a track is visible from
its first frame up to, not including, the frame where it goes ``outside``). A tool that counts
frames at a stated rate (Label Studio's ``frameRate``) gives seconds ``(frame - 1) / rate``,
and seconds become our frames with the video's own fps (``round(seconds * fps)``), so a project
whose configured rate differs from the file's still lands on the right frames.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from video_lstm.io.formats import VIDEO_EXTENSIONS
from video_lstm.types import Segment

logger = logging.getLogger(__name__)

LOCAL_FILES_PREFIX = "/data/local-files/?d="
"""How Label Studio serves a file below its ``LOCAL_FILES_DOCUMENT_ROOT``."""

# A Label Studio upload is stored as /data/upload/<project>/<8 hex>-<original name>.
_UPLOAD_NAME = re.compile(r"^[0-9a-f]{8}-(?P<name>.+)$")


@dataclass(frozen=True)
class LabelItem:
    """One video and its segments, as exported.

    Attributes:
        path: The video on this machine.
        name: Its name relative to the run's input folder (``sub/b.mp4``): the item's id.
        url: What the labelling tool loads (see :func:`video_url`).
        fps: Frame rate of the file (what our frame indices count).
        num_frames: Decoded frames.
        width: Displayed width.
        height: Displayed height.
        segments: Detected segments (``[start_frame, end_frame)``, a score each).
        model_version: The model that made them (checkpoint name and settings hash).
    """

    path: Path
    name: str
    url: str
    fps: float
    num_frames: int
    width: int
    height: int
    segments: tuple[Segment, ...]
    model_version: str = ""

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class ToolSpan:
    """One labelled span read from a tool's export, in seconds ``[start_s, end_s)``."""

    start_s: float
    end_s: float
    label: str


@dataclass
class ToolVideo:
    """A video as a tool's export names it, with its labelled spans.

    Attributes:
        ref: The tool's reference (a URL, an upload path, a file name).
        source: Where in the export it was read (``export.json: task 12``), for messages.
        spans: Labelled spans, in seconds.
        frames: Labelled spans in the tool's frames, 0-based ``[start, end, label)``.
        fps: The frame rate the tool counted ``frames`` at, if it says (``None``: not stated;
            CVAT's frames are the file's own).
        hint: A path relative to the video folder that our own export stored in the item
            (tried first).
    """

    ref: str
    source: str
    spans: list[ToolSpan] = field(default_factory=list)
    frames: list[tuple[int, int, str]] = field(default_factory=list)
    fps: float | None = None
    hint: str | None = None


def video_url(name: str, *, url_prefix: str | None = None) -> str:
    """How a labelling tool reaches the video ``name`` (relative to the served folder).

    Args:
        name: Path relative to the folder the tool serves (``sub/b.mp4``).
        url_prefix: ``https://host/videos/`` to prefix the (URL-quoted) name with; ``None``:
            Label Studio's local-files path ``/data/local-files/?d=<name>``.

    Returns:
        The URL.
    """
    quoted = urllib.parse.quote(name.replace("\\", "/"))
    if url_prefix:
        return url_prefix.rstrip("/") + "/" + quoted
    return LOCAL_FILES_PREFIX + quoted


class VideoFinder:
    """Maps a tool's video reference to a file under the video folder ``root``.

    Tried in order: the item's own hint (our exports store the relative name), Label Studio's
    ``/data/local-files/?d=REL`` (``REL`` relative to ``root``, the tool's document root), a
    ``url_prefix`` stripped off, a path relative to ``root`` as given, and last the file name
    alone (a Label Studio upload ``/data/upload/3/1a2b3c4d-name.mp4`` is found as ``name.mp4``),
    searched once through ``root``. A name found twice under ``root`` is ambiguous and not
    matched by name.
    """

    def __init__(self, root: Path, *, url_prefix: str | None = None) -> None:
        self.root = Path(root)
        self.url_prefix = url_prefix.rstrip("/") + "/" if url_prefix else None
        self._by_name: dict[str, list[Path]] | None = None

    def _names(self) -> dict[str, list[Path]]:
        if self._by_name is None:
            self._by_name = {}
            if self.root.is_dir():
                for p in sorted(self.root.rglob("*")):
                    if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
                        self._by_name.setdefault(p.name, []).append(p)
        return self._by_name

    def _relative(self, rel: str) -> Path | None:
        rel = urllib.parse.unquote(rel).lstrip("/")
        if not rel:
            return None
        if Path(rel).suffix.lower() not in VIDEO_EXTENSIONS:
            return None
        # REL below root, or (a document root above the video folder) a tail of REL below it.
        parts = Path(rel).parts
        for i in range(len(parts)):
            candidate = self.root.joinpath(*parts[i:])
            if candidate.is_file():
                return candidate
        return None

    def find(self, ref: str, hint: str | None = None) -> Path | None:
        """The file ``ref`` names, or ``None`` when nothing under ``root`` matches."""
        if hint:
            found = self._relative(hint)
            if found is not None:
                return found
        ref = str(ref or "").strip()
        if not ref:
            return None
        if ref.startswith(LOCAL_FILES_PREFIX) or "/data/local-files/" in ref:
            query = urllib.parse.urlparse(ref).query
            rel = urllib.parse.parse_qs(query).get("d", [""])[0]
            found = self._relative(rel)
            if found is not None:
                return found
        if self.url_prefix and ref.startswith(self.url_prefix):
            found = self._relative(ref[len(self.url_prefix) :])
            if found is not None:
                return found
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(ref).path))
        if path.is_absolute() and path.is_file():
            return path
        found = self._relative(str(path))
        if found is not None:
            return found
        name = path.name
        m = _UPLOAD_NAME.match(name)
        for candidate in (name, m["name"] if m else None):
            hits = self._names().get(candidate or "", [])
            if len(hits) == 1:
                return hits[0]
        return None


def resolve_overlaps(spans: Iterable[ToolSpan]) -> tuple[list[ToolSpan], int]:
    """Make labelled spans disjoint by one stated rule.

    Spans of the same label that overlap or touch are merged. Where spans of different labels
    overlap, the one that starts later takes the shared time (a span nested in another cuts it
    in two); on equal starts the shorter one does. Every moment then has at most one label, as
    the per-frame training targets need.

    Args:
        spans: Spans in any order.

    Returns:
        ``(disjoint spans sorted by start, number of overlaps between different labels)``.
    """
    ordered = sorted(spans, key=lambda s: (s.start_s, -s.end_s))
    # Same label first: merge overlapping or touching spans.
    merged: list[ToolSpan] = []
    for label in sorted({s.label for s in ordered}):
        current: ToolSpan | None = None
        for s in (s for s in ordered if s.label == label):
            if current is not None and s.start_s <= current.end_s:
                current = ToolSpan(current.start_s, max(current.end_s, s.end_s), label)
            else:
                if current is not None:
                    merged.append(current)
                current = s
        if current is not None:
            merged.append(current)
    merged.sort(key=lambda s: (s.start_s, -s.end_s))
    # Paint in start order: a later (or, on a tie, shorter) span overwrites the earlier ones.
    pieces: list[ToolSpan] = []
    overlaps = 0
    for s in merged:
        kept: list[ToolSpan] = []
        for p in pieces:
            if p.end_s <= s.start_s or p.start_s >= s.end_s:
                kept.append(p)
                continue
            overlaps += 1
            if p.start_s < s.start_s:
                kept.append(ToolSpan(p.start_s, s.start_s, p.label))
            if p.end_s > s.end_s:
                kept.append(ToolSpan(s.end_s, p.end_s, p.label))
        kept.append(s)
        pieces = kept
    pieces.sort(key=lambda s: (s.start_s, s.end_s))
    return pieces, overlaps


@dataclass(frozen=True)
class FrameRate:
    """Frame timing of a file, from its packets' timestamps (no decoding).

    Attributes:
        fps: Average frame rate.
        constant: Every frame lasts the same (within a tenth of the typical duration).
        min_ms: Shortest frame duration.
        max_ms: Longest frame duration.
    """

    fps: float
    constant: bool
    min_ms: float
    max_ms: float
    num_frames: int = 0


def frame_rate(path: str | Path) -> FrameRate:
    """Whether ``path`` has a constant frame rate: its presentation timestamps, sorted, step by
    the same amount (a tenth of a frame of jitter allowed; the container's own rounding).

    Args:
        path: A video file.

    Returns:
        The :class:`FrameRate`.

    Raises:
        ValueError: The file cannot be read or has no video stream.
    """
    import av
    import numpy as np

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise ValueError(f"{path}: cannot read the video's timestamps ({exc})") from None
    with container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        base = float(stream.time_base) if stream.time_base else 0.0
        pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
        rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    n = len(pts)
    if n < 3 or base <= 0:
        return FrameRate(fps, True, 0.0, 0.0, n)
    steps = np.diff(np.sort(np.asarray(pts, dtype=np.float64))) * base * 1000.0  # ms
    steps = steps[steps > 0]
    if not len(steps):
        return FrameRate(fps, True, 0.0, 0.0, n)
    typical = float(np.median(steps))
    constant = bool(np.all(np.abs(steps - typical) <= 0.1 * typical))
    return FrameRate(fps or 1000.0 / typical, constant, float(steps.min()), float(steps.max()), n)


def vfr_message(path: str | Path, rate: FrameRate, tool: str) -> str:
    """The one-line explanation for a variable-frame-rate video in a frame-counting tool."""
    return (
        f"{path}: variable frame rate (frames last {rate.min_ms:.1f} to {rate.max_ms:.1f} ms); "
        f"{tool} counts frames at one constant rate, so its frame numbers do not match this "
        f"file's frames: re-encode at a constant rate (ffmpeg -i IN -r {round(rate.fps) or 30} "
        "-c:v libx264 -pix_fmt yuv420p OUT.mp4) and label that file"
    )


def spans_from_frame_labels(frames: Sequence[tuple[int, str]], fps: float) -> list[ToolSpan]:
    """Runs of consecutive 0-based frames with the same label -> spans in seconds."""
    spans: list[ToolSpan] = []
    run: tuple[int, int, str] | None = None
    for frame, label in sorted(frames):
        if run is not None and label == run[2] and frame <= run[1] + 1:
            run = (run[0], max(run[1], frame), label)
            continue
        if run is not None:
            spans.append(ToolSpan(run[0] / fps, (run[1] + 1) / fps, run[2]))
        run = (frame, frame, label)
    if run is not None:
        spans.append(ToolSpan(run[0] / fps, (run[1] + 1) / fps, run[2]))
    return spans


def check_unique_names(items: Sequence[LabelItem]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"two exported videos are both named {item.name!r}")
        seen.add(item.name)


def warn_vfr(items: Sequence[LabelItem], tool: str) -> list[str]:
    """Log (once, with examples) the exported videos a frame-counting tool will misplace."""
    bad = []
    for item in items:
        try:
            rate = frame_rate(item.path)
        except ValueError:
            continue
        if not rate.constant:
            bad.append(vfr_message(item.path, rate, tool))
    if bad:
        logger.warning("%d of %d videos have a variable frame rate; e.g. %s", len(bad),
                       len(items), bad[0])  # fmt: skip
    return bad
