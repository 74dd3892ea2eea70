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
a rerun skips those and computes the rest. A cache made with another model or preprocessing is
refused rather than silently mixed.

Augmentation is limited on cached features: spatial augmentation (random crop, colour jitter)
would need one cached copy per augmentation, so the cache holds the eval view only. Training
still draws a random clip in time (random start) from each video every epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from video_lstm.data.sampling import clip_starts, fit_to_length
from video_lstm.errors import VideoError
from video_lstm.io.files import atomic_path

log = logging.getLogger(__name__)

CACHE_FILE = "cache.json"
INDEX_FILE = "index.json"


def video_id(path: str | Path) -> str:
    """A stable, file-system-safe id for a video: its stem plus a short hash of the full path."""
    p = Path(path)
    digest = hashlib.sha1(str(p).encode()).hexdigest()[:10]
    return f"{p.stem}-{digest}"


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
) -> np.ndarray:
    """Per-frame backbone features of decoded frames.

    Args:
        model: A ``VideoClassifier`` (only ``forward_features`` is used).
        frames: uint8 ``(T, H, W, 3)``.
        transform: uint8 ``(T, H, W, C)`` -> float ``(T, C, S, S)``.
        device: Where to run the backbone.

    Returns:
        float16 ``(T, D)`` or ``(T, C, h, w)``.
    """
    clip = transform(frames).unsqueeze(0).to(device)  # (1, T, C, S, S)
    feats = model.forward_features(clip)  # (1, T, D) or (1, T, C, h, w)
    return feats[0].float().cpu().numpy().astype(np.float16)


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
) -> dict[str, Any]:
    """Compute and store per-frame features for every video; resume an interrupted run.

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

    Returns:
        The index (also written to ``out_dir/index.json``): ``class_names``, ``videos`` (finished
        entries) and ``failed`` (``{"path", "error"}`` for videos that could not be read).

    Raises:
        ValueError: ``out_dir`` holds a cache made with another model or preprocessing.
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
        "mean": [float(m) for m in model.mean],
        "std": [float(s) for s in model.std],
    }
    cache_file = out / CACHE_FILE
    if cache_file.is_file():
        old = json.loads(cache_file.read_text())
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
    for path, label in bar:
        vid = video_id(path)
        npy = out / "videos" / f"{vid}.npy"
        entry = {"id": vid, "path": str(path), "label": int(label)}
        if npy.is_file() and _is_complete_npy(npy):
            videos.append({**entry, "num_steps": int(np.load(npy, mmap_mode="r").shape[0])})
            continue
        try:
            with open_video(path, backend=backend, size=decode_size or frame_size) as reader:
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


# The config fields that decide what the backbone outputs (the temporal model may differ).
BACKBONE_FIELDS = ("backbone", "stage", "pool_size", "frame_size", "pretrained", "weights_path")


def backbone_signature(model: torch.nn.Module) -> dict[str, Any]:
    """What makes two models' per-frame features interchangeable (backbone, stage, pooling)."""
    config = model.config
    sig = {k: getattr(config, k) for k in BACKBONE_FIELDS}
    sig["uses_maps"] = bool(config.uses_maps)
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
