"""Feature cache: per-frame backbone features computed once, stored fp16, read memory-mapped.

With a frozen backbone the CNN gives the same output every epoch, so running it on every clip
of every epoch is wasted work. :func:`extract_features` runs it once per video (every
``frame_interval``-th frame, eval transform: resize + centre crop) and writes one ``.npy`` per
video; :class:`FeatureClipDataset` then samples clips *in time* from those arrays and the
temporal model trains through ``model.forward_head``.

Layout of a cache folder (one per split)::

    <cache>/<split>/cache.json         what produced it (model config, size, interval, norm)
    <cache>/<split>/videos/<id>.npy    float16 (N, D) or (N, C, h, w); N = ceil(frames / interval)
    <cache>/<split>/index.json         class names + one entry per finished video (written last)

Resume: every per-video file is written atomically, so a file under its final name is complete;
a rerun removes the temporaries a killed run left (``.*.part``), skips the complete files and
computes the rest. One process writes a cache folder at a time. A cache made with another model or preprocessing is
refused rather than silently mixed.

Augmentation is limited on cached features: spatial augmentation (random crop, colour jitter)
would need one cached copy per augmentation, so the cache holds the eval view only. Training
still draws a random clip in time (random start) from each video every epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from video_lstm.data.sampling import clip_starts, fit_to_length
from video_lstm.errors import VideoError
from video_lstm.io.files import atomic_path, safe_name

log = logging.getLogger(__name__)

CACHE_FILE = "cache.json"
INDEX_FILE = "index.json"


def video_id(path: str | Path) -> str:
    """A stable, file-system-safe id for a video: its stem plus a short hash of the full path."""
    p = Path(path)
    digest = hashlib.sha1(os.fsencode(p)).hexdigest()[:10]
    return f"{safe_name(p.stem, max_bytes=120)}-{digest}"


def _remove_temporaries(folder: Path) -> None:
    """Temporaries (``atomic_path``'s ``.*.part``) that a killed run left in a cache folder."""
    if folder.is_dir():
        for part in folder.glob(".*.part"):
            part.unlink(missing_ok=True)


def _write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2))


def _save_npy(path: Path, array: np.ndarray) -> None:
    # Through a file handle: np.save(name) would append ".npy" to the temporary name.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def _is_complete_npy(path: Path) -> bool:
    try:
        np.load(path, mmap_mode="r")
        return True
    except (OSError, ValueError):
        return False


@torch.inference_mode()
def encode_frames(
    model: torch.nn.Module,
    frames: np.ndarray,
    transform: Any,
    *,
    device: torch.device,
    batch: int = 16,
) -> np.ndarray:
    """Per-frame backbone features of decoded frames.

    Args:
        model: A ``VideoClassifier`` (only ``forward_features`` is used).
        frames: uint8 ``(T, H, W, 3)``.
        transform: uint8 ``(T, H, W, C)`` -> float ``(T, C, S, S)``.
        device: Where to run the backbone.
        batch: Frames per CNN pass. Small blocks stay in the allocator's reuse (the demo's
            96 px lite0 trunk on 1 thread: 16 frames a pass 1.3 s, 64 frames 2.2 s, without
            inference mode 2.3 s, for 1,600 frames).

    Returns:
        float16 ``(T, D)`` or ``(T, C, h, w)``.
    """
    parts = []
    with torch.inference_mode():
        for i in range(0, len(frames), batch):
            clip = transform(frames[i : i + batch]).unsqueeze(0).to(device)  # (1, t, C, S, S)
            feats = model.forward_features(clip)  # (1, t, D) or (1, t, C, h, w)
            parts.append(feats[0].float().cpu().numpy().astype(np.float16))
    return np.concatenate(parts)


def extract_features(
    model: torch.nn.Module,
    samples: Sequence[tuple[str, int]],
    class_names: Sequence[str],
    out_dir: str | Path,
    *,
    frame_size: int,
    frame_interval: int = 1,
    decode_size: int | None = None,
    chunk_frames: int = 64,
    device: str | torch.device = "cpu",
    backend: str = "auto",
    progress: bool = True,
    segments: Sequence[Sequence[Sequence[Any]]] | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute and store per-frame features for every video; resume an interrupted run.

    Untrimmed videos are cached the same way (every sampled frame of the whole video); their
    action segments (``segments``) are stored in the index with each video's ``fps`` and
    ``num_frames``, so training can draw windows from the cache alone.

    Args:
        model: A ``VideoClassifier`` whose backbone is used as is (freeze it when training on
            the cache, else cached and live features differ).
        samples: ``(video path, label index)`` pairs, e.g. ``Manifest.samples``.
        class_names: Label names, stored in the index.
        out_dir: The cache folder for this split.
        frame_size: Square input size (eval transform: resize short side + centre crop).
        frame_interval: Keep every ``frame_interval``-th frame.
        decode_size: Short side to decode at (``None``: ``frame_size``); a reduced decode is
            much cheaper than decoding full resolution and resizing afterwards.
        chunk_frames: Frames decoded and encoded per step (bounds memory on long videos).
        device: Where to run the backbone.
        backend: Decoder backend for ``open_video``.
        progress: Show a tqdm bar.
        segments: Per sample, its ``[start_s, end_s, label]`` action segments (untrimmed
            videos; their sample label is ignored).
        source: What the samples were built from, e.g. ``{"manifest_digest": ..., "root": ...}``
            (:meth:`Manifest.digest`): a cache is only ever filled and served for one dataset.

    Returns:
        The index (also written to ``out_dir/index.json``): ``class_names``, ``videos`` (finished
        entries) and ``failed`` (``{"path", "error"}`` for videos that could not be read).

    Raises:
        ValueError: ``out_dir`` holds a cache made with another model, preprocessing or dataset.
    """
    from tqdm import tqdm

    from video_lstm.data.transforms import eval_transform
    from video_lstm.io.decode import open_video

    out = Path(out_dir)
    device = torch.device(device)
    signature = {
        "backbone": backbone_signature(model),
        "frame_size": int(frame_size),
        "frame_interval": int(frame_interval),
        "decode_size": int(decode_size or frame_size),
        "mean": [float(m) for m in model.mean],
        "std": [float(s) for s in model.std],
        "source": json.loads(json.dumps(source or {}, default=str)),
    }
    if segments is not None and len(segments) != len(samples):
        raise ValueError(f"{len(segments)} segment lists for {len(samples)} samples")
    cache_file = out / CACHE_FILE
    _remove_temporaries(out)
    _remove_temporaries(out / "videos")
    if cache_file.is_file():
        old = json.loads(cache_file.read_text())
        check_source(old, signature.get("source"), out)
        if old != signature:
            raise ValueError(
                f"{out}: holds features from another model or preprocessing; "
                f"use a new folder (cached {old}, requested {signature})"
            )
    else:
        _write_json(cache_file, signature)

    transform = eval_transform(size=frame_size, mean=signature["mean"], std=signature["std"])
    model = model.to(device).eval()
    videos: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    bar = tqdm(samples, desc=f"features {out.name}", disable=not progress, unit="video")
    old_entries = {}
    if (out / INDEX_FILE).is_file():  # fps / frame counts of a previous (interrupted) run
        try:
            old_entries = {v["id"]: v for v in json.loads((out / INDEX_FILE).read_text())["videos"]}
        except (ValueError, KeyError):
            old_entries = {}
    for n, (path, label) in enumerate(bar):
        vid = video_id(path)
        npy = out / "videos" / f"{vid}.npy"
        entry: dict[str, Any] = {"id": vid, "path": str(path), "label": int(label)}
        if segments is not None:
            entry["segments"] = [[float(a), float(b), str(c)] for a, b, c in segments[n]]
        old = old_entries.get(vid, {})
        if npy.is_file() and _is_complete_npy(npy):
            if "fps" not in old:  # interrupted before the index: ask the file (metadata only)
                try:
                    with open_video(path, backend=backend) as reader:
                        old = {"fps": float(reader.fps), "num_frames": int(reader.num_frames)}
                except VideoError as exc:
                    failed.append({"path": str(path), "error": str(exc)})
                    continue
            steps = int(np.load(npy, mmap_mode="r").shape[0])
            entry.update(num_steps=steps, fps=old["fps"], num_frames=old["num_frames"])
            videos.append(entry)
            continue
        try:
            with open_video(path, backend=backend, size=decode_size or frame_size) as reader:
                entry.update(fps=float(reader.fps), num_frames=int(reader.num_frames))
                indices = np.arange(0, reader.num_frames, frame_interval)
                parts = [
                    encode_frames(
                        model,
                        reader.get_frames(indices[i : i + chunk_frames]),
                        transform,
                        device=device,
                    )
                    for i in range(0, len(indices), chunk_frames)
                ]
        except VideoError as exc:
            log.warning("skipping %s", exc)
            failed.append({"path": str(path), "error": str(exc)})
            continue
        feats = np.concatenate(parts, axis=0)
        _save_npy(npy, feats)
        videos.append({**entry, "num_steps": int(feats.shape[0])})
    index = {
        **signature,
        "class_names": list(class_names),
        "videos": videos,
        "failed": failed,
    }
    _write_json(out / INDEX_FILE, index)
    return index


def check_source(
    cached: dict[str, Any],
    source: dict[str, Any] | None,
    cache_dir: Path,
    *,
    paths: Sequence[str] | None = None,
) -> None:
    """Refuse a cache built from another dataset than ``source`` describes.

    A cache records its dataset's manifest digest; one made before caches recorded it is
    checked by its video paths instead (``paths``: the dataset's videos).

    Raises:
        ValueError: The digests (or the video lists) differ.
    """
    if not source or "manifest_digest" not in source:
        return
    old = cached.get("source") or {}
    if not old.get("manifest_digest"):
        if paths is None or "videos" not in cached:
            return
        have = {v["path"] for v in cached["videos"]} | {v["path"] for v in cached.get("failed", [])}
        if have == {str(p) for p in paths}:
            return
        built = f"made for {len(have)} other videos (e.g. {sorted(have)[:1]})"
    elif old["manifest_digest"] == source["manifest_digest"]:
        return
    else:
        built = (
            f"built from {old.get('root')} ({old.get('kind')}, manifest digest "
            f"{old.get('manifest_digest')})"
        )
    raise ValueError(
        f"{cache_dir}: this feature cache was {built}, but the configured data is "
        f"{source.get('root')} ({source.get('kind')}, manifest digest "
        f"{source['manifest_digest']}); set data.features_dir to a folder of its own"
    )


def load_index(cache_dir: str | Path) -> dict[str, Any]:
    """Read a finished cache's ``index.json``.

    Raises:
        FileNotFoundError: No index: the extraction has not finished (rerun it to resume).
    """
    path = Path(cache_dir) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no feature index; run tools/extract_features.py (it resumes) first"
        )
    return json.loads(path.read_text())


def take_clip(array: np.ndarray, start: int, clip_len: int) -> np.ndarray:
    """``clip_len`` consecutive steps from ``start`` as float32 (short sequences: last repeated)."""
    idx = fit_to_length(np.arange(start, start + clip_len), len(array))
    return np.asarray(array[idx], dtype=np.float32)


class FeatureClipDataset(Dataset):
    """Clips of cached per-frame features: ``{"features": (V, T, ...), "label", "index"}``.

    Args:
        cache_dir: A finished cache folder (see :func:`extract_features`).
        clip_len: Steps per clip (cached steps are already ``frame_interval`` apart).
        train: Random clip start per epoch (seeded by ``seed + epoch + index``); else
            ``num_clips`` evenly spaced views for video-level evaluation.
        num_clips: Views per video at evaluation.
        seed: Base seed.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        *,
        clip_len: int,
        train: bool,
        num_clips: int = 1,
        seed: int = 0,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.index = load_index(self.cache_dir)
        self.videos = self.index["videos"]
        self.class_names: list[str] = list(self.index["class_names"])
        self.clip_len = clip_len
        self.train = train
        self.num_clips = num_clips
        self.seed = seed
        self.epoch = 0
        if not self.videos:
            raise ValueError(f"{self.cache_dir}: the feature cache holds no video")

    def set_epoch(self, epoch: int) -> None:
        """Change the random clips drawn in training (called by the data module each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def labels(self) -> list[int]:
        return [int(v["label"]) for v in self.videos]

    def __getitem__(self, i: int) -> dict[str, Any]:
        entry = self.videos[i]
        array = np.load(self.cache_dir / "videos" / f"{entry['id']}.npy", mmap_mode="r")
        rng = np.random.default_rng(self.seed + self.epoch * 1_000_003 + i) if self.train else None
        starts = clip_starts(len(array), self.clip_len, num_clips=self.num_clips, rng=rng)
        views = np.stack([take_clip(array, int(s), self.clip_len) for s in starts])  # (V, T, ...)
        return {
            "features": torch.from_numpy(views),
            "label": int(entry["label"]),
            "index": i,
        }


class WindowFeatureDataset(Dataset):
    """Windows of cached features from untrimmed videos, labelled by their overlap with segments.

    Every window of ``clip_len`` cached steps gets the label covering at least ``min_share`` of
    its source frames (see :func:`~video_lstm.data.datasets.window_labels`): an action when the
    action covers it, ``background`` (index 0) when the idle part does; other windows
    (straddling two actions) are not used.

    Training draws ``samples_per_epoch`` windows per epoch, class-balanced: item ``i`` takes a
    random window of class ``i mod K`` (over the classes that have windows), so background, which
    fills most of an untrimmed video, does not drown the actions. Evaluation takes every window
    at stride ``clip_len // 2``, in order.

    Args:
        cache_dir: A finished cache of untrimmed videos (entries with ``segments``).
        clip_len: Steps per window.
        train: Class-balanced random windows, or all windows at a fixed stride.
        min_share: Share of a window its label must cover.
        samples_per_epoch: Training windows per epoch (default: the number of windows at stride
            ``clip_len // 4``).
        class_balanced: Draw classes equally (``False``: windows uniformly).
        reverse_swap: Training augmentation for classes that come in time-reversed pairs
            (grow/shrink, pan_left/pan_right...): with probability ``reverse_prob`` a window is
            played backwards and takes the label ``reverse_swap[label]`` (``-1``: never
            reversed, the class's partner is missing). Exact on cached
            features (they are per frame); ``None``: off.
        reverse_prob: Probability of a reversed window.
        background_share: With ``class_balanced``, the share of training windows drawn from
            ``background`` (index 0); the actions share the rest equally. ``None``: background
            is one class among ``K`` (``1 / K``). Background is the most varied class (object
            gone, still or shaking camera, distractors moving, action edges), so it needs more
            than its ``1 / K``.
        seed: Base seed.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        *,
        clip_len: int,
        train: bool,
        min_share: float = 0.5,
        samples_per_epoch: int | None = None,
        class_balanced: bool = True,
        reverse_swap: Sequence[int] | None = None,
        reverse_prob: float = 0.5,
        background_share: float | None = None,
        seed: int = 0,
    ) -> None:
        from video_lstm.data.datasets import segment_frame_labels, window_labels
        from video_lstm.data.sampling import window_frame_spans

        self.reverse_swap = list(reverse_swap) if reverse_swap is not None else None
        self.reverse_prob = reverse_prob
        if background_share is not None and not 0.0 <= background_share < 1.0:
            raise ValueError(f"background_share must be in [0, 1), got {background_share}")
        self.background_share = background_share
        self.cache_dir = Path(cache_dir)
        self.index = load_index(self.cache_dir)
        self.class_names: list[str] = list(self.index["class_names"])
        interval = int(self.index["frame_interval"])
        self.videos = self.index["videos"]
        if not self.videos or any("segments" not in v for v in self.videos):
            raise ValueError(f"{self.cache_dir}: not a cache of untrimmed videos with segments")
        self.clip_len, self.train, self.seed, self.epoch = clip_len, train, seed, 0
        k = len(self.class_names)
        windows = []  # (video, start step, label)
        step = 1 if train else max(1, clip_len // 2)
        for vi, v in enumerate(self.videos):
            n = int(v["num_steps"])
            starts = np.arange(0, max(1, n - clip_len + 1), step)
            if not train and n > clip_len and starts[-1] != n - clip_len:
                starts = np.append(starts, n - clip_len)  # the tail
            spans = window_frame_spans(
                starts, window=clip_len, frame_interval=interval, num_frames=v["num_frames"]
            )
            frames = segment_frame_labels(
                v["segments"], v["num_frames"], v["fps"], self.class_names
            )
            labels = window_labels(frames, spans, k, min_share=min_share)
            windows += [(vi, int(s), int(y)) for s, y in zip(starts, labels, strict=True) if y >= 0]
        if not windows:
            raise ValueError(f"{self.cache_dir}: no window of {clip_len} steps has a clear label")
        self.windows = windows
        self.by_class = {c: [i for i, w in enumerate(windows) if w[2] == c] for c in range(k)}
        self.present = [c for c in range(k) if self.by_class[c]]
        self.class_balanced = class_balanced
        self.samples_per_epoch = samples_per_epoch or max(
            len(self.present), len(windows) // max(1, clip_len // 4)
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_epoch if self.train else len(self.windows)

    @property
    def labels(self) -> list[int]:
        return [w[2] for w in self.windows]

    def class_counts(self) -> dict[str, int]:
        """Windows per class name (all candidate windows)."""
        return {self.class_names[c]: len(self.by_class[c]) for c in range(len(self.class_names))}

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self.train:
            rng = np.random.default_rng(self.seed + self.epoch * 1_000_003 + i)
            if self.class_balanced:
                actions = [c for c in self.present if c != 0]
                share = self.background_share
                if share is not None and 0 in self.present and actions:
                    c = 0 if rng.random() < share else actions[int(rng.integers(len(actions)))]
                else:
                    c = self.present[i % len(self.present)]
                pool = self.by_class[c]
                w = pool[int(rng.integers(len(pool)))]
            else:
                w = int(rng.integers(len(self.windows)))
        else:
            w = i
        vi, start, label = self.windows[w]
        array = np.load(self.cache_dir / "videos" / f"{self.videos[vi]['id']}.npy", mmap_mode="r")
        clip = take_clip(array, start, self.clip_len)[None]  # (1, T, ...)
        if self.train and self.reverse_swap is not None and rng.random() < self.reverse_prob:
            swapped = self.reverse_swap[label]
            if swapped >= 0:  # -1: the class's partner is not in the dataset, keep it forward
                clip = np.ascontiguousarray(clip[:, ::-1])
                label = swapped
        return {"features": torch.from_numpy(clip), "label": label, "index": w}


# The config fields that decide what the backbone outputs (the temporal model may differ).
BACKBONE_FIELDS = ("backbone", "stage", "pool_size", "frame_size", "pretrained", "weights_path")


def backbone_signature(model: torch.nn.Module) -> dict[str, Any]:
    """What makes two models' per-frame features interchangeable (backbone, stage, pooling)."""
    config = model.config
    sig = {k: getattr(config, k) for k in BACKBONE_FIELDS}
    sig["uses_maps"] = bool(config.uses_maps)
    if sig["uses_maps"]:
        sig["pool_size"] = 1  # maps are cached whole; a model's own pooling comes after the cache
    return json.loads(json.dumps(sig, default=str))


def check_compatible(model: torch.nn.Module, index: dict[str, Any], cache_dir: str | Path) -> None:
    """Refuse to train ``model`` on features cached with another backbone setup.

    Cached maps also serve a vector model (LSTM/GRU/mean-pool) of the same backbone and stage:
    its vectors are the maps average-pooled to ``pool_size x pool_size`` (see
    :func:`adapt_features`), exactly what its backbone computes. A model that reads maps ignores
    ``pool_size`` in the backbone (its own pooling comes after the cache).

    Raises:
        ValueError: The signatures differ (the message shows both).
    """
    mine = backbone_signature(model)
    cached = dict(index.get("backbone") or {})
    if cached.get("uses_maps"):
        cached.update(uses_maps=mine["uses_maps"], pool_size=mine["pool_size"])
    if cached != mine:
        raise ValueError(
            f"{cache_dir}: features were cached with {index.get('backbone')}, but the model's "
            f"backbone is {mine}; extract features with this model or pick the matching cache"
        )


def adapt_features(feats: torch.Tensor, config: Any) -> torch.Tensor:
    """Cached maps ``(B, T, C, h, w)`` -> the vectors ``(B, T, C*s*s)`` a vector model expects.

    Same pooling as the backbone's vector output (adaptive average pool to ``s x s``, flatten);
    anything else is returned unchanged.
    """
    if feats.dim() != 5 or config.uses_maps:
        return feats
    b, t = feats.shape[:2]
    pooled = F.adaptive_avg_pool2d(feats.flatten(0, 1), config.pool_size)  # (B*T, C, s, s)
    return pooled.flatten(1).view(b, t, -1)  # (B, T, C*s*s)
