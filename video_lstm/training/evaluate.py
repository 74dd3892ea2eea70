"""Evaluation of a checkpoint.

- Trimmed clips: video-level top-1/top-5 over N clips, per-class CSV, confusion PNG
  (:func:`evaluate_checkpoint`).
- Untrimmed videos: the segments that annotation wrote (result JSON) against temporal ground
  truth (:func:`evaluate_segments`): frame accuracy (gaps count as ``background``), segment mAP at
  tIoU 0.3/0.5/0.7 (ActivityNet protocol, ``video_lstm.inference.metrics``), boundary error, a
  per-class table and a timeline plot of prediction against truth per video.

Both take a :class:`~video_lstm.data.datasets.DatasetSpec`. ``video-lstm evaluate`` is
``CLI(evaluate)``: the dataset fields a training config's ``data:`` has (``root``, ``kind``,
``manifest_args``, ...) from the command line or ``--config``, and the kind's ``temporal`` flag
in the table of dataset kinds picks the scoring.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from jsonargparse import CLI

from video_lstm.data.datasets import DatasetSpec
from video_lstm.io.files import atomic_path
from video_lstm.io.results import find_results

# torch is imported inside the functions that run a model, so ``video-lstm evaluate --help``
# answers without it (no TYPE_CHECKING block either: jsonargparse evaluates those).

log = logging.getLogger(__name__)


def predict_videos(
    model: Any, loader: Any, *, device: Any, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Video-level probabilities: softmax of the mean logits over each video's views.

    Args:
        model: A ``VideoClassifier`` on ``device``.
        loader: A ``DataLoader`` of ``{"clip" | "features", "label"}`` batches with views.
        device: The ``torch.device`` to run on.
        progress: Show a progress bar over batches.

    Returns:
        ``(probs (N, K), labels (N,))`` in dataset order.
    """
    import torch
    from tqdm.auto import tqdm

    from video_lstm.data.features import adapt_features

    probs, labels = [], []
    with torch.inference_mode():
        for batch in tqdm(
            loader, desc="evaluating", unit="batch", disable=not progress
        ):  # minutes on a large set
            if "features" in batch:
                x = batch["features"].to(device)  # (B, V, T, ...)
                logits = model.forward_head(adapt_features(x.flatten(0, 1), model.config))
            else:
                x = batch["clip"].to(device)  # (B, V, T, C, H, W)
                logits = model(x.flatten(0, 1))  # (B*V, K)
            logits = logits.float().view(x.shape[0], x.shape[1], -1).mean(dim=1)
            probs.append(logits.softmax(dim=-1).cpu().numpy())
            labels.append(batch["label"].numpy())
    return np.concatenate(probs), np.concatenate(labels)


def video_metrics(probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Top-1, top-5 (top-k with k = min(5, K)), per-class accuracy and the confusion matrix."""
    k = len(class_names)
    pred = probs.argmax(axis=1)
    topk = np.argsort(-probs, axis=1)[:, : min(5, k)]
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    support = confusion.sum(axis=1)
    per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    return {
        "num_videos": int(len(labels)),
        "top1": float((pred == labels).mean()),
        "top5": float((topk == labels[:, None]).any(axis=1).mean()),
        "per_class": {
            name: {"accuracy": float(a), "support": int(s)}
            for name, a, s in zip(class_names, per_class, support, strict=True)
        },
        "confusion": confusion.tolist(),
    }


def plot_confusion(
    confusion: np.ndarray, class_names: list[str], path: str | Path, title: str
) -> None:
    """Row-normalised confusion matrix as a PNG (rows: true class, columns: prediction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.8 + 0.6 * k))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                color = "white" if norm[i, j] > 0.5 else "black"
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def evaluate_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    data: DatasetSpec,
    features_dir: str | None = None,
    num_clips: int = 3,
    decode_size: int | None = None,
    batch_size: int = 4,
    num_workers: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a checkpoint at video level on the held-out subset and write the reports.

    Writes ``metrics.json`` (top-1/top-5, per-class, confusion), ``per_class.csv``,
    ``predictions.csv`` (path, true, predicted, score) and ``confusion.png`` to ``out_dir``.

    Args:
        checkpoint: A ``.pt`` or Lightning ``.ckpt`` readable by ``load_checkpoint``.
        out_dir: Report folder.
        data: The dataset (a trimmed kind); its ``test`` subset is scored.
        features_dir: Evaluate on a feature cache (``<features_dir>/test``) instead of videos.
        num_clips: Views per video; their mean logits score the video.
        decode_size: Short side decoded (``None``: the checkpoint's, as in training; for old
            checkpoints without one ``frame_size * 8 // 7``).
        batch_size: Videos per batch.
        num_workers: DataLoader workers.
        device: ``"cpu"`` or ``"cuda"``.
        progress: Show a progress bar over batches.

    Returns:
        The metrics dict (as in ``metrics.json``).
    """
    import torch
    from torch.utils.data import DataLoader

    from video_lstm.errors import UsageError
    from video_lstm.io.checks import require_checkpoint, require_output_dir
    from video_lstm.models.checkpoint import load_checkpoint
    from video_lstm.training.data import VideoDataModule

    # The user's paths first: a wrong one is named before the model loads.
    require_checkpoint(checkpoint)
    if data.temporal:
        raise ValueError(f"{data.kind} is a temporal kind: use evaluate_untrimmed")
    root = data.root.replace("{subset}", data.subset_name("test"))
    if not Path(root).exists():
        raise UsageError(f"{root}: dataset not found")
    require_output_dir(out_dir)
    model, meta = load_checkpoint(checkpoint)
    decode_size = decode_size or meta.decode_size  # decode as in training
    dev = torch.device(device)
    model = model.to(dev).eval()
    dm = VideoDataModule(  # the training views and transforms, for the held-out subset
        root=data.root,
        kind=data.kind,
        test_subset=data.subset_name("test"),
        manifest_args=data.options,
        features_dir=features_dir,
        clip_len=meta.clip_len,
        frame_interval=meta.frame_interval,
        frame_size=meta.frame_size,
        decode_size=decode_size,
        num_clips=num_clips,
        batch_size=batch_size,
        num_workers=num_workers,
        mean=meta.mean,
        std=meta.std,
    )
    dataset = dm.build_dataset("test", train=False)
    if list(dataset.class_names) != list(meta.class_names):
        raise ValueError(
            f"{checkpoint}: model classes {meta.class_names} differ from the dataset's "
            f"{dataset.class_names}"
        )
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    probs, labels = predict_videos(model, loader, device=dev, progress=progress)
    metrics = video_metrics(probs, labels, meta.class_names)
    metrics.update(checkpoint=str(checkpoint), num_clips=num_clips, clip_len=meta.clip_len)

    out = Path(out_dir)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    with atomic_path(out / "per_class.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "accuracy", "support"])
        for name, row in metrics["per_class"].items():
            w.writerow([name, f"{row['accuracy']:.4f}", row["support"]])
    paths = _sample_paths(dataset)
    with atomic_path(out / "predictions.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "true", "predicted", "score"])
        for path, y, p in zip(paths, labels, probs, strict=True):
            w.writerow([path, meta.class_names[y], meta.class_names[p.argmax()], f"{p.max():.4f}"])
    title = f"{Path(checkpoint).name}: top-1 {metrics['top1']:.3f} ({num_clips} clips/video)"
    plot_confusion(np.array(metrics["confusion"]), meta.class_names, out / "confusion.png", title)
    log.info("top-1 %.4f top-5 %.4f on %d videos", metrics["top1"], metrics["top5"], len(labels))
    return metrics


def _sample_paths(dataset: Any) -> list[str]:
    if hasattr(dataset, "samples"):
        return [str(p) for p, _ in dataset.samples]
    return [v["path"] for v in dataset.videos]


# ---------------------------------------------------------------------------------------------
# Untrimmed videos: segments against temporal ground truth
# ---------------------------------------------------------------------------------------------


def read_results(results: str | Path) -> dict[str, dict[str, Any]]:
    """Result JSONs (``video-lstm annotate`` / ``run``) of a folder, searched recursively (or
    one file), by video path; read by ``video_lstm.io.results.load_result``.

    Returns:
        ``{resolved video path: {"segments", "num_frames", "fps", "class_names", "file"}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for doc in find_results(results, recursive=True):
        out[str(Path(doc.video.path).resolve())] = {
            "segments": [s.to_dict() for s in doc.segments],
            "num_frames": doc.video.num_frames,
            "fps": doc.video.fps,
            "class_names": doc.class_names or None,
            "file": str(doc.file),
        }
    return out


def evaluate_segments(
    truth: Any,
    results: str | Path,
    out_dir: str | Path | None = None,
    *,
    tious: tuple[float, ...] = (0.3, 0.5, 0.7),
    plot: bool = True,
) -> dict[str, Any]:
    """Score annotation results against temporal ground truth.

    Args:
        truth: A ``TemporalManifest`` (``load_manifest("activitynet" | "thumos14" |
            "segments_csv" | "results", ...)``).
        results: Folder of result JSONs written by ``video-lstm annotate`` / ``run`` (searched
            recursively, as ``run`` mirrors the input tree), or one result JSON.
        out_dir: Where to write ``metrics.json``, ``per_class.csv``, ``timeline.png`` (``None``:
            write nothing).
        tious: tIoU thresholds of the segment mAP.
        plot: Write the timeline plot.

    Returns:
        The metrics: ``frame_accuracy`` (all frames of all videos; frames outside segments are
        ``background`` in truth and prediction), ``background_recall`` (share of idle frames
        left unlabelled), ``mAP`` per tIoU, ``boundary`` errors (seconds and frames),
        ``per_class`` rows, ``videos`` (per-video frame accuracy), ``missing`` (truth videos
        without a result: their frames are not scored, their segments count as missed).
    """
    from video_lstm.data.datasets import BACKGROUND, segment_frame_labels
    from video_lstm.inference.metrics import boundary_errors, detection_map

    found = read_results(results)
    names = truth.training_classes  # background first
    k = len(names)
    confusion = np.zeros((k, k), dtype=np.int64)
    gt: dict[str, list[tuple[float, float, str]]] = {}
    pred: dict[str, list[tuple[float, float, str, float]]] = {}
    videos, missing, fps_seen = [], [], []
    for video in truth.videos:
        key = str(Path(video.path).resolve())
        gt[key] = [(g.start_s, g.end_s, g.label) for g in video.segments]
        result = found.get(key)
        if result is None:
            missing.append(str(video.path))
            continue
        unknown = {s["label"] for s in result["segments"]} - set(names)
        if unknown:
            raise ValueError(
                f"{result['file']}: labels {sorted(unknown)} are not classes of the ground truth "
                f"{names}"
            )
        pred[key] = [
            (float(s["start_s"]), float(s["end_s"]), s["label"], float(s.get("score", 1.0)))
            for s in result["segments"]
            if s["label"] != BACKGROUND
        ]
        n, fps = result["num_frames"], result["fps"]
        fps_seen.append(fps)
        want = segment_frame_labels(gt[key], n, fps, names)
        got = segment_frame_labels([p[:3] for p in pred[key]], n, fps, names)
        np.add.at(confusion, (want, got), 1)
        videos.append(
            {
                "video": str(video.path),
                "frames": n,
                "frame_accuracy": float((want == got).mean()) if n else None,
                "truth": gt[key],
                "prediction": pred[key],
                "duration_s": n / fps,
            }
        )
    total = confusion.sum()
    detection = detection_map(gt, pred, truth.class_names, tious)
    bounds = boundary_errors(gt, pred)
    fps = float(np.median(fps_seen)) if fps_seen else None
    bounds.update(
        median_frames=bounds["median_s"] * fps if fps and bounds["median_s"] is not None else None,
        mean_frames=bounds["mean_s"] * fps if fps and bounds["mean_s"] is not None else None,
    )
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    per_class = []
    for i, name in enumerate(names):
        row: dict[str, Any] = {
            "class": name,
            "truth_segments": sum(lab == name for v in gt.values() for *_, lab in v),
            "predicted_segments": sum(p[2] == name for v in pred.values() for p in v),
            "frame_recall": float(confusion[i, i] / support[i]) if support[i] else None,
            "frame_precision": float(confusion[i, i] / predicted[i]) if predicted[i] else None,
        }
        for t, ap in (detection["per_class"].get(name) or {}).items():
            row[f"AP@{t}"] = ap
        per_class.append(row)
    metrics = {
        "num_videos": len(truth.videos),
        "num_frames": int(total),
        "frame_accuracy": float(np.trace(confusion) / total) if total else None,
        "background_recall": per_class[0]["frame_recall"],
        "mAP": detection["mAP"],
        "boundary": bounds,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "class_names": names,
        "videos": videos,
        "missing": missing,
    }
    if out_dir is not None:
        out = Path(out_dir)
        with atomic_path(out / "metrics.json") as tmp:
            tmp.write_text(json.dumps(metrics, indent=2))
        with atomic_path(out / "per_class.csv") as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(per_class[-1]))
            w.writeheader()
            w.writerows(per_class)
        if plot and videos:
            plot_timelines(videos, names, out / "timeline.png")
    return metrics


def format_segment_table(metrics: dict[str, Any]) -> str:
    """The headline figures and the per-class table as Markdown (for the README / terminal)."""

    def f(x: float | None, digits: int = 3) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    maps = metrics["mAP"]
    b = metrics["boundary"]
    lines = [
        f"frame accuracy {f(metrics['frame_accuracy'])}, idle frames labelled background "
        f"{f(metrics['background_recall'])}, segment mAP "
        + ", ".join(f"@{t} {f(v)}" for t, v in maps.items())
        + f", median boundary error {f(b['median_s'], 2)} s ({f(b['median_frames'], 1)} frames)"
        f" over {metrics['num_videos']} videos, {metrics['num_frames']} frames",
        "",
        "| class | truth segs | predicted segs | "
        + " | ".join(f"AP@{t}" for t in maps)
        + " | frame recall | frame precision |",
        "|---|---:|---:|" + "---:|" * len(maps) + "---:|---:|",
    ]
    for row in metrics["per_class"]:
        aps = " | ".join(f(row.get(f"AP@{t}")) for t in maps)
        lines.append(
            f"| {row['class']} | {row['truth_segments']} | {row['predicted_segments']} | {aps} "
            f"| {f(row['frame_recall'])} | {f(row['frame_precision'])} |"
        )
    return "\n".join(lines)


def plot_timelines(videos: list[dict[str, Any]], class_names: list[str], path: str | Path) -> None:
    """Per video, the truth (upper bar) and the prediction (lower bar), coloured by class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    color = {name: cmap(i % cmap.N) for i, name in enumerate(class_names[1:])}
    n = len(videos)
    fig, axes = plt.subplots(n, 1, figsize=(10, 0.9 * n + 0.9), squeeze=False)
    for ax, v in zip(axes[:, 0], videos, strict=True):
        for row, segs in ((1, v["truth"]), (0, v["prediction"])):
            ax.broken_barh(
                [(s, e - s) for s, e, *_ in segs],
                (row + 0.1, 0.8),
                facecolors=[color[seg[2]] for seg in segs],
            )
        ax.set_xlim(0, v["duration_s"])
        ax.set_ylim(0, 2)
        ax.set_yticks([0.5, 1.5], ["pred", "truth"], fontsize=7)
        acc = v["frame_accuracy"]
        ax.set_title(
            f"{Path(v['video']).name}: frame accuracy {acc:.3f}" if acc is not None else "",
            fontsize=8,
            loc="left",
        )
        ax.tick_params(axis="x", labelsize=7)
    axes[-1, 0].set_xlabel("seconds (blank: background)", fontsize=8)
    handles = [Patch(color=c, label=name) for name, c in color.items()]
    fig.legend(handles=handles, loc="lower center", ncol=min(8, len(handles)), fontsize=7)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def evaluate_untrimmed(
    checkpoint: str,
    out_dir: str,
    *,
    data: DatasetSpec,
    subset: str = "test",
    predictions: str | None = None,
    settings: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Annotate the untrimmed videos of ``subset`` (as ``video-lstm annotate`` does, with the
    checkpoint's calibrated rules unless ``settings`` says otherwise) and score the segments.

    Writes ``out_dir/predictions/*.json`` (the annotation results), ``metrics.json``,
    ``per_class.csv``, ``timeline.png`` and ``table.md`` (the Markdown table).

    Args:
        checkpoint: The model.
        out_dir: Report folder.
        data: The ground truth (a temporal kind).
        subset: Which videos (the held-out ones): a role of ``data.subsets`` or the dataset's
            own subset name.
        predictions: Score these existing result JSONs instead of annotating.
        settings: ``AnnotateSettings`` for the annotation (default: JSON output only, every
            segment rule from the checkpoint).
        progress: Show progress.

    Returns:
        The metrics (see :func:`evaluate_segments`).
    """
    from tqdm.auto import tqdm

    from video_lstm.data.datasets import list_dataset_kinds
    from video_lstm.inference.settings import AnnotateSettings
    from video_lstm.inference.stages import annotate_with_predictor, load_predictor

    if not data.temporal:
        raise ValueError(
            f"untrimmed evaluation needs a temporal kind ({', '.join(list_dataset_kinds(temporal=True))}),"
            f" got {data.kind!r}"
        )
    truth = data.manifest(subset)
    out = Path(out_dir)
    if predictions is None:
        settings = settings or AnnotateSettings(outputs=["json"])
        predictor = load_predictor(checkpoint, settings)
        predictions = str(out / "predictions")
        for i, video in enumerate(tqdm(truth.videos, desc="annotating", disable=not progress)):
            annotate_with_predictor(
                video.path, predictor, predictions, settings, name=f"{i:04d}_{video.path.stem}"
            )
    metrics = evaluate_segments(truth, predictions, out)
    metrics["checkpoint"] = str(checkpoint)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    with atomic_path(out / "table.md") as tmp:
        tmp.write_text(format_segment_table(metrics) + "\n")
    return metrics


def evaluate(
    checkpoint: str,
    out_dir: str,
    *,
    root: str = "data/synthetic",
    kind: str = "ucf101",
    manifest_args: dict[str, Any] | None = None,
    split: int = 1,
    test_subset: str = "test",
    subset: str = "test",
    features_dir: str | None = None,
    num_clips: int = 3,
    decode_size: int | None = None,
    batch_size: int = 4,
    num_workers: int = 0,
    device: str = "cpu",
    predictions: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a dataset: a trimmed kind by video-level top-1/top-5
    (:func:`evaluate_checkpoint`), a temporal kind by annotating its untrimmed videos and scoring
    the segments (:func:`evaluate_untrimmed`). The kind's ``temporal`` flag decides, wherever the
    kind was given (``--kind`` or ``--config``).

    Args:
        checkpoint: The model.
        out_dir: Report folder.
        root: Dataset root (as ``data.root`` in the training config).
        kind: A registered dataset kind (listed below).
        manifest_args: The kind's options (relative paths are relative to ``root``).
        split: Official split, for kinds with a ``split`` option (UCF101/HMDB51).
        test_subset: Trimmed: the held-out subset's name.
        subset: Temporal: which videos are annotated and scored.
        features_dir: Trimmed: score a feature cache (``<features_dir>/test``) instead of videos.
        num_clips: Trimmed: views per video; their mean logits score the video.
        decode_size: Trimmed: short side decoded (``None``: the checkpoint's).
        batch_size: Trimmed: videos per batch.
        num_workers: Trimmed: DataLoader workers.
        device: Trimmed: ``"cpu"`` or ``"cuda"`` (temporal: annotation picks it).
        predictions: Temporal: score these existing result JSONs instead of annotating.
        progress: Show progress bars.

    Returns:
        The metrics.
    """
    from video_lstm.data.datasets import DatasetSpec

    spec = DatasetSpec.from_config(
        kind=kind, root=root, manifest_args=manifest_args, split=split, test_subset=test_subset
    )
    if spec.temporal:
        return evaluate_untrimmed(
            checkpoint, out_dir, data=spec, subset=subset, predictions=predictions,
            progress=progress,
        )  # fmt: skip
    return evaluate_checkpoint(
        checkpoint,
        out_dir,
        data=spec,
        features_dir=features_dir,
        num_clips=num_clips,
        decode_size=decode_size,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
    )


def doc_summary(function: Any) -> str:
    """The first paragraph of ``function``'s docstring as one line: a subcommand's description.

    jsonargparse shows only a docstring's first *line*, which cut a summary that wraps
    mid-sentence (``report --help`` ended "a training run, ``compare`` or").
    """
    import inspect

    return " ".join((inspect.getdoc(function) or "").split("\n\n")[0].split())


def epilog_as_written() -> type:
    """jsonargparse's help formatter, but the epilog (the table of dataset kinds) keeps its
    lines instead of being re-flowed into one paragraph."""
    import argparse

    from jsonargparse import DefaultHelpFormatter

    class Formatter(argparse.RawDescriptionHelpFormatter, DefaultHelpFormatter):
        pass

    return Formatter


# The ``data:`` fields of a training config that are also evaluate's options.
_DATA_FIELDS = ("root", "kind", "manifest_args", "split", "test_subset")


def training_config_args(argv: list[str]) -> list[str]:
    """``argv`` with each ``--config FILE`` that is a training config (it has a ``data:``
    mapping, as ``train fit --config`` and a run's ``config.yaml`` do) replaced by its dataset
    fields as options (``--kind``, ``--root``, ``--manifest_args``, ...), in its place, so that
    options after it still win; the model and trainer fields are not evaluate's and are left
    out. Any other ``--config`` (evaluate's own fields) is kept as it is."""
    import json

    import yaml

    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--config" or arg.startswith("--config="):
            value = arg.partition("=")[2] if "=" in arg else next(args, "")
            try:
                doc = yaml.safe_load(Path(value).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                doc = None  # not ours to judge: the parser reports it
            data = doc.get("data") if isinstance(doc, dict) else None
            if isinstance(data, dict):
                for field in _DATA_FIELDS:
                    if data.get(field) is not None:
                        v = data[field]
                        out += [f"--{field}", json.dumps(v) if isinstance(v, dict) else str(v)]
                continue
            out += ["--config", value]
            continue
        out.append(arg)
    return out


def main(argv: list[str] | None = None) -> None:
    """``video-lstm evaluate``: :func:`evaluate` through ``CLI(fn)``; the dataset kinds and their
    options are listed at the end of ``--help``. ``--config`` takes evaluate's own fields or a
    training config, whose ``data:`` names the dataset (:func:`training_config_args`)."""
    import sys

    from video_lstm.data.datasets import describe_dataset_kinds

    metrics = CLI(
        evaluate,
        args=training_config_args(list(sys.argv[1:] if argv is None else argv)),
        as_positional=True,
        prog="video-lstm evaluate",
        description=doc_summary(evaluate),
        exit_on_error=False,
        epilog=describe_dataset_kinds(),
        formatter_class=epilog_as_written(),
    )
    if "mAP" in metrics:  # segments against temporal ground truth
        print(format_segment_table(metrics))
        return
    print(
        f"top-1 {metrics['top1']:.4f}  top-5 {metrics['top5']:.4f}  ({metrics['num_videos']} videos)"
    )
