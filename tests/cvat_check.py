"""Check CVAT for video XML files with tools independent of video_lstm (run by the Python of
``.venv-datumaro``, see the Makefile): validate each against ``tests/data/cvat_video_1.1.xsd``
(lxml) and read it with datumaro's CVAT importer.

    python tests/cvat_check.py SCHEMA.xsd FILE.xml...

Prints one JSON object: ``{file: {"valid": bool, "errors": [...], "labels": [...], "tracks":
{track_id: {"label", "keyframes": [[frame, outside, score], ...]}}}}``.
"""

import json
import sys
from pathlib import Path


def main(schema_path: str, files: list[str]) -> int:
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(schema_path))
    out = {}
    for file in files:
        valid = schema.validate(etree.parse(file))
        errors = [f"line {e.line}: {e.message}" for e in schema.error_log]
        dataset = Dataset.import_from(file, "cvat")
        labels = [c.name for c in dataset.categories()[AnnotationType.label]]
        tracks: dict[str, dict] = {}
        for item in dataset:
            for ann in item.annotations:
                track = tracks.setdefault(
                    str(ann.attributes["track_id"]), {"label": labels[ann.label], "keyframes": []}
                )
                track["keyframes"].append(
                    [
                        int(item.attributes["frame"]),
                        bool(ann.attributes.get("outside")),
                        float(ann.attributes.get("score", "nan")),
                    ]
                )
        for track in tracks.values():
            track["keyframes"].sort()
        out[str(Path(file))] = {
            "valid": valid,
            "errors": errors,
            "labels": labels,
            "tracks": tracks,
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
