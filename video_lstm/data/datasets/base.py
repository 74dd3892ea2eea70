"""Datasets: manifests (which video has which label) from the layouts people already have.

Manifest loaders, one per layout, all returning a :class:`Manifest`:

- :func:`from_folders`   ``root/<class>/<video>``
- :func:`from_ucf101`    ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``
- :func:`from_hmdb51`    ``<class>_test_split<N>.txt`` ("video.avi 1": 1 train, 2 test, 0 unused)
- :func:`from_kinetics`  ``label,youtube_id,time_start,time_end,split`` CSV -> local files
- :func:`from_list`      ``path label`` lines, or a CSV with a ``path,label`` header

Temporal annotations (untrimmed videos with action segments), returning a
:class:`TemporalManifest`; a model trained on them gets an automatic ``background`` class:

- :func:`from_activitynet`   ActivityNet v1.3 JSON
- :func:`from_thumos14`      THUMOS14-style ``<Class>_<subset>.txt`` lists of ``video start end``
- :func:`from_segments_csv`  ``video,start_s,end_s,label`` CSV
- :func:`from_results`       the project's own result JSON (corrected outputs -> training data)

and :func:`load_manifest` dispatching on a string (``kind="ucf101"``), for configs.

Videos that are missing, empty or unreadable are counted and reported once (a logging warning
with examples) and skipped, or refused with ``missing="error"``; ``missing="ignore"`` skips the
file-system check (pure parsing). Only the file is checked here, not its contents: opening every
video of Kinetics would take hours; the decoder reports a bad file when the clip is read.
Unknown labels, bad lines and empty classes raise ``ValueError`` naming the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from video_lstm.io.formats import VIDEO_EXTENSIONS

logger = logging.getLogger(__name__)

MISSING_POLICIES = ("skip", "error", "ignore")


@dataclass(frozen=True)
class Manifest:
    """Labelled videos: ``samples`` of ``(path, label_index)`` and the ``class_names``.

    ``label_index`` indexes ``class_names``; every class has at least one sample unless the
    manifest was built with ``allow_empty_classes``.
    """

    samples: list[tuple[Path, int]]
    class_names: list[str]

    def __post_init__(self) -> None:
        k = len(self.class_names)
        if len(set(self.class_names)) != k:
            raise ValueError(f"class names are not unique: {self.class_names}")
        for path, label in self.samples:
            if not 0 <= label < k:
                raise ValueError(f"{path}: label {label} outside [0, {k})")

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

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


# ---------------------------------------------------------------------------------------------
# Shared checks
# ---------------------------------------------------------------------------------------------


def _check_missing(missing: str) -> None:
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")


def _readable(path: Path) -> bool:
    """A regular, non-empty file we may read."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size > 0 and os.access(path, os.R_OK)


def _finish(
    samples: list[tuple[Path, int]],
    class_names: list[str],
    *,
    source: str | Path,
    missing: str,
    allow_empty_classes: bool = False,
) -> Manifest:
    """Drop (or refuse) missing files, reporting them once, then refuse empty classes."""
    if missing != "ignore":
        bad = [p for p, _ in samples if not _readable(p)]
        if bad:
            examples = ", ".join(str(p) for p in bad[:3])
            msg = (
                f"{source}: {len(bad)} of {len(samples)} videos are missing, empty or "
                f"unreadable (e.g. {examples})"
            )
            if missing == "error":
                raise FileNotFoundError(msg)
            logger.warning("%s; skipping them", msg)
            bad_set = set(bad)
            samples = [s for s in samples if s[0] not in bad_set]
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


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """``(line number, stripped text)`` of the non-blank lines of a text file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split/list file not found")
    with open(path, encoding="utf-8-sig") as f:  # -sig: tolerate a BOM from Windows editors
        for i, line in enumerate(f, start=1):
            text = line.strip()
            if text and not text.startswith("#"):
                yield i, text


# ---------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------


def from_folders(
    root: str | Path,
    *,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    class_names: Sequence[str] | None = None,
    recursive: bool = False,
    missing: str = "skip",
    allow_empty_classes: bool = False,
) -> Manifest:
    """One folder per class: ``root/<class>/<video>``.

    Args:
        root: Folder holding one sub-folder per class.
        extensions: Video suffixes to keep (case-insensitive); other files are ignored.
        class_names: Classes in label order; default: the sub-folders, sorted. A listed class
            without a folder is an empty class.
        recursive: Also take videos in nested folders of a class folder.
        missing: ``"skip"``, ``"error"`` or ``"ignore"`` for empty/unreadable files.
        allow_empty_classes: Keep classes with no video instead of raising.

    Returns:
        The manifest, samples sorted by class then path.
    """
    root = Path(root)
    _check_missing(missing)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    if class_names is None:
        class_names = sorted(
            d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
        )
        if not class_names:
            raise ValueError(f"{root}: no class folders found")
    class_names = list(class_names)
    samples = []
    for label, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            continue  # reported as an empty class
        files = folder.rglob("*") if recursive else folder.iterdir()
        videos = sorted(p for p in files if p.suffix.lower() in exts and not p.name.startswith("."))
        samples.extend((p, label) for p in videos)
    return _finish(
        samples,
        class_names,
        source=root,
        missing=missing,
        allow_empty_classes=allow_empty_classes,
    )


def read_ucf101_classes(path: str | Path) -> list[str]:
    """Class names from a UCF101 ``classInd.txt`` ("1 ApplyEyeMakeup", 1-based, in order)."""
    path = Path(path)
    by_index: dict[int, str] = {}
    for n, text in _lines(path):
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}:{n}: expected 'index ClassName', got {text!r}")
        by_index[int(parts[0])] = parts[1]
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise ValueError(f"{path}: class indices must be 1..{len(by_index)} without gaps")
    return [by_index[i] for i in range(1, len(by_index) + 1)]


def _find_dir(candidates: Sequence[Path], what: str) -> Path:
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(f"{what} not found; looked in {', '.join(map(str, candidates))}")


def from_ucf101(
    root: str | Path,
    *,
    split: int = 1,
    subset: str = "train",
    split_dir: str | Path | None = None,
    video_dir: str | Path | None = None,
    missing: str = "skip",
) -> Manifest:
    """UCF101 split files: ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``.

    List lines are ``ClassName/v_ClassName_gGG_cCC.avi [index]``; the class comes from the
    folder part (``testlist`` has no index) and must agree with the index when there is one.

    Args:
        root: Dataset folder.
        split: 1, 2 or 3 (any ``N`` whose list files exist).
        subset: ``"train"`` or ``"test"``.
        split_dir: Folder of the split files; default: the first of ``root/splits``,
            ``root/ucfTrainTestlist``, ``root.parent/ucfTrainTestlist``.
        video_dir: Folder the list paths are relative to; default ``root/videos`` if it exists,
            else ``root``.
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The manifest, in list-file order.
    """
    root = Path(root)
    _check_missing(missing)
    if subset not in ("train", "test"):
        raise ValueError(f"UCF101 subset must be 'train' or 'test', got {subset!r}")
    if split_dir is None:
        split_dir = _find_dir(
            [root / "splits", root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"],
            "UCF101 split folder",
        )
    split_dir = Path(split_dir)
    if video_dir is None:
        video_dir = root / "videos" if (root / "videos").is_dir() else root
    video_dir = Path(video_dir)
    class_names = read_ucf101_classes(split_dir / "classInd.txt")
    index = {n: i for i, n in enumerate(class_names)}
    list_file = split_dir / f"{subset}list{split:02d}.txt"
    samples = []
    for n, text in _lines(list_file):
        parts = text.split()
        rel = parts[0].replace("\\", "/")
        if len(parts) > 2 or "/" not in rel:
            raise ValueError(f"{list_file}:{n}: expected 'ClassName/video [index]', got {text!r}")
        folder = rel.split("/")[0]
        if folder not in index:
            raise ValueError(f"{list_file}:{n}: unknown class {folder!r} (not in classInd.txt)")
        label = index[folder]
        if len(parts) == 2 and (not parts[1].isdigit() or int(parts[1]) - 1 != label):
            raise ValueError(
                f"{list_file}:{n}: index {parts[1]!r} does not match class {folder!r} "
                f"(classInd says {label + 1})"
            )
        samples.append((video_dir / rel, label))
    return _finish(samples, class_names, source=list_file, missing=missing)


_HMDB_SPLIT = re.compile(r"^(?P<cls>.+)_test_split(?P<split>\d+)\.txt$")


def from_hmdb51(
    root: str | Path,
    *,
    split_dir: str | Path,
    split: int = 1,
    subset: str = "train",
    missing: str = "skip",
) -> Manifest:
    """HMDB51 split files ``<class>_test_split<N>.txt``: "video.avi 1" (1 train, 2 test, 0 unused).

    Args:
        root: Video folder, ``root/<class>/<video>.avi``.
        split_dir: Folder holding the split files.
        split: 1, 2 or 3.
        subset: ``"train"`` or ``"test"``.
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The manifest; classes sorted by name (the usual HMDB51 label order).
    """
    root, split_dir = Path(root), Path(split_dir)
    _check_missing(missing)
    want = {"train": "1", "test": "2"}.get(subset)
    if want is None:
        raise ValueError(f"HMDB51 subset must be 'train' or 'test', got {subset!r}")
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: HMDB51 split folder not found")
    files = {}
    for p in split_dir.iterdir():
        m = _HMDB_SPLIT.match(p.name)
        if m and int(m["split"]) == split:
            files[m["cls"]] = p
    if not files:
        raise ValueError(f"{split_dir}: no '*_test_split{split}.txt' files")
    class_names = sorted(files)
    samples = []
    for label, name in enumerate(class_names):
        for n, text in _lines(files[name]):
            parts = text.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{files[name]}:{n}: expected 'video.avi 0|1|2', got {text!r}")
            if parts[1] == want:
                samples.append((root / name / parts[0], label))
    return _finish(samples, class_names, source=split_dir, missing=missing)


KINETICS_PATTERN = "{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"


def from_kinetics(
    root: str | Path,
    *,
    annotations: str | Path,
    subset: str | None = None,
    pattern: str = KINETICS_PATTERN,
    class_names: Sequence[str] | None = None,
    missing: str = "skip",
    allow_empty_classes: bool = False,
) -> Manifest:
    """Kinetics-style CSV (``label,youtube_id,time_start,time_end,split``) mapped to local files.

    Args:
        root: Folder the ``pattern`` is relative to.
        annotations: The CSV (extra columns such as ``is_cc`` are ignored).
        subset: Keep rows whose ``split`` column equals this (``"train"``, ``"val"``, ...);
            ``None`` keeps all rows.
        pattern: ``str.format`` pattern of a video's path; fields ``label``, ``label_``
            (spaces -> underscores), ``youtube_id``, ``time_start``, ``time_end`` (ints),
            ``split``. The default is how the standard downloader names the files.
        class_names: Classes in label order; default: the CSV's labels, sorted (the usual order).
            With a list given, a label outside it is an error.
        missing: ``"skip"``, ``"error"`` or ``"ignore"``. Kinetics always has missing videos.
        allow_empty_classes: Keep classes with no video instead of raising.

    Returns:
        The manifest, in CSV order.
    """
    root, annotations = Path(root), Path(annotations)
    _check_missing(missing)
    if not annotations.is_file():
        raise FileNotFoundError(f"{annotations}: annotation CSV not found")
    rows = []
    with open(annotations, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        need = {"label", "youtube_id", "time_start", "time_end"}
        have = {c.strip() for c in reader.fieldnames or []}
        if not need <= have:
            raise ValueError(
                f"{annotations}: CSV needs columns {sorted(need)}, has {sorted(have)}"
                + (
                    " (a test CSV without labels cannot make a manifest)"
                    if "label" not in have
                    else ""
                )
            )
        for n, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if subset is not None and row.get("split", "") != subset:
                continue
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except ValueError:
                raise ValueError(
                    f"{annotations}:{n}: bad time_start/time_end {row['time_start']!r}, "
                    f"{row['time_end']!r}"
                ) from None
            if not row["label"] or not row["youtube_id"]:
                raise ValueError(f"{annotations}:{n}: empty label or youtube_id")
            rows.append((n, row, start, end))
    if class_names is None:
        class_names = sorted({r["label"] for _, r, _, _ in rows})
        if not class_names:
            raise ValueError(
                f"{annotations}: no rows" + (f" with split={subset!r}" if subset else "")
            )
    class_names = list(class_names)
    index = {c: i for i, c in enumerate(class_names)}
    samples = []
    for n, row, start, end in rows:
        if row["label"] not in index:
            raise ValueError(f"{annotations}:{n}: unknown label {row['label']!r}")
        try:
            rel = pattern.format(
                label=row["label"],
                label_=row["label"].replace(" ", "_"),
                youtube_id=row["youtube_id"],
                time_start=start,
                time_end=end,
                split=row.get("split", ""),
            )
        except (KeyError, IndexError) as e:
            raise ValueError(f"pattern {pattern!r} uses an unknown field {e}") from None
        samples.append((root / rel, index[row["label"]]))
    return _finish(
        samples,
        class_names,
        source=annotations,
        missing=missing,
        allow_empty_classes=allow_empty_classes,
    )


def from_list(
    path: str | Path,
    *,
    root: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    missing: str = "skip",
    allow_empty_classes: bool = False,
) -> Manifest:
    """A plain list: ``path label`` per line, or a CSV with a ``path,label`` header.

    Labels are class names, or 0-based indices when every label is an integer (then
    ``class_names`` names them, or they are named ``"0"``, ``"1"``, ...). Paths may contain
    spaces in the plain form (the label is the last field).

    Args:
        path: The list file (``.csv`` or a first line ``path,label`` selects CSV).
        root: Folder relative paths are relative to; default: the list file's folder.
        class_names: Classes in label order; default: sorted label names (or the indices).
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.
        allow_empty_classes: Keep classes with no video instead of raising.

    Returns:
        The manifest, in file order.
    """
    path = Path(path)
    _check_missing(missing)
    base = Path(root) if root is not None else path.parent
    if not path.is_file():
        raise FileNotFoundError(f"{path}: list file not found")
    entries: list[tuple[int, str, str]] = []  # (line, path, label)
    with open(path, encoding="utf-8-sig", newline="") as f:
        first = f.readline()
        f.seek(0)
        header = {c.strip().lower() for c in first.split(",")}
        if path.suffix.lower() == ".csv" or {"path", "label"} <= header:
            reader = csv.DictReader(f)
            cols = {c.strip().lower(): c for c in reader.fieldnames or []}
            if "path" not in cols or "label" not in cols:
                raise ValueError(f"{path}: CSV needs a 'path,label' header, got {first.strip()!r}")
            for n, row in enumerate(reader, start=2):
                p, y = (row[cols["path"]] or "").strip(), (row[cols["label"]] or "").strip()
                if not p or not y:
                    raise ValueError(f"{path}:{n}: empty path or label")
                entries.append((n, p, y))
        else:
            for n, text in _lines(path):
                parts = text.rsplit(maxsplit=1)
                if len(parts) != 2:
                    raise ValueError(f"{path}:{n}: expected 'path label', got {text!r}")
                entries.append((n, parts[0], parts[1]))
    if not entries:
        raise ValueError(f"{path}: no entries")

    # All-integer labels are indices; anything else is a class name.
    numeric = all(y.isdigit() for _, _, y in entries)
    if class_names is not None:
        class_names = list(class_names)
    elif numeric:
        class_names = [str(i) for i in range(max(int(y) for _, _, y in entries) + 1)]
    else:
        class_names = sorted({y for _, _, y in entries})
    index = {c: i for i, c in enumerate(class_names)}
    samples = []
    for n, p, y in entries:
        if numeric:
            label = int(y)
            if label >= len(class_names):
                raise ValueError(
                    f"{path}:{n}: label {label} >= number of classes {len(class_names)}"
                )
        elif y in index:
            label = index[y]
        else:
            raise ValueError(f"{path}:{n}: unknown label {y!r}")
        samples.append((base / p, label))
    return _finish(
        samples,
        class_names,
        source=path,
        missing=missing,
        allow_empty_classes=allow_empty_classes,
    )


# ---------------------------------------------------------------------------------------------
# Temporal annotations: untrimmed videos with action segments
# ---------------------------------------------------------------------------------------------

BACKGROUND = "background"
"""The automatic "no action" class of a model trained on untrimmed videos (label index 0)."""


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
class TemporalManifest:
    """Untrimmed videos with action segments, and the action ``class_names`` (no background).

    A model trained on it has :attr:`training_classes`: ``background`` first, then the actions.
    """

    videos: list[UntrimmedVideo]
    class_names: list[str]

    def __post_init__(self) -> None:
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class names are not unique: {self.class_names}")
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
    def num_classes(self) -> int:
        return len(self.training_classes)

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


def _video_file(root: Path, name: str) -> Path:
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


def _segment(source: str, start: Any, end: Any, label: str) -> TemporalSegment:
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


def _finish_temporal(
    videos: dict[Path, tuple[list[TemporalSegment], float | None]],
    class_names: Sequence[str] | None,
    *,
    source: str | Path,
    missing: str,
) -> TemporalManifest:
    """Sort segments, drop (or refuse) missing files, pick class names, build the manifest."""
    if missing != "ignore":
        bad = [p for p in videos if not _readable(p)]
        if bad:
            examples = ", ".join(str(p) for p in bad[:3])
            msg = (
                f"{source}: {len(bad)} of {len(videos)} videos are missing, empty or "
                f"unreadable (e.g. {examples})"
            )
            if missing == "error":
                raise FileNotFoundError(msg)
            logger.warning("%s; skipping them", msg)
            for p in bad:
                del videos[p]
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


def _under(root: Path, path: str | Path) -> Path:
    """``path`` as given when absolute, else relative to the dataset ``root``."""
    path = Path(path)
    return path if path.is_absolute() else root / path


_ACTIVITYNET_SUBSETS = {"train": "training", "val": "validation", "test": "testing"}


def from_activitynet(
    root: str | Path,
    *,
    annotations: str | Path,
    subset: str | None = None,
    class_names: Sequence[str] | None = None,
    missing: str = "skip",
) -> TemporalManifest:
    """ActivityNet v1.3 JSON: ``{"database": {id: {"subset", "duration", "annotations":
    [{"segment": [start, end], "label"}]}}}``.

    Args:
        root: Video folder; a video is ``root/<id>.<ext>`` or ``root/v_<id>.<ext>``.
        annotations: The JSON (relative paths are relative to ``root``).
        subset: ``"training"``, ``"validation"``, ``"testing"`` (or ``train``/``val``/``test``);
            ``None`` keeps every video.
        class_names: Action classes in label order; default: the annotated labels, sorted.
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The temporal manifest.
    """
    root = Path(root)
    _check_missing(missing)
    path = _under(root, annotations)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ActivityNet annotation JSON not found")
    try:
        database = json.loads(path.read_text(encoding="utf-8-sig"))["database"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not an ActivityNet JSON with a 'database' ({exc})") from None
    want = _ACTIVITYNET_SUBSETS.get(subset, subset) if subset else None
    videos: dict[Path, tuple[list[TemporalSegment], float | None]] = {}
    for vid, entry in database.items():
        if want is not None and entry.get("subset") != want:
            continue
        segs = [
            _segment(f"{path}: {vid}", *a["segment"], a["label"])
            for a in entry.get("annotations", [])
        ]
        duration = entry.get("duration")
        videos[_video_file(root, vid)] = (segs, float(duration) if duration else None)
    return _finish_temporal(videos, class_names, source=path, missing=missing)


def from_thumos14(
    root: str | Path,
    *,
    annotations: str | Path,
    subset: str | None = None,
    class_names: Sequence[str] | None = None,
    missing: str = "skip",
) -> TemporalManifest:
    """THUMOS14-style per-class lists: ``<Class>_<subset>.txt`` with ``video start end`` lines.

    ``Ambiguous_*.txt`` (THUMOS's "don't care" regions) is ignored. Only listed videos are used.

    Args:
        root: Video folder; a video is ``root/<video>.<ext>``.
        annotations: Folder of the list files (relative paths are relative to ``root``).
        subset: Keep files ending in ``_<subset>.txt`` (``val``, ``test``); ``None``: every file.
        class_names: Action classes in label order; default: the file classes, sorted.
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The temporal manifest.
    """
    root = Path(root)
    _check_missing(missing)
    folder = _under(root, annotations)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: THUMOS annotation folder not found")
    pattern = re.compile(r"^(?P<cls>.+)_(?P<subset>[^_]+)\.txt$")
    videos: dict[Path, tuple[list[TemporalSegment], float | None]] = {}
    found = False
    for file in sorted(folder.glob("*.txt")):
        m = pattern.match(file.name)
        if not m or m["cls"] == "Ambiguous" or (subset and m["subset"] != subset):
            continue
        found = True
        for n, text in _lines(file):
            parts = text.split()
            if len(parts) != 3:
                raise ValueError(f"{file}:{n}: expected 'video start end', got {text!r}")
            path = _video_file(root, parts[0])
            seg = _segment(f"{file}:{n}", parts[1], parts[2], m["cls"])
            videos.setdefault(path, ([], None))[0].append(seg)
    if not found:
        raise ValueError(f"{folder}: no '<Class>_{subset or '<subset>'}.txt' files")
    return _finish_temporal(videos, class_names, source=folder, missing=missing)


def from_segments_csv(
    root: str | Path,
    *,
    annotations: str | Path,
    subset: str | None = None,
    class_names: Sequence[str] | None = None,
    missing: str = "skip",
) -> TemporalManifest:
    """A plain CSV ``video,start_s,end_s,label`` (optional ``subset`` column).

    A row with empty ``start_s``, ``end_s`` and ``label`` lists a video with no action at all
    (pure background).

    Args:
        root: Folder the ``video`` column is relative to (absolute paths are kept).
        annotations: The CSV (relative paths are relative to ``root``).
        subset: Keep rows whose ``subset`` column equals this; ``None``: every row.
        class_names: Action classes in label order; default: the labels of every row (all
            subsets, so train/val/test agree on label indices), sorted.
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The temporal manifest.
    """
    root = Path(root)
    _check_missing(missing)
    path = _under(root, annotations)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: segment CSV not found")
    videos: dict[Path, tuple[list[TemporalSegment], float | None]] = {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        have = {c.strip() for c in reader.fieldnames or []}
        need = {"video", "start_s", "end_s", "label"}
        if not need <= have:
            raise ValueError(f"{path}: CSV needs columns {sorted(need)}, has {sorted(have)}")
        if subset is not None and "subset" not in have:
            raise ValueError(f"{path}: subset={subset!r} asked but the CSV has no subset column")
        labels: set[str] = set()  # every subset's: all subsets of one CSV share label indices
        for n, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if row["label"]:
                labels.add(row["label"])
            if subset is not None and row.get("subset") != subset:
                continue
            if not row["video"]:
                raise ValueError(f"{path}:{n}: empty video")
            entry = videos.setdefault(_under(root, row["video"]), ([], None))
            if row["start_s"] or row["end_s"] or row["label"]:
                entry[0].append(_segment(f"{path}:{n}", row["start_s"], row["end_s"], row["label"]))
    if class_names is None:
        class_names = sorted(labels)
    return _finish_temporal(videos, class_names, source=path, missing=missing)


def from_results(
    root: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    missing: str = "skip",
) -> TemporalManifest:
    """The project's own result JSON (what ``video-lstm annotate`` / ``run`` write), so that
    corrected outputs become training data.

    Args:
        root: One result JSON, or a folder whose ``*.json`` files with ``"segments"`` are read.
            The video is the JSON's ``video.path`` (a string ``video`` is taken relative to the
            JSON's folder).
        class_names: Action classes in label order; default: the model's classes in the JSON
            (without background), else the labels found.
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The temporal manifest.
    """
    root = Path(root)
    _check_missing(missing)
    if root.is_dir():
        files = sorted(root.glob("*.json"))
    elif root.is_file():
        files = [root]
    else:
        raise FileNotFoundError(f"{root}: result JSON (or folder of them) not found")
    videos: dict[Path, tuple[list[TemporalSegment], float | None]] = {}
    model_classes: list[str] | None = None
    for file in files:
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{file}: not JSON ({exc})") from None
        if not isinstance(doc, dict) or "segments" not in doc or "video" not in doc:
            continue  # e.g. manifest.json next to the results
        info = doc["video"]
        if isinstance(info, dict):
            video = Path(info["path"])
            fps, frames = info.get("fps"), info.get("num_frames")
        else:
            video, fps, frames = file.parent / str(info), doc.get("fps"), doc.get("num_frames")
        duration = float(frames) / float(fps) if fps and frames else None
        segs = [
            _segment(f"{file}: segment {i}", s["start_s"], s["end_s"], s["label"])
            for i, s in enumerate(doc["segments"])
            if s["label"] != BACKGROUND
        ]
        videos[video] = (segs, duration)
        names = (doc.get("model") or {}).get("class_names") or doc.get("classes")
        if names and model_classes is None:
            model_classes = [c for c in names if c != BACKGROUND]
    if not files or not videos:
        raise ValueError(f"{root}: no result JSON with 'video' and 'segments'")
    return _finish_temporal(
        videos,
        class_names if class_names is not None else model_classes,
        source=root,
        missing=missing,
    )


TEMPORAL_LOADERS: dict[str, Callable[..., TemporalManifest]] = {
    "activitynet": from_activitynet,
    "thumos14": from_thumos14,
    "segments_csv": from_segments_csv,
    "results": from_results,
}


MANIFEST_LOADERS: dict[str, Callable[..., Manifest]] = {
    "folder": from_folders,
    "ucf101": from_ucf101,
    "hmdb51": from_hmdb51,
    "kinetics": from_kinetics,
    "list": from_list,
    **TEMPORAL_LOADERS,
}


def load_manifest(kind: str, root: str | Path, **options: Any) -> Manifest | TemporalManifest:
    """Build a manifest from a layout chosen by name.

    Args:
        kind: Trimmed clips: ``"folder"``, ``"ucf101"``, ``"hmdb51"``, ``"kinetics"``,
            ``"list"`` (a :class:`Manifest`); untrimmed videos with segments: ``"activitynet"``,
            ``"thumos14"``, ``"segments_csv"``, ``"results"`` (a :class:`TemporalManifest`).
        root: The loader's first argument: dataset folder, or the list file for ``"list"``.
        **options: The loader's keyword arguments (``split``, ``subset``, ``split_dir``,
            ``annotations``, ``missing``, ...); see :func:`from_folders`, :func:`from_ucf101`,
            :func:`from_hmdb51`, :func:`from_kinetics`, :func:`from_list`.

    Returns:
        The manifest.
    """
    try:
        loader = MANIFEST_LOADERS[kind]
    except KeyError:
        raise ValueError(
            f"unknown manifest kind {kind!r}; expected one of {sorted(MANIFEST_LOADERS)}"
        ) from None
    return loader(root, **options)


__all__ = [
    "BACKGROUND",
    "KINETICS_PATTERN",
    "TEMPORAL_LOADERS",
    "TemporalManifest",
    "TemporalSegment",
    "UntrimmedVideo",
    "from_activitynet",
    "from_results",
    "from_segments_csv",
    "from_thumos14",
    "MANIFEST_LOADERS",
    "VIDEO_EXTENSIONS",
    "Manifest",
    "from_folders",
    "from_hmdb51",
    "from_kinetics",
    "from_list",
    "from_ucf101",
    "load_manifest",
    "read_ucf101_classes",
    "segment_frame_labels",
    "window_labels",
]
