"""Adapt a recurrent model to carried state: fine-tune its temporal model and head on long
stretches of the training videos, stepped from a zero state with a loss at every step.

A model trained on short windows (4 steps from a zero state) has never seen its state after 40
steps; carried forward (``video-lstm watch --state carry``) it drifts (README, "Live streams").
Here the backbone stays frozen and its per-step features are computed once; the temporal
model and head are then trained through ``VideoClassifier.step_features`` over random
stretches of ``seq_steps`` sampled steps of each training video, the label of every step being
the ground truth at its frame. The result is a checkpoint whose ``meta.extra["stream_adapted"]``
records how; ``watch --state auto`` carries the state for such a checkpoint.

    video-lstm adapt-stream model.ckpt streaming.ckpt --root data --kind segments_csv \\
        --manifest_args '{annotations: annotations.csv}'
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np

__all__ = ["adapt_for_streaming"]


def _step_features(model: Any, predictor: Any, video: Any, meta: Any, names: list[str]) -> Any:
    """(features (T, ...), step labels (T,)) of one training video."""
    import torch

    from video_lstm.data.datasets.base import segment_frame_labels
    from video_lstm.data.sampling import sampled_frames
    from video_lstm.io.decode import open_video

    size = getattr(meta, "decode_size", None) or meta.frame_size
    with open_video(video.path, size=size, backend="pyav") as reader:
        idx = sampled_frames(reader.num_frames, meta.frame_interval)
        feats = predictor.features(reader.get_frames(idx)).float().cpu()
        labels = segment_frame_labels(video.segments, reader.num_frames, reader.fps, names)[idx]
    return feats.contiguous(), torch.as_tensor(labels)


def adapt_for_streaming(
    checkpoint: str,
    out: str,
    *,
    root: str,
    kind: str = "segments_csv",
    manifest_args: dict[str, Any] | None = None,
    subset: str = "train",
    epochs: int = 15,
    seq_steps: int = 96,
    chain: int = 4,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = True,
) -> str:
    """Fine-tune ``checkpoint``'s temporal model and head for carried state (module docstring).

    Args:
        checkpoint: A checkpoint with a recurrent, one-directional temporal model.
        out: Where the adapted checkpoint goes.
        root: Dataset root of the training videos (temporal annotations).
        kind: A temporal dataset kind (``segments_csv``, ``activitynet``, ...).
        manifest_args: The kind's options (e.g. ``{annotations: annotations.csv}``).
        subset: The videos trained on.
        epochs: Passes over the videos.
        seq_steps: Sampled steps per training stretch (each from a zero state).
        chain: Training videos played one after the other per stretch (short training videos
            chained into stretches as long as a held-out stream's: the state must last).
        batch_size: Stretches per step of the optimiser.
        lr: Adam learning rate.
        seed: Seed of the stretches' order and offsets.
        threads: CPU threads (``None``: the idle cores).
        progress: Print one line per epoch.

    Returns:
        ``out``.
    """
    import torch
    import torch.nn.functional as F

    from video_lstm.data.datasets import DatasetSpec
    from video_lstm.inference.predictor import Predictor
    from video_lstm.models.checkpoint import load_checkpoint, save_checkpoint
    from video_lstm.threads import apply_threads

    apply_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model, meta = load_checkpoint(checkpoint)
    if not getattr(model, "stateful", False):
        raise ValueError(f"{checkpoint}: the temporal model does not carry state (meanpool or "
                         "bidirectional); nothing to adapt")  # fmt: skip
    names = list(meta.class_names)
    manifest = DatasetSpec(kind=kind, root=root, options=manifest_args or {}).manifest(subset)
    predictor = Predictor(model, meta, device="cpu")
    t0 = time.monotonic()
    data = [_step_features(model, predictor, v, meta, names) for v in manifest.videos]
    if progress:
        steps = sum(len(f) for f, _ in data)
        print(f"adapt-stream: {len(data)} videos, {steps} steps of features "
              f"({time.monotonic() - t0:.0f} s)", flush=True)  # fmt: skip
    model.eval()  # BatchNorm keeps its statistics, dropout is off: only the weights move
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    params = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    opt = torch.optim.Adam(params, lr=lr)
    for epoch in range(epochs):
        order = rng.permutation(len(data))
        total, count = 0.0, 0
        for lo in range(0, len(order), batch_size):
            stretches = []
            for i in order[lo : lo + batch_size]:
                others = rng.integers(0, len(data), chain - 1)
                feats = torch.cat([data[j][0] for j in (i, *others)])
                labels = torch.cat([data[j][1] for j in (i, *others)])
                t = len(feats)
                start = int(rng.integers(0, max(1, t - seq_steps + 1)))
                stretches.append(
                    (feats[start : start + seq_steps], labels[start : start + seq_steps])
                )
            steps = max(len(f) for f, _ in stretches)
            x = torch.zeros(len(stretches), steps, *stretches[0][0].shape[1:])
            y = torch.full((len(stretches), steps), -100, dtype=torch.long)  # -100: padding
            for b, (f, lab) in enumerate(stretches):
                x[b, : len(f)], y[b, : len(lab)] = f, lab
            state = model.init_state(len(stretches), x[:, 0])
            loss = x.new_zeros(())
            for s in range(steps):
                logits, state = model.step_features(x[:, s], state)
                loss = loss + F.cross_entropy(logits, y[:, s], ignore_index=-100, reduction="sum")
            n = int((y >= 0).sum())
            opt.zero_grad()
            (loss / max(1, n)).backward()
            opt.step()
            total, count = total + float(loss.detach()), count + n
        if progress:
            print(f"adapt-stream: epoch {epoch + 1}/{epochs} loss {total / max(1, count):.4f} "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)  # fmt: skip
    meta = copy.deepcopy(meta)
    meta.extra = {**(meta.extra or {}), "stream_adapted": {
        "from": str(checkpoint), "subset": subset, "epochs": epochs, "seq_steps": seq_steps,
        "chain": chain,
        "lr": lr, "seed": seed}}  # fmt: skip
    for p in model.parameters():
        p.requires_grad_(True)
    save_checkpoint(out, model, meta)
    return str(out)
