"""The manifest protocol and the one validation shared by every dataset kind.

A manifest says which video has which label. Two shapes share one protocol
(:class:`ManifestLike`):

- :class:`Manifest`: trimmed clips, ``samples`` of ``(path, label_index)``;
- :class:`TemporalManifest`: untrimmed videos with action segments (:class:`UntrimmedVideo`);
  a model trained on them gets the automatic :data:`BACKGROUND` class (index 0).

Both have ``class_names`` (the annotated classes), ``training_classes`` (what a model trained on
the manifest outputs: the same list, or ``background`` first then the actions), ``num_classes``
(always ``len(training_classes)``: the one place that decides whether background counts),
``paths``, ``digest()`` and ``class_counts()``.

Loaders end with :func:`finish_manifest` or :func:`finish_temporal`: videos that are missing,
empty or unreadable are counted and reported once (a logging warning with examples) and skipped,
or refused with ``missing="error"``; ``missing="ignore"`` skips the file-system check (pure
parsing). Only the file is checked here, not its contents: opening every video of Kinetics
would take hours; the decoder reports a bad file when the clip is read. Unknown labels, bad
lines and empty classes raise ``ValueError`` naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from video_lstm.io.formats import VIDEO_EXTENSIONS

logger = logging.getLogger(__name__)

MISSING_POLICIES = ("skip", "error", "ignore")

BACKGROUND = "background"
"""The automatic "no action" class of a model trained on untrimmed videos (label index 0)."""


@runtime_checkable
class ManifestLike(Protocol):
    """What every dataset kind's loader returns (:class:`Manifest` or :class:`TemporalManifest`)."""

    class_names: list[str]

    def __len__(self) -> int: ...

    @property
    def training_classes(self) -> list[str]: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def paths(self) -> list[Path]: ...

    def digest(self) -> str: ...

    def class_counts(self) -> dict[str, int]: ...


class _Classes:
    """What trimmed and temporal manifests share: class-name checks and the class count."""

    class_names: list[str]

    def _check_class_names(self) -> None:
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class names are not unique: {self.class_names}")

    @property
    def training_classes(self) -> list[str]:
        """The classes a model trained on this manifest outputs, in label order."""
        return list(self.class_names)

    @property
    def num_classes(self) -> int:
        """Outputs of a model trained on this manifest: ``len(training_classes)``, so background
        counts where the model has it (temporal manifests) and nowhere else."""
        return len(self.training_classes)


@dataclass(frozen=True)
class Manifest(_Classes):
    """Labelled videos: ``samples`` of ``(path, label_index)`` and the ``class_names``.

    ``label_index`` indexes ``class_names``; every class has at least one sample unless the
    manifest was built with ``allow_empty_classes``.
    """

    samples: list[tuple[Path, int]]
    class_names: list[str]

    def __post_init__(self) -> None:
        self._check_class_names()
        k = len(self.class_names)
        for path, label in self.samples:
            if not 0 <= label < k:
                raise ValueError(f"{path}: label {label} outside [0, {k})")

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def paths(self) -> list[Path]:
        return [p for p, _ in self.samples]

    @property
    def labels(self) -> list[int]:
        return [y for _, y in self.samples]

    def digest(self) -> str:
        """A short hash of the samples and classes: which dataset a feature cache belongs to."""
        return _digest(
            {"classes": self.class_names, "samples": [[str(p), y] for p, y in self.samples]}
        )

    def class_counts(self) -> dict[str, int]:
        """Number of samples per class name, in class order."""
        counts = dict.fromkeys(self.class_names, 0)
        for _, y in self.samples:
            counts[self.class_names[y]] += 1
        return counts


@dataclass(frozen=True)
class TemporalSegment:
    """One annotated action ``[start_s, end_s)`` in seconds."""

    start_s: float
    end_s: float
    label: str


@dataclass(frozen=True)
class UntrimmedVideo:
    """A video and its action segments; every moment outside them is background."""

    path: Path
    segments: tuple[TemporalSegment, ...]
    duration_s: float | None = None


@dataclass(frozen=True)
class TemporalManifest(_Classes):
    """Untrimmed videos with action segments, and the action ``class_names`` (no background).

    A model trained on it has :attr:`training_classes`: ``background`` first, then the actions.
    """

    videos: list[UntrimmedVideo]
    class_names: list[str]

    def __post_init__(self) -> None:
        self._check_class_names()
        if BACKGROUND in self.class_names:
            raise ValueError(
                f"{BACKGROUND!r} is the automatic no-action class; do not annotate it as an action"
            )
        known = set(self.class_names)
        for v in self.videos:
            for seg in v.segments:
                if seg.label not in known:
                    raise ValueError(f"{v.path}: label {seg.label!r} not in {self.class_names}")

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def training_classes(self) -> list[str]:
        """``[background, *class_names]``: what a model trained on these videos outputs."""
        return [BACKGROUND, *self.class_names]

    @property
    def paths(self) -> list[Path]:
        return [v.path for v in self.videos]

    def digest(self) -> str:
        """A short hash of the videos, segments and classes (see :meth:`Manifest.digest`)."""
        videos = [
            [str(v.path), [[g.start_s, g.end_s, g.label] for g in v.segments]] for v in self.videos
        ]
        return _digest({"classes": self.class_names, "videos": videos})

    def frame_labels(self, i: int, num_frames: int, fps: float) -> np.ndarray:
        """Per-frame label indices of video ``i`` in :attr:`training_classes` (0 = background).

        A segment covers frames ``[round(start_s * fps), round(end_s * fps))``.
        """
        return segment_frame_labels(self.videos[i].segments, num_frames, fps, self.training_classes)

    def class_counts(self) -> dict[str, int]:
        """Number of segments per action class."""
        counts = dict.fromkeys(self.class_names, 0)
        for v in self.videos:
            for seg in v.segments:
                counts[seg.label] += 1
        return counts


def _digest(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# The one validation: every loader ends here
# ---------------------------------------------------------------------------------------------


def check_missing(missing: str) -> None:
    """Refuse a ``missing`` policy other than ``"skip"``, ``"error"`` or ``"ignore"``."""
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")


def _readable(path: Path) -> bool:
    """A regular, non-empty file we may read."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size > 0 and os.access(path, os.R_OK)


def unreadable(paths: Sequence[Path], *, source: str | Path, missing: str) -> set[Path]:
    """The paths to drop under the ``missing`` policy, reported once (or refused).

    Args:
        paths: The manifest's videos.
        source: What is named in the message (the list file, the dataset folder).
        missing: ``"skip"`` (warn once, drop them), ``"error"`` (raise), ``"ignore"`` (no check).

    Returns:
        The missing, empty or unreadable paths (empty with ``missing="ignore"``).

    Raises:
        FileNotFoundError: With ``missing="error"``, when any is.
    """
    check_missing(missing)
    if missing == "ignore":
        return set()
    bad = [p for p in paths if not _readable(p)]
    if bad:
        examples = ", ".join(str(p) for p in bad[:3])
        msg = (
            f"{source}: {len(bad)} of {len(paths)} videos are missing, empty or "
            f"unreadable (e.g. {examples})"
        )
        if missing == "error":
            raise FileNotFoundError(msg)
        logger.warning("%s; skipping them", msg)
    return set(bad)


def finish_manifest(
    samples: list[tuple[Path, int]],
    class_names: list[str],
    *,
    source: str | Path,
    missing: str,
    allow_empty_classes: bool = False,
) -> Manifest:
    """Drop (or refuse) missing files, reporting them once, then refuse empty classes."""
    bad = unreadable([p for p, _ in samples], source=source, missing=missing)
    samples = [s for s in samples if s[0] not in bad]
    if not allow_empty_classes:
        counts = [0] * len(class_names)
        for _, y in samples:
            counts[y] += 1
        empty = [n for n, c in zip(class_names, counts, strict=True) if c == 0]
        if empty:
            raise ValueError(
                f"{source}: {len(empty)} class(es) have no videos: {', '.join(empty[:10])}"
            )
    return Manifest(samples=samples, class_names=class_names)


def finish_temporal(
    videos: dict[Path, tuple[list[TemporalSegment], float | None]],
    class_names: Sequence[str] | None,
    *,
    source: str | Path,
    missing: str,
) -> TemporalManifest:
    """Sort segments, drop (or refuse) missing files, pick class names, build the manifest.

    Args:
        videos: ``{path: (segments, duration_s or None)}``; a video without segments is all
            background.
        class_names: Action classes in label order; ``None``: the labels found, sorted.
        source: What is named in messages.
        missing: As :func:`unreadable`.
    """
    bad = unreadable(list(videos), source=source, missing=missing)
    videos = {p: v for p, v in videos.items() if p not in bad}
    if not videos:
        raise ValueError(f"{source}: no videos")
    labels = sorted({s.label for segs, _ in videos.values() for s in segs})
    if class_names is None:
        class_names = labels
    unknown = sorted(set(labels) - set(class_names))
    if unknown:
        raise ValueError(f"{source}: labels {unknown} are not in class_names {list(class_names)}")
    items = [
        UntrimmedVideo(p, tuple(sorted(segs, key=lambda s: (s.start_s, s.end_s))), duration)
        for p, (segs, duration) in videos.items()
    ]
    return TemporalManifest(videos=items, class_names=list(class_names))


# ---------------------------------------------------------------------------------------------
# Parsing helpers shared by the loaders
# ---------------------------------------------------------------------------------------------


def text_lines(path: Path) -> Iterable[tuple[int, str]]:
    """``(line number, stripped text)`` of the non-blank, non-``#`` lines of a text file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split/list file not found")
    with open(path, encoding="utf-8-sig") as f:  # -sig: tolerate a BOM from Windows editors
        for i, line in enumerate(f, start=1):
            text = line.strip()
            if text and not text.startswith("#"):
                yield i, text


def video_file(root: Path, name: str) -> Path:
    """``root/name`` if it exists, else ``root/name.<ext>`` (or ActivityNet's ``v_<name>.<ext>``)
    for the first video extension that exists; ``root/name`` when none does (reported missing)."""
    direct = root / name
    if direct.suffix.lower() in VIDEO_EXTENSIONS and direct.exists():
        return direct
    for stem in (name, f"v_{name}"):
        for ext in VIDEO_EXTENSIONS:
            candidate = root / f"{stem}{ext}"
            if candidate.exists():
                return candidate
    return direct if direct.suffix else root / f"{name}.mp4"


def parse_segment(source: str, start: Any, end: Any, label: str) -> TemporalSegment:
    """A :class:`TemporalSegment` from text or numbers, refused with ``source`` in the message."""
    try:
        s, e = float(start), float(end)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: bad segment times {start!r}, {end!r}") from None
    if not (math.isfinite(s) and math.isfinite(e)) or s < 0 or e <= s:
        raise ValueError(f"{source}: segment [{s}, {e}] must have 0 <= start < end")
    label = str(label).strip()
    if not label:
        raise ValueError(f"{source}: empty label")
    return TemporalSegment(s, e, label)


def under_root(root: Path, path: str | Path) -> Path:
    """``path`` as given when absolute, else relative to the dataset ``root``."""
    path = Path(path)
    return path if path.is_absolute() else root / path


def annotation_path(
    root: Path, annotations: str | Path, what: str, *, missing: str, folder: bool = False
) -> Path:
    """The annotation file (or ``folder``) of a loader, under ``root`` unless absolute; refuses
    a bad ``missing`` policy and a path that is not there, naming ``what`` it should be."""
    check_missing(missing)
    path = under_root(root, annotations)
    if not (path.is_dir() if folder else path.is_file()):
        raise FileNotFoundError(f"{path}: {what} not found")
    return path


# ---------------------------------------------------------------------------------------------
# Frame and window labels of untrimmed videos
# ---------------------------------------------------------------------------------------------


def segment_frame_labels(
    segments: Iterable[TemporalSegment | Sequence[Any]],
    num_frames: int,
    fps: float,
    class_names: Sequence[str],
) -> np.ndarray:
    """Per-frame class index (``class_names.index(BACKGROUND)`` where no segment is, else -1).

    Args:
        segments: :class:`TemporalSegment` or ``(start_s, end_s, label)``.
        num_frames: Video length in frames.
        fps: Frame rate.
        class_names: Label order (with ``background`` for untrimmed models).

    Returns:
        int64 ``(num_frames,)``; a segment covers ``[round(start_s * fps), round(end_s * fps))``.
    """
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.full(num_frames, index.get(BACKGROUND, -1), dtype=np.int64)
    for seg in segments:
        start, end, label = (
            (seg.start_s, seg.end_s, seg.label) if isinstance(seg, TemporalSegment) else seg
        )
        labels[max(0, round(start * fps)) : max(0, round(end * fps))] = index[label]
    return labels


def window_labels(
    frame_labels: np.ndarray,
    spans: np.ndarray,
    num_classes: int,
    *,
    min_share: float = 0.5,
) -> np.ndarray:
    """The label of each window: the class covering the most of its frames, if it covers at
    least ``min_share`` of them and more than any other class, else -1 (ambiguous: e.g. half
    one action, half another).

    With the background class among the labels, a window is positive for an action when the
    action covers at least ``min_share`` of it, background when the idle part does.

    Args:
        frame_labels: ``(N,)`` per-frame class indices (see :func:`segment_frame_labels`).
        spans: ``(W, 2)`` source-frame spans ``[start, end)``.
        num_classes: Number of classes.
        min_share: Smallest share of the window's frames its label must cover.

    Returns:
        int64 ``(W,)``.
    """
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    onehot = np.zeros((len(frame_labels) + 1, num_classes))
    valid = frame_labels >= 0
    onehot[1:][valid, frame_labels[valid]] = 1
    csum = np.cumsum(onehot, axis=0)  # (N + 1, K)
    counts = csum[spans[:, 1]] - csum[spans[:, 0]]  # (W, K)
    lengths = np.maximum(spans[:, 1] - spans[:, 0], 1)
    best = counts.argmax(axis=1)
    top = counts[np.arange(len(spans)), best]
    runner_up = np.sort(counts, axis=1)[:, -2] if num_classes > 1 else np.zeros(len(spans))
    share = top / lengths
    clear = (share >= min_share - 1e-9) & (top > runner_up)  # a tie has no label
    return np.where(clear, best, -1).astype(np.int64)
