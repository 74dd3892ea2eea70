"""Result files: segments CSV, SRT and WebVTT subtitles, timestamps (each written atomically),
and the result JSON's versioned schema (:class:`ResultDoc`) with its one reader
:func:`load_result` (the report, ``evaluate`` and the ``results`` dataset kind use it).

Labels are free text (a model's class names): a CSV cell that starts like a formula (``=``,
``+``, ``-``, ``@``, tab, CR) is written with a leading ``'`` so spreadsheets show it as text,
and subtitle captions are one line (line breaks and control characters become spaces, ``-->``
cannot end a cue early, WebVTT's ``& < >`` are escaped).
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from video_lstm.io.files import write_text
from video_lstm.types import Segment, VideoInfo

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


# ------------------------------------------------------------------ the result JSON

RESULT_SCHEMA_VERSION = 1


class NotAResultError(ValueError):
    """A JSON file that is not a result JSON (``manifest.json``, a record next to the results)."""


@dataclass
class ResultDoc:
    """The result JSON of one annotated video (``<name>.json``, the ``json`` writer), versioned.

    Version 1 is the layout written since results carried no version (so those files load as
    version 1), plus ``schema_version``. An older layout (``video`` a path relative to the
    JSON's folder, ``fps``/``num_frames``/``classes`` at the top level) loads too. A file of
    a newer version is refused with a message saying so.

    Args:
        video: The source video (path as annotated, frames, fps, size, ...).
        segments: The detected actions.
        model: Checkpoint, ``class_names``, sampling and the model configuration.
        settings: The resolved ``AnnotateSettings`` (as plain values).
        frame_confidence: Per frame, the smoothed probability of the most likely action.
        num_windows: Windows scored.
        timings_s: Seconds per stage and writer.
        windows: Per-window ``spans`` and ``probs`` (``save_window_scores``), else ``None``.
        schema_version: :data:`RESULT_SCHEMA_VERSION`.
        file: The file it was read from (not written).
    """

    video: VideoInfo
    segments: list[Segment]
    model: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    frame_confidence: list[float | None] = field(default_factory=list)
    num_windows: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)
    windows: dict[str, Any] | None = None
    schema_version: int = RESULT_SCHEMA_VERSION
    file: Path | None = field(default=None, compare=False, repr=False)

    @property
    def class_names(self) -> list[str]:
        """The model's classes (``[]`` when the file does not say)."""
        return list(self.model.get("class_names") or [])

    def to_json(self) -> dict[str, Any]:
        """Plain values, as written to the file (``io.files.write_json`` converts arrays)."""
        doc: dict[str, Any] = {
            "schema_version": self.schema_version,
            "video": self.video.to_dict(),
            "model": self.model,
            "settings": self.settings,
            "segments": [s.to_dict() for s in self.segments],
            "frame_confidence": self.frame_confidence,
            "num_windows": self.num_windows,
            "timings_s": self.timings_s,
        }
        if self.windows is not None:
            doc["windows"] = self.windows
        return doc

    @classmethod
    def from_json(cls, doc: Any, *, file: str | Path | None = None) -> ResultDoc:
        """Read a parsed result JSON (any version this code knows).

        Args:
            doc: The parsed JSON.
            file: Where it came from: names it in errors; an older layout's video path is
                relative to its folder.

        Raises:
            NotAResultError: It has no ``video`` and ``segments`` (another JSON).
            ValueError: A newer schema version, or a field of the wrong type (the message
                names the file and the field).
        """
        where = str(file) if file is not None else "result JSON"
        # A run's records have a video and a segment count: not results either.
        if (
            not isinstance(doc, dict)
            or "video" not in doc
            or not isinstance(doc.get("segments"), list)
        ):
            raise NotAResultError(f"{where}: not a result JSON (no 'video' and 'segments' list)")
        version = doc.get("schema_version", 1)  # files of before the version field: 1
        if not isinstance(version, int) or version > RESULT_SCHEMA_VERSION:
            raise ValueError(
                f"{where}: result schema version {version!r} is newer than this video_lstm "
                f"reads ({RESULT_SCHEMA_VERSION}); upgrade video_lstm"
            )
        try:
            info = doc["video"]
            model = dict(doc.get("model") or {})
            if not isinstance(info, dict):  # the older layout: a relative path, fps at the top
                base = Path(file).parent if file is not None else Path()
                top = ("fps", "num_frames", "width", "height")
                info = {"path": str(base / str(info)), **{k: doc[k] for k in top if k in doc}}
                if doc.get("classes") and not model.get("class_names"):
                    model["class_names"] = list(doc["classes"])
            fps = float(info.get("fps") or 0.0)
            video = VideoInfo(
                path=str(info["path"]),
                backend=str(info.get("backend") or ""),
                num_frames=int(info.get("num_frames") or 0),
                fps=fps,
                width=int(info.get("width") or 0),
                height=int(info.get("height") or 0),
                rotation=int(info.get("rotation") or 0),
                frames_lost=int(info.get("frames_lost") or 0),
            )
            segments = [_segment(s, fps) for s in doc["segments"]]
            return cls(
                video=video,
                segments=segments,
                model=model,
                settings=dict(doc.get("settings") or {}),
                frame_confidence=list(doc.get("frame_confidence") or []),
                num_windows=int(doc.get("num_windows") or 0),
                timings_s=dict(doc.get("timings_s") or {}),
                windows=doc.get("windows"),
                schema_version=RESULT_SCHEMA_VERSION,
                file=Path(file) if file is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"{where}: bad result JSON ({detail})") from None


def _segment(s: dict[str, Any], fps: float) -> Segment:
    """A segment of any layout: frames from the seconds where a file has only those, score 1
    (a segment a person wrote or corrected)."""
    start_s, end_s = float(s["start_s"]), float(s["end_s"])
    return Segment(
        start_frame=int(s["start_frame"]) if "start_frame" in s else round(start_s * fps),
        end_frame=int(s["end_frame"]) if "end_frame" in s else round(end_s * fps),
        label=str(s["label"]),
        score=float(s.get("score", 1.0)),
        start_s=start_s,
        end_s=end_s,
    )


def load_result(path: str | Path) -> ResultDoc:
    """The one reader of result JSON files (the report, ``evaluate``, the ``results`` kind).

    Raises:
        FileNotFoundError: No such file.
        NotAResultError: A JSON that is not a result (``manifest.json``, ...).
        ValueError: Not JSON, a newer schema, or a malformed field (the message names the file).
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: result JSON not found") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable result JSON ({exc})") from None
    return ResultDoc.from_json(doc, file=path)


def find_results(root: str | Path, *, recursive: bool = False) -> list[ResultDoc]:
    """The result JSONs of a folder (sorted by path; other JSON files and hidden folders and
    files skipped), or one file.

    Args:
        root: A folder, or one result JSON.
        recursive: Search sub-folders too (``run`` mirrors the input tree).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: A JSON file that cannot be read, or ``root`` is a file that is no result.
    """
    root = Path(root)
    if root.is_file():
        return [load_result(root)]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: result JSON (or folder of them) not found")
    found = []
    for file in sorted(root.rglob("*.json") if recursive else root.glob("*.json")):
        if any(part.startswith(".") for part in file.relative_to(root).parts):
            continue  # a run's own state (.video_lstm/records) and temporaries
        try:
            found.append(load_result(file))
        except NotAResultError:
            continue  # manifest.json, records and other files next to the results
    return found
