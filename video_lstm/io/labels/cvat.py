"""CVAT for video 1.1 XML: one task per video, one track per segment.

Export (``OUT/<video name>.xml``, one file per video, as CVAT imports one per task): the meta
block of the format (task size, ``mode`` interpolation, ``start_frame``/``stop_frame``, the
labels with a ``score`` text attribute, ``original_size``; the task's ``name`` is the video's path
relative to the run's input folder)
and per segment a ``<track>`` with ``source="auto"``: a keyframe box covering the whole frame at
``start_frame`` and, when the segment ends before the video does, an ``outside`` keyframe at
``end_frame``. The model's score is the box's ``score`` attribute. Our segments have no boxes:
the full-frame box is what makes a temporal span a CVAT track.

Import (:func:`read_cvat_video`): a task's ``annotations.xml`` (or a folder of them). A track is
labelled from each shape that is not ``outside`` up to the next shape that is, or to the task's
last frame; tracks of any shape type count (a person's box track labels the span they are
visible in). ``<tag frame=...>`` elements (frame tags of other exporters) label single frames.
Frames are the file's own, 0-based; the video's fps converts them to seconds. A project export
(tracks with ``task_id``) is split by task.
"""

from __future__ import annotations

import datetime as _dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from video_lstm.io.files import write_text
from video_lstm.io.labels.common import LabelItem, ToolVideo, check_unique_names

__all__ = ["cvat_xml", "read_cvat_video", "write_cvat_video"]

_SHAPES = ("box", "polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton")


def _sub(parent: ET.Element, tag: str, text: object = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = str(text)
    return el


def cvat_xml(
    item: LabelItem,
    *,
    class_names: Sequence[str],
    background: str | None = None,
    task_id: int = 0,
) -> str:
    """The CVAT for video 1.1 XML of one video.

    Args:
        item: The video and its segments.
        class_names: Labels of the task (no background).
        background: A label that means "no action" (not exported).
        task_id: The task's ``<id>``.

    Returns:
        The XML text.
    """
    now = _dt.datetime.now(_dt.timezone.utc).isoformat()
    root = ET.Element("annotations")
    _sub(root, "version", "1.1")
    meta = _sub(root, "meta")
    task = _sub(meta, "task")
    n = max(int(item.num_frames), 1)
    for tag, text in (("id", task_id), ("name", item.name), ("size", n), ("mode", "interpolation"),
                      ("overlap", 0), ("bugtracker", ""), ("flipped", "False"),
                      ("created", now), ("updated", now), ("start_frame", 0),
                      ("stop_frame", n - 1), ("frame_filter", "")):  # fmt: skip
        _sub(task, tag, text)
    labels = _sub(task, "labels")
    for name in class_names:
        if name == background:
            continue
        label = _sub(labels, "label")
        _sub(label, "name", name)
        _sub(label, "type", "any")
        attrs = _sub(_sub(label, "attributes"), "attribute")
        for tag, text in (("name", "score"), ("mutable", "False"), ("input_type", "text"),
                          ("default_value", ""), ("values", "")):  # fmt: skip
            _sub(attrs, tag, text)
    size = _sub(task, "original_size")
    _sub(size, "width", item.width)
    _sub(size, "height", item.height)
    _sub(meta, "dumped", now)
    box = {"occluded": "0", "xtl": "0.00", "ytl": "0.00", "xbr": f"{float(item.width):.2f}",
           "ybr": f"{float(item.height):.2f}", "z_order": "0"}  # fmt: skip
    segs = [s for s in item.segments if s.label != background and s.end_frame > s.start_frame]
    for i, seg in enumerate(segs):
        track = _sub(root, "track", id=str(i), label=seg.label, source="auto")
        start = _sub(track, "box", frame=str(seg.start_frame), keyframe="1", outside="0", **box)
        _sub(start, "attribute", f"{float(seg.score):.4f}", name="score")
        if seg.end_frame < n:
            end = _sub(track, "box", frame=str(seg.end_frame), keyframe="1", outside="1", **box)
            _sub(end, "attribute", f"{float(seg.score):.4f}", name="score")
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_cvat_video(
    items: Sequence[LabelItem],
    out_dir: str | Path,
    *,
    class_names: Sequence[str],
    background: str | None = None,
) -> list[Path]:
    """Write ``OUT/<video name>.xml`` for every item (atomically).

    Args:
        items: The videos and their segments.
        out_dir: Output folder (``sub/b.mp4`` -> ``OUT/sub/b.mp4.xml``).
        class_names: Labels of every task (no background).
        background: A label that means "no action" (not exported).

    Returns:
        The files written.
    """
    check_unique_names(items)
    out = Path(out_dir)
    return [
        write_text(out / f"{item.name}.xml",
                   cvat_xml(item, class_names=class_names, background=background, task_id=i))
        for i, item in enumerate(items)
    ]  # fmt: skip


def _int(el: ET.Element, key: str, source: str) -> int:
    try:
        return int(float(el.attrib[key]))
    except (KeyError, ValueError):
        raise ValueError(f"{source}: <{el.tag}> needs a numeric {key!r}") from None


def _task_info(task: ET.Element | None) -> tuple[str, int | None]:
    """A task's video name (``source`` where an exporter writes one, else the task ``name``,
    which is what CVAT names a task after its video by default) and its last frame + 1."""
    if task is None:
        return "", None
    name = (task.findtext("source") or task.findtext("name") or "").strip()
    stop = task.findtext("stop_frame") or ""
    size = task.findtext("size") or ""
    end = int(stop) + 1 if stop.strip().isdigit() else int(size) if size.strip().isdigit() else None
    return name, end


def read_cvat_video(path: str | Path) -> list[ToolVideo]:
    """Read a CVAT for video 1.1 XML (a task export; a project export is split by task).

    Args:
        path: The XML.

    Returns:
        One :class:`ToolVideo` per task, ``frames`` 0-based ``[start, end)`` in the file's frames
        (``fps`` is ``None``: CVAT's frames are the video's own).

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: Not a CVAT XML, or a malformed track (file and element named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CVAT XML not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not XML ({exc})") from None
    if root.tag != "annotations" or root.find("meta") is None:
        raise ValueError(f"{path}: not a CVAT XML (no <annotations><meta>)")
    version = (root.findtext("version") or "").strip()
    if version and version.split(".")[0] != "1":
        raise ValueError(f"{path}: CVAT XML version {version}; this reader knows 1.x")
    if root.find("image") is not None and root.find("track") is None:
        raise ValueError(
            f"{path}: a 'CVAT for images' export (<image> elements); export the task as "
            "'CVAT for video 1.1'"
        )
    meta = root.find("meta")
    tasks: dict[str, tuple[str, int | None]] = {}
    single = meta.find("task")
    if single is not None:
        name, end = _task_info(single)
        tasks[""] = ((meta.findtext("source") or "").strip() or name, end)
    for t in meta.findall("project/tasks/task"):
        tasks[(t.findtext("id") or "").strip()] = _task_info(t)
    videos: dict[str, ToolVideo] = {}

    def video_of(task_id: str) -> ToolVideo:
        if task_id not in videos:
            name, _ = tasks.get(task_id, tasks.get("", ("", None)))
            where = f"{path}" + (f": task {task_id}" if task_id else "")
            videos[task_id] = ToolVideo(ref=name or path.name.removesuffix(".xml"), source=where,
                                        hint=path.name.removesuffix(".xml"))  # fmt: skip
        return videos[task_id]

    for n, track in enumerate(root.findall("track")):
        source = f"{path}: track {track.get('id', n)}"
        label = (track.get("label") or "").strip()
        if not label:
            raise ValueError(f"{source}: no label")
        task_id = track.get("task_id", "") if track.get("task_id", "") in tasks else ""
        end_of_task = tasks.get(task_id, ("", None))[1]
        shapes = sorted(
            ((_int(s, "frame", source), s.get("outside", "0") == "1")
             for s in track if s.tag in _SHAPES),
        )  # fmt: skip
        video = video_of(task_id)
        start = None
        for frame, outside in shapes:
            if outside and start is not None:
                video.frames.append((start, frame, label))
                start = None
            elif not outside and start is None:
                start = frame
        if start is not None:
            last = shapes[-1][0] + 1
            video.frames.append((start, max(end_of_task or last, last), label))
    for n, tag in enumerate(root.findall("tag")):
        source = f"{path}: tag {n}"
        frame = _int(tag, "frame", source)
        label = (tag.get("label") or "").strip()
        if label:
            task_id = tag.get("task_id", "") if tag.get("task_id", "") in tasks else ""
            video_of(task_id).frames.append((frame, frame + 1, label))
    if not videos:  # a task with nothing labelled: all background
        video_of("" if "" in tasks else next(iter(tasks), ""))
    return list(videos.values())
