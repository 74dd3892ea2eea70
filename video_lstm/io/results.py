"""Result files: segments CSV, SRT and WebVTT subtitles, timestamps (each written atomically)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from video_lstm.io.files import write_text
from video_lstm.types import Segment

SEGMENT_CSV_COLUMNS = (
    "label",
    "start_frame",
    "end_frame",
    "start_s",
    "end_s",
    "duration_s",
    "score",
)


def write_segments_csv(
    path: str | Path,
    segments: Sequence[Segment],
    *,
    extra_columns: Mapping[str, Any] | None = None,
) -> Path:
    """Write segments as CSV, one row per segment, atomically.

    Columns: ``[*extra_columns], label, start_frame, end_frame (exclusive), start_s, end_s,
    duration_s, score``; seconds with 3 decimals, score with 4.

    Args:
        path: Output file.
        segments: Segments to write.
        extra_columns: Constant leading columns, e.g. ``{"video": "a.mp4"}``.

    Returns:
        ``path``.
    """
    extra = dict(extra_columns or {})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*extra, *SEGMENT_CSV_COLUMNS])
    for s in segments:
        writer.writerow(
            [
                *extra.values(),
                s.label,
                s.start_frame,
                s.end_frame,
                f"{s.start_s:.3f}",
                f"{s.end_s:.3f}",
                f"{s.end_s - s.start_s:.3f}",
                f"{s.score:.4f}",
            ]
        )
    return write_text(path, buf.getvalue())


def format_timestamp(seconds: float, *, sep: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT, ``sep=","``) or ``HH:MM:SS.mmm`` (WebVTT, ``sep="."``)."""
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _caption(segment: Segment) -> str:
    return f"{segment.label} ({round(segment.score * 100)}%)"


def write_srt(path: str | Path, segments: Sequence[Segment]) -> Path:
    """Write SubRip subtitles showing ``label (87%)`` over each segment's time span, atomically."""
    blocks = [
        f"{i}\n{format_timestamp(s.start_s)} --> {format_timestamp(s.end_s)}\n{_caption(s)}\n"
        for i, s in enumerate(segments, start=1)
    ]
    return write_text(path, "\n".join(blocks))


def write_vtt(path: str | Path, segments: Sequence[Segment]) -> Path:
    """Write WebVTT subtitles showing ``label (87%)`` over each segment's time span, atomically."""
    blocks = [
        f"{format_timestamp(s.start_s, sep='.')} --> {format_timestamp(s.end_s, sep='.')}\n"
        f"{_caption(s)}\n"
        for s in segments
    ]
    return write_text(path, "\n".join(["WEBVTT\n", *blocks]))
