"""The project's own result JSON as training data (kind ``results``): corrected outputs of
``video-lstm annotate`` / ``run`` become temporal annotations.
"""

from __future__ import annotations

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
from video_lstm.io.results import find_results


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
    docs = find_results(root)  # io.results.load_result: every layout the JSON has had
    videos: dict[Path, tuple[list[TemporalSegment], float | None]] = {}
    model_classes: list[str] | None = None
    for doc in docs:
        info = doc.video
        duration = info.duration if info.fps and info.num_frames else None
        segs = [
            parse_segment(f"{doc.file}: segment {i}", s.start_s, s.end_s, s.label)
            for i, s in enumerate(doc.segments)
            if s.label != BACKGROUND
        ]
        videos[Path(info.path)] = (segs, duration)
        if doc.class_names and model_classes is None:
            model_classes = [c for c in doc.class_names if c != BACKGROUND]
    if not videos:
        raise ValueError(f"{root}: no result JSON with 'video' and 'segments'")
    return finish_temporal(
        videos,
        class_names if class_names is not None else model_classes,
        source=root,
        missing=missing,
    )


register_dataset_kind("results", from_results, temporal=True)
