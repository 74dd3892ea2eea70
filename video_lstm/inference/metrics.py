"""Localisation metrics on untrimmed videos: segment mAP as ActivityNet computes it, frame
accuracy, boundary error (pure numpy).

Segment mAP follows the ActivityNet detection evaluation (``Evaluation/eval_detection.py`` of
``activitynet/ActivityNet``): per class, predictions of every video sorted by score (highest
first); each is matched greedily to the not yet matched ground truth of its video and class with
the highest tIoU, and counts as a true positive at a threshold when that tIoU reaches it (one
prediction per ground truth: a second prediction on a matched ground truth is a false
positive); AP is the area under the interpolated precision-recall curve (precision made
monotone from the right, summed at every recall change); mAP is the mean AP over the classes
that have ground truth (a class with ground truth and no prediction has AP 0).

Segments here are ``(start_s, end_s)`` in seconds; truth and predictions are keyed by video.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "TIOU_THRESHOLDS",
    "average_precision",
    "boundary_errors",
    "detection_map",
    "interpolated_ap",
    "segment_iou",
]

TIOU_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)

# (start_s, end_s, label) for truth; (start_s, end_s, label, score) for predictions.
Truth = Mapping[str, Sequence[tuple[float, float, str]]]
Predictions = Mapping[str, Sequence[tuple[float, float, str, float]]]


def segment_iou(segment: Sequence[float], candidates: np.ndarray) -> np.ndarray:
    """Temporal IoU of ``segment`` ``(start, end)`` with each of ``candidates`` ``(N, 2)``."""
    candidates = np.asarray(candidates, dtype=np.float64).reshape(-1, 2)
    start = np.maximum(segment[0], candidates[:, 0])
    end = np.minimum(segment[1], candidates[:, 1])
    inter = (end - start).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (segment[1] - segment[0]) - inter
    return inter / np.maximum(union, 1e-12)


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the interpolated precision-recall curve (ActivityNet's
    ``interpolated_prec_rec``)."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def average_precision(
    truth: Mapping[str, np.ndarray],
    predictions: Sequence[tuple[str, float, float, float]],
    tious: Sequence[float] = TIOU_THRESHOLDS,
) -> np.ndarray:
    """AP of one class at each tIoU threshold.

    Args:
        truth: Per video, ``(G, 2)`` ground-truth ``(start, end)`` of this class.
        predictions: ``(video, start, end, score)`` of this class, any order.
        tious: tIoU thresholds.

    Returns:
        ``(len(tious),)`` AP values (NaN when there is no ground truth).
    """
    npos = sum(len(v) for v in truth.values())
    if npos == 0:
        return np.full(len(tious), np.nan)
    if not predictions:
        return np.zeros(len(tious))
    scores = np.array([p[3] for p in predictions], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    tp = np.zeros((len(tious), len(order)))
    fp = np.zeros((len(tious), len(order)))
    locked = {v: np.full((len(tious), len(g)), False) for v, g in truth.items()}
    for rank, i in enumerate(order):
        video, start, end, _ = predictions[i]
        gts = truth.get(video)
        if gts is None or len(gts) == 0:
            fp[:, rank] = 1
            continue
        ious = segment_iou((start, end), gts)
        by_iou = np.argsort(-ious, kind="stable")
        for t, thr in enumerate(tious):
            for j in by_iou:
                if ious[j] < thr:
                    break
                if locked[video][t, j]:
                    continue
                tp[t, rank] = 1
                locked[video][t, j] = True
                break
            if not tp[t, rank]:
                fp[t, rank] = 1
    tp_c, fp_c = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    recall = tp_c / npos
    precision = tp_c / np.maximum(tp_c + fp_c, 1e-12)
    return np.array([interpolated_ap(precision[t], recall[t]) for t in range(len(tious))])


def detection_map(
    truth: Truth,
    predictions: Predictions,
    class_names: Sequence[str],
    tious: Sequence[float] = TIOU_THRESHOLDS,
) -> dict[str, Any]:
    """Segment mAP over classes at each tIoU (ActivityNet detection protocol).

    Args:
        truth: Per video, its ``(start_s, end_s, label)`` ground truth.
        predictions: Per video, its ``(start_s, end_s, label, score)`` predictions. Videos
            missing here have no prediction.
        class_names: The action classes (a class without ground truth is left out of the mean).
        tious: tIoU thresholds.

    Returns:
        ``{"tious": [...], "mAP": {tiou: value}, "per_class": {name: {tiou: AP or None}}}``;
        tIoU keys are strings such as ``"0.5"``.
    """
    keys = [f"{t:g}" for t in tious]
    per_class: dict[str, dict[str, float | None]] = {}
    values = []
    for name in class_names:
        gts = {
            v: np.array([(s, e) for s, e, lab in segs if lab == name], dtype=np.float64).reshape(
                -1, 2
            )
            for v, segs in truth.items()
        }
        preds = [
            (v, s, e, score)
            for v, segs in predictions.items()
            for s, e, lab, score in segs
            if lab == name
        ]
        ap = average_precision(gts, preds, tious)
        per_class[name] = {
            k: (None if np.isnan(a) else float(a)) for k, a in zip(keys, ap, strict=True)
        }
        if not np.isnan(ap).any():
            values.append(ap)
    mean = np.mean(values, axis=0) if values else np.full(len(tious), np.nan)
    return {
        "tious": [float(t) for t in tious],
        "mAP": {k: (None if np.isnan(m) else float(m)) for k, m in zip(keys, mean, strict=True)},
        "per_class": per_class,
        "classes_with_truth": len(values),
    }


def boundary_errors(truth: Truth, predictions: Predictions) -> dict[str, Any]:
    """How far predicted boundaries are from the true ones, in seconds.

    Each ground-truth segment is paired with the prediction of its class in its video that
    overlaps it most (tIoU > 0); its start and end errors are ``|pred - true|``. Ground truth
    without an overlapping prediction of its class is counted as ``missed``.

    Returns:
        ``{"errors_s": [...], "median_s", "mean_s", "matched", "missed"}`` (``None`` medians
        when nothing matched).
    """
    errors: list[float] = []
    missed = matched = 0
    for video, segs in truth.items():
        preds = predictions.get(video, [])
        for s, e, label in segs:
            cand = np.array([(ps, pe) for ps, pe, pl, _ in preds if pl == label]).reshape(-1, 2)
            ious = segment_iou((s, e), cand) if len(cand) else np.zeros(0)
            if not len(ious) or ious.max() <= 0:
                missed += 1
                continue
            ps, pe = cand[int(ious.argmax())]
            errors += [abs(float(ps) - s), abs(float(pe) - e)]
            matched += 1
    return {
        "errors_s": errors,
        "median_s": float(np.median(errors)) if errors else None,
        "mean_s": float(np.mean(errors)) if errors else None,
        "matched": matched,
        "missed": missed,
    }
