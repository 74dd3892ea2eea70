"""Output writers of one annotated video: a table ``name -> writer``.

Each writer takes the :class:`~video_lstm.inference.stages.AnnotationResult`, the open
full-resolution video, the output folder and the base name, writes its files atomically and
returns their paths. :data:`WRITERS` runs in its own order, JSON last: a JSON on disk means
every other output of that video is complete. Add a format by adding an entry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from video_lstm.inference.segments import frame_labels_from_segments
from video_lstm.io.clips import clip_path, cut_clip
from video_lstm.io.files import write_json
from video_lstm.io.results import write_segments_csv, write_srt, write_vtt
from video_lstm.io.video import FrameSource, write_annotated_video

if TYPE_CHECKING:
    from video_lstm.inference.stages import AnnotationResult

__all__ = ["WRITERS", "Writer"]

Writer = Callable[["AnnotationResult", FrameSource, Path, str], list[Path]]


def _video(result: AnnotationResult, reader: FrameSource, out_dir: Path, name: str) -> list[Path]:
    """``<name>_annotated.mp4``: label, confidence and a timeline bar over the source frames."""
    n = reader.num_frames
    labels = frame_labels_from_segments(result.segments, n, result.class_names)
    scores = result.frame_probs[np.arange(n), np.maximum(labels, 0)]
    path = out_dir / f"{name}_annotated.mp4"
    write_annotated_video(
        reader,
        path,
        class_names=result.class_names,
        segments=result.segments,
        labels=labels,
        scores=scores,
        codec=result.settings["runtime"]["encoder"],
    )
    return [path]


def _clips(result: AnnotationResult, reader: FrameSource, out_dir: Path, name: str) -> list[Path]:
    """``clips/<label>/<name>_<start>-<end>.mp4``, frame-exact, one per segment."""
    paths = []
    for seg in result.segments:
        path = clip_path(out_dir / "clips", seg.label, name, seg.start_frame, seg.end_frame)
        codec = result.settings["runtime"]["encoder"]
        paths.append(cut_clip(reader, seg.start_frame, seg.end_frame, path, codec=codec))
    return paths


def _csv(result: AnnotationResult, reader: FrameSource, out_dir: Path, name: str) -> list[Path]:
    return [write_segments_csv(out_dir / f"{name}.csv", result.segments)]


def _srt(result: AnnotationResult, reader: FrameSource, out_dir: Path, name: str) -> list[Path]:
    return [write_srt(out_dir / f"{name}.srt", result.segments)]


def _vtt(result: AnnotationResult, reader: FrameSource, out_dir: Path, name: str) -> list[Path]:
    return [write_vtt(out_dir / f"{name}.vtt", result.segments)]


def frame_confidence(result: AnnotationResult) -> list[float]:
    """Per frame, the smoothed probability of the most likely action (background excluded),
    rounded to 3 decimals: the report's confidence curve."""
    probs = np.asarray(result.frame_probs)  # (num_frames, K)
    background = (result.settings.get("segments") or {}).get("background")
    if background in result.class_names and probs.shape[-1] > 1:
        probs = np.delete(probs, result.class_names.index(background), axis=-1)
    return np.round(probs.max(axis=-1), 3).tolist() if probs.size else []


def _json(result: AnnotationResult, reader: FrameSource, out_dir: Path, name: str) -> list[Path]:
    """``<name>.json``: video metadata, model, resolved settings, segments, per-frame
    confidence, timings."""
    doc: dict[str, Any] = {
        "video": result.info.to_dict(),
        "model": result.model,
        "settings": result.settings,
        "segments": result.segments,
        "frame_confidence": frame_confidence(result),
        "num_windows": len(result.windows.starts),
        "timings_s": result.timings,
    }
    if result.settings.get("save_window_scores"):
        doc["windows"] = {"spans": result.windows.spans, "probs": result.windows.probs}
    return [write_json(out_dir / f"{name}.json", doc)]


# Run in this order; JSON last (its presence means every other output is there).
WRITERS: dict[str, Writer] = {
    "video": _video,
    "clips": _clips,
    "csv": _csv,
    "srt": _srt,
    "vtt": _vtt,
    "json": _json,
}
