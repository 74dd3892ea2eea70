"""Folder-per-class clips: ``root/<class>/<video>`` (kind ``folder``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from video_lstm.data.datasets.base import Manifest, check_missing, finish_manifest
from video_lstm.data.datasets.kinds import register_dataset_kind
from video_lstm.io.formats import VIDEO_EXTENSIONS


def from_folders(
    root: str | Path,
    *,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    class_names: Sequence[str] | None = None,
    recursive: bool = False,
    missing: str = "skip",
    allow_empty_classes: bool = False,
) -> Manifest:
    """One folder per class: ``root/<class>/<video>``.

    Args:
        root: Folder holding one sub-folder per class.
        extensions: Video suffixes to keep (case-insensitive); other files are ignored.
        class_names: Classes in label order; default: the sub-folders, sorted. A listed class
            without a folder is an empty class.
        recursive: Also take videos in nested folders of a class folder.
        missing: ``"skip"``, ``"error"`` or ``"ignore"`` for empty/unreadable files.
        allow_empty_classes: Keep classes with no video instead of raising.

    Returns:
        The manifest, samples sorted by class then path.
    """
    root = Path(root)
    check_missing(missing)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    if class_names is None:
        class_names = sorted(
            d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
        )
        if not class_names:
            raise ValueError(f"{root}: no class folders found")
    class_names = list(class_names)
    samples = []
    for label, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            continue  # reported as an empty class
        files = folder.rglob("*") if recursive else folder.iterdir()
        videos = sorted(p for p in files if p.suffix.lower() in exts and not p.name.startswith("."))
        samples.extend((p, label) for p in videos)
    return finish_manifest(
        samples,
        class_names,
        source=root,
        missing=missing,
        allow_empty_classes=allow_empty_classes,
    )


register_dataset_kind("folder", from_folders, temporal=False)
