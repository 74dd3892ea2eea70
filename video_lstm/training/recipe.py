"""The fast untrimmed recipe: make a small untrimmed set, train with background, calibrate.

For the demo and for a first model on a new machine::

    from video_lstm.training.recipe import train_untrimmed
    result = train_untrimmed("demo_output")
    result.checkpoint       # calibrated: annotate/run use its segment rules by default
    result.test_videos      # held-out untrimmed videos (scenes and objects never trained on)
    result.data_root        # annotations.csv (kind "segments_csv") describes every video

Steps (each resumes: a second call reuses what exists):

1. :func:`~video_lstm.data.synthetic.write_untrimmed_dataset` with the defaults of
   :class:`~video_lstm.data.synthetic.UntrimmedSpec` (the same as ``video-lstm make-untrimmed``'s):
   ``train``/``val``/``test`` videos of a camera panning, tilting, zooming and rolling over real
   photos (:mod:`video_lstm.data.synthetic.camera`) between still or hand-held idle stretches;
   each subset films photos of its own, so the test videos show photos training never saw.
2. Feature cache of the frozen backbone for the three subsets (``untrimmed_demo.yaml``, package
   data in :mod:`video_lstm.configs`, also linked as ``configs/untrimmed_demo.yaml``:
   every 4th frame at 96 px).
3. Training on windows drawn class-balanced from the cache, ``background`` as a class, each
   window also played backwards as its partner class (``data.time_reverse_swap``);
   ``model.ckpt`` is the last epoch.
4. ``video-lstm calibrate`` on the ``val`` videos: threshold, smoothing, minimum duration and
   merge gap chosen there and stored in ``model.ckpt``.

What it reaches on held-out videos, what it costs, and how its settings were chosen (a study
over three seeds): the README, section 2b.

Then ``video-lstm annotate VIDEO model.ckpt OUT`` (or ``run``) labels the idle stretches as
background and the actions by name, and ``video-lstm evaluate model.ckpt REPORT --root
<data_root> --kind segments_csv --manifest_args '{annotations: annotations.csv}'`` scores it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from video_lstm.configs import config_file

# Package data, so an installed wheel's `video-lstm demo` finds it from any folder.
CONFIG = config_file("untrimmed_demo.yaml")


@dataclass
class RecipeResult:
    checkpoint: str  # calibrated model
    data_root: str  # the dataset (annotations.csv, activitynet.json, videos/)
    test_videos: str  # folder of the held-out untrimmed videos
    calibration: dict[str, Any]  # the stored rules and what they reached on val


def train_untrimmed(
    out_dir: str = "demo_output",
    *,
    videos: dict[str, int] | None = None,
    max_epochs: int | None = None,
    seed: int = 0,
    config: str = str(CONFIG),
    progress: bool = True,
    log: Any = print,
) -> RecipeResult:
    """Make the small untrimmed set, train the compact model with background, calibrate.

    Args:
        out_dir: Everything goes here: ``data/`` (videos, annotations, features), ``runs/``,
            ``model.ckpt``.
        videos: Videos per subset (default ``UntrimmedSpec().videos``: 160 train, 12 val, 6 test).
        max_epochs: Training epochs (default: the config's).
        seed: Seed of the data and of training.
        config: The training config (model + data + trainer).
        progress: Show progress bars and per-epoch lines.
        log: Where step lines go (``print``; ``None``: nowhere): one line as each step starts
            (``"dataset: ..."``, ``"features: ..."``, ``"training: ..."``,
            ``"calibration: ..."``), indented lines for its results.

    Returns:
        Where the calibrated checkpoint and the test videos are.
    """
    import yaml

    from video_lstm.data.datasets import DatasetSpec
    from video_lstm.data.synthetic import UntrimmedSpec, write_untrimmed_dataset
    from video_lstm.io.files import atomic_path
    from video_lstm.training.calibrate import calibrate_checkpoint
    from video_lstm.training.cli import main as train_main
    from video_lstm.training.extract import extract_for_config

    say = log or (lambda *_: None)
    out = Path(out_dir)
    data = (out / "data").resolve()  # a link to a shared dataset: its cache stays its own
    features, runs = data / "features", out / "runs"
    cfg = yaml.safe_load(Path(config).read_text())
    size = int(cfg["data"]["frame_size"])
    if not (data / "annotations.csv").is_file():
        say(f"dataset: writing untrimmed videos to {data}")
        # The spec's defaults are the recipe's dataset; the frame size is the config's.
        spec = UntrimmedSpec(videos=videos or UntrimmedSpec().videos, size=size, seed=seed)
        write_untrimmed_dataset(data, spec, overwrite=True)
    else:
        say(f"dataset: reusing the untrimmed videos in {data}")
    args = [
        "--config", config,
        "--data.root", str(data),
        "--data.features_dir", str(features),
        "--seed_everything", str(seed),
    ]  # fmt: skip
    say(f"features: caching the frozen backbone's features in {features}")
    extract_for_config(args, progress=progress)

    checkpoint = out / "model.ckpt"
    if not checkpoint.is_file():
        epochs = max_epochs or int(cfg["trainer"]["max_epochs"])
        say(f"training: actions + background ({epochs} epochs) -> {runs}")
        cli = train_main(
            [
                "fit",
                *args,
                "--trainer.max_epochs",
                str(epochs),
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.enable_model_summary",
                "false",
                *(["--trainer.callbacks+=video_lstm.training.progress.EpochLine"] * progress),
            ],
            root_dir=str(runs),
            name="untrimmed",
        )
        with atomic_path(checkpoint) as tmp:
            shutil.copyfile(Path(cli.trainer.checkpoint_callback.last_model_path), tmp)
    else:
        say(f"training: reusing the trained model {checkpoint}")
    say("calibration: choosing the segment rules on the val videos")
    calibration = calibrate_checkpoint(
        str(checkpoint),
        data=DatasetSpec(
            kind="segments_csv", root=str(data), options={"annotations": "annotations.csv"}
        ),
        subset="val",
        device="cpu",
        progress=progress,
    )
    say(
        "      threshold {threshold:g}, smoothing {smoothing_s:g} s, min duration "
        "{min_duration_s:g} s, merge gap {merge_gap_s:g} s (val: frame accuracy "
        "{frame_accuracy:.3f}, mAP@0.5 {mAP:.3f})".format(**calibration)
    )
    return RecipeResult(str(checkpoint), str(data), str(data / "videos" / "test"), calibration)
