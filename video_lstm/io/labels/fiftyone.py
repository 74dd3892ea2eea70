"""FiftyOne temporal-detection dataset (``fo.types.FiftyOneTemporalDetectionDataset``).

``OUT/labels.json``: ``{"classes": [...], "labels": {uuid: [{"label", "support": [first,
last], "confidence"}]}}`` with ``support`` in FiftyOne's frame numbers (1-based, inclusive:
``[start_frame + 1, end_frame]``); ``OUT/data.json``: ``{"<uuid><ext>": "/abs/video"}``, the
media manifest FiftyOne's importer takes as ``data_path``, so the videos stay where they are::

    fo.Dataset.from_dir(dataset_dir=OUT, dataset_type=fo.types.FiftyOneTemporalDetectionDataset,
                        data_path="data.json")

The uuid is the video's relative name without its extension (``sub/b``). The model version is
not a field of the format (``OUT/info.json`` keeps it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from video_lstm.io.files import write_json
from video_lstm.io.labels.common import LabelItem, check_unique_names

__all__ = ["fiftyone_labels", "write_fiftyone"]


def _uuids(items: Sequence[LabelItem]) -> list[str]:
    out, seen = [], set()
    for item in items:
        uuid = str(Path(item.name).with_suffix("")).replace("\\", "/")
        base, k = uuid, 1
        while uuid in seen:  # a.mp4 and a.mkv
            k += 1
            uuid = f"{base}_{k}"
        seen.add(uuid)
        out.append(uuid)
    return out


def fiftyone_labels(
    items: Sequence[LabelItem], *, class_names: Sequence[str], background: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """``(labels.json, data.json)`` documents of ``items``."""
    check_unique_names(items)
    names = [c for c in class_names if c != background]
    labels: dict[str, Any] = {}
    data: dict[str, str] = {}
    for uuid, item in zip(_uuids(items), items, strict=True):
        segs = [s for s in item.segments if s.label != background and s.end_frame > s.start_frame]
        labels[uuid] = [
            {"label": s.label, "support": [s.start_frame + 1, s.end_frame],
             "confidence": round(float(s.score), 4)}
            for s in segs
        ]  # fmt: skip
        data[uuid + Path(item.name).suffix] = str(Path(item.path).resolve())
    return {"classes": names, "labels": labels}, data


def write_fiftyone(
    items: Sequence[LabelItem],
    out_dir: str | Path,
    *,
    class_names: Sequence[str],
    background: str | None = None,
) -> list[Path]:
    """Write ``labels.json``, ``data.json`` and ``info.json`` to ``out_dir`` (atomically)."""
    labels, data = fiftyone_labels(items, class_names=class_names, background=background)
    out = Path(out_dir)
    versions = sorted({item.model_version for item in items if item.model_version})
    return [
        write_json(out / "labels.json", labels),
        write_json(out / "data.json", data),
        write_json(out / "info.json", {"model_version": versions, "classes": labels["classes"]}),
    ]
