"""Video-level evaluation of a checkpoint: top-1/top-5 over N clips, per-class CSV, confusion PNG."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jsonargparse import CLI
from torch.utils.data import DataLoader

from video_lstm.data.features import adapt_features
from video_lstm.io.files import atomic_path

log = logging.getLogger(__name__)


@torch.inference_mode()
def predict_videos(
    model: torch.nn.Module, loader: DataLoader, *, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Video-level probabilities: softmax of the mean logits over each video's views.

    Returns:
        ``(probs (N, K), labels (N,))`` in dataset order.
    """
    probs, labels = [], []
    for batch in loader:
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
    root: str = "data/synthetic",
    kind: str = "ucf101",
    split: int = 1,
    test_subset: str = "test",
    manifest_args: dict[str, Any] | None = None,
    features_dir: str | None = None,
    num_clips: int = 3,
    decode_size: int | None = None,
    batch_size: int = 4,
    num_workers: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate a checkpoint at video level on the held-out subset and write the reports.

    Writes ``metrics.json`` (top-1/top-5, per-class, confusion), ``per_class.csv``,
    ``predictions.csv`` (path, true, predicted, score) and ``confusion.png`` to ``out_dir``.

    Args:
        checkpoint: A ``.pt`` or Lightning ``.ckpt`` readable by ``load_checkpoint``.
        out_dir: Report folder.
        root: Dataset root (see ``VideoDataModule``).
        kind: Manifest layout.
        split: Official split (UCF101/HMDB51).
        test_subset: Held-out subset name.
        manifest_args: Extra ``load_manifest`` options.
        features_dir: Evaluate on a feature cache (``<features_dir>/test``) instead of videos.
        num_clips: Views per video; their mean logits score the video.
        decode_size: Short side decoded (``None``: ``frame_size * 8 // 7``).
        batch_size: Videos per batch.
        num_workers: DataLoader workers.
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        The metrics dict (as in ``metrics.json``).
    """
    from video_lstm.models.checkpoint import load_checkpoint
    from video_lstm.training.data import VideoDataModule

    model, meta = load_checkpoint(checkpoint)
    dev = torch.device(device)
    model = model.to(dev).eval()
    dm = VideoDataModule(
        root=root,
        kind=kind,
        split=split,
        test_subset=test_subset,
        manifest_args=manifest_args,
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
    probs, labels = predict_videos(model, loader, device=dev)
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


def main(argv: list[str] | None = None) -> None:
    metrics = CLI(evaluate_checkpoint, args=argv, as_positional=True)
    print(
        f"top-1 {metrics['top1']:.4f}  top-5 {metrics['top5']:.4f}  ({metrics['num_videos']} videos)"
    )
