"""Write the synthetic datasets to disk: trimmed clips (UCF101 layout) and untrimmed videos.

:func:`write_dataset` (``video-lstm make-dataset``) writes one clip per file, labelled by its
folder, with train/test split lists. :func:`write_untrimmed_dataset` (``video-lstm
make-untrimmed``) writes long videos of actions between idle stretches, with their temporal
annotations; :class:`UntrimmedSpec` says what such a dataset looks like, and its defaults are
the only ones: the function, ``make-untrimmed`` (:func:`make_untrimmed`) and the recipe behind
``video-lstm demo`` (:mod:`video_lstm.training.recipe`) all start from ``UntrimmedSpec()``.
Videos are rendered in worker processes; each one is a pure function of the seed and its place
in the dataset, whatever the number of workers.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from video_lstm.data.synthetic.camera import (
    CAMERA_ACTIONS,
    CAMERA_GAPS,
    make_camera_sequence,
    photo_pool,
    split_photos,
)
from video_lstm.data.synthetic.common import draw_count, size_hw
from video_lstm.data.synthetic.objects import (
    ACTIONS,
    GAPS,
    make_action_sequence,
    make_background,
    render_action,
    sample_appearance,
)
from video_lstm.io.files import atomic_path, write_json
from video_lstm.io.video import VideoWriter
from video_lstm.types import Segment

# ---------------------------------------------------------------------------------------------
# Trimmed clips in the UCF101 layout
# ---------------------------------------------------------------------------------------------


def _encode(path: str, frames: np.ndarray, fps: float, crf: int) -> None:
    """H.264 of ``frames`` (T, H, W, 3) at ``path``: what every worker writes."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    # One encoder thread: parallelism comes from the process pool; tiny frames gain nothing.
    with VideoWriter(path, fps=fps, width=w, height=h, crf=crf, threads=1) as writer:
        writer.write(frames)


def _write_clip(job: tuple) -> str:
    """Render and encode one clip (runs in a worker process)."""
    path, action, num_frames, size, fps, seed, bg_seed, distractors, noise_std, crf = job
    h, w = size_hw(size)
    background = make_background((h, w), np.random.default_rng(bg_seed))
    rng = np.random.default_rng(seed)
    appearance = sample_appearance((h, w), rng, distractors=distractors, background=background)
    frames = render_action(
        action,
        num_frames=draw_count(num_frames, rng),
        size=(h, w),
        rng=rng,
        appearance=appearance,
        noise_std=noise_std,
    )
    _encode(path, frames, fps, crf)
    return path


def _write_sequence(job: tuple) -> str:
    path, actions, num_frames, gap_frames, size, fps, seed, distractors, noise_std, crf = job
    h, w = size_hw(size)
    frames, segments = make_action_sequence(
        actions,
        frames_per_action=num_frames,
        gap_frames=gap_frames,
        size=(h, w),
        fps=fps,
        rng=np.random.default_rng(seed),
        distractors=distractors,
        noise_std=noise_std,
    )
    _encode(path, frames, fps, crf)
    write_json(
        Path(path).with_suffix(".json"),
        {
            "video": Path(path).name,
            "fps": fps,
            "num_frames": len(frames),
            "width": w,
            "height": h,
            "classes": list(ACTIONS),
            "segments": segments,
        },
    )
    return path


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _run_jobs(fn, jobs: list[tuple], workers: int) -> list:
    """``[fn(job) for job in jobs]`` over ``workers`` processes, with a progress bar."""
    from tqdm.auto import tqdm

    results = []
    with tqdm(total=len(jobs), desc="writing videos", unit="video", disable=len(jobs) <= 1) as bar:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                results.append(fn(job))
                bar.update()
            return results
        with ProcessPoolExecutor(max_workers=workers) as pool:
            # Iterating re-raises the first worker error here.
            for r in pool.map(fn, jobs, chunksize=max(1, len(jobs) // (8 * workers))):
                results.append(r)
                bar.update()
    return results


def write_dataset(
    out: str | Path,
    *,
    videos_per_class: int = 40,
    classes: Sequence[str] = ACTIONS,
    num_frames: int | tuple[int, int] = 40,
    size: int | tuple[int, int] = 112,
    fps: float = 25.0,
    seed: int = 0,
    test_fraction: float = 0.25,
    clips_per_group: int = 4,
    splits: int = 1,
    sequences: int = 0,
    actions_per_sequence: int = 6,
    gap_frames: int | tuple[int, int] = (0, 24),
    distractors: int | tuple[int, int] = (0, 2),
    noise_std: float = 2.0,
    crf: int = 23,
    workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic action dataset in the UCF101 layout (H.264 ``.mp4`` files).

    Layout::

        out/videos/<class>/v_<class>_g<GG>_c<CC>.mp4
        out/splits/classInd.txt              "1 move_left" (1-based)
        out/splits/trainlist0N.txt           "move_left/v_move_left_g05_c01.mp4 1"
        out/splits/testlist0N.txt            "move_left/v_move_left_g01_c01.mp4"
        out/demo/seq_000.mp4 + seq_000.json  (``sequences`` > 0) several actions in a row
        out/synthetic.json                   the arguments, for reproduction

    Clips of one group share a background, like UCF101's groups share a scene; train and test
    never share a group. Split ``k`` takes the ``k``-th block of groups as test, as UCF101 does.
    Every clip is a pure function of ``(seed, class, group, clip)``, whatever ``workers`` is.

    Args:
        out: Output folder (``--out`` of ``video-lstm make-dataset``).
        videos_per_class: Clips per class.
        classes: Action names (a subset of :data:`ACTIONS`).
        num_frames: Frames per clip, or an inclusive ``(low, high)`` range.
        size: Frame size, ``int`` or ``(height, width)`` (even numbers for H.264).
        fps: Frame rate.
        seed: Master seed.
        test_fraction: Fraction of each class's groups held out for test.
        clips_per_group: Clips per group.
        splits: Number of train/test splits to write (``trainlist01`` ...).
        sequences: Number of demo videos of several actions in a row, written to ``out/demo``.
        actions_per_sequence: Actions in each demo video.
        gap_frames: "No action" gap length (or range) in the demo videos.
        distractors: Distractor objects per clip (or inclusive range).
        noise_std: Per-frame sensor noise standard deviation.
        crf: x264 quality.
        workers: Processes (default: up to 2, never more than the CPU count).
        overwrite: Replace ``videos``, ``splits`` and ``demo`` under ``out`` if they exist.

    Returns:
        The output folder, as a ``Path``.
    """
    root = Path(out)
    classes = list(classes)
    unknown = [c for c in classes if c not in ACTIONS]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names from {ACTIONS}, got {classes}")
    if videos_per_class < 1 or clips_per_group < 1 or splits < 1:
        raise ValueError("videos_per_class, clips_per_group and splits must be >= 1")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    h, w = size_hw(size)
    subdirs = [root / "videos", root / "splits", root / "demo"]
    existing = [d for d in subdirs if d.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass overwrite=True to replace it")
    for d in existing:
        shutil.rmtree(d)
    workers = workers or min(2, os.cpudraw_count() or 1)

    num_groups = math.ceil(videos_per_class / clips_per_group)
    num_test = round(test_fraction * num_groups)
    if test_fraction > 0 and num_groups > 1:
        num_test = min(max(1, num_test), num_groups - 1)

    jobs, entries = [], []  # entries: (class index, group, relative path)
    for ci, name in enumerate(classes):
        cls_id = ACTIONS.index(name)  # seeds follow the action, not its position in `classes`
        for v in range(videos_per_class):
            g, c = v // clips_per_group + 1, v % clips_per_group + 1
            rel = f"{name}/v_{name}_g{g:02d}_c{c:02d}.mp4"
            jobs.append(
                (
                    str(root / "videos" / rel),
                    name,
                    num_frames,
                    (h, w),
                    fps,
                    [seed, cls_id, g, c],
                    [seed, cls_id, g, 0],
                    distractors,
                    noise_std,
                    crf,
                )
            )
            entries.append((ci, g, rel))
    (root / "videos").mkdir(parents=True, exist_ok=True)
    _run_jobs(_write_clip, jobs, workers)

    split_dir = root / "splits"
    _write_lines(split_dir / "classInd.txt", [f"{i + 1} {n}" for i, n in enumerate(classes)])
    for k in range(1, splits + 1):
        test_groups = {((k - 1) * num_test + j) % num_groups + 1 for j in range(num_test)}
        train = [f"{rel} {ci + 1}" for ci, g, rel in entries if g not in test_groups]
        test = [rel for ci, g, rel in entries if g in test_groups]
        _write_lines(split_dir / f"trainlist{k:02d}.txt", train)
        _write_lines(split_dir / f"testlist{k:02d}.txt", test)

    if sequences > 0:
        seq_jobs = []
        for i in range(sequences):
            rng = np.random.default_rng([seed, 1000 + i])
            acts = [str(a) for a in rng.choice(classes, actions_per_sequence)]
            seq_jobs.append(
                (
                    str(root / "demo" / f"seq_{i:03d}.mp4"),
                    acts,
                    num_frames,
                    gap_frames,
                    (h, w),
                    fps,
                    [seed, 1000 + i, 1],
                    distractors,
                    noise_std,
                    crf,
                )
            )
        _run_jobs(_write_sequence, seq_jobs, workers)

    write_json(
        root / "synthetic.json",
        {
            "generator": "video_lstm.data.synthetic.write_dataset",
            "classes": classes,
            "videos_per_class": videos_per_class,
            "num_frames": num_frames,
            "size": [h, w],
            "fps": fps,
            "seed": seed,
            "test_fraction": test_fraction,
            "clips_per_group": clips_per_group,
            "splits": splits,
            "sequences": sequences,
            "actions_per_sequence": actions_per_sequence,
            "gap_frames": gap_frames,
            "distractors": distractors,
            "noise_std": noise_std,
            "crf": crf,
        },
    )
    return root


# ---------------------------------------------------------------------------------------------
# Untrimmed videos with temporal annotations
# ---------------------------------------------------------------------------------------------

Range = int | tuple[int, int]  # a count, or an inclusive (low, high) range drawn per item


@dataclass
class UntrimmedSpec:
    """What :func:`write_untrimmed_dataset` writes. The defaults are the demo's dataset.

    These defaults are the only ones: the function, ``video-lstm make-untrimmed`` and the recipe
    (``video-lstm demo``) all start from ``UntrimmedSpec()``. Many short training videos (1-2
    actions each: a new shot per action, which is what makes the model generalise; 24 long
    videos of 4 actions reached chance on held-out windows) and long val/test videos of 4-6
    actions between idle stretches (12 val videos: on 6, the calibrated threshold fitted them).

    Two scenes. ``"camera"``: a camera pans, tilts, zooms and rolls over real photos
    (:mod:`~video_lstm.data.synthetic.camera`) with still or hand-held idle stretches and hard
    cuts; each subset films photos of its own
    (:func:`~video_lstm.data.synthetic.camera.split_photos`), so ``test`` photos are never
    trained on. ``"objects"``: a textured object moves, grows or turns
    (:data:`~video_lstm.data.synthetic.objects.ACTIONS`); every video has its own background,
    object and distractors, and idle stretches (object absent, still camera, hand-held shake)
    keep the distractors moving.

    Args:
        videos: Videos per subset, in order (``train``, ``val``, ``test`` or any names).
        scene: ``"camera"`` or ``"objects"``.
        images: For ``"camera"``: a folder of photos (default: the photographs bundled with
            scikit-image and matplotlib).
        classes: Action names (a subset of the scene's; default all of them).
        actions_per_video: Actions in each video (or inclusive range), or such a value per
            subset (short training videos, long test videos).
        frames_per_action: Frames per action (or inclusive range).
        gap_frames: Frames of each idle stretch (or inclusive range), before, between and after.
        gaps: Idle kinds to draw from (default all of the scene's).
        size: Frame size, ``int`` or ``(height, width)`` (even numbers for H.264).
        fps: Frame rate.
        seed: Master seed.
        distractors: Distractor objects per video (or inclusive range).
        crf: x264 quality.
    """

    videos: dict[str, int] = field(default_factory=lambda: {"train": 160, "val": 12, "test": 6})
    scene: str = "camera"
    images: str | None = None
    classes: list[str] | None = None
    actions_per_video: Range | dict[str, Range] = field(
        default_factory=lambda: {"train": (1, 2), "val": (4, 6), "test": (4, 6)}
    )
    frames_per_action: Range = (32, 48)
    gap_frames: Range = (12, 28)
    gaps: list[str] | None = None
    size: int | tuple[int, int] = 128
    fps: float = 25.0
    seed: int = 0
    distractors: Range = (0, 2)
    crf: int = 23

    def __post_init__(self) -> None:
        if self.scene not in ("objects", "camera"):
            raise ValueError(f"scene must be 'objects' or 'camera', got {self.scene!r}")
        known = self.known_classes()
        classes = self.class_names()
        if not classes or any(c not in known for c in classes) or len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct names from {known}, got {classes}")
        if any(n < 0 for n in self.videos.values()):
            raise ValueError(f"videos per subset must be >= 0, got {self.videos}")
        self.videos = dict(self.videos)
        if self.images is not None:  # workers and untrimmed.json see the same folder
            self.images = str(Path(self.images).resolve())

    # Unset classes and gaps stay None (``replace(spec, scene=...)`` then takes the new scene's).
    def known_classes(self) -> tuple[str, ...]:
        """The scene's action names."""
        return CAMERA_ACTIONS if self.scene == "camera" else ACTIONS

    def class_names(self) -> list[str]:
        """``classes``, or all of the scene's."""
        return list(self.known_classes() if self.classes is None else self.classes)

    def gap_kinds(self) -> list[str]:
        """``gaps``, or all of the scene's idle kinds."""
        return list(
            (CAMERA_GAPS if self.scene == "camera" else GAPS) if self.gaps is None else self.gaps
        )

    def actions_for(self, subset: str) -> Range:
        """Actions per video of ``subset`` (a count or an inclusive range)."""
        per = self.actions_per_video
        return per[subset] if isinstance(per, dict) else per


def _write_untrimmed(job: tuple) -> list[Segment]:
    """Render and encode one untrimmed video (runs in a worker process)."""
    (path, actions, frames_per_action, gap_frames, gaps, size, fps, seed, distractors, crf,
     scene, images, photo_names) = job  # fmt: skip
    h, w = size_hw(size)
    common = dict(
        frames_per_action=frames_per_action,
        gap_frames=gap_frames,
        gap=gaps,
        size=(h, w),
        fps=fps,
        rng=np.random.default_rng(seed),
        distractors=distractors,
    )
    if scene == "camera":
        pool = photo_pool(images)
        frames, segments = make_camera_sequence(actions, [pool[n] for n in photo_names], **common)
    else:
        frames, segments = make_action_sequence(actions, **common)
    _encode(path, frames, fps, crf)
    return segments


def write_untrimmed_dataset(
    root: str | Path,
    spec: UntrimmedSpec | None = None,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    **changes: Any,
) -> Path:
    """Write untrimmed videos (actions separated by idle stretches) and their temporal annotations.

    Each subset cycles through the classes so every class appears about equally often.

    Layout::

        root/videos/<subset>/<subset>_<NNN>.mp4
        root/annotations.csv    video,start_s,end_s,label,subset  (kind "segments_csv")
        root/activitynet.json   the same in ActivityNet v1.3 form (kind "activitynet")
        root/untrimmed.json     the spec, for reproduction

    Load with ``load_manifest("segments_csv", root, annotations="annotations.csv",
    subset="train")``.

    Args:
        root: Output folder.
        spec: What to write (default ``UntrimmedSpec()``: the demo's dataset).
        workers: Processes (default: up to 2).
        overwrite: Replace an existing dataset under ``root``.
        **changes: Fields of :class:`UntrimmedSpec` to change, e.g. ``scene="objects"``,
            ``videos={"train": 2, "test": 1}``.

    Returns:
        ``root``.
    """
    unknown = sorted(set(changes) - {f.name for f in fields(UntrimmedSpec)})
    if unknown:
        raise TypeError(f"write_untrimmed_dataset: UntrimmedSpec has no field {unknown[0]!r}")
    spec = replace(spec or UntrimmedSpec(), **changes)
    root = Path(root)
    if (root / "videos").exists():
        if not overwrite:
            raise FileExistsError(f"{root / 'videos'} exists; pass overwrite=True to replace it")
        shutil.rmtree(root / "videos")
    photos: dict[str, list[str]] = {}
    if spec.scene == "camera":
        photos = split_photos(list(photo_pool(spec.images)), list(spec.videos))
    h, w = size_hw(spec.size)
    workers = workers or min(2, os.cpu_count() or 1)
    seed = spec.seed
    jobs, names = [], []
    for si, (subset, count) in enumerate(spec.videos.items()):
        order = np.random.default_rng([seed, 3000 + si]).permutation(spec.class_names()).tolist()
        k = 0
        for i in range(count):
            rng = np.random.default_rng([seed, 2000 + si, i])
            n = draw_count(spec.actions_for(subset), rng)
            acts = [order[(k + j) % len(order)] for j in range(n)]
            k += n
            rel = f"videos/{subset}/{subset}_{i:03d}.mp4"
            jobs.append(
                (
                    str(root / rel),
                    acts,
                    spec.frames_per_action,
                    spec.gap_frames,
                    spec.gap_kinds(),
                    (h, w),
                    spec.fps,
                    [seed, 2000 + si, i, 1],
                    spec.distractors,
                    spec.crf,
                    spec.scene,
                    spec.images,
                    photos.get(subset, []),
                )
            )
            names.append((subset, rel))
    results = _run_jobs(_write_untrimmed, jobs, workers)

    rows = ["video,start_s,end_s,label,subset"]
    database = {}
    for (subset, rel), segments in zip(names, results, strict=True):
        rows += [f"{rel},{g.start_s:.4f},{g.end_s:.4f},{g.label},{subset}" for g in segments]
        database[Path(rel).stem] = {
            "subset": {"train": "training", "val": "validation", "test": "testing"}.get(
                subset, subset
            ),
            "annotations": [
                {"segment": [round(g.start_s, 4), round(g.end_s, 4)], "label": g.label}
                for g in segments
            ],
        }
    _write_lines(root / "annotations.csv", rows)
    write_json(root / "activitynet.json", {"version": "VERSION 1.3", "database": database})
    write_json(
        root / "untrimmed.json",
        {
            "generator": "video_lstm.data.synthetic.write_untrimmed_dataset",
            **asdict(spec),
            "classes": spec.class_names(),
            "gaps": spec.gap_kinds(),
            "size": [h, w],
            "photos": photos,
        },
    )
    return root


_DEFAULT = UntrimmedSpec()


def make_untrimmed(
    out: str,
    *,
    train: int = _DEFAULT.videos["train"],
    val: int = _DEFAULT.videos["val"],
    test: int = _DEFAULT.videos["test"],
    scene: Literal["camera", "objects"] = _DEFAULT.scene,
    images: str | None = None,
    classes: list[str] | None = None,
    actions: Range = _DEFAULT.actions_per_video["train"],
    eval_actions: Range = _DEFAULT.actions_per_video["test"],
    frames: Range = _DEFAULT.frames_per_action,
    gap_frames: Range = _DEFAULT.gap_frames,
    size: int = _DEFAULT.size,
    seed: int = _DEFAULT.seed,
    workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write synthetic untrimmed videos (actions between idle stretches) and their annotations.

    ``video-lstm make-untrimmed``: :func:`write_untrimmed_dataset` with the defaults of
    :class:`UntrimmedSpec` (the demo's dataset), spelled as subsets and per-subset actions.
    A range is ``N`` or ``[LOW,HIGH]``.

    Args:
        out: Output folder.
        train: Training videos.
        val: Validation videos (calibration).
        test: Test videos (held-out photos or scenes).
        scene: ``camera``: pan/tilt/zoom/roll over real photos; ``objects``: a moving object.
        images: Camera scene: a folder of your own photos (default: the bundled photographs).
        classes: Action names (default: all of the scene's).
        actions: Actions per training video.
        eval_actions: Actions per val/test video.
        frames: Frames per action.
        gap_frames: Frames per idle stretch.
        size: Square frame side (even).
        seed: Master seed.
        workers: Processes (default: up to 2).
        overwrite: Replace an existing dataset.

    Returns:
        ``out``.
    """
    spec = replace(
        _DEFAULT,
        videos={"train": train, "val": val, "test": test},
        scene=scene,
        images=images,
        classes=classes,
        actions_per_video={"train": actions, "val": eval_actions, "test": eval_actions},
        frames_per_action=frames,
        gap_frames=gap_frames,
        size=size,
        seed=seed,
    )
    return write_untrimmed_dataset(out, spec, workers=workers, overwrite=overwrite)


__all__ = ["UntrimmedSpec", "make_untrimmed", "write_dataset", "write_untrimmed_dataset"]
