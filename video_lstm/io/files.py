"""Files written atomically (temp file + rename), safe names, and plain JSON/text results.

An interrupted run leaves no half-written file under a final name. Temporary files are named
``.<final name>.<8 hex><suffix>.part`` next to the final file (:func:`temp_pattern` matches
exactly one final name's temporaries, so a resume can remove its own leftovers and no other
file's). They are created with mode ``0o666`` minus the umask (what ``open`` would give the
final file), and file and folder are fsynced around the rename, so after a crash a final name
holds either the old or the new complete file.

:func:`safe_name` is the one place where a label or a file name becomes a path component.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import math
import os
import re
import secrets
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# Longest final name (bytes) whose temporary keeps the name readable: `.` + name + 9 + suffix
# + 5 must stay within the 255-byte limit of common filesystems.
_TEMP_NAME_MAX = 200


def _temp_stem(path: Path) -> str:
    name = path.name
    if len(os.fsencode(name)) <= _TEMP_NAME_MAX:
        return name
    return "h" + hashlib.sha256(os.fsencode(name)).hexdigest()[:24]


def temp_pattern(path: str | Path) -> re.Pattern[str]:
    """The names :func:`atomic_path` gives the temporaries of ``path`` (in ``path``'s folder),
    and those of earlier versions (``mkstemp``'s ``.<stem>.<8 chars><suffix>.part``)."""
    path = Path(path)
    ours = rf"{re.escape(_temp_stem(path))}\.[0-9a-f]{{8}}"
    mkstemp = rf"{re.escape(path.stem)}\.[a-z0-9_]{{8}}"  # what earlier versions left behind
    return re.compile(rf"\.(?:{ours}|{mkstemp}){re.escape(path.suffix)}\.part")


def remove_temp_files(path: str | Path) -> int:
    """Remove the temporaries a killed writer of ``path`` left behind; returns how many.

    Only call this while nothing else can be writing ``path`` (the caller holds the work).
    """
    path = Path(path)
    pattern, removed = temp_pattern(path), 0
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.startswith(".") and pattern.fullmatch(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    return removed


def fsync_dir(folder: str | Path) -> None:
    """Make a rename or a new file in ``folder`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on a folder
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    A crash or interrupt leaves no half-written file under the final name. The temporary is
    created with the permissions the final file should get (``0o666`` minus the umask), fsynced
    before the rename, and the folder is fsynced after it.

    Args:
        path: Final destination. Parent folders are created.

    Yields:
        A temporary path in the same folder (same suffix, so container formats are inferred).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = _temp_stem(path)
    while True:
        tmp_path = path.with_name(f".{stem}.{secrets.token_hex(4)}{path.suffix}.part")
        try:  # like mkstemp, but the umask applies (mkstemp makes every file 0600)
            os.close(os.open(tmp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp_path
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)


_UNSAFE_CHARS = re.compile(r'[/\\:*?"<>|]')


def _unsafe_char(ch: str) -> bool:
    if _UNSAFE_CHARS.match(ch) or "\ud800" <= ch <= "\udfff":  # lone surrogate: undecodable byte
        return True
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")  # control, format, line breaks


def printable(text: str) -> str:
    """``text`` as valid Unicode: bytes a file name could not decode (``os.fsdecode``'s lone
    surrogates) become ``\\xNN``, so the text can be written as UTF-8 (JSON, CSV, logs)."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def safe_name(text: str, *, max_bytes: int = 120) -> str:
    """A file/folder name made from ``text`` (a label, a video's file name): the one place where
    free text becomes a path component.

    ``text`` is kept as it is when it is already safe: no path separators or characters Windows
    refuses (``/ \\ : * ? " < > |``), no control or line-break characters, no undecodable bytes,
    not starting with ``.`` or a space, not ending with ``.`` or a space, and at most
    ``max_bytes`` bytes in UTF-8. Otherwise each unsafe character becomes ``_``, the result is cut
    to fit and ``-`` plus 10 hex digits of a hash of the original text is appended: two texts
    that sanitise alike (``a/b`` and ``a:b``) still get different names. Safe names pass
    through unchanged, so ``safe_name(safe_name(x)) == safe_name(x)``.

    Args:
        text: The text.
        max_bytes: Longest result in UTF-8 bytes (at least 24).

    Returns:
        A non-empty name.
    """
    if max_bytes < 24:
        raise ValueError(f"max_bytes must be >= 24, got {max_bytes}")
    text = str(text)
    if (
        text.isascii()
        and text.isprintable()
        and not _UNSAFE_CHARS.search(text)
        and text[:1] not in (".", " ", "")
        and text[-1] not in (".", " ")
        and len(text) <= max_bytes
    ):
        return text  # the common case, without the per-character check below
    cleaned = "".join("_" if _unsafe_char(ch) else ch for ch in text)
    cleaned = cleaned.lstrip(". ").rstrip(". ")
    if cleaned == text and text and len(text.encode("utf-8")) <= max_bytes:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    room = max_bytes - len(digest) - 1
    head = cleaned.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(". ")
    return f"{head or '_'}-{digest}"


def _jsonable(obj: Any) -> Any:
    """Plain JSON values from numpy scalars/arrays, paths, dataclasses; NaN/inf become null."""
    if isinstance(obj, dict):
        return {printable(str(k)): _jsonable(v) for k, v in obj.items()}
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
    if isinstance(obj, str):
        return printable(obj)
    if obj is None:
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
