"""Temporal annotations of untrimmed videos: ActivityNet v1.3 JSON (kind ``activitynet``),
THUMOS14-style per-class lists (``thumos14``) and a plain ``video,start_s,end_s,label`` CSV
(``segments_csv``).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path

from video_lstm.data.datasets.base import (
    TemporalManifest,
    TemporalSegment,
    annotation_path,
    finish_temporal,
    parse_segment,
    text_lines,
    under_root,
    video_file,
)
from video_lstm.data.datasets.kinds import register_dataset_kind

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
    path = annotation_path(root, annotations, "ActivityNet annotation JSON", missing=missing)
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
            parse_segment(f"{path}: {vid}", *a["segment"], a["label"])
            for a in entry.get("annotations", [])
        ]
        duration = entry.get("duration")
        videos[video_file(root, vid)] = (segs, float(duration) if duration else None)
    return finish_temporal(videos, class_names, source=path, missing=missing)


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
    folder = annotation_path(
        root, annotations, "THUMOS annotation folder", missing=missing, folder=True
    )
    pattern = re.compile(r"^(?P<cls>.+)_(?P<subset>[^_]+)\.txt$")
    videos: dict[Path, tuple[list[TemporalSegment], float | None]] = {}
    found = False
    for file in sorted(folder.glob("*.txt")):
        m = pattern.match(file.name)
        if not m or m["cls"] == "Ambiguous" or (subset and m["subset"] != subset):
            continue
        found = True
        for n, text in text_lines(file):
            parts = text.split()
            if len(parts) != 3:
                raise ValueError(f"{file}:{n}: expected 'video start end', got {text!r}")
            path = video_file(root, parts[0])
            seg = parse_segment(f"{file}:{n}", parts[1], parts[2], m["cls"])
            videos.setdefault(path, ([], None))[0].append(seg)
    if not found:
        raise ValueError(f"{folder}: no '<Class>_{subset or '<subset>'}.txt' files")
    return finish_temporal(videos, class_names, source=folder, missing=missing)


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
    path = annotation_path(root, annotations, "segment CSV", missing=missing)
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
            entry = videos.setdefault(under_root(root, row["video"]), ([], None))
            if row["start_s"] or row["end_s"] or row["label"]:
                entry[0].append(
                    parse_segment(f"{path}:{n}", row["start_s"], row["end_s"], row["label"])
                )
    if class_names is None:
        class_names = sorted(labels)
    return finish_temporal(videos, class_names, source=path, missing=missing)


register_dataset_kind("activitynet", from_activitynet, temporal=True, path_options=("annotations",))
register_dataset_kind("thumos14", from_thumos14, temporal=True, path_options=("annotations",))
register_dataset_kind(
    "segments_csv", from_segments_csv, temporal=True, path_options=("annotations",)
)
