"""Fill a feature cache for a training config (the model's frozen backbone, the data's videos).

    video-lstm extract-features --config configs/data/synthetic.yaml \\
        --config configs/compare/lstm.yaml [--device cuda] [--subsets train test] [--threads 2]

The console script parses this function's own options (``--subsets``, ``--device``,
``--chunk_frames``, ``--progress``) from its signature and hands everything else to the training
parser (``config_args``).

The training config decides everything: the model (its backbone, stage, pooling, frame size),
the dataset (root, layout, split), ``frame_interval``, ``decode_size`` and ``data.features_dir``.
Interrupted runs resume (finished per-video files are kept).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)


def extract_for_config(
    config_args: list[str],
    *,
    subsets: list[Literal["train", "test", "val"]] | None = None,
    device: str = "cpu",
    chunk_frames: int = 64,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Cache per-frame features for each subset into ``<data.features_dir>/<subset>``.

    Args:
        config_args: Training CLI arguments without a subcommand (``--config ...`` etc.).
        subsets: ``"train"``, ``"test"`` (the held-out subset), ``"val"`` (calibration videos);
            default: train and test, and val when ``data.val_subset`` is set.
        device: Where the backbone runs.
        chunk_frames: Frames per backbone pass.
        progress: Show progress bars.

    Returns:
        ``{subset: index}`` as written to each ``index.json``.

    Raises:
        ValueError: The config has no ``data.features_dir``.
    """
    from video_lstm.data.features import extract_features
    from video_lstm.training.cli import main

    cli = main(list(config_args), run=False, trainer=False)  # a Trainer would only log
    dm, model = cli.datamodule, cli.model.model
    if not dm.features_dir:
        raise ValueError("the config sets no data.features_dir: where should the cache go?")
    if subsets is None:
        subsets = ("train", "test", "val") if dm.val_subset else ("train", "test")
    result = {}
    if str(device) == "cpu":
        from video_lstm.inference.predictor import keep_freed_memory

        keep_freed_memory()  # as the Predictor does: the CNN's layers reuse freed blocks
    for subset in subsets:
        manifest = dm.manifest(subset)
        out = Path(dm.features_dir) / subset
        if dm.untrimmed:
            samples = [(str(v.path), -1) for v in manifest.videos]
            segments = [
                [(g.start_s, g.end_s, g.label) for g in v.segments] for v in manifest.videos
            ]
        else:
            samples, segments = [(str(p), y) for p, y in manifest.samples], None
        index = extract_features(
            model,
            samples,
            manifest.training_classes,  # what the model outputs: background counted once
            out,
            frame_size=dm.frame_size,
            frame_interval=dm.frame_interval,
            decode_size=dm.decode_size,
            chunk_frames=chunk_frames,
            device=device,
            progress=progress,
            segments=segments,
            source=dm.source(subset),
        )
        log.info("%s: %d videos cached, %d failed", out, len(index["videos"]), len(index["failed"]))
        result[subset] = index
    return result
