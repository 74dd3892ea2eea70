"""Output writers of one annotated video: a table of :class:`Writer`, read by every consumer.

A writer declares its name (what ``--outputs`` names), the files it produces and its write
function, and is added with :func:`register_writer`: from this module for the built-in ones,
from a plugin file for others (``video-lstm --plugin my_writer.py annotate ... --outputs
json,my_writer``; ``video_lstm.plugins``, ``docs/EXTENDING.md``). What reads the table:

- ``AnnotateSettings`` accepts the registered names in ``outputs``;
- ``inference.stages.write_outputs`` runs the requested writers in :func:`list_writers` order,
  JSON last: a JSON on disk means every other output of that video is complete;
- ``pipelines.jobs``: a video is complete when the files its requested writers declare exist
  (and every file its record lists); before a video is redone, the temporaries of every
  writer's files (and what a writer's ``clean`` names) are removed;
- the per-video record and the manifest list each video's files by writer, and the report
  links them (``video``: the player, ``clips``: the clip cards, the others: file links).

Each write function takes the :class:`~video_lstm.inference.result.AnnotationResult`, the
open full-resolution video, the output folder and the base name, writes its files atomically
(``video_lstm.io.files.atomic_path`` / ``write_text`` / ``write_json``) and returns their paths.
Built-in writers import their encoders when they run, so reading the table costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from video_lstm.io.files import write_json
from video_lstm.io.results import ResultDoc, write_segments_csv, write_srt, write_vtt

if TYPE_CHECKING:
    from video_lstm.inference.result import AnnotationResult
    from video_lstm.io.video import FrameSource

__all__ = [
    "DEFAULT_OUTPUTS",
    "JSON_ORDER",
    "WriteFn",
    "Writer",
    "frame_confidence",
    "get_writer",
    "list_writers",
    "register_writer",
    "writer_names",
]

WriteFn = Callable[["AnnotationResult", "FrameSource", Path, str], Sequence[Path]]

JSON_ORDER = 1000  # the result JSON runs last: its presence means the others are complete
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # no comma: --outputs json,csv splits on it


@dataclass(frozen=True)
class Writer:
    """One output format of an annotated video.

    Args:
        name: What ``--outputs`` calls it (letters, digits, ``_``, ``.``, ``-``).
        write: ``write(result, reader, out_dir, name) -> [paths written]``; writes atomically.
        files: The files it always writes: suffixes of the base name (``(".tsv",)`` ->
            ``out_dir/<name>.tsv``), or a function ``(out_dir, name) -> paths``. A complete
            video has them all; their leftover temporaries are removed before a video is redone.
            Empty for a writer whose files depend on the result (clips: one per segment).
        order: Writers run by increasing order (the built-ins: 10..50); must stay below
            :data:`JSON_ORDER` (the JSON runs last).
        clean: Optional ``(out_dir, name) -> None`` removing what an earlier attempt at this
            video left that ``files`` does not name (the clips writer's clips); called before
            the video is redone, while its runner holds the claim.
        description: One line for help texts.
    """

    name: str
    write: WriteFn
    files: Sequence[str] | Callable[[Path, str], Sequence[Path]] = ()
    order: int = 100
    clean: Callable[[Path, str], None] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"writer name {self.name!r}: use letters, digits, '_', '.', '-' (no comma)"
            )
        if not callable(self.write):
            raise TypeError(f"writer {self.name!r}: write must be callable, got {self.write!r}")
        if isinstance(self.files, str):
            object.__setattr__(self, "files", (self.files,))  # one suffix
        if not callable(self.files):
            files = tuple(self.files)
            if not all(isinstance(s, str) and s for s in files):
                raise ValueError(f"writer {self.name!r}: files must be non-empty suffixes")
            object.__setattr__(self, "files", files)
        if self.name != "json" and self.order >= JSON_ORDER:
            raise ValueError(
                f"writer {self.name!r}: order must be below {JSON_ORDER} (the JSON runs last)"
            )

    def paths(self, out_dir: str | Path, name: str) -> list[Path]:
        """The files this writer always writes for the video whose base name is ``name``."""
        out_dir = Path(out_dir)
        if callable(self.files):
            return [Path(p) for p in self.files(out_dir, name)]
        return [out_dir / f"{name}{suffix}" for suffix in self.files]


_WRITERS: dict[str, Writer] = {}


def register_writer(writer: Writer) -> Writer:
    """Add ``writer`` to the table (a plugin file calls this at import).

    Returns:
        ``writer``.

    Raises:
        ValueError: A writer of that name is already registered.
        TypeError: ``writer`` is not a :class:`Writer`.
    """
    if not isinstance(writer, Writer):
        raise TypeError(f"register_writer takes a Writer, got {type(writer).__name__}")
    if writer.name in _WRITERS:
        raise ValueError(
            f"writer {writer.name!r} is already registered ({_WRITERS[writer.name].write!r}); "
            "pick another name"
        )
    _WRITERS[writer.name] = writer
    return writer


def list_writers() -> list[Writer]:
    """Every registered writer (the plugins' too), in the order they run: JSON last."""
    from video_lstm.plugins import load_plugins

    load_plugins()  # a worker process learns the plugins' writers from the environment
    position = {name: k for k, name in enumerate(_WRITERS)}
    return sorted(_WRITERS.values(), key=lambda w: (w.order, position[w.name]))


def writer_names() -> list[str]:
    """The names ``--outputs`` accepts, in the order the writers run."""
    return [w.name for w in list_writers()]


def get_writer(name: str) -> Writer:
    """The writer called ``name``.

    Raises:
        ValueError: No writer has that name (the message lists the known ones).
    """
    for writer in list_writers():
        if writer.name == name:
            return writer
    raise ValueError(
        f"unknown output {name!r}; choose from {writer_names()} (a plugin's writer needs "
        "--plugin FILE.py or VIDEO_LSTM_PLUGINS)"
    )


# ------------------------------------------------------------------ the built-in writers


def _video(result: AnnotationResult, reader: FrameSource, out_dir: Path, name: str) -> list[Path]:
    """``<name>_annotated.mp4``: label, confidence and a timeline bar over the source frames."""
    from video_lstm.inference.segments import frame_labels_from_segments
    from video_lstm.io.video import write_annotated_video

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
    from video_lstm.io.clips import clip_path, cut_clip

    paths = []
    for seg in result.segments:
        path = clip_path(out_dir / "clips", seg.label, name, seg.start_frame, seg.end_frame)
        codec = result.settings["runtime"]["encoder"]
        paths.append(cut_clip(reader, seg.start_frame, seg.end_frame, path, codec=codec))
    return paths


def _clean_clips(out_dir: Path, name: str) -> None:
    """An earlier attempt's clips of this video (their segments may differ) and their
    temporaries; other videos' clips are never touched (matched by name and frames)."""
    # io.clips.clip_path names clips <name>_<start>-<end>.mp4; atomic_path's temporaries
    # are .<clip name>.<8 hex>.mp4.part
    clip = rf"{re.escape(name)}_\d{{6,}}-\d{{6,}}\.mp4"
    clip_or_temp = re.compile(rf"{clip}|\.{clip}\.[0-9a-f]{{8}}\.mp4\.part")
    clips = Path(out_dir) / "clips"
    if not clips.is_dir():
        return
    for label in os.scandir(clips):
        if not label.is_dir():
            continue
        for entry in os.scandir(label.path):
            if clip_or_temp.fullmatch(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


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
    """``<name>.json`` (``io.results.ResultDoc``, versioned): video metadata, model, resolved
    settings, segments, per-frame confidence, timings."""
    windows = None
    if result.settings.get("save_window_scores"):
        windows = {"spans": result.windows.spans, "probs": result.windows.probs}
    doc = ResultDoc(
        video=result.info,
        segments=list(result.segments),
        model=result.model,
        settings=result.settings,
        frame_confidence=frame_confidence(result),
        num_windows=len(result.windows.starts),
        timings_s=result.timings,
        windows=windows,
    )
    return [write_json(out_dir / f"{name}.json", doc.to_json())]


for _writer in (
    Writer("video", _video, ("_annotated.mp4",), 10, description="annotated H.264 video"),
    Writer("clips", _clips, (), 20, _clean_clips, "one frame-exact clip per segment"),
    Writer("csv", _csv, (".csv",), 30, description="segments as CSV"),
    Writer("srt", _srt, (".srt",), 40, description="segments as SRT subtitles"),
    Writer("vtt", _vtt, (".vtt",), 50, description="segments as WebVTT subtitles"),
    Writer("json", _json, (".json",), JSON_ORDER, description="the result JSON (last)"),
):
    register_writer(_writer)

DEFAULT_OUTPUTS = ("json", "csv", "srt", "vtt", "video", "clips")  # plugins' writers: opt-in
