"""``video-lstm export-labels``: a folder run's segments as pre-annotations for a labelling tool.

    video-lstm export-labels RUN_DIR OUT --format label-studio|cvat|activitynet|fiftyone
        [--url_prefix https://host/videos/] [--model_version v3]

The run's records (``manifest.json``, the reader the HTML report uses) give every annotated
video and its result JSON (read by ``io.results.load_result``); each video becomes one item
named by its path relative to the run's input folder. The tool reaches the video through Label
Studio's local-files path (``/data/local-files/?d=<path below LOCAL_FILES_DOCUMENT_ROOT>``, the
root by default the folder above the run's input folder: Label Studio refuses a local storage
at the root itself) or ``--url_prefix`` + ``<name>``. Videos that failed in the run are left
out (counted).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from video_lstm.io.labels import FORMATS, FRAME_COUNTING, LabelItem, video_url, write_labels
from video_lstm.io.labels.common import warn_vfr
from video_lstm.io.results import load_result

logger = logging.getLogger(__name__)

__all__ = ["ExportSummary", "export_labels", "run_items"]


@dataclass
class ExportSummary:
    """What :func:`export_labels` wrote."""

    format: str
    out: Path
    files: list[Path]
    videos: int
    segments: int
    skipped: dict[str, int] = field(default_factory=dict)
    variable_frame_rate: list[str] = field(default_factory=list)

    def format_line(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in self.skipped.items() if n)
        return (
            f"{self.format}: {self.videos} videos, {self.segments} segments -> {self.out} "
            f"({len(self.files)} files)" + (f"; skipped: {skipped}" if skipped else "")
        )


def _version(header: dict[str, Any], model: dict[str, Any]) -> str:
    checkpoint = Path(str(model.get("checkpoint") or header.get("checkpoint") or "model")).name
    settings = str(header.get("settings_hash") or "")[:8]
    return f"{checkpoint}@{settings}" if settings else checkpoint


def _below(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` (both made absolute), refused when it is not below it."""
    try:
        return path.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        raise ValueError(
            f"{path}: not below the document root {root} (LOCAL_FILES_DOCUMENT_ROOT must be "
            "a folder above the videos; set --document_root)"
        ) from None


def run_items(
    run_dir: str | Path,
    *,
    url_prefix: str | None = None,
    document_root: str | Path | None = None,
    model_version: str | None = None,
) -> tuple[list[LabelItem], list[str], dict[str, int]]:
    """The annotated videos of a folder run as :class:`LabelItem`.

    Args:
        run_dir: A ``video-lstm run`` output folder (with ``manifest.json``).
        url_prefix: Videos are served at ``url_prefix + <name>`` (default: Label Studio's
            local-files path).
        document_root: The folder Label Studio serves local files from; a local-files URL
            names the video's path below it (default: the folder above the run's input
            folder, since Label Studio refuses a storage at the document root itself).
        model_version: Recorded with the predictions (default: the checkpoint's file name and
            the run's settings hash, ``model.pt@1a2b3c4d``).

    Returns:
        ``(items, the model's class names, {reason: videos left out})``.

    Raises:
        FileNotFoundError: ``run_dir`` is not a folder run.
    """
    from pipelines.jobs import read_run, record_files

    root = Path(run_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: run folder not found")
    header, records = read_run(root)
    input_dir = Path(str(header.get("input_dir") or root))
    served = Path(document_root) if document_root else input_dir.parent
    items: list[LabelItem] = []
    classes: list[str] = []
    skipped = {"failed": 0, "without a result JSON": 0}
    for rel, record in records.items():
        if record.get("status") == "failed":
            skipped["failed"] += 1
            continue
        files = record_files(root, rel, record)  # writer -> its files
        result_file = next(
            (f for f in files.get("json", []) if not f.name.endswith(".done.json")), None
        )
        if result_file is None:
            skipped["without a result JSON"] += 1
            continue
        result = load_result(result_file)  # the one reader of result JSON (any version)
        for c in result.class_names:
            if c not in classes:
                classes.append(c)
        info = result.video
        items.append(
            LabelItem(
                path=Path(info.path) if info.path else input_dir / rel,
                name=rel,
                url=video_url(rel, url_prefix=url_prefix)
                if url_prefix
                else video_url(_below(served, input_dir / rel)),
                fps=info.fps,
                num_frames=info.num_frames,
                width=info.width,
                height=info.height,
                segments=tuple(result.segments),
                model_version=model_version or _version(header, result.model),
            )
        )
    if not items:
        raise ValueError(f"{root}: no annotated video with a result JSON in this run")
    background = (header.get("settings") or {}).get("segments", {}).get("background")
    return items, [c for c in classes if c != background], skipped


def export_labels(
    run_dir: str,
    out: str,
    *,
    format: str = "label-studio",
    url_prefix: str | None = None,
    document_root: str | None = None,
    model_version: str | None = None,
    background: str = "background",
) -> ExportSummary:
    """Export a folder run's segments for a labelling tool.

    ``label-studio``: ``OUT/tasks.json`` (import it into a project) and
    ``OUT/labeling_config.xml`` (the project's labelling interface). ``cvat``: one
    ``OUT/<video>.xml`` (CVAT for video 1.1) per video, to upload as a task's annotations.
    ``activitynet``: ``OUT/activitynet.json``. ``fiftyone``: ``OUT/labels.json`` and
    ``OUT/data.json`` for ``FiftyOneTemporalDetectionDataset``.

    Args:
        run_dir: A ``video-lstm run`` output folder.
        out: Output folder.
        format: ``label-studio``, ``cvat``, ``activitynet`` or ``fiftyone``.
        url_prefix: Where the tool loads the videos from: ``url_prefix + <path relative to the
            run's input folder>``. Default: Label Studio's ``/data/local-files/?d=<path below
            document_root>`` (start Label Studio with ``LOCAL_FILES_SERVING_ENABLED=true`` and
            ``LOCAL_FILES_DOCUMENT_ROOT`` = ``document_root``).
        document_root: Label Studio's ``LOCAL_FILES_DOCUMENT_ROOT`` (default: the folder
            above the run's input folder; Label Studio wants the videos in a folder below it).
        model_version: Recorded with the predictions (default: ``<checkpoint>@<settings hash>``).
        background: The no-action label (never exported as a segment).

    Returns:
        The :class:`ExportSummary` (files written, videos and segments, videos left out).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown --format {format!r}; expected one of {sorted(FORMATS)}")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: exists and is not a folder")
    items, classes, skipped = run_items(
        run_dir, url_prefix=url_prefix, document_root=document_root, model_version=model_version
    )
    vfr = warn_vfr(items, FRAME_COUNTING[format]) if format in FRAME_COUNTING else []
    files = write_labels(format, items, out_dir, class_names=classes, background=background)
    segments = sum(1 for i in items for s in i.segments if s.label != background)
    return ExportSummary(format, out_dir, files, len(items), segments, skipped, vfr)
