"""Label Studio: tasks with the model's segments as predictions, the labelling config, and the
reader of a project's JSON export.

Export (``OUT/``):

- ``tasks.json``: one task per video, ``data`` = ``{"video": URL, "fps": F, "name": REL,
  "num_frames": N}``; one prediction per task with ``model_version`` and a ``score`` (the mean
  of its segments'), each segment a ``timelinelabels`` result ``{"ranges": [{"start": s + 1,
  "end": e}], "timelinelabels": [label]}`` (Label Studio's frames count from 1 and include the
  last one) with its own ``score``;
- ``labeling_config.xml``: ``<Video value="$video" frameRate="$fps">`` and a
  ``<TimelineLabels>`` with one ``<Label>`` per action class (background is not labelled: it is
  wherever no label is).

Import (:func:`read_label_studio`): a project's "JSON" export (a list of tasks). Each task's
annotation is the ground-truth-flagged one, else the most recently updated one that was not
cancelled; a task with no annotation is not labelled yet and is skipped (counted). Results of
type ``timelinelabels`` give frame ranges (at the task's ``fps``, else the rate the caller
gives); ``videorectangle`` box tracks (``<VideoRectangle>`` + ``<Labels>``) give the frames
their box is shown on (the box itself is dropped); ``labels`` results with ``start``/``end``
(the Audio/Video timeline templates) give seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from video_lstm.io.files import write_json, write_text
from video_lstm.io.labels.common import LabelItem, ToolSpan, ToolVideo, check_unique_names

__all__ = [
    "CONTROL_NAME",
    "VIDEO_NAME",
    "labeling_config",
    "read_label_studio",
    "tasks",
    "write_label_studio",
]

VIDEO_NAME = "video"
"""The ``<Video name=...>`` of our labelling config (results point ``to_name`` at it)."""
CONTROL_NAME = "action"
"""The ``<TimelineLabels name=...>`` of our labelling config (results come ``from_name`` it)."""

# Label colours (a colour-blind-safe palette, cycled).
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def labeling_config(class_names: Sequence[str]) -> str:
    """The project's labelling config: the video at the task's own frame rate, one timeline
    label per action class.

    Args:
        class_names: Action classes (no background).

    Returns:
        The XML text.
    """
    labels = "\n".join(
        f"    <Label value={quoteattr(c)} background={quoteattr(_COLOURS[i % len(_COLOURS)])}/>"
        for i, c in enumerate(class_names)
    )
    return (
        "<View>\n"
        '  <Header value="$name"/>\n'
        f'  <Video name="{VIDEO_NAME}" value="$video" frameRate="$fps" timelineHeight="120"/>\n'
        f'  <TimelineLabels name="{CONTROL_NAME}" toName="{VIDEO_NAME}">\n'
        f"{labels}\n"
        "  </TimelineLabels>\n"
        "</View>\n"
    )


def _result(i: int, start_frame: int, end_frame: int, label: str) -> dict[str, Any]:
    return {
        "id": f"seg{i}",
        "from_name": CONTROL_NAME,
        "to_name": VIDEO_NAME,
        "type": "timelinelabels",
        "value": {
            "ranges": [{"start": start_frame + 1, "end": end_frame}],
            "timelinelabels": [label],
        },
    }


def tasks(items: Sequence[LabelItem], *, background: str | None = None) -> list[dict[str, Any]]:
    """Label Studio tasks (``data`` + one prediction each) for ``items``.

    Args:
        items: The videos and their segments.
        background: A label that means "no action" (not exported).

    Returns:
        The task list, as ``tasks.json`` holds it.
    """
    out = []
    for item in items:
        segs = [s for s in item.segments if s.label != background and s.end_frame > s.start_frame]
        result = [
            {**_result(i, s.start_frame, s.end_frame, s.label), "score": round(float(s.score), 4)}
            for i, s in enumerate(segs)
        ]
        score = sum(float(s.score) for s in segs) / len(segs) if segs else 0.0
        out.append(
            {
                "data": {
                    "video": item.url,
                    "fps": item.fps,
                    "name": item.name,
                    "num_frames": item.num_frames,
                },
                "predictions": [
                    {
                        "model_version": item.model_version,
                        "score": round(score, 4),
                        "result": result,
                    }
                ],
            }
        )
    return out


def write_label_studio(
    items: Sequence[LabelItem],
    out_dir: str | Path,
    *,
    class_names: Sequence[str],
    background: str | None = None,
) -> list[Path]:
    """Write ``tasks.json`` and ``labeling_config.xml`` to ``out_dir`` (atomically).

    Args:
        items: The videos and their segments.
        out_dir: Output folder.
        class_names: Action classes of the labelling config (no background).
        background: A label that means "no action" (not exported).

    Returns:
        The files written.
    """
    check_unique_names(items)
    out = Path(out_dir)
    names = [c for c in class_names if c != background]
    return [
        write_json(out / "tasks.json", tasks(items, background=background)),
        write_text(out / "labeling_config.xml", labeling_config(names)),
    ]


def _annotation(task: dict[str, Any]) -> dict[str, Any] | None:
    """The task's annotation to train on: ground truth first, else the latest not cancelled."""
    done = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
    done = [a for a in done if not a.get("was_cancelled")]
    if not done:
        return None
    truth = [a for a in done if a.get("ground_truth")]
    pool = truth or done
    return max(pool, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""),
                                    int(a.get("id") or 0)))  # fmt: skip


def _video_ref(data: dict[str, Any], video_key: str | None) -> str:
    if video_key:
        return str(data.get(video_key) or "")
    if "video" in data:
        return str(data["video"])
    # A project whose config names the video field otherwise: the first value that looks like one.
    for value in data.values():
        if isinstance(value, str) and ("/" in value or "." in value):
            return value
    return ""


def _shown(value: dict[str, Any], source: str) -> list[tuple[int, int]]:
    """The 0-based ``[start, end)`` frames a ``videorectangle`` region is shown on: from an
    enabled keyframe through the next disabled one (inclusive), or to the video's end
    (``framesCount``) when it stays on."""
    try:
        keys = sorted((int(k["frame"]), bool(k.get("enabled", True)))
                      for k in value.get("sequence") or [])  # fmt: skip
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{source}: bad videorectangle sequence") from None
    spans, start = [], None
    for frame, enabled in keys:
        if start is None:
            start = frame
        if not enabled:
            spans.append((start - 1, frame))
            start = None
    if start is not None:
        end = int(value.get("framesCount") or keys[-1][0])
        spans.append((start - 1, max(end, keys[-1][0])))
    return spans


def read_label_studio(
    path: str | Path,
    *,
    video_key: str | None = None,
    control: str | None = None,
) -> tuple[list[ToolVideo], int]:
    """Read a Label Studio project's JSON export.

    Args:
        path: The export (a JSON list of tasks).
        video_key: The task data field holding the video (default ``video``, else the first
            path-like field).
        control: Read only results ``from_name`` this control (default: every timeline label).

    Returns:
        ``(videos, tasks without an annotation)``; a video's ``frames`` are Label Studio's
        ranges as 0-based ``[start, end)`` frames, its ``fps`` the task's ``fps`` field if any.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: Not a Label Studio JSON export, or a malformed result (file and task named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Label Studio export not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if isinstance(doc, dict) and "data" in doc:
        doc = [doc]
    if not isinstance(doc, list) or not all(isinstance(t, dict) and "data" in t for t in doc):
        raise ValueError(
            f"{path}: not a Label Studio JSON export (a list of tasks with 'data'); export the "
            "project as 'JSON', not 'JSON_MIN' or CSV"
        )
    videos: list[ToolVideo] = []
    unlabelled = 0
    for n, task in enumerate(doc):
        source = f"{path}: task {task.get('id', n)}"
        data = task.get("data") or {}
        annotation = _annotation(task)
        if annotation is None:
            unlabelled += 1
            continue
        fps = data.get("fps")
        try:
            fps = float(fps) if fps not in (None, "") else None
        except (TypeError, ValueError):
            raise ValueError(f"{source}: data.fps is not a number: {fps!r}") from None
        hint = data.get("name") if isinstance(data.get("name"), str) else None
        video = ToolVideo(ref=_video_ref(data, video_key), source=source, fps=fps, hint=hint)
        for r in annotation.get("result") or []:
            if not isinstance(r, dict) or (control and r.get("from_name") != control):
                continue
            value = r.get("value") or {}
            kind = r.get("type")
            labels = (
                value.get("timelinelabels") if kind == "timelinelabels" else value.get("labels")
            )
            if kind not in ("timelinelabels", "labels", "videorectangle") or not labels:
                continue
            if len(labels) != 1:
                raise ValueError(f"{source}: a region with several labels {labels}; one per region")
            label = str(labels[0])
            if kind == "timelinelabels":
                for rng in value.get("ranges") or []:
                    try:
                        first, last = int(rng["start"]), int(rng["end"])
                    except (KeyError, TypeError, ValueError):
                        raise ValueError(f"{source}: bad timeline range {rng!r}") from None
                    if first < 1 or last < first:
                        raise ValueError(
                            f"{source}: timeline range {rng} must have 1 <= start <= end"
                        )
                    video.frames.append((first - 1, last, label))  # 1-based inclusive -> [s, e)
            elif kind == "videorectangle":  # a box track: the frames it is shown on
                video.frames += [(a, b, label) for a, b in _shown(value, source)]
            elif "start" in value and "end" in value:
                try:
                    start, end = float(value["start"]), float(value["end"])
                except (TypeError, ValueError):
                    raise ValueError(f"{source}: bad region times {value!r}") from None
                if end > start >= 0:
                    video.spans.append(ToolSpan(start, end, label))
        videos.append(video)
    return videos, unlabelled
