"""Labelling-tool formats: model segments out (pre-annotations to correct), corrected labels in.

One module per format, each a writer of :class:`~video_lstm.io.labels.common.LabelItem` lists
and, where the tool exports something to train on, a reader:

=============  ==========================================  =====================================
format         written (``video-lstm export-labels``)      read back (dataset kind)
=============  ==========================================  =====================================
label-studio   ``tasks.json`` + ``labeling_config.xml``    a project's JSON export
               (TimelineLabels predictions, frames)        (``--data.kind label-studio``)
cvat           ``<video>.xml`` per video (CVAT for video   the task's ``annotations.xml``
               1.1: a full-frame box track per segment)    (``--data.kind cvat-video``)
activitynet    ``activitynet.json`` (v1.3 database and     ``--data.kind activitynet``
               results, seconds)
fiftyone       ``labels.json`` + ``data.json``             ``--data.kind fiftyone``
               (FiftyOneTemporalDetectionDataset)
=============  ==========================================  =====================================

What each carries: Label Studio keeps the score per segment and per task and the model version
(``model_version`` of the prediction); corrections come back without scores, and
``VideoRectangle`` box tracks drawn there are read as the frames their box is shown on (the
geometry dropped). CVAT keeps the
score as a box attribute, not the model version (it has no field for one) and the box is the
whole frame (our segments have no boxes; box tracks drawn in CVAT are read as the span they are
visible in, their geometry dropped). ActivityNet keeps scores and (beside the format) the model
version, in seconds only. FiftyOne keeps scores as ``confidence``, frames exactly; the model
version goes to ``info.json``.

:data:`FORMATS` maps a format name to its writer; every writer is atomic per file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from video_lstm.io.labels.activitynet import write_activitynet
from video_lstm.io.labels.common import LabelItem, ToolSpan, ToolVideo, VideoFinder, video_url
from video_lstm.io.labels.cvat import read_cvat_video, write_cvat_video
from video_lstm.io.labels.fiftyone import write_fiftyone
from video_lstm.io.labels.label_studio import labeling_config, read_label_studio, write_label_studio

LabelWriter = Callable[..., list[Path]]
"""``write(items, out_dir, *, class_names, background) -> files written``."""

FORMATS: dict[str, LabelWriter] = {
    "label-studio": write_label_studio,
    "cvat": write_cvat_video,
    "activitynet": write_activitynet,
    "fiftyone": write_fiftyone,
}

# Tools that count frames at one constant rate (their frames are not the file's on VFR video).
FRAME_COUNTING = {"label-studio": "Label Studio's TimelineLabels", "cvat": "CVAT",
                  "fiftyone": "FiftyOne"}  # fmt: skip


def write_labels(
    fmt: str,
    items: Sequence[LabelItem],
    out_dir: str | Path,
    *,
    class_names: Sequence[str],
    background: str | None = None,
) -> list[Path]:
    """Write ``items`` in format ``fmt`` (a key of :data:`FORMATS`) to ``out_dir``."""
    try:
        writer = FORMATS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown label format {fmt!r}; expected one of {sorted(FORMATS)}"
        ) from None
    return writer(items, out_dir, class_names=class_names, background=background)


__all__ = [
    "FORMATS",
    "FRAME_COUNTING",
    "LabelItem",
    "ToolSpan",
    "ToolVideo",
    "VideoFinder",
    "labeling_config",
    "read_cvat_video",
    "read_label_studio",
    "video_url",
    "write_labels",
]
