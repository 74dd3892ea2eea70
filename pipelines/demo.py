"""``make demo``: the whole job on a built-in default, offline, in a few minutes on a CPU.

1. write a synthetic 8-class action dataset (UCF101 layout) and demo videos of actions in a row;
2. cache per-frame features of the frozen pretrained backbone (``video_lstm_compact``);
3. train the ConvLSTM head on the cache briefly (one line per epoch: loss, validation accuracy);
4. annotate the demo videos with the folder pipeline (segments, subtitles, annotated videos,
   labelled clips) and score every frame against the known ground truth;
5. write the HTML report (``annotated/index.html``) and the training run's page.

Every step resumes: a second run reuses the dataset, the feature cache and the trained model.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "synthetic_demo.yaml"


@dataclass
class DemoSummary:
    checkpoint: str
    output_dir: str
    frame_accuracy: float  # fraction of demo frames whose label matches the ground truth
    exit_code: int


def _confusion(
    truth_frames: list[str], found_frames: list[str], names: list[str]
) -> list[list[int]]:
    """Frame-level confusion over ``names`` + ``"(none)"``: rows truth, columns found."""
    labels = [*names, ""]
    index = {n: i for i, n in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for t, f in zip(truth_frames, found_frames, strict=True):
        m[index.get(t, len(labels) - 1)][index.get(f, len(labels) - 1)] += 1
    return m


def _frame_labels(segments: list[dict], num_frames: int) -> list[str]:
    labels = [""] * num_frames
    for seg in segments:
        for f in range(seg["start_frame"], min(seg["end_frame"], num_frames)):
            labels[f] = seg["label"]
    return labels


class _Step:
    """``[i/N] what ...`` then ``done in X s`` on the same line when the step prints nothing
    else (one line per step in a log; a step with its own lines ends with its own line)."""

    total = 5

    def __init__(self, i: int, text: str) -> None:
        self.t0 = time.perf_counter()
        print(f"[{i}/{self.total}] {text}", flush=True)

    def done(self, text: str = "") -> None:
        print(
            f"      {text + ', ' if text else ''}{time.perf_counter() - self.t0:.1f} s", flush=True
        )


def run_demo(
    out_dir: str = "demo_output",
    *,
    videos_per_class: int = 100,
    sequences: int = 3,
    max_epochs: int = 12,
    seed: int = 0,
    threshold: float = 0.3,
    threads: int | None = None,
    config: str = str(CONFIG),
) -> DemoSummary:
    """Make data, train the compact model on cached features, annotate the demo videos, report.

    Args:
        out_dir: Everything goes here: ``data/``, ``features/``, ``runs/``, ``annotated/``.
        videos_per_class: Training + test clips per action class.
        sequences: Demo videos, each several actions in a row.
        max_epochs: Training epochs on the feature cache.
        seed: Seed of the dataset and of training.
        threshold: Minimum smoothed probability of an action frame (lower than the pipeline's
            0.5 default: the briefly trained demo model is not confident).
        threads: CPU threads for torch (default: the cores not busy with other work, so a
            shared machine is not oversubscribed).
        config: Training config (model + data) the demo starts from.

    Returns:
        Where the checkpoint and outputs are, and how well the demo videos were labelled.
    """
    t_start = time.perf_counter()
    import torch

    from pipelines.batch import run_folder
    from pipelines.report import folder_report, training_report
    from video_lstm.data.synthetic import write_dataset
    from video_lstm.inference.settings import AnnotateSettings
    from video_lstm.io.files import atomic_path, write_json
    from video_lstm.training.cli import main as train_main
    from video_lstm.training.extract import extract_for_config

    n_threads = threads or _default_threads()
    torch.set_num_threads(n_threads)
    out = Path(out_dir)
    data, features, runs = out / "data", out / "features", out / "runs"
    print(f"video_lstm demo in {out}/ ({n_threads} torch thread{'s' * (n_threads > 1)})")
    if not (data / "splits" / "classInd.txt").is_file():
        step = _Step(
            1, f"dataset: {videos_per_class} clips x 8 actions + {sequences} demo videos -> {data}"
        )
        # One clip per appearance group: with several, a frozen backbone memorises appearance
        # (100% train, chance on held-out, measured) instead of learning the motion.
        write_dataset(
            data,
            videos_per_class=videos_per_class,
            size=128,
            sequences=sequences,
            seed=seed,
            clips_per_group=1,
            distractors=0,
        )
        step.done("written")
    else:
        _Step(1, f"dataset: reusing {data}").done()
    args = [
        "--config", config,
        "--data.root", str(data),
        "--data.features_dir", str(features),
        "--seed_everything", str(seed),
    ]  # fmt: skip
    step = _Step(2, f"features: the frozen backbone over every clip, once -> {features}")
    extract_for_config(args, progress=True)
    step.done("cached")

    checkpoint = out / "model.ckpt"
    log_dir = None
    if not checkpoint.is_file():
        step = _Step(3, f"training the temporal model on the cache ({max_epochs} epochs) -> {runs}")
        cli = train_main(
            [
                "fit",
                *args,
                "--trainer.max_epochs", str(max_epochs),
                "--trainer.enable_progress_bar", "false",
                "--trainer.enable_model_summary", "false",
                "--trainer.log_every_n_steps", "1",
                "--trainer.callbacks+=video_lstm.training.progress.EpochLine",
            ],
            root_dir=str(runs),
            name="demo",
        )  # fmt: skip
        best = cli.trainer.checkpoint_callback.best_model_path
        log_dir = Path(cli.trainer.log_dir)
        with atomic_path(checkpoint) as tmp:
            shutil.copyfile(best, tmp)
        step.done(f"best {Path(best).name}")
    else:
        _Step(3, f"training: reusing the trained model {checkpoint}").done()
        logs = sorted(
            (runs / "demo").glob("version_*/metrics.csv"), key=lambda p: p.stat().st_mtime
        )
        log_dir = logs[-1].parent if logs else None

    annotated = out / "annotated"
    step = _Step(4, f"annotating the demo videos in {data / 'demo'} -> {annotated}")
    settings = AnnotateSettings.from_flat(threshold=threshold)
    summary = run_folder(
        str(data / "demo"), str(checkpoint), str(annotated), settings, progress=False
    )
    print("      " + summary.format().replace("\n", "\n      "))
    scores, truth_all, found_all, names = [], [], [], []
    for truth_file in sorted((data / "demo").glob("*.json")):
        truth = json.loads(truth_file.read_text())
        result_file = next(
            (
                annotated / f"{truth_file.stem}{s}.json"
                for s in ("", ".mp4")
                if (annotated / f"{truth_file.stem}{s}.json").is_file()
            ),
            None,
        )
        if result_file is None:
            continue
        result = json.loads(result_file.read_text())
        names = list(result["model"]["class_names"])
        n = truth["num_frames"]
        want, got = _frame_labels(truth["segments"], n), _frame_labels(result["segments"], n)
        acc = sum(a == b for a, b in zip(want, got, strict=True)) / max(n, 1)
        truth_all += want
        found_all += got
        scores.append(acc)
        print(f"      {truth_file.stem}: {acc:.0%} of frames labelled as the ground truth")
    step.done("annotated")
    accuracy = sum(a == b for a, b in zip(truth_all, found_all, strict=True)) / max(
        len(truth_all), 1
    )

    step = _Step(5, "report")
    index = folder_report(annotated)
    train_index = None
    if log_dir is not None and (log_dir / "metrics.csv").is_file():
        if names:
            write_json(
                log_dir / "confusion.json",
                {
                    "title": "frames of the demo videos (truth: rows; found: columns)",
                    "class_names": [*names, "(none)"],
                    "confusion": _confusion(truth_all, found_all, names),
                },
            )
        train_index = training_report(log_dir)
    step.done()
    print(
        f"\nFrame accuracy on the {len(scores)} demo videos: {accuracy:.1%}"
        f"\nDone in {time.perf_counter() - t_start:.0f} s. Model: {checkpoint}"
        f"\nOpen in a browser: {index}"
        + (f"\nTraining curves:   {train_index}" if train_index else "")
    )
    return DemoSummary(str(checkpoint), str(annotated), accuracy, summary.exit_code)


def _default_threads() -> int:
    try:
        from video_lstm.threads import default_threads
    except ImportError:  # before the threads module: one thread never oversubscribes
        return 1
    return default_threads()
