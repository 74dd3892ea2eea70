"""Files written atomically (temp file + rename) and plain JSON/text results.

An interrupted run leaves no half-written file under a final name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    A crash or interrupt leaves no half-written file under the final name.

    Args:
        path: Final destination. Parent folders are created.

    Yields:
        A temporary path in the same folder (same suffix, so container formats are inferred).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f"{path.suffix}.part", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _jsonable(obj: Any) -> Any:
    """Plain JSON values from numpy scalars/arrays, paths, dataclasses; NaN/inf become null."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot write {type(obj).__name__} to JSON: {obj!r:.80}")


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def write_json(path: str | Path, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as UTF-8 JSON, atomically.

    numpy scalars and arrays, ``Path``, dataclasses and objects with ``to_dict()`` (``Segment``,
    ``VideoInfo``) are converted; non-finite floats become ``null`` (JSON has no NaN).

    Args:
        path: Output file.
        obj: Dicts / lists / scalars as assembled by the pipeline.
        indent: JSON indentation.

    Returns:
        ``path``.
    """
    text = json.dumps(_jsonable(obj), indent=indent, ensure_ascii=False, allow_nan=False)
    return write_text(path, text + "\n")
