"""Official split files: UCF101 (``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``, kind
``ucf101``) and HMDB51 (``<class>_test_split<N>.txt``, kind ``hmdb51``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from video_lstm.data.datasets.base import Manifest, check_missing, finish_manifest, text_lines
from video_lstm.data.datasets.kinds import register_dataset_kind


def read_ucf101_classes(path: str | Path) -> list[str]:
    """Class names from a UCF101 ``classInd.txt`` ("1 ApplyEyeMakeup", 1-based, in order)."""
    path = Path(path)
    by_index: dict[int, str] = {}
    for n, text in text_lines(path):
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}:{n}: expected 'index ClassName', got {text!r}")
        by_index[int(parts[0])] = parts[1]
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise ValueError(f"{path}: class indices must be 1..{len(by_index)} without gaps")
    return [by_index[i] for i in range(1, len(by_index) + 1)]


def _find_dir(candidates: Sequence[Path], what: str) -> Path:
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(f"{what} not found; looked in {', '.join(map(str, candidates))}")


def from_ucf101(
    root: str | Path,
    *,
    split: int = 1,
    subset: str = "train",
    split_dir: str | Path | None = None,
    video_dir: str | Path | None = None,
    missing: str = "skip",
) -> Manifest:
    """UCF101 split files: ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``.

    List lines are ``ClassName/v_ClassName_gGG_cCC.avi [index]``; the class comes from the
    folder part (``testlist`` has no index) and must agree with the index when there is one.

    Args:
        root: Dataset folder.
        split: 1, 2 or 3 (any ``N`` whose list files exist).
        subset: ``"train"`` or ``"test"``.
        split_dir: Folder of the split files; default: the first of ``root/splits``,
            ``root/ucfTrainTestlist``, ``root.parent/ucfTrainTestlist``.
        video_dir: Folder the list paths are relative to; default ``root/videos`` if it exists,
            else ``root``.
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The manifest, in list-file order.
    """
    root = Path(root)
    check_missing(missing)
    if subset not in ("train", "test"):
        raise ValueError(f"UCF101 subset must be 'train' or 'test', got {subset!r}")
    if split_dir is None:
        split_dir = _find_dir(
            [root / "splits", root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"],
            "UCF101 split folder",
        )
    split_dir = Path(split_dir)
    if video_dir is None:
        video_dir = root / "videos" if (root / "videos").is_dir() else root
    video_dir = Path(video_dir)
    class_names = read_ucf101_classes(split_dir / "classInd.txt")
    index = {n: i for i, n in enumerate(class_names)}
    list_file = split_dir / f"{subset}list{split:02d}.txt"
    samples = []
    for n, text in text_lines(list_file):
        parts = text.split()
        rel = parts[0].replace("\\", "/")
        if len(parts) > 2 or "/" not in rel:
            raise ValueError(f"{list_file}:{n}: expected 'ClassName/video [index]', got {text!r}")
        folder = rel.split("/")[0]
        if folder not in index:
            raise ValueError(f"{list_file}:{n}: unknown class {folder!r} (not in classInd.txt)")
        label = index[folder]
        if len(parts) == 2 and (not parts[1].isdigit() or int(parts[1]) - 1 != label):
            raise ValueError(
                f"{list_file}:{n}: index {parts[1]!r} does not match class {folder!r} "
                f"(classInd says {label + 1})"
            )
        samples.append((video_dir / rel, label))
    return finish_manifest(samples, class_names, source=list_file, missing=missing)


_HMDB_SPLIT = re.compile(r"^(?P<cls>.+)_test_split(?P<split>\d+)\.txt$")


def from_hmdb51(
    root: str | Path,
    *,
    split_dir: str | Path,
    split: int = 1,
    subset: str = "train",
    missing: str = "skip",
) -> Manifest:
    """HMDB51 split files ``<class>_test_split<N>.txt``: "video.avi 1" (1 train, 2 test, 0 unused).

    Args:
        root: Video folder, ``root/<class>/<video>.avi``.
        split_dir: Folder holding the split files.
        split: 1, 2 or 3.
        subset: ``"train"`` or ``"test"``.
        missing: ``"skip"``, ``"error"`` or ``"ignore"``.

    Returns:
        The manifest; classes sorted by name (the usual HMDB51 label order).
    """
    root, split_dir = Path(root), Path(split_dir)
    check_missing(missing)
    want = {"train": "1", "test": "2"}.get(subset)
    if want is None:
        raise ValueError(f"HMDB51 subset must be 'train' or 'test', got {subset!r}")
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: HMDB51 split folder not found")
    files = {}
    for p in split_dir.iterdir():
        m = _HMDB_SPLIT.match(p.name)
        if m and int(m["split"]) == split:
            files[m["cls"]] = p
    if not files:
        raise ValueError(f"{split_dir}: no '*_test_split{split}.txt' files")
    class_names = sorted(files)
    samples = []
    for label, name in enumerate(class_names):
        for n, text in text_lines(files[name]):
            parts = text.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{files[name]}:{n}: expected 'video.avi 0|1|2', got {text!r}")
            if parts[1] == want:
                samples.append((root / name / parts[0], label))
    return finish_manifest(samples, class_names, source=split_dir, missing=missing)


register_dataset_kind(
    "ucf101", from_ucf101, temporal=False, path_options=("split_dir", "video_dir")
)
register_dataset_kind("hmdb51", from_hmdb51, temporal=False, path_options=("split_dir",))
