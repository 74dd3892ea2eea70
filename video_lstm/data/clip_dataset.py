"""Map-style clip dataset: decode a clip per video (training) or several (video-level evaluation).

Each item is ``{"clip": float (V, T, C, S, S), "label": int, "index": int}``; ``V = 1`` in
training, ``V = num_clips`` views spread over the video at evaluation (the module averages their
scores). Training clips are random in time, drawn from ``seed + epoch + index`` so an epoch is
reproducible, and change every epoch (:meth:`ClipDataset.set_epoch`).

Frames are decoded at a reduced short side (``decode_size``) inside the decoder, which is much
cheaper than decoding full resolution and resizing afterwards.

Broken videos in training: a video that cannot be decoded is logged once (with the file and
reason), remembered, and replaced by another video of the dataset, so one bad file does not end
an epoch. At evaluation (``train=False``) the error is raised: a metric silently computed on
fewer videos would be misleading.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from video_lstm.data.sampling import clip_indices
from video_lstm.errors import VideoError

log = logging.getLogger(__name__)


class ClipDataset(Dataset):
    """Clips decoded from ``(path, label)`` samples.

    Args:
        samples: ``(video path, label index)`` pairs (``Manifest.samples``).
        class_names: Label names.
        transform: ``transform(uint8 (T, H, W, C), rng) -> float (T, C, S, S)`` (the train or
            eval preset of ``video_lstm.data.transforms``).
        clip_len: Frames per clip.
        frame_interval: Distance between clip frames in the source video.
        train: Random clip per epoch (and broken videos substituted) or ``num_clips`` views.
        num_clips: Views per video at evaluation.
        decode_size: Short side the decoder resizes to (``None``: full resolution).
        seed: Base seed for the training clips.
        backend: Decoder backend for ``open_video``.
    """

    def __init__(
        self,
        samples: Sequence[tuple[str | Path, int]],
        class_names: Sequence[str],
        *,
        transform: Callable[..., torch.Tensor],
        clip_len: int,
        frame_interval: int = 1,
        train: bool = False,
        num_clips: int = 1,
        decode_size: int | None = None,
        seed: int = 0,
        backend: str = "auto",
    ) -> None:
        if not samples:
            raise ValueError("ClipDataset needs at least one sample")
        if clip_len < 1 or frame_interval < 1 or num_clips < 1:
            raise ValueError(
                f"clip_len, frame_interval and num_clips must be >= 1, got "
                f"{clip_len}, {frame_interval}, {num_clips}"
            )
        self.samples = [(str(p), int(y)) for p, y in samples]
        self.class_names = list(class_names)
        self.transform = transform
        self.clip_len = clip_len
        self.frame_interval = frame_interval
        self.train = train
        self.num_clips = num_clips
        self.decode_size = decode_size
        self.seed = seed
        self.backend = backend
        self.epoch = 0
        self.broken: dict[str, str] = {}  # path -> reason, logged once per worker

    def set_epoch(self, epoch: int) -> None:
        """Draw different training clips this epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [y for _, y in self.samples]

    def load(self, i: int, rng: np.random.Generator | None) -> torch.Tensor:
        """Decode and transform the view(s) of video ``i``: float ``(V, T, C, S, S)``.

        Raises:
            VideoError: The video cannot be read.
        """
        from video_lstm.io.decode import open_video

        path = self.samples[i][0]
        with open_video(path, backend=self.backend, size=self.decode_size) as reader:
            views = clip_indices(
                reader.num_frames,
                clip_len=self.clip_len,
                frame_interval=self.frame_interval,
                num_clips=self.num_clips,
                rng=rng,
            )
            # One decode for all views: sorted unique indices, then gather per view.
            wanted = np.unique(np.concatenate(views))
            frames = reader.get_frames(wanted)  # (N, H, W, 3) uint8
        pos = {int(f): k for k, f in enumerate(wanted)}
        # The item's rng also drives the augmentation: one (seed, epoch, index) -> one clip.
        return torch.stack(
            [self.transform(frames[[pos[int(f)] for f in v]], rng) for v in views]
        )  # (V, T, C, S, S)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = np.random.default_rng(self.seed + self.epoch * 1_000_003 + i) if self.train else None
        if not self.train:
            return {"clip": self.load(i, None), "label": self.samples[i][1], "index": i}
        for attempt in range(len(self.samples)):
            j = i if attempt == 0 else int(rng.integers(0, len(self.samples)))
            if self.samples[j][0] in self.broken:
                continue
            try:
                return {"clip": self.load(j, rng), "label": self.samples[j][1], "index": j}
            except VideoError as exc:
                self.broken[self.samples[j][0]] = exc.reason
                log.warning("training: skipping unreadable video (substituted): %s", exc)
        raise RuntimeError("ClipDataset: no readable video left in the training set")
