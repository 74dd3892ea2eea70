"""Dataset kinds read from labelling tools' exports: ``label-studio``, ``cvat-video``,
``fiftyone`` (temporal: untrimmed videos with action segments, background elsewhere).

    --data.kind label-studio --data.root VIDEOS --data.manifest_args '{annotations: export.json}'
    --data.kind cvat-video   --data.root VIDEOS --data.manifest_args '{annotations: task.xml}'
    --data.kind fiftyone     --data.root VIDEOS --data.manifest_args '{annotations: labels.json}'

The same checks for each:

- **Which video.** ``root`` is the video folder (for Label Studio its
  ``LOCAL_FILES_DOCUMENT_ROOT``); a tool's reference is matched to a file under it
  (:class:`~video_lstm.io.labels.common.VideoFinder`: local-files path, ``url_prefix``, relative
  path, file name). Labelled videos that match no file are counted and reported once (a warning
  with examples), or refused with ``missing="error"``.
- **Frames and seconds.** Label Studio's frames are counted at the task's ``fps`` (what our
  export stores and the ``frameRate="$fps"`` of our labelling config uses), else at
  ``frame_rate``, else at the video's own rate; CVAT's and FiftyOne's frames are the file's own.
  Seconds are ``frame / rate``; training turns them back into frames with the video's own fps.
  Spans past the end of the video are cut at its end.
- **Variable frame rate.** Label Studio's TimelineLabels count frames at one constant rate, so
  on a VFR file they point at other frames: refused with a message saying how to re-encode,
  unless ``allow_vfr`` (then a warning).
- **Overlapping labels.** Same label: merged. Different labels: the span that starts later takes
  the overlap (a nested span cuts the outer one in two); counted and reported.
- **Classes.** ``class_names`` fixes the order; ``checkpoint`` (fine-tuning) puts that model's
  action classes first, in its order, and appends labels new to it, so the old classes keep
  their indices; default: the labels found, sorted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from video_lstm.data.datasets.base import (
    BACKGROUND,
    TemporalManifest,
    TemporalSegment,
    check_missing,
    finish_temporal,
    under_root,
)
from video_lstm.data.datasets.kinds import register_dataset_kind
from video_lstm.io.labels.common import (
    FrameRate,
    ToolSpan,
    ToolVideo,
    VideoFinder,
    frame_rate,
    resolve_overlaps,
    vfr_message,
)
from video_lstm.io.labels.cvat import read_cvat_video
from video_lstm.io.labels.label_studio import read_label_studio

logger = logging.getLogger(__name__)

__all__ = ["checkpoint_classes", "from_cvat_video", "from_fiftyone", "from_label_studio"]

_META_KEY = "video_lstm"  # models.checkpoint.META_KEY (data does not import models)


def checkpoint_classes(path: str | Path) -> list[str]:
    """The action classes (no background) a checkpoint was trained on, read from its metadata
    alone (tensors and plain values; nothing in the file is run)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        names = ckpt[_META_KEY]["class_names"]
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise ValueError(f"{path}: not a video_lstm checkpoint ({exc})") from None
    return [str(c) for c in names if c != BACKGROUND]


def _classes(
    labels: set[str], class_names: Sequence[str] | None, checkpoint: str | Path | None
) -> list[str] | None:
    if checkpoint is None:
        return list(class_names) if class_names is not None else None
    base = checkpoint_classes(checkpoint)
    if class_names is not None:
        base += [c for c in class_names if c not in base]
    new = sorted(set(labels) - set(base))
    if new:
        logger.info("labels new to %s appended after its classes: %s", checkpoint, new)
    return base + new


def _manifest(
    videos: list[ToolVideo],
    root: Path,
    source: Path,
    *,
    tool: str,
    tool_rate: float | None,
    counts_own_frames: bool,
    url_prefix: str | None,
    allow_vfr: bool,
    class_names: Sequence[str] | None,
    checkpoint: str | Path | None,
    missing: str,
    unlabelled: int = 0,
) -> TemporalManifest:
    """Tool videos -> files under ``root`` -> disjoint segments in seconds -> the manifest."""
    finder = VideoFinder(root, url_prefix=url_prefix)
    found: dict[Path, tuple[list[ToolSpan], float | None]] = {}
    unknown: list[str] = []
    repeated = 0
    rates: dict[Path, FrameRate] = {}
    for tv in videos:
        path = finder.find(tv.ref, tv.hint)
        if path is None:
            unknown.append(f"{tv.ref or '(no video)'} ({tv.source})")
            continue
        spans = list(tv.spans)
        if tv.frames or path not in rates:
            try:
                rates[path] = frame_rate(path)
            except ValueError as exc:
                if missing == "error":
                    raise
                logger.warning("%s: %s", tv.source, exc)
                unknown.append(f"{tv.ref} ({tv.source}: unreadable)")
                continue
        rate = rates[path]
        if tv.frames:
            if not counts_own_frames and not rate.constant:
                message = vfr_message(path, rate, tool)
                if not allow_vfr:
                    raise ValueError(message + " (or set allow_vfr: true to train on it anyway)")
                logger.warning("%s", message)
            fps = rate.fps if counts_own_frames else (tv.fps or tool_rate or rate.fps)
            if fps <= 0:
                raise ValueError(f"{tv.source}: no frame rate for {path}")
            spans += [ToolSpan(s / fps, e / fps, label) for s, e, label in tv.frames]
        duration = rate.num_frames / rate.fps if rate.fps > 0 and rate.num_frames else None
        if path in found:  # two tasks of one video: their labels together
            repeated += 1
            spans = found[path][0] + spans
        found[path] = (spans, duration)
    if unknown:
        msg = (
            f"{source}: {len(unknown)} of {len(videos)} labelled videos match no file under "
            f"{root} (e.g. {'; '.join(unknown[:3])})"
        )
        if missing == "error" or not found:
            raise FileNotFoundError(msg)
        logger.warning("%s; skipping them", msg)
    if unlabelled:
        logger.warning("%s: %d tasks have no annotation yet; skipping them", source, unlabelled)
    if repeated:
        logger.warning("%s: %d videos appear in more than one task; their labels are joined",
                       source, repeated)  # fmt: skip
    manifest_videos: dict[Path, tuple[list[TemporalSegment], float | None]] = {}
    overlaps = 0
    for path, (spans, duration) in found.items():
        end = duration if duration else float("inf")
        clipped = [ToolSpan(s.start_s, min(s.end_s, end), s.label) for s in spans
                   if s.label != BACKGROUND and s.start_s < end]  # fmt: skip
        disjoint, n = resolve_overlaps(s for s in clipped if s.end_s > s.start_s)
        overlaps += n
        segs = [TemporalSegment(round(s.start_s, 6), round(s.end_s, 6), s.label) for s in disjoint]
        manifest_videos[path] = (segs, duration)
    if overlaps:
        logger.warning("%s: %d overlaps between different labels; the later-starting label "
                       "takes each overlap", source, overlaps)  # fmt: skip
    labels = {g.label for segs, _ in manifest_videos.values() for g in segs}
    return finish_temporal(manifest_videos, _classes(labels, class_names, checkpoint),
                            source=source, missing=missing)  # fmt: skip


def from_label_studio(
    root: str | Path,
    *,
    annotations: str | Path,
    url_prefix: str | None = None,
    frame_rate: float | None = None,
    video_key: str | None = None,
    control: str | None = None,
    allow_vfr: bool = False,
    class_names: Sequence[str] | None = None,
    checkpoint: str | None = None,
    missing: str = "skip",
) -> TemporalManifest:
    """A Label Studio project's JSON export (TimelineLabels over a ``<Video>``).

    Args:
        root: Video folder (Label Studio's ``LOCAL_FILES_DOCUMENT_ROOT`` for local files).
        annotations: The export (relative paths are relative to ``root``).
        url_prefix: Videos served at ``url_prefix + <path under root>`` (as exported with
            ``export-labels --url_prefix``).
        frame_rate: The ``frameRate`` of the project's ``<Video>`` tag, for tasks without an
            ``fps`` field (Label Studio's default is 24); ``None``: the video's own rate.
        video_key: Task data field with the video (default ``video``).
        control: Only results of this ``<TimelineLabels name=...>``.
        allow_vfr: Train on variable-frame-rate videos anyway (a warning instead of an error).
        class_names: Action classes in label order.
        checkpoint: Fine-tuning: this checkpoint's classes first (see the module docstring).
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The temporal manifest.
    """
    root = Path(root)
    check_missing(missing)
    path = under_root(root, annotations)
    videos, unlabelled = read_label_studio(path, video_key=video_key, control=control)
    if not videos:
        raise ValueError(f"{path}: no annotated task ({unlabelled} without an annotation)")
    return _manifest(videos, root, path, tool="Label Studio's TimelineLabels",
                     tool_rate=frame_rate, counts_own_frames=False, url_prefix=url_prefix,
                     allow_vfr=allow_vfr, class_names=class_names, checkpoint=checkpoint,
                     missing=missing, unlabelled=unlabelled)  # fmt: skip


def from_cvat_video(
    root: str | Path,
    *,
    annotations: str | Path,
    class_names: Sequence[str] | None = None,
    checkpoint: str | None = None,
    missing: str = "skip",
) -> TemporalManifest:
    """CVAT for video 1.1 XML: one task's ``annotations.xml``, or a folder of them (``*.xml``,
    recursively, e.g. what ``export-labels --format cvat`` wrote and CVAT gave back).

    Args:
        root: Video folder; a task's video is its ``<source>`` (else its ``<name>``, else the
            XML's name without ``.xml``) found under it.
        annotations: The XML or folder (relative paths are relative to ``root``).
        class_names: Action classes in label order.
        checkpoint: Fine-tuning: this checkpoint's classes first (see the module docstring).
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The temporal manifest.
    """
    root = Path(root)
    check_missing(missing)
    path = under_root(root, annotations)
    if path.is_dir():
        files = sorted(path.rglob("*.xml"))
        if not files:
            raise FileNotFoundError(f"{path}: no CVAT XML (*.xml) in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"{path}: CVAT XML (or folder of them) not found")
    videos: list[ToolVideo] = []
    for f in files:
        read = read_cvat_video(f)
        if path.is_dir():  # our export: the XML's path below the folder is the video's
            rel = str(f.relative_to(path)).removesuffix(".xml")
            for v in read:
                v.hint = rel
        videos += read
    return _manifest(videos, root, path, tool="CVAT", tool_rate=None, counts_own_frames=True,
                     url_prefix=None, allow_vfr=True, class_names=class_names,
                     checkpoint=checkpoint, missing=missing)  # fmt: skip


def from_fiftyone(
    root: str | Path,
    *,
    annotations: str | Path = "labels.json",
    data: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    checkpoint: str | None = None,
    missing: str = "skip",
) -> TemporalManifest:
    """A FiftyOne ``FiftyOneTemporalDetectionDataset`` (``labels.json``: ``{"classes", "labels":
    {uuid: [{"label", "support": [first, last]}]}}``, 1-based inclusive frames, or
    ``"timestamps": [start_s, end_s]``).

    Args:
        root: Video folder; a sample's video is the ``data.json`` entry of its uuid, else
            ``root/<uuid>.<ext>``.
        annotations: ``labels.json`` (relative paths are relative to ``root``).
        data: The ``data.json`` media manifest (default: next to ``labels.json`` if there).
        class_names: Action classes in label order.
        checkpoint: Fine-tuning: this checkpoint's classes first (see the module docstring).
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The temporal manifest.
    """
    root = Path(root)
    check_missing(missing)
    path = under_root(root, annotations)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: FiftyOne labels.json not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        labels = doc["labels"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a FiftyOne temporal-detection labels.json ({exc})") from None
    classes = doc.get("classes") or []
    data_path = under_root(root, data) if data else path.with_name("data.json")
    media: dict[str, str] = {}
    if data_path.is_file():
        raw = json.loads(data_path.read_text(encoding="utf-8"))
        media = {str(Path(k).with_suffix("")): str(v) for k, v in raw.items()}
    videos: list[ToolVideo] = []
    for uuid, dets in labels.items():
        tv = ToolVideo(ref=media.get(uuid, uuid), source=f"{path}: {uuid}")
        for det in dets or []:
            label = det.get("label")
            if isinstance(label, int) and 0 <= label < len(classes):
                label = classes[label]
            if "support" in det:
                first, last = (int(x) for x in det["support"])
                tv.frames.append((first - 1, last, str(label)))
            elif "timestamps" in det:
                start, end = (float(x) for x in det["timestamps"])
                tv.spans.append(ToolSpan(start, end, str(label)))
        if uuid not in media:  # root/<uuid>.<ext>
            tv.ref = ""
            tv.hint = next((str(p.relative_to(root)) for p in sorted(root.glob(f"{uuid}.*"))), uuid)
        videos.append(tv)
    return _manifest(videos, root, path, tool="FiftyOne", tool_rate=None, counts_own_frames=True,
                     url_prefix=None, allow_vfr=True, class_names=class_names,
                     checkpoint=checkpoint, missing=missing)  # fmt: skip


register_dataset_kind(
    "label-studio", from_label_studio, temporal=True, path_options=("annotations",)
)
register_dataset_kind("cvat-video", from_cvat_video, temporal=True, path_options=("annotations",))
register_dataset_kind(
    "fiftyone", from_fiftyone, temporal=True, path_options=("annotations", "data")
)
