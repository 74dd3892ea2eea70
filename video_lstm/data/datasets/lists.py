"""Lists and CSVs of clips: Kinetics-style CSV mapped to local files (kind ``kinetics``) and plain
``path label`` lists or ``path,label`` CSVs (kind ``list``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from video_lstm.data.datasets.base import Manifest, check_missing, finish_manifest, text_lines
from video_lstm.data.datasets.kinds import register_dataset_kind

KINETICS_PATTERN = "{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"


def from_kinetics(
    root: str | Path,
    *,
    annotations: str | Path,
    subset: str | None = None,
    pattern: str = KINETICS_PATTERN,
    class_names: Sequence[str] | None = None,
    missing: str = "skip",
    allow_empty_classes: bool = False,
) -> Manifest:
    """Kinetics-style CSV (``label,youtube_id,time_start,time_end,split``) mapped to local files.

    Args:
        root: Folder the ``pattern`` is relative to.
        annotations: The CSV (extra columns such as ``is_cc`` are ignored).
        subset: Keep rows whose ``split`` column equals this (``"train"``, ``"val"``, ...);
            ``None`` keeps all rows.
        pattern: ``str.format`` pattern of a video's path; fields ``label``, ``label_``
            (spaces -> underscores), ``youtube_id``, ``time_start``, ``time_end`` (ints),
            ``split``. The default is how the standard downloader names the files.
        class_names: Classes in label order; default: the CSV's labels, sorted (the usual order).
            With a list given, a label outside it is an error.
        missing: ``"skip"``, ``"error"`` or ``"ignore"``. Kinetics always has missing videos.
        allow_empty_classes: Keep classes with no video instead of raising.

    Returns:
        The manifest, in CSV order.
    """
    root, annotations = Path(root), Path(annotations)
    check_missing(missing)
    if not annotations.is_file():
        raise FileNotFoundError(f"{annotations}: annotation CSV not found")
    rows = []
    with open(annotations, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        need = {"label", "youtube_id", "time_start", "time_end"}
        have = {c.strip() for c in reader.fieldnames or []}
        if not need <= have:
            raise ValueError(
                f"{annotations}: CSV needs columns {sorted(need)}, has {sorted(have)}"
                + (
                    " (a test CSV without labels cannot make a manifest)"
                    if "label" not in have
                    else ""
                )
            )
        for n, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if subset is not None and row.get("split", "") != subset:
                continue
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except ValueError:
                raise ValueError(
                    f"{annotations}:{n}: bad time_start/time_end {row['time_start']!r}, "
                    f"{row['time_end']!r}"
                ) from None
            if not row["label"] or not row["youtube_id"]:
                raise ValueError(f"{annotations}:{n}: empty label or youtube_id")
            rows.append((n, row, start, end))
    if class_names is None:
        class_names = sorted({r["label"] for _, r, _, _ in rows})
        if not class_names:
            raise ValueError(
                f"{annotations}: no rows" + (f" with split={subset!r}" if subset else "")
            )
    class_names = list(class_names)
    index = {c: i for i, c in enumerate(class_names)}
    samples = []
    for n, row, start, end in rows:
        if row["label"] not in index:
            raise ValueError(f"{annotations}:{n}: unknown label {row['label']!r}")
        try:
            rel = pattern.format(
                label=row["label"],
                label_=row["label"].replace(" ", "_"),
                youtube_id=row["youtube_id"],
                time_start=start,
                time_end=end,
                split=row.get("split", ""),
            )
        except (KeyError, IndexError) as e:
            raise ValueError(f"pattern {pattern!r} uses an unknown field {e}") from None
        samples.append((root / rel, index[row["label"]]))
    return finish_manifest(
        samples,
        class_names,
        source=annotations,
        missing=missing,
        allow_empty_classes=allow_empty_classes,
    )


def from_list(
    path: str | Path,
    *,
    root: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    missing: str = "skip",
    allow_empty_classes: bool = False,
) -> Manifest:
    """A plain list: ``path label`` per line, or a CSV with a ``path,label`` header.

    Labels are class names, or 0-based indices when every label is an integer (then
    ``class_names`` names them, or they are named ``"0"``, ``"1"``, ...). Paths may contain
    spaces in the plain form (the label is the last field).

    Args:
        path: The list file (``.csv`` or a first line ``path,label`` selects CSV).
        root: Folder relative paths are relative to; default: the list file's folder.
        class_names: Classes in label order; default: sorted label names (or the indices).
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.
        allow_empty_classes: Keep classes with no video instead of raising.

    Returns:
        The manifest, in file order.
    """
    path = Path(path)
    check_missing(missing)
    base = Path(root) if root is not None else path.parent
    if not path.is_file():
        raise FileNotFoundError(f"{path}: list file not found")
    entries: list[tuple[int, str, str]] = []  # (line, path, label)
    with open(path, encoding="utf-8-sig", newline="") as f:
        first = f.readline()
        f.seek(0)
        header = {c.strip().lower() for c in first.split(",")}
        if path.suffix.lower() == ".csv" or {"path", "label"} <= header:
            reader = csv.DictReader(f)
            cols = {c.strip().lower(): c for c in reader.fieldnames or []}
            if "path" not in cols or "label" not in cols:
                raise ValueError(f"{path}: CSV needs a 'path,label' header, got {first.strip()!r}")
            for n, row in enumerate(reader, start=2):
                p, y = (row[cols["path"]] or "").strip(), (row[cols["label"]] or "").strip()
                if not p or not y:
                    raise ValueError(f"{path}:{n}: empty path or label")
                entries.append((n, p, y))
        else:
            for n, text in text_lines(path):
                parts = text.rsplit(maxsplit=1)
                if len(parts) != 2:
                    raise ValueError(f"{path}:{n}: expected 'path label', got {text!r}")
                entries.append((n, parts[0], parts[1]))
    if not entries:
        raise ValueError(f"{path}: no entries")

    # All-integer labels are indices; anything else is a class name.
    numeric = all(y.isdigit() for _, _, y in entries)
    if class_names is not None:
        class_names = list(class_names)
    elif numeric:
        class_names = [str(i) for i in range(max(int(y) for _, _, y in entries) + 1)]
    else:
        class_names = sorted({y for _, _, y in entries})
    index = {c: i for i, c in enumerate(class_names)}
    samples = []
    for n, p, y in entries:
        if numeric:
            label = int(y)
            if label >= len(class_names):
                raise ValueError(
                    f"{path}:{n}: label {label} >= number of classes {len(class_names)}"
                )
        elif y in index:
            label = index[y]
        else:
            raise ValueError(f"{path}:{n}: unknown label {y!r}")
        samples.append((base / p, label))
    return finish_manifest(
        samples,
        class_names,
        source=path,
        missing=missing,
        allow_empty_classes=allow_empty_classes,
    )


register_dataset_kind("kinetics", from_kinetics, temporal=False, path_options=("annotations",))
register_dataset_kind("list", from_list, temporal=False)
