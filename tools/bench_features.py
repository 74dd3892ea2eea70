"""Epoch time of temporal-model training: cached features vs decoding clips on the fly.

    python tools/bench_features.py --config configs/data/synthetic.yaml \\
        --config configs/compare/convlstm.yaml [--batches 2] [--repeats 3]

Both runs use the same model, data and batch size in this process. The cached run times whole
epochs; the on-the-fly run (decode + transform + frozen backbone + temporal model) times
``--batches`` batches and scales to the epoch's size. Median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from video_lstm.training.cli import main as cli_main


def time_batches(module, loader, max_batches: int | None) -> tuple[float, int]:
    """Seconds and videos for up to ``max_batches`` training steps (data loading included)."""
    params = [
        p
        for n, p in module.model.named_parameters()
        if p.requires_grad and not n.startswith("backbone.")
    ]
    opt = torch.optim.AdamW(params, lr=1e-4)
    module.train()
    videos, t0 = 0, time.perf_counter()
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        loss = module._loss(module(batch), batch["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        videos += len(batch["label"])
    return time.perf_counter() - t0, videos


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batches", type=int, default=2, help="on-the-fly batches timed per repeat")
    p.add_argument("--repeats", type=int, default=3)
    args, rest = p.parse_known_args(argv)
    cli = cli_main(rest, run=False)
    module, dm = cli.model, cli.datamodule
    torch.set_grad_enabled(True)

    dm.setup("fit")
    module.on_features = True
    epoch_videos = len(dm.datasets["train"])
    cached = [time_batches(module, dm.train_dataloader(), None) for _ in range(args.repeats)]

    features_dir, dm.features_dir = dm.features_dir, None
    dm.datasets = {}
    dm.setup("fit")
    module.on_features = False
    live = [time_batches(module, dm.train_dataloader(), args.batches) for _ in range(args.repeats)]
    dm.features_dir = features_dir

    per_cached = statistics.median(t / n for t, n in cached)
    per_live = statistics.median(t / n for t, n in live)
    print(
        f"model {module.model.config.temporal} on {module.model.config.backbone}, "
        f"{epoch_videos} training videos, clip_len {dm.clip_len}, batch {dm.batch_size}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"{'mode':<22}{'videos timed':>14}{'s / video':>12}{'epoch s':>10}{'ratio':>8}")
    rows = [("decode on the fly", live, per_live), ("cached features", cached, per_cached)]
    for name, runs, per in rows:
        print(
            f"{name:<22}{runs[0][1]:>14}{per:>12.4f}{per * epoch_videos:>10.1f}"
            f"{per_live / per:>8.1f}x"
        )


if __name__ == "__main__":
    main()
