"""``video-lstm calibrate``: choose the segment rules on validation videos and store them in the
checkpoint, so that ``annotate`` / ``run`` use them by default (explicit flags still win).

    video-lstm calibrate runs/.../last.ckpt --root data/synthetic_untrimmed \\
        --kind segments_csv --manifest_args '{annotations: annotations.csv}' --subset val
    video-lstm calibrate runs/.../last.ckpt --config my_dataset.yaml   # root, kind, ... in YAML

The library function :func:`calibrate_checkpoint` takes a :class:`DatasetSpec`; the command
line gives its fields as a training config's ``data:`` section names them.

Each validation video is scored exactly as annotation scores it (streamed, shared per-frame
features, sliding windows at the model's decode size), then every combination of threshold,
smoothing, minimum duration and merge gap is tried on those scores
(``video_lstm.inference.segments.calibrate_rules``): the best mean of frame accuracy and segment
mAP@0.5 wins.
"""

from __future__ import annotations

import csv
import logging
from typing import Any

from video_lstm.data.datasets import DatasetSpec

log = logging.getLogger(__name__)


def score_videos(
    predictor: Any,
    videos: list[Any],
    *,
    stride: int | None = None,
    backend: str = "auto",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Window scores of untrimmed videos with their ground truth (input of ``calibrate_rules``).

    Args:
        predictor: A loaded ``Predictor``.
        videos: ``UntrimmedVideo`` items of a ``TemporalManifest``.
        stride: Window stride in sampled frames (default: annotation's, ``clip_len // 4``).
        backend: Decoder backend (``auto``: as annotation picks it).
        progress: Show a progress bar.
    """
    from tqdm.auto import tqdm

    from video_lstm.inference.scoring import open_args, pass_backends, score_video
    from video_lstm.io.decode import open_video

    meta = predictor.meta
    size = getattr(meta, "decode_size", None) or meta.frame_size
    model_backend, _ = pass_backends(backend, predictor.device)
    out = []
    for video in tqdm(videos, desc="scoring", unit="video", disable=not progress):
        with open_video(video.path, **open_args(backend, model_backend), size=size) as reader:
            ws = score_video(predictor, reader, stride=stride)
            num_frames, fps = reader.num_frames, reader.fps
        out.append(
            {
                "video": str(video.path),
                "probs": ws.probs,
                "spans": ws.spans,
                "num_frames": num_frames,
                "fps": fps,
                "truth": [(g.start_s, g.end_s, g.label) for g in video.segments],
            }
        )
    return out


def calibrate_checkpoint(
    checkpoint: str,
    *,
    data: DatasetSpec,
    subset: str = "val",
    out: str | None = None,
    stride: int | None = None,
    device: str = "auto",
    backend: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Calibrate the segment rules on a validation subset and store them in the checkpoint.

    Args:
        checkpoint: The trained model (``.ckpt`` or ``.pt``); updated in place unless ``out``.
        data: The dataset (a temporal kind).
        subset: The validation videos (never the test ones): a role of ``data.subsets`` or the
            dataset's own subset name.
        out: Write the calibrated checkpoint here instead of replacing ``checkpoint``.
        stride: Window stride in sampled frames (default: annotation's).
        device: ``auto``, ``cpu`` or ``cuda``.
        backend: Decoder backend.
        progress: Show progress.

    Returns:
        The stored rules (with the frame accuracy and mAP they reached on ``subset``); the
        table of every combination is written next to the checkpoint
        (``<name>.calibration.csv``).
    """
    from video_lstm.data.datasets import BACKGROUND, list_dataset_kinds
    from video_lstm.inference.predictor import Predictor
    from video_lstm.inference.segments import calibrate_rules
    from video_lstm.io.files import atomic_path
    from video_lstm.models.checkpoint import store_segment_rules

    if not data.temporal:
        temporal = ", ".join(list_dataset_kinds(temporal=True))
        raise ValueError(f"calibration needs temporal annotations ({temporal}), got {data.kind!r}")
    manifest = data.manifest(subset)
    predictor = Predictor.from_checkpoint(checkpoint, device=device)
    names = predictor.class_names
    unknown = sorted(set(manifest.class_names) - set(names))
    if unknown:
        raise ValueError(f"{checkpoint}: the model has no classes {unknown} (it has {names})")
    scored = score_videos(predictor, manifest.videos, stride=stride, backend=backend,
                          progress=progress)  # fmt: skip
    background = BACKGROUND if BACKGROUND in names else None
    best, table = calibrate_rules(scored, names, background=background)
    rules = {k: best[k] for k in ("threshold", "smoothing_s", "min_duration_s", "merge_gap_s")}
    rules["background"] = background
    report = {
        **best,
        "tiou": 0.5,
        "num_videos": len(scored),
        "subset": data.subset_name(subset),
        "root": data.root,
        "kind": data.kind,
    }
    target = store_segment_rules(checkpoint, rules, report=report, out=out)
    with (
        atomic_path(target.with_suffix(".calibration.csv")) as tmp,
        open(tmp, "w", newline="") as f,
    ):
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(sorted(table, key=lambda r: -r["objective"]))
    log.info("calibrated %s on %d videos: %s", target, len(scored), rules)
    return {**report, **rules}


def calibrate(
    checkpoint: str,
    *,
    root: str,
    kind: str = "segments_csv",
    manifest_args: dict[str, Any] | None = None,
    subset: str = "val",
    out: str | None = None,
    stride: int | None = None,
    device: str = "auto",
    backend: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Calibrate the segment rules of ``checkpoint`` on the ``subset`` videos of a temporal
    dataset and store them in the checkpoint (:func:`calibrate_checkpoint`).

    Args:
        checkpoint: The trained model (``.ckpt`` or ``.pt``); updated in place unless ``out``.
        root: Dataset root (as ``data.root`` in the training config).
        kind: A temporal dataset kind (listed below).
        manifest_args: The kind's options (relative paths are relative to ``root``).
        subset: The validation subset's name (never the test videos).
        out: Write the calibrated checkpoint here instead of replacing ``checkpoint``.
        stride: Window stride in sampled frames (default: annotation's).
        device: ``auto``, ``cpu`` or ``cuda``.
        backend: Decoder backend.
        progress: Show progress.

    Returns:
        The stored rules and the figures they reached.
    """
    spec = DatasetSpec.from_config(kind=kind, root=root, manifest_args=manifest_args)
    return calibrate_checkpoint(
        checkpoint, data=spec, subset=subset, out=out, stride=stride, device=device,
        backend=backend, progress=progress,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from jsonargparse import CLI

    from video_lstm.data.datasets import describe_dataset_kinds
    from video_lstm.training.evaluate import doc_summary, epilog_as_written

    rules = CLI(
        calibrate,
        args=argv,
        as_positional=True,
        prog="video-lstm calibrate",
        description=doc_summary(calibrate),
        exit_on_error=False,
        epilog=describe_dataset_kinds(),
        formatter_class=epilog_as_written(),
    )
    print(
        "stored segment rules: "
        + ", ".join(
            f"{k} {rules[k]:g}"
            for k in ("threshold", "smoothing_s", "min_duration_s", "merge_gap_s")
        )  # fmt: skip
        + f"  (on {rules['num_videos']} {rules['subset']} videos: frame accuracy "
        f"{rules['frame_accuracy']:.3f}, mAP@{rules['tiou']:g} {rules['mAP']:.3f})"
    )
    return 0
