"""Adapt a recurrent model to carried state: fine-tune its temporal model and head on long
stretches of the training videos, stepped from a zero state with a loss at every step.

A model trained on short windows (4 steps from a zero state) has never seen its state after 40
steps; carried forward (``video-lstm watch --state carry``) it drifts (README, "Live streams").
Here the backbone stays frozen and its per-step features are computed once; the temporal
model and head are then trained through ``VideoClassifier.step_features`` over random
stretches of ``seq_steps`` sampled steps of each training video, the label of every step being
the ground truth at its frame. The result is a checkpoint whose ``meta.extra["stream_adapted"]``
records how; ``watch --state auto`` carries the state for such a checkpoint.

Two ways to cut the steps (``tbptt_steps``): stretches from a zero state (the default), or
truncated BPTT over endless streams of the videos played one after the other, the state
carried (detached) from chunk to chunk as ``watch`` carries it, with random restarts. Either
way ``delay_steps`` (2 by default) trains step ``t``'s output on the label of step
``t - delay_steps``, and ``watch`` (``inference.online``) gives step ``t`` the output of step
``t + delay_steps``: the same small look-ahead the windows have, which is what brought carried
state level with the windows' segments (README, "Live streams").

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
    tbptt_steps: int = 0,
    reset_prob: float = 0.0,
    delay_steps: int = 2,
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
        lr: Adam learning rate (with ``tbptt_steps``: the peak of a cosine schedule).
        tbptt_steps: 0: each stretch from a zero state (``seq_steps``, ``chain``). Else
            truncated BPTT over endless streams: ``batch_size`` streams, each the training
            videos in random order one after the other, cut into chunks of this many steps
            with the state carried (detached) from one chunk to the next, as ``watch`` carries
            it; ``epochs`` are then passes over all the videos' steps.
        reset_prob: ``tbptt_steps``: chance that a stream restarts from a zero state at a
            chunk boundary (a new connection), so both a fresh and an old state are trained.
        delay_steps: Each step's output is trained on the label ``delay_steps`` steps back, and
            ``watch --state carry`` gives step ``t`` the output of step ``t + delay_steps``
            (recorded in the checkpoint): a bounded look-ahead like the windows' own (a window
            of ``clip_len`` steps sees up to ``clip_len - 1`` steps past the ones it scores),
            still one recurrence step per sampled frame.
        seed: Seed of the stretches' order and offsets.
        threads: CPU threads (``None``: the idle cores).
        progress: Print one line per epoch.

    Returns:
        ``out``.
    """
    import torch

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
    fit = _fit_tbptt if tbptt_steps else _fit_stretches
    fit(model, data, epochs=epochs, seq_steps=seq_steps, chain=chain, batch_size=batch_size,
        lr=lr, rng=rng, tbptt_steps=tbptt_steps, reset_prob=reset_prob,
        delay_steps=delay_steps, progress=progress, t0=t0)  # fmt: skip
    meta = copy.deepcopy(meta)
    meta.extra = {**(meta.extra or {}), "stream_adapted": {
        "from": str(checkpoint), "subset": subset, "epochs": epochs, "seq_steps": seq_steps,
        "chain": chain, "tbptt_steps": tbptt_steps, "reset_prob": reset_prob,
        "delay_steps": delay_steps, "lr": lr, "seed": seed}}  # fmt: skip
    for p in model.parameters():
        p.requires_grad_(True)
    save_checkpoint(out, model, meta)
    return str(out)


def _fit_stretches(model: Any, data: list, *, epochs: int, seq_steps: int, chain: int,
                   batch_size: int, lr: float, rng: Any, delay_steps: int, progress: bool,
                   t0: float, **_: Any) -> None:  # fmt: skip
    """Stretches of ``seq_steps`` steps of ``chain`` chained videos, each from a zero state."""
    import torch

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
            y = _delayed(y, delay_steps)
            state = model.init_state(len(stretches), x[:, 0])
            loss, state = _chunk_loss(model, x, y, state)
            n = int((y >= 0).sum())
            opt.zero_grad()
            (loss / max(1, n)).backward()
            opt.step()
            total, count = total + float(loss.detach()), count + n
        if progress:
            print(f"adapt-stream: epoch {epoch + 1}/{epochs} loss {total / max(1, count):.4f} "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)  # fmt: skip


def _delayed(y: Any, delay: int) -> Any:
    """Targets of steps ``(B, T)`` labels: step ``s`` learns the label of ``s - delay``."""
    if not delay:
        return y
    out = y.new_full(y.shape, -100)
    out[:, delay:] = y[:, :-delay]
    return out


def _chunk_loss(model: Any, x: Any, y: Any, state: tuple) -> tuple[Any, tuple]:
    """Summed cross-entropy of stepping ``x`` ``(B, T, ...)`` from ``state`` (``y`` -100:
    no loss), and the state after the last step."""
    import torch.nn.functional as F

    loss = x.new_zeros(())
    for s in range(x.shape[1]):
        logits, state = model.step_features(x[:, s], state)
        loss = loss + F.cross_entropy(logits, y[:, s], ignore_index=-100, reduction="sum")
    return loss, state


class _Stream:
    """One endless training stream: the videos in random order, one after the other; its
    targets run ``delay`` steps behind its features (none before a (re)start)."""

    def __init__(self, data: list, rng: Any, delay: int) -> None:
        self.data, self.rng, self.delay = data, rng, delay
        self.restart()

    def restart(self) -> None:
        self.feats: list = []
        self.labels: list = [np.full(self.delay, -100, dtype=np.int64)]
        self.have = 0

    def take(self, steps: int) -> tuple[Any, Any]:
        import torch

        while self.have < steps:
            f, lab = self.data[int(self.rng.integers(len(self.data)))]
            self.feats.append(f)
            self.labels.append(lab.numpy().astype(np.int64))
            self.have += len(f)
        feats, labels = torch.cat(self.feats), np.concatenate(self.labels)
        self.feats, self.labels = [feats[steps:]], [labels[steps:]]
        self.have -= steps
        return feats[:steps], torch.as_tensor(labels[:steps])


def _fit_tbptt(model: Any, data: list, *, epochs: int, batch_size: int, lr: float, rng: Any,
               tbptt_steps: int, reset_prob: float, delay_steps: int, progress: bool,
               t0: float, **_: Any) -> None:  # fmt: skip
    """Truncated BPTT over ``batch_size`` endless streams, the state carried across chunks."""
    import torch

    params = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    opt = torch.optim.Adam(params, lr=lr)
    steps_per_epoch = max(1, sum(len(f) for f, _ in data) // (batch_size * tbptt_steps))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    streams = [_Stream(data, rng, delay_steps) for _ in range(batch_size)]
    state = None
    for epoch in range(epochs):
        total, count = 0.0, 0
        for _ in range(steps_per_epoch):
            chunks = [st.take(tbptt_steps) for st in streams]
            x = torch.stack([f for f, _ in chunks])
            y = torch.stack([lab for _, lab in chunks])
            if state is None:
                state = model.init_state(batch_size, x[:, 0])
            loss, state = _chunk_loss(model, x, y, state)
            n = int((y >= 0).sum())
            opt.zero_grad()
            (loss / max(1, n)).backward()
            opt.step()
            sched.step()
            total, count = total + float(loss.detach()), count + n
            # Carried, not back-propagated through: the next chunk starts where this one ended.
            fresh = model.init_state(batch_size, x[:, 0])
            keep = torch.tensor([bool(rng.random() >= reset_prob) for _ in streams])
            for st, kept in zip(streams, keep.tolist(), strict=True):
                if not kept:
                    st.restart()
            mask = keep
            state = tuple(
                torch.where(mask.view(-1, *[1] * (s.dim() - 1)), s.detach(), z)
                for s, z in zip(state, fresh, strict=True)
            )
        if progress:
            print(f"adapt-stream: epoch {epoch + 1}/{epochs} loss {total / max(1, count):.4f} "
                  f"lr {sched.get_last_lr()[0]:.2g} ({time.monotonic() - t0:.0f} s)",
                  flush=True)  # fmt: skip
