"""The project's own result JSON as training data (kind ``results``): corrected outputs of
``video-lstm annotate`` / ``run`` become temporal annotations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from video_lstm.data.datasets.base import (
    BACKGROUND,
    TemporalManifest,
    TemporalSegment,
    check_missing,
    finish_temporal,
    parse_segment,
)
from video_lstm.data.datasets.kinds import register_dataset_kind


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
    check_missing(missing)
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
            parse_segment(f"{file}: segment {i}", s["start_s"], s["end_s"], s["label"])
            for i, s in enumerate(doc["segments"])
            if s["label"] != BACKGROUND
        ]
        videos[video] = (segs, duration)
        names = (doc.get("model") or {}).get("class_names") or doc.get("classes")
        if names and model_classes is None:
            model_classes = [c for c in names if c != BACKGROUND]
    if not files or not videos:
        raise ValueError(f"{root}: no result JSON with 'video' and 'segments'")
    return finish_temporal(
        videos,
        class_names if class_names is not None else model_classes,
        source=root,
        missing=missing,
    )


register_dataset_kind("results", from_results, temporal=True)
