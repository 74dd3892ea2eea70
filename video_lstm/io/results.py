"""Result files: segments CSV, SRT and WebVTT subtitles, timestamps (each written atomically).

Labels are free text (a model's class names): a CSV cell that starts like a formula (``=``,
``+``, ``-``, ``@``, tab, CR) is written with a leading ``'`` so spreadsheets show it as text,
and subtitle captions are one line (line breaks and control characters become spaces, ``-->``
cannot end a cue early, WebVTT's ``& < >`` are escaped).
"""

from __future__ import annotations

import csv
import html
import io
import re
import unicodedata
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


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell safe to open in a spreadsheet: text that would start a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def one_line(text: str) -> str:
    """``text`` on one line: control and line-break characters become spaces, runs of
    whitespace one space, and ``-->`` (a subtitle timing arrow) becomes ``->``."""
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in str(text)
    )
    text = re.sub(r"\s+", " ", text).strip()
    while "-->" in text:
        text = text.replace("-->", "->")
    return text


def write_segments_csv(
    path: str | Path,
    segments: Sequence[Segment],
    *,
    extra_columns: Mapping[str, Any] | None = None,
) -> Path:
    """Write segments as CSV, one row per segment, atomically.

    Columns: ``[*extra_columns], label, start_frame, end_frame (exclusive), start_s, end_s,
    duration_s, score``; seconds with 3 decimals, score with 4. Text cells that a spreadsheet
    would read as a formula are prefixed with ``'`` (:func:`csv_cell`).

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
    writer.writerow([csv_cell(c) for c in [*extra, *SEGMENT_CSV_COLUMNS]])
    for s in segments:
        writer.writerow(
            [
                *(csv_cell(v) for v in extra.values()),
                csv_cell(s.label),
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
    return f"{one_line(segment.label)} ({round(segment.score * 100)}%)"


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
        f"{html.escape(_caption(s), quote=False)}\n"  # cue text is markup: & < > escaped
        for s in segments
    ]
    return write_text(path, "\n".join(["WEBVTT\n", *blocks]))
