"""Annotate one video: the entry point behind ``video-lstm annotate``.

It checks the inputs (before the model loads), sets the thread count, loads the checkpoint and
runs the stages of ``inference.stages``: score -> segment -> write. This module must stay light
(no torch at import, no postponed-import blocks): the console script builds ``--help`` from
:func:`annotate_video`'s signature, and jsonargparse evaluates such blocks of this module.
"""

from __future__ import annotations

from pathlib import Path

from video_lstm.errors import UsageError
from video_lstm.inference.result import AnnotationResult
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.inference.stages import annotate_with_predictor, load_predictor
from video_lstm.io.checks import require_checkpoint, require_file, require_output_dir

__all__ = ["annotate_video"]


def annotate_video(
    video: str,
    checkpoint: str,
    out_dir: str,
    settings: AnnotateSettings = AnnotateSettings(),  # noqa: B008 (never mutated; the CLI shows its fields)
    *,
    name: str | None = None,
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
        checkpoint: Model checkpoint (``.pt`` from ``save_checkpoint`` or a training ``.ckpt``),
            or with ``--runtime onnx`` a model written by ``video-lstm export`` (``.onnx``);
            a loaded :class:`~video_lstm.inference.predictor.Predictor` is accepted too.
        out_dir: Output folder (created).
        settings: The annotation settings (:class:`AnnotateSettings`).
        name: Base name of the outputs (default: the video's file stem).
        progress: Show a progress bar over frames.

    Returns:
        The :class:`AnnotationResult` (segments, window scores, written files).

    Raises:
        UsageError: A missing video or checkpoint, or an output folder that is a file; checked
            before the model loads.
    """
    from video_lstm.threads import apply_threads

    if settings.runtime.backend == "auto":
        require_file(video, "video")
    elif not Path(video).exists():  # a named backend may open a folder (of frames, say)
        raise UsageError(f"{video}: video not found")
    require_output_dir(out_dir)
    if isinstance(checkpoint, (str, Path)):
        require_checkpoint(checkpoint)  # a torch checkpoint or an exported .onnx model
    apply_threads(settings.runtime.threads, set_torch=settings.runtime.runtime == "torch")
    predictor = checkpoint if not isinstance(checkpoint, (str, Path)) else None
    predictor = predictor or load_predictor(checkpoint, settings)
    return annotate_with_predictor(
        video, predictor, out_dir, settings, name=name, progress=progress
    )
