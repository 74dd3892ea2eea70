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
CVAT numbers a task's frames from 0; a task made from part of a video (``start_frame``) or every
Nth frame (``frame_filter`` ``step=N``) maps back to the file's frames, and the video's fps
converts them to seconds. A job's export (``<meta><job>``) reads like a task's; a project
export (tracks with ``task_id``) is split by task.
"""

from __future__ import annotations

import datetime as _dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Task:
    """What a task's meta says about its frames: CVAT numbers a task's frames 0, 1, ...; video
    frame = ``start + frame * step`` (a task made from a part of the video, or every Nth frame)."""

    name: str = ""
    size: int | None = None  # task frames
    start: int = 0
    step: int = 1

    def video_frame(self, frame: int) -> int:
        return self.start + frame * self.step


def _number(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def _task_info(task: ET.Element | None, source: str = "") -> _Task:
    """A task's (or a job's) video name (``source`` where an exporter writes one, else the task
    ``name``, which CVAT takes from the video by default) and frame numbering."""
    if task is None:
        return _Task(name=source)
    name = (task.findtext("source") or source or task.findtext("name") or "").strip()
    start = _number(task.findtext("start_frame")) or 0
    step = re.search(r"step\s*=\s*(\d+)", task.findtext("frame_filter") or "")
    step = max(1, int(step.group(1))) if step else 1
    size = _number(task.findtext("size"))
    stop = _number(task.findtext("stop_frame"))
    if size is None and stop is not None:
        size = (stop - start) // step + 1
    return _Task(name=name, size=size, start=start, step=step)


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
    tasks: dict[str, _Task] = {}
    single = meta.find("task")
    if single is None:
        single = meta.find("job")  # a job's export: the same fields under <job>
    if single is not None or meta.find("project") is None:
        tasks[""] = _task_info(single, (meta.findtext("source") or "").strip())
    for t in meta.findall("project/tasks/task"):
        tasks[(t.findtext("id") or "").strip()] = _task_info(t)
    videos: dict[str, ToolVideo] = {}

    def video_of(task_id: str) -> ToolVideo:
        if task_id not in videos:
            name = tasks.get(task_id, tasks.get("", _Task())).name
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
        task = tasks.get(task_id, _Task())
        shapes = sorted(
            ((_int(s, "frame", source), s.get("outside", "0") == "1")
             for s in track if s.tag in _SHAPES),
        )  # fmt: skip
        video = video_of(task_id)
        spans, start = [], None
        for frame, outside in shapes:
            if outside and start is not None:
                spans.append((start, frame))
                start = None
            elif not outside and start is None:
                start = frame
        if start is not None:  # never goes outside: to the end of the task
            last = shapes[-1][0] + 1
            spans.append((start, max(task.size or last, last)))
        video.frames += [(task.video_frame(a), task.video_frame(b), label) for a, b in spans]
    for n, tag in enumerate(root.findall("tag")):
        source = f"{path}: tag {n}"
        frame = _int(tag, "frame", source)
        label = (tag.get("label") or "").strip()
        if label:
            task_id = tag.get("task_id", "") if tag.get("task_id", "") in tasks else ""
            task = tasks.get(task_id, _Task())
            video_of(task_id).frames.append(
                (task.video_frame(frame), task.video_frame(frame + 1), label)
            )
    if not videos:  # a task with nothing labelled: all background
        video_of("" if "" in tasks else next(iter(tasks), ""))
    return list(videos.values())
