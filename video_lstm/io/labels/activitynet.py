"""ActivityNet v1.3 JSON (``OUT/activitynet.json``): the ground-truth layout our ``activitynet``
dataset kind and FiftyOne's ``ActivityNetDataset`` read, plus the detection-results layout of
the challenge.

``database``: ``{id: {"subset", "duration", "resolution", "url", "annotations": [{"segment":
[start_s, end_s], "label", "score"}]}}`` (``score`` is ours; ground-truth readers ignore it);
``taxonomy``: one node per class; ``results``: ``{id: [{"label", "score", "segment"}]}`` (the
challenge's prediction file); ``model_version`` alongside. Times are seconds: frame indices and
the frame rate are not stored (``duration`` and the video give them back).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from video_lstm.io.files import write_json
from video_lstm.io.labels.common import LabelItem, check_unique_names

__all__ = ["activitynet", "write_activitynet"]


def activitynet(
    items: Sequence[LabelItem],
    *,
    class_names: Sequence[str],
    background: str | None = None,
    subset: str = "validation",
) -> dict[str, Any]:
    """The ActivityNet v1.3 document of ``items`` (ids are the videos' relative names).

    Args:
        items: The videos and their segments.
        class_names: Action classes (no background).
        background: A label that means "no action" (not exported).
        subset: The ``subset`` of every video (``training``, ``validation``, ``testing``).

    Returns:
        The JSON document.
    """
    check_unique_names(items)
    database: dict[str, Any] = {}
    results: dict[str, Any] = {}
    for item in items:
        segs = [s for s in item.segments if s.label != background and s.end_frame > s.start_frame]
        anns = [{"segment": [round(s.start_s, 3), round(s.end_s, 3)], "label": s.label,
                 "score": round(float(s.score), 4)} for s in segs]  # fmt: skip
        database[item.name] = {
            "subset": subset,
            "duration": round(item.duration, 3),
            "resolution": f"{item.width}x{item.height}",
            "url": item.url,
            "annotations": anns,
        }
        results[item.name] = [
            {"label": a["label"], "score": a["score"], "segment": a["segment"]} for a in anns
        ]
    names = [c for c in class_names if c != background]
    taxonomy = [{"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}]
    taxonomy += [{"nodeId": i + 1, "nodeName": c, "parentId": 0, "parentName": "Root"}
                 for i, c in enumerate(names)]  # fmt: skip
    versions = sorted({item.model_version for item in items if item.model_version})
    return {
        "version": "VERSION 1.3",
        "taxonomy": taxonomy,
        "database": database,
        "results": results,
        "external_data": {"used": False, "details": "video_lstm predictions"},
        "model_version": versions[0] if len(versions) == 1 else versions,
    }


def write_activitynet(
    items: Sequence[LabelItem],
    out_dir: str | Path,
    *,
    class_names: Sequence[str],
    background: str | None = None,
    subset: str = "validation",
) -> list[Path]:
    """Write ``OUT/activitynet.json`` (atomically); see :func:`activitynet`."""
    doc = activitynet(items, class_names=class_names, background=background, subset=subset)
    return [write_json(Path(out_dir) / "activitynet.json", doc)]
