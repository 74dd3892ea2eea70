"""The three stages of annotating one video: score -> segment -> write.

1. **score** (bounded memory, ``inference.scoring``): the video is streamed at the model's
   sampling rate, the CNN runs once per sampled frame and sliding windows share those features.
2. **segment** (``inference.segments``): window scores are spread onto frames, smoothed,
   thresholded and merged by the :class:`SegmentRules` (explicit, else the checkpoint's
   calibrated ones, else the defaults).
3. **write** (the writer table, ``inference.writers``): each requested writer, in the
   table's order, atomically, JSON last: ``<name>.json`` / ``.csv`` / ``.srt`` / ``.vtt``,
   ``<name>_annotated.mp4`` (a second decode pass at full resolution: the timeline bar needs
   the whole result), frame-exact clips ``clips/<label>/<name>_<start>-<end>.mp4``, and any
   writer a plugin registered.

:func:`video_lstm.inference.annotate.annotate_video` is the entry point (checks its inputs,
loads the model, runs these). torch is imported only when a torch model runs: with
``--runtime onnx`` (``inference.runtime``) the stages run on numpy and ONNX Runtime alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from video_lstm.inference.result import AnnotationResult
from video_lstm.inference.segments import scores_to_segments
from video_lstm.inference.settings import AnnotateSettings, SegmentRules
from video_lstm.inference.writers import list_writers
from video_lstm.io.clips import NAME_MAX_BYTES
from video_lstm.io.decode import open_video
from video_lstm.io.files import safe_name
from video_lstm.io.video import h264_encoder
from video_lstm.types import Segment

if TYPE_CHECKING:
    from video_lstm.inference.predictor import Predictor
    from video_lstm.inference.scoring import WindowScores

__all__ = [
    "AnnotationResult",
    "annotate_with_predictor",
    "load_predictor",
    "score",
    "segment",
    "write_outputs",
]


def load_predictor(checkpoint: str | Path, settings: AnnotateSettings) -> Predictor:
    """The model on the runtime (torch or ONNX Runtime), device, precision and batch sizes of
    ``settings.runtime`` (``video_lstm.inference.runtime.load_predictor``)."""
    from video_lstm.inference.runtime import load_predictor as load

    return load(checkpoint, settings)


def score(
    video: str | Path,
    predictor: Predictor,
    settings: AnnotateSettings,
    *,
    name: str = "",
    progress: bool = False,
    on_frames: Callable[[int], None] | None = None,
) -> tuple[WindowScores, int, float]:
    """Stage 1: window scores of ``video`` (decoded at the model's size and sampling rate).

    ``on_frames`` is called with the source frames each scored chunk covers (an engine's
    progress over many videos and workers).

    Returns:
        ``(windows, num_frames, fps)`` of the source.
    """
    from tqdm.auto import tqdm

    from video_lstm.inference.scoring import open_args, pass_backends, score_video

    meta = predictor.meta
    model_backend, _ = pass_backends(settings.runtime.backend, predictor.device)
    decode_size = settings.windows.decode_size or meta.decode_size or meta.frame_size
    threads = settings.runtime.threads or predictor.threads
    with open_video(
        video,
        **open_args(settings.runtime.backend, model_backend),
        size=decode_size,
        num_threads=threads,
        on_error=settings.on_error,
        hwaccel=_hwaccel(settings, predictor),
    ) as reader:
        with tqdm(
            total=reader.num_frames, desc=name, unit="frame", leave=False, disable=not progress
        ) as bar:
            windows = score_video(
                predictor,
                reader,
                stride=settings.windows.stride,
                chunk_size=settings.runtime.chunk_size,
                prefetch=settings.runtime.prefetch,  # None: score_video picks by device
                on_frames=lambda n: _count(bar, n, on_frames),
            )
        return windows, reader.num_frames, reader.fps


def _hwaccel(settings: AnnotateSettings, predictor: Predictor) -> str | None:
    """NVDEC decode only when asked for and the run is on CUDA (see ``RuntimeOptions``)."""
    return settings.runtime.hwaccel if predictor.device.type == "cuda" else None


def _count(bar: Any, n: int, on_frames: Callable[[int], None] | None) -> None:
    bar.update(min(n, bar.total - bar.n))
    if on_frames is not None:
        on_frames(n)


def segment(
    windows: WindowScores,
    *,
    num_frames: int,
    fps: float,
    class_names: list[str],
    rules: SegmentRules,
) -> tuple[np.ndarray, list[Segment]]:
    """Stage 2: window scores -> smoothed per-frame probabilities and segments.

    Args:
        rules: Resolved rules (``SegmentRules.resolve``): no ``None`` left.
    """
    return scores_to_segments(
        windows.probs,
        windows.spans,
        num_frames=num_frames,
        fps=fps,
        class_names=class_names,
        **asdict(rules),
    )


def write_outputs(
    result: AnnotationResult,
    reader: Any,
    out_dir: Path,
    name: str,
    outputs: list[str],
) -> list[str]:
    """Stage 3: run the requested writers (``inference.writers.list_writers``) in the table's
    order, JSON last; their files go into ``result.files`` by writer and into
    ``result.output_files``, each one's time into ``result.timings``."""
    for writer in list_writers():
        if writer.name in outputs:
            t0 = time.perf_counter()
            paths = [str(p) for p in writer.write(result, reader, out_dir, name)]
            result.files[writer.name] = paths
            result.output_files += paths
            result.timings[writer.name] = time.perf_counter() - t0
    return result.output_files


def annotate_with_predictor(
    video: str | Path,
    predictor: Predictor,
    out_dir: str | Path,
    settings: AnnotateSettings,
    *,
    name: str | None = None,
    progress: bool = False,
    on_frames: Callable[[int], None] | None = None,
) -> AnnotationResult:
    """:func:`annotate_video` with a loaded :class:`Predictor` (the batch runner loads the
    model once for many videos); ``on_frames`` as in :func:`score`."""

    from video_lstm.inference.scoring import open_args, pass_backends

    video, out_dir = Path(video), Path(out_dir)
    name = safe_name(name or video.stem, max_bytes=NAME_MAX_BYTES)  # one path segment, any bytes
    meta = predictor.meta
    rules = settings.segments.resolve(getattr(meta, "segment_rules", None))
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    windows, num_frames, fps = score(
        video, predictor, settings, name=name, progress=progress, on_frames=on_frames
    )
    timings["score"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    names = list(predictor.class_names)
    frame_probs, segments = segment(
        windows, num_frames=num_frames, fps=fps, class_names=names, rules=rules
    )
    timings["segments"] = time.perf_counter() - t0

    resolved = settings.to_dict()
    resolved["segments"] = asdict(rules)
    resolved["windows"] = {
        "stride": settings.windows.stride or max(1, meta.clip_len // 4),
        "decode_size": settings.windows.decode_size or meta.decode_size or meta.frame_size,
    }
    resolved["runtime"].update(
        threads=predictor.threads,
        device=str(predictor.plan.device),
        precision=predictor.plan.precision,
        frame_batch=predictor.frame_batch,
        window_batch=predictor.window_batch,
        encoder=h264_encoder(settings.runtime.encoder, str(predictor.plan.device)),
    )
    _, writer_backend = pass_backends(settings.runtime.backend, predictor.device)
    threads = resolved["runtime"]["threads"]  # the decoder gets the same cores as torch
    with open_video(
        video,
        **open_args(settings.runtime.backend, writer_backend),
        num_threads=threads,
        on_error=settings.on_error,
        hwaccel=_hwaccel(settings, predictor),
    ) as full:
        result = AnnotationResult(
            video=str(video),
            info=full.info,
            class_names=names,
            segments=segments,
            windows=windows,
            frame_probs=frame_probs,
            settings=resolved,
            model={
                "checkpoint": predictor.checkpoint,
                "class_names": names,
                "clip_len": meta.clip_len,
                "frame_interval": meta.frame_interval,
                "frame_size": meta.frame_size,
                "model": meta.model,
            },
            timings=timings,
        )
        write_outputs(result, full, out_dir, name, settings.outputs)
    return result
