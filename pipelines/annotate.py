"""Annotate one video: stream -> shared per-frame features -> window scores -> segments -> outputs.

First pass (bounded memory): ``video_lstm.inference.scoring.score_video``.

Then segments are made (``inference.segments``) and the outputs written, each atomically:
``<name>.json`` / ``.csv`` / ``.srt`` / ``.vtt``, ``<name>_annotated.mp4`` (a second decode pass
at full resolution: the timeline bar needs the whole result) and frame-exact labelled clips
``clips/<label>/<name>_<start>-<end>.mp4``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from video_lstm.inference.predictor import Predictor
from video_lstm.inference.scoring import WindowScores, pass_backends, score_video
from video_lstm.inference.segments import frame_labels_from_segments, scores_to_segments
from video_lstm.io.clips import clip_path, cut_clip
from video_lstm.io.decode import open_video
from video_lstm.io.files import write_json
from video_lstm.io.results import write_segments_csv, write_srt, write_vtt
from video_lstm.io.video import write_annotated_video
from video_lstm.types import Segment, VideoInfo

__all__ = [
    "OUTPUTS",
    "AnnotateSettings",
    "AnnotationResult",
    "annotate_video",
    "annotate_with_predictor",
]

OUTPUTS = ("json", "csv", "srt", "vtt", "video", "clips")
# Knobs that change speed or memory but not the result: left out of the resume hash.
_RUNTIME_ONLY = (
    "chunk_size",
    "frame_batch",
    "window_batch",
    "prefetch",
    "device",
    "precision",
    "backend",
)


@dataclass
class AnnotateSettings:
    """Plain-value settings of one annotation run (saved in the JSON next to the outputs).

    See :func:`annotate_video` for the meaning of each field.
    """

    outputs: list[str] = field(default_factory=lambda: list(OUTPUTS))
    stride: int | None = None
    threshold: float = 0.5
    min_duration_s: float = 0.5
    merge_gap_s: float = 0.25
    smoothing_s: float = 0.5
    background: str | None = None
    decode_size: int | None = None
    chunk_size: int = 64
    frame_batch: int | None = None
    window_batch: int | None = None
    prefetch: int | None = None
    save_window_scores: bool = False
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"

    def __post_init__(self) -> None:
        self.outputs = list(self.outputs)
        unknown = sorted(set(self.outputs) - set(OUTPUTS))
        if unknown:
            raise ValueError(f"unknown outputs {unknown}; choose from {list(OUTPUTS)}")
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        for name in ("min_duration_s", "merge_gap_s", "smoothing_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("chunk_size", "frame_batch", "window_batch"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.prefetch is not None and self.prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {self.prefetch}")
        if self.decode_size is not None and self.decode_size < 1:
            raise ValueError(f"decode_size must be >= 1, got {self.decode_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def result_dict(self) -> dict[str, Any]:
        """The settings that determine the outputs (for the resume hash)."""
        return {k: v for k, v in asdict(self).items() if k not in _RUNTIME_ONLY}


# ---------------------------------------------------------------------------------------------
# The whole pipeline for one video
# ---------------------------------------------------------------------------------------------


@dataclass
class AnnotationResult:
    """What :func:`annotate_video` found and wrote."""

    video: str
    info: VideoInfo  # of the source at full resolution
    class_names: list[str]
    segments: list[Segment]
    windows: WindowScores
    frame_probs: np.ndarray  # (num_frames, K) smoothed
    settings: dict[str, Any]
    output_files: list[str]
    timings: dict[str, float]


def annotate_with_predictor(
    video: str | Path,
    predictor: Predictor,
    out_dir: str | Path,
    settings: AnnotateSettings,
    *,
    name: str | None = None,
    progress: bool = False,
) -> AnnotationResult:
    """:func:`annotate_video` with a loaded :class:`Predictor` and an :class:`AnnotateSettings`
    (the batch runner loads the model once for many videos)."""
    from tqdm.auto import tqdm

    video, out_dir = Path(video), Path(out_dir)
    name = name or video.stem
    meta = predictor.meta
    stride = settings.stride or max(1, meta.clip_len // 4)
    decode_size = settings.decode_size or meta.frame_size
    timings: dict[str, float] = {}

    model_backend, writer_backend = pass_backends(settings.backend, predictor.device)
    t0 = time.perf_counter()
    with open_video(video, backend=model_backend, size=decode_size) as reader:
        with tqdm(
            total=reader.num_frames, desc=name, unit="frame", leave=False, disable=not progress
        ) as bar:
            windows = score_video(
                predictor,
                reader,
                stride=stride,
                chunk_size=settings.chunk_size,
                prefetch=settings.prefetch,  # None: score_video picks by device
                on_frames=lambda n: bar.update(min(n, bar.total - bar.n)),
            )
        num_frames, fps = reader.num_frames, reader.fps
    timings["score"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    names = predictor.class_names
    frame_probs, segments = scores_to_segments(
        windows.probs,
        windows.spans,
        num_frames=num_frames,
        fps=fps,
        class_names=names,
        smoothing_s=settings.smoothing_s,
        threshold=settings.threshold,
        min_duration_s=settings.min_duration_s,
        merge_gap_s=settings.merge_gap_s,
        background=settings.background,
    )
    timings["segments"] = time.perf_counter() - t0

    resolved = {**settings.to_dict(), "stride": stride, "decode_size": decode_size}
    resolved.update(device=str(predictor.plan.device), precision=predictor.plan.precision)
    files: list[str] = []
    outputs = set(settings.outputs)
    t0 = time.perf_counter()
    with open_video(video, backend=writer_backend) as full:
        info = full.info
        if "video" in outputs:
            labels = frame_labels_from_segments(segments, num_frames, names)
            scores = frame_probs[np.arange(num_frames), np.maximum(labels, 0)]
            path = out_dir / f"{name}_annotated.mp4"
            write_annotated_video(
                full,
                path,
                class_names=names,
                segments=segments,
                labels=labels,
                scores=scores,
            )
            files.append(str(path))
        timings["video"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if "clips" in outputs:
            for seg in segments:
                path = clip_path(out_dir / "clips", seg.label, name, seg.start_frame, seg.end_frame)
                files.append(str(cut_clip(full, seg.start_frame, seg.end_frame, path)))
        timings["clips"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if "csv" in outputs:
        files.append(str(write_segments_csv(out_dir / f"{name}.csv", segments)))
    if "srt" in outputs:
        files.append(str(write_srt(out_dir / f"{name}.srt", segments)))
    if "vtt" in outputs:
        files.append(str(write_vtt(out_dir / f"{name}.vtt", segments)))
    timings["text"] = time.perf_counter() - t0
    if "json" in outputs:
        doc: dict[str, Any] = {
            "video": info.to_dict(),
            "model": {
                "checkpoint": predictor.checkpoint,
                "class_names": names,
                "clip_len": meta.clip_len,
                "frame_interval": meta.frame_interval,
                "frame_size": meta.frame_size,
                "model": meta.model,
            },
            "settings": resolved,
            "segments": segments,
            "num_windows": len(windows.starts),
            "timings_s": timings,
        }
        if settings.save_window_scores:
            doc["windows"] = {"spans": windows.spans, "probs": windows.probs}
        # Last, so that a JSON on disk means every other output is there too.
        files.append(str(write_json(out_dir / f"{name}.json", doc)))
    return AnnotationResult(
        video=str(video),
        info=info,
        class_names=names,
        segments=segments,
        windows=windows,
        frame_probs=frame_probs,
        settings=resolved,
        output_files=files,
        timings=timings,
    )


def annotate_video(
    video: str,
    checkpoint: str,
    out_dir: str,
    *,
    name: str | None = None,
    outputs: list[str] = list(OUTPUTS),  # noqa: B006 (a plain default for the CLI)
    stride: int | None = None,
    threshold: float = 0.5,
    min_duration_s: float = 0.5,
    merge_gap_s: float = 0.25,
    smoothing_s: float = 0.5,
    background: str | None = None,
    decode_size: int | None = None,
    chunk_size: int = 64,
    frame_batch: int | None = None,
    window_batch: int | None = None,
    prefetch: int | None = None,
    save_window_scores: bool = False,
    device: str = "auto",
    precision: str = "auto",
    backend: str = "auto",
    progress: bool = True,
) -> AnnotationResult:
    """Find the actions in one video and write segments, subtitles, an annotated video and clips.

    The video is streamed at the model's sampling rate (every ``frame_interval``-th frame),
    the CNN runs once per sampled frame and sliding windows of ``clip_len`` sampled frames share
    those features. Window scores are spread onto frames, smoothed, thresholded and merged into
    segments. Outputs go to ``out_dir``: ``<name>.json`` (video metadata, model, class names,
    resolved settings, segments), ``<name>.csv``, ``<name>.srt``, ``<name>.vtt``,
    ``<name>_annotated.mp4`` (H.264, source fps: label, confidence, timeline bar) and
    ``clips/<label>/<name>_<start>-<end>.mp4`` (frame-exact). Each file is written atomically.

    Args:
        video: Input video file.
        checkpoint: Model checkpoint (``.pt`` from ``save_checkpoint`` or a training ``.ckpt``);
            a loaded :class:`~video_lstm.inference.predictor.Predictor` is accepted too.
        out_dir: Output folder (created).
        name: Base name of the outputs (default: the video's file stem).
        outputs: Which outputs to write: json, csv, srt, vtt, video, clips.
        stride: Window stride in sampled frames (default ``clip_len // 4``).
        threshold: Minimum smoothed probability for a frame to count as an action.
        min_duration_s: Shortest segment kept, in seconds.
        merge_gap_s: Same-label segments closer than this are merged.
        smoothing_s: Temporal smoothing of per-frame probabilities, in seconds (0 = off).
        background: A class name meaning "no action", if the model has one.
        decode_size: Short side the decoder resizes to for the model (default: the model's size).
        chunk_size: Sampled frames decoded per chunk (bounds memory).
        frame_batch: Frames per CNN pass (default: 8 on CPU, 32 on GPU).
        window_batch: Windows per temporal-model pass (default: 32 on CPU, 64 on GPU).
        prefetch: Chunks decoded ahead in a worker process (0 = decode inline). Default: 2 on
            GPU, 0 on CPU, where the decoder and the CNN compete for the same cores (a 60 s
            video's first pass on 2 cores: 2.7 s with the worker against 2.3 s inline).
        save_window_scores: Also store per-window spans and probabilities in the JSON.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``.
        precision: ``auto`` (bf16/fp16 autocast on CUDA, fp32 on CPU), ``fp32``, ``bf16``, ``fp16``.
        backend: Decoder backend: ``auto``, ``decord``, ``pyav``.
        progress: Show a progress bar over frames.

    Returns:
        The :class:`AnnotationResult` (segments, window scores, written files).
    """
    settings = AnnotateSettings(
        outputs=list(outputs),
        stride=stride,
        threshold=threshold,
        min_duration_s=min_duration_s,
        merge_gap_s=merge_gap_s,
        smoothing_s=smoothing_s,
        background=background,
        decode_size=decode_size,
        chunk_size=chunk_size,
        frame_batch=frame_batch,
        window_batch=window_batch,
        prefetch=prefetch,
        save_window_scores=save_window_scores,
        device=device,
        precision=precision,
        backend=backend,
    )
    if isinstance(checkpoint, Predictor):
        predictor = checkpoint
    else:
        predictor = Predictor.from_checkpoint(
            checkpoint,
            device=device,
            precision=precision,
            frame_batch=frame_batch,
            window_batch=window_batch,
        )
    return annotate_with_predictor(
        video, predictor, out_dir, settings, name=name, progress=progress
    )
