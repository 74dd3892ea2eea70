"""Runtimes behind one Predictor interface: torch (a checkpoint) and ONNX Runtime (an export).

``AnnotateSettings.runtime.runtime`` (``--runtime torch|onnx``) picks one; :func:`load_predictor`
is where ``annotate``, ``run`` (local and Ray engines) and the tools load a model. Both
runtimes offer what the stages use::

    predictor.meta, .class_names, .checkpoint, .plan.device, .plan.precision, .device,
    .threads, .frame_batch, .window_batch, .describe()
    feats = predictor.features(frames)          # uint8 (T, H, W, 3) -> (T, D) or (T, C, h, w)
    probs = predictor.score_windows(windows)    # (W, L, ...) -> (W, K) probabilities on the CPU
    probs = predictor.predict_clip(frames)      # one window's frames -> (K,)

- ``torch``: :class:`~video_lstm.inference.predictor.Predictor` (features are torch tensors).
- ``onnx``: :class:`~video_lstm.inference.runtime.ort.OnnxPredictor` over the two graphs that
  ``video-lstm export`` writes (features are numpy arrays). It takes such an ``.onnx`` model,
  or a checkpoint, which is then exported once and cached by its digest
  (:func:`~video_lstm.inference.export.cached_export`). Decoding, numpy preprocessing, ONNX
  Runtime, segments and writers: no torch is imported for an ``.onnx`` model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from video_lstm.inference.runtime.device import RuntimeDevice

if TYPE_CHECKING:
    from video_lstm.inference.settings import AnnotateSettings

__all__ = ["RUNTIMES", "RuntimeDevice", "is_exported_model", "load_predictor"]

RUNTIMES = ("torch", "onnx")


def is_exported_model(path: str | Path) -> bool:
    """An ``.onnx`` file (``video-lstm export``'s output) rather than a torch checkpoint."""
    return Path(path).suffix.lower() == ".onnx"


def load_predictor(model: str | Path, settings: AnnotateSettings) -> Any:
    """The model on the runtime, device, precision, threads and batch sizes of ``settings.runtime``.

    Args:
        model: A checkpoint (``.pt``/``.ckpt``) or an exported ``.onnx`` model.
        settings: The annotation settings (``settings.runtime`` is used).

    Returns:
        A :class:`~video_lstm.inference.predictor.Predictor` (``runtime="torch"``) or an
        :class:`~video_lstm.inference.runtime.ort.OnnxPredictor` (``runtime="onnx"``).

    Raises:
        ValueError: ``runtime="torch"`` with an ``.onnx`` model (torch cannot run it).
    """
    rt = settings.runtime
    if rt.runtime == "onnx":
        from video_lstm.inference.runtime.ort import OnnxPredictor

        if not is_exported_model(model):
            from video_lstm.inference.export import cached_export

            model = cached_export(model)
        return OnnxPredictor(
            model,
            device=rt.device,
            precision=rt.precision,
            threads=rt.threads,
            frame_batch=rt.frame_batch,
            window_batch=rt.window_batch,
        )
    if is_exported_model(model):
        raise ValueError(
            f"{model}: an exported ONNX model runs with --runtime onnx (the torch runtime "
            "takes a checkpoint)"
        )
    from video_lstm.inference.predictor import Predictor

    return Predictor.from_checkpoint(
        model,
        device=rt.device,
        precision=rt.precision,
        frame_batch=rt.frame_batch,
        window_batch=rt.window_batch,
    )
