"""``make demo``: the whole job on a built-in default, offline, in about a minute and a half on a CPU.

1. film small untrimmed videos of a camera panning, tilting, zooming and rolling over real photos
   (between still or hand-held idle stretches) with their annotations;
2. cache per-frame features of the frozen pretrained backbone (``video_lstm_compact``);
3. train the temporal model (an LSTM over motion features) with a ``background`` class on
   windows from the cache (one line per epoch: loss, validation accuracy);
4. calibrate the segment rules on the validation videos (stored in the checkpoint);
5. annotate the held-out test videos with the folder pipeline (segments, subtitles, annotated
   videos, labelled clips) and score every frame against the ground truth;
6. write the HTML reports: the annotated videos, the training run, the evaluation.

Steps 1-4 are :func:`video_lstm.training.recipe.train_untrimmed`. Every step resumes: a second
run reuses the dataset, the feature cache and the trained model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class DemoSummary:
    checkpoint: str
    output_dir: str
    frame_accuracy: float  # share of test-video frames labelled as the ground truth says
    exit_code: int


class _Steps:
    """Numbered step lines, each closed with the seconds it took."""

    def __init__(self, total: int) -> None:
        self.total, self.i, self.t0 = total, 0, 0.0

    def _close(self) -> None:
        if self.i:
            print(f"      ({time.perf_counter() - self.t0:.1f} s)", flush=True)

    def start(self, text: str) -> None:
        self._close()
        self.i += 1
        self.t0 = time.perf_counter()
        print(f"[{self.i}/{self.total}] {text}", flush=True)

    def line(self, text: str) -> None:
        """A step line of the recipe (``"what: ..."``) starts a step; an indented one is a result."""
        if text.startswith(" "):
            print(text, flush=True)
        else:
            self.start(text)

    def end(self) -> None:
        self._close()
        self.i = 0


def run_demo(
    out_dir: str = "demo_output",
    *,
    train_videos: int | None = None,
    max_epochs: int | None = None,
    seed: int = 0,
    threads: int | None = None,
) -> DemoSummary:
    """Make untrimmed videos, train with background, calibrate, annotate, score, report.

    Args:
        out_dir: Everything goes here: ``data/``, ``runs/``, ``model.ckpt``, ``annotated/``
            (open ``annotated/index.html``), ``evaluation/``.
        train_videos: Untrimmed training videos (default: ``UntrimmedSpec``'s, 160).
        max_epochs: Training epochs (default: the packaged ``untrimmed_demo.yaml``'s).
        seed: Seed of the data and of training.
        threads: CPU threads for torch (default: the idle cores, so a busy machine is not
            oversubscribed).

    Returns:
        Where the checkpoint and outputs are, and the frame accuracy on the test videos.
    """
    t_start = time.perf_counter()
    from pipelines.batch import run_folder
    from pipelines.report import evaluate_report, folder_report, training_report
    from video_lstm.data.datasets import DatasetSpec
    from video_lstm.data.synthetic import UntrimmedSpec
    from video_lstm.inference.settings import AnnotateSettings
    from video_lstm.threads import apply_threads
    from video_lstm.training.evaluate import evaluate_untrimmed
    from video_lstm.training.recipe import train_untrimmed

    n_threads = apply_threads(threads)
    out = Path(out_dir)
    print(f"video_lstm demo -> {out}/ ({n_threads} torch thread{'s' * (n_threads > 1)})")
    steps = _Steps(6)
    recipe = train_untrimmed(
        str(out),
        videos={**UntrimmedSpec().videos, **({"train": train_videos} if train_videos else {})},
        max_epochs=max_epochs,
        seed=seed,
        log=steps.line,
    )

    annotated = out / "annotated"
    steps.start(f"annotating the held-out test videos in {recipe.test_videos} -> {annotated}")
    # No segment rule given: the checkpoint's calibrated ones apply.
    summary = run_folder(
        recipe.test_videos, recipe.checkpoint, str(annotated), AnnotateSettings(), progress=False
    )
    print("      " + summary.format().replace("\n", "\n      "), flush=True)

    steps.start("scoring against the ground truth and writing the reports")
    evaluation = out / "evaluation"
    metrics: dict[str, Any] = evaluate_untrimmed(
        recipe.checkpoint,
        str(evaluation),
        data=DatasetSpec(
            kind="segments_csv", root=recipe.data_root, options={"annotations": "annotations.csv"}
        ),
        subset="test",
        predictions=str(annotated),
        progress=False,
    )
    for v in metrics.get("videos", []):
        print(
            f"      {Path(v['video']).name}: {v['frame_accuracy']:.1%} of frames right", flush=True
        )
    index = folder_report(annotated)
    evaluate_report(evaluation)
    logs = sorted((out / "runs").glob("*/version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)
    train_index = training_report(logs[-1].parent) if logs else None
    steps.end()

    accuracy = float(metrics.get("frame_accuracy") or 0.0)
    maps = metrics.get("mAP") or {}
    map50 = maps.get("0.5", maps.get(0.5)) if isinstance(maps, dict) else None
    print(
        f"\nFrame accuracy on the {len(metrics.get('videos', []))} held-out videos: {accuracy:.1%}"
        + (f"   segment mAP@0.5: {map50:.2f}" if isinstance(map50, (int, float)) else "")
        + f"\nDone in {time.perf_counter() - t_start:.0f} s. Model: {recipe.checkpoint}"
        f"\nOpen in a browser: {index}"
        + (f"\nTraining curves:   {train_index}" if train_index else "")
        + f"\nEvaluation:        {evaluation / 'index.html'}",
        flush=True,
    )
    return DemoSummary(recipe.checkpoint, str(annotated), accuracy, summary.exit_code)
