"""The ONNX Runtime predictor: an exported model's two graphs, numpy in and out, no torch.

``video-lstm export CHECKPOINT model.onnx`` writes (``video_lstm.inference.export``):

- ``model.onnx``: the frame encoder (the CNN up to the features the temporal model reads,
  BatchNorm folded, constants folded: no shape arithmetic, the "same" pads inside the convs),
  float ``frames (N, 3, S, S)`` -> ``features (N, ...)``, any ``N``, a fixed frame size ``S``;
- ``model.head.onnx``: the temporal model, head and softmax, ``windows (B, L, ...)`` ->
  ``probs (B, K)`` for a fixed window batch ``B`` (the last batch is padded; see
  :meth:`OnnxPredictor.score_windows`);
- ``model.step.onnx`` (recurrent models only): one sampled step of one stream, ``features (1,
  ...)`` and ``state_0..state_n`` in, ``probs (1, K)`` and ``state_0_out..`` out, the state a
  flat tuple as the models' ``init_state``/``step_features`` (:meth:`OnnxPredictor.step`);
- ``model.onnx.json``: the checkpoint's metadata (``ModelMeta``: classes, clip length, frame
  interval, input and decode size, normalisation, segment rules, calibration) and the export's
  own (opset, graph files, window batch, precision, the verification against torch). The same
  JSON is in ``model.onnx``'s metadata (key ``video_lstm``), so the graph alone describes itself.

Every command takes the path given to ``export`` (``model.onnx``); the others are found next to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from video_lstm.data.numpy_transforms import NumpyEvalTransform
from video_lstm.errors import UsageError
from video_lstm.inference.runtime.device import RuntimeDevice
from video_lstm.types import ModelMeta

__all__ = [
    "EXPORT_FORMAT",
    "ExportedModel",
    "OnnxPlan",
    "OnnxPredictor",
    "onnxruntime",
    "read_export",
    "resolve_providers",
    "sidecar_path",
]

EXPORT_FORMAT = "video_lstm.onnx/1"
META_KEY = "video_lstm"


def onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a one-line error saying what to install."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise UsageError(
            "the ONNX runtime needs onnxruntime: pip install 'video_lstm[onnx]' "
            f"(or onnxruntime-gpu for CUDA) ({exc})"
        ) from None
    return ort


def sidecar_path(model: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json`` (the metadata written next to the graphs)."""
    model = Path(model)
    return model.with_name(model.name + ".json")


@dataclass(frozen=True)
class ExportedModel:
    """What ``export`` wrote: the graphs' paths, the model's metadata and the export's.

    Args:
        encoder: The frame-encoder graph (the path ``export`` was given).
        head: The temporal model + head graph.
        meta: The checkpoint's :class:`ModelMeta`.
        info: The export's own fields (``format``, ``opset``, ``window_batch``,
            ``feature_shape``, ``precision``, ``verification``, ``checkpoint_sha256``).
    """

    encoder: Path
    head: Path
    meta: ModelMeta
    info: dict[str, Any]

    @property
    def window_batch(self) -> int:
        return int(self.info["window_batch"])


def read_export(path: str | Path) -> ExportedModel:
    """Read an exported model's metadata (its sidecar JSON; else the graph's own metadata).

    Raises:
        UsageError: No such file, or not a model written by ``video-lstm export``.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: exported model not found")
    side = sidecar_path(path)
    if side.is_file():
        try:
            doc = json.loads(side.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{side}: unreadable export metadata ({exc})") from None
    else:  # the graph alone: its metadata_props, read by onnxruntime (no onnx package needed)
        ort = onnxruntime()
        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise UsageError(f"{path}: not an ONNX model ({' '.join(str(exc).split())})") from None
        text = sess.get_modelmeta().custom_metadata_map.get(META_KEY)
        if text is None:
            raise UsageError(f"{path}: not written by video-lstm export (no {META_KEY} metadata)")
        doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise UsageError(f"{side}: not video-lstm export metadata (format {EXPORT_FORMAT})")
    head = path.with_name(doc["head"])
    if not head.is_file():
        raise UsageError(f"{head}: the temporal-model graph of {path} is missing")
    info = {k: v for k, v in doc.items() if k != "model_meta"}
    return ExportedModel(encoder=path, head=head, meta=ModelMeta(**doc["model_meta"]), info=info)


def resolve_providers(device: str = "auto") -> tuple[list[Any], RuntimeDevice]:
    """Execution providers for ``device``, chosen as ``--device`` chooses torch's device.

    ``auto``: CUDA's provider when onnxruntime-gpu offers it, else CPU's; ``cuda``/``cuda:N``
    needs that provider (an error otherwise); ``cpu``: CPU's.

    Returns:
        ``(providers, device)``: the list for ``InferenceSession`` and the device it means.
    """
    ort = onnxruntime()
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return ["CPUExecutionProvider"], RuntimeDevice("cpu")
    if kind != "cuda" or (index and not index.isdigit()):
        raise UsageError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if not has_cuda:
        raise UsageError(
            f"device {device!r} with --runtime onnx needs onnxruntime-gpu and a GPU "
            f"(this onnxruntime offers {available})"
        )
    ordinal = int(index or 0)
    providers = [("CUDAExecutionProvider", {"device_id": ordinal}), "CPUExecutionProvider"]
    return providers, RuntimeDevice("cuda", ordinal)


@dataclass(frozen=True)
class OnnxPlan:
    """Where and how the ONNX model runs (``plan.device``, ``plan.precision`` as on torch's
    :class:`~video_lstm.inference.predictor.DevicePlan`)."""

    device: RuntimeDevice
    precision: str
    providers: tuple[str, ...]


class OnnxPredictor:
    """An exported model on ONNX Runtime, with the torch Predictor's interface (numpy arrays).

    Args:
        model: The ``.onnx`` path ``video-lstm export`` was given.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (see :func:`resolve_providers`).
        precision: ``auto`` or the export's own precision (``fp32``, or what ``export
            --precision`` wrote): the precision is the graph's, chosen at export.
        threads: Intra-op threads of each session (``None``: ``video_lstm.threads.default_threads``).
        frame_batch: Frames per encoder call (``None``: 4 on CPU, where smaller calls keep the
            maps in cache: compact model, 1 thread, 980 frames per CPU-second at 1 and 4
            frames a call, 940 at 8, 850 at 16; 32 on GPU).
        window_batch: Windows per scoring call from the streaming scorer (``None``: the head
            graph's batch); the head graph always runs its own fixed batch.
        allow_spinning: Whether idle intra-op threads spin waiting for work (ONNX Runtime's
            ``session.intra_op.allow_spinning``; ``None``: its default, spinning). Spinning
            answers sooner on idle cores, but its CPU time is work taken from other jobs on
            shared ones, and it counts in a CPU-time benchmark. No effect with 1 thread.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "auto",
        precision: str = "auto",
        threads: int | None = None,
        frame_batch: int | None = None,
        window_batch: int | None = None,
        allow_spinning: bool | None = None,
    ) -> None:
        from video_lstm.threads import default_threads

        ort = onnxruntime()
        self.export = read_export(model)
        self.meta = self.export.meta
        self.checkpoint = str(model)
        exported = str(self.export.info.get("precision", "fp32"))
        if precision not in ("auto", exported):
            raise UsageError(
                f"{model}: exported in {exported}; its precision is chosen at export "
                "(video-lstm export CHECKPOINT OUT.onnx --precision int8 --calibration VIDEOS), "
                f"got --precision {precision}"
            )
        providers, dev = resolve_providers(device)
        self.threads = default_threads() if threads is None else int(threads)
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1  # one graph at a time: the cores go to its operators
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if allow_spinning is not None:
            options.add_session_config_entry(
                "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
            )
        self.encoder = ort.InferenceSession(str(self.export.encoder), options, providers=providers)
        self.head = ort.InferenceSession(str(self.export.head), options, providers=providers)
        self.plan = OnnxPlan(dev, exported, tuple(self.encoder.get_providers()))
        self.head_batch = self.export.window_batch
        cpu = dev.type == "cpu"
        self.frame_batch = int(frame_batch or (4 if cpu else 32))
        self.window_batch = int(window_batch or self.head_batch)
        if self.frame_batch < 1 or self.window_batch < 1:
            raise ValueError(
                f"frame_batch and window_batch must be >= 1, got {self.frame_batch}, "
                f"{self.window_batch}"
            )
        self.transform = NumpyEvalTransform(
            size=self.meta.frame_size, mean=self.meta.mean, std=self.meta.std
        )
        self._frames_in = self.encoder.get_inputs()[0].name
        self._windows_in = self.head.get_inputs()[0].name
        step = self.export.info.get("step")
        self.stepper = None
        if step and "file" in step:  # {"error": ...}: the exporter could not convert the step
            path = self.export.encoder.with_name(step["file"])
            self.stepper = ort.InferenceSession(str(path), options, providers=providers)
            self._state_spec = [(tuple(s["shape"]), np.dtype(s["dtype"])) for s in step["state"]]

    @property
    def stateful(self) -> bool:
        """Whether the export has a step graph (a recurrent model): :meth:`step` works."""
        return self.stepper is not None

    def init_state(self) -> tuple[np.ndarray, ...]:
        """The zero state of one stream before its first step (see :meth:`step`)."""
        if self.stepper is None:
            raise ValueError(f"{self.checkpoint}: no step graph (the model is not recurrent)")
        return tuple(np.zeros(shape, dtype) for shape, dtype in self._state_spec)

    def step(
        self, feat_t: np.ndarray, state: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """One sampled step of one stream: ``(probs (1, K), next state)``.

        ``L`` steps from :meth:`init_state` give the probabilities :meth:`score_windows` gives
        for those ``L`` features (checked at export).

        Args:
            feat_t: One step's features ``(1, D)`` or ``(1, C, h, w)`` (from :meth:`features`).
            state: From :meth:`init_state` or the previous call.
        """
        if self.stepper is None:
            raise ValueError(f"{self.checkpoint}: no step graph (the model is not recurrent)")
        feeds = {"features": np.asarray(feat_t, dtype=np.float32)}
        feeds.update({f"state_{i}": s for i, s in enumerate(state)})
        probs, *new = self.stepper.run(None, feeds)
        return probs, tuple(new)

    @property
    def device(self) -> RuntimeDevice:
        return self.plan.device

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.class_names)

    def describe(self) -> dict[str, Any]:
        """Plain-value description for result files."""
        return {
            "checkpoint": self.checkpoint,
            "runtime": "onnx",
            "device": str(self.plan.device),
            "precision": self.plan.precision,
            "providers": list(self.plan.providers),
            "class_names": self.class_names,
            "meta": self.meta.to_dict(),
        }

    def preprocess(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``(T, H, W, 3)`` -> float32 ``(T, 3, S, S)`` (numpy, as ``EvalTransform``)."""
        return self.transform(np.asarray(frames))

    def _batches(self, n: int, size: int) -> Iterator[slice]:
        for lo in range(0, n, size):
            yield slice(lo, min(lo + size, n))

    def features(self, frames: np.ndarray) -> np.ndarray:
        """Per-frame features, ``frame_batch`` frames per encoder call.

        Args:
            frames: uint8 ``(T, H, W, 3)``.

        Returns:
            float32 ``(T, D)`` vectors or ``(T, C, h, w)`` maps.
        """
        frames = np.asarray(frames)
        if len(frames) == 0:
            raise ValueError("features() needs at least one frame")
        out = [
            self.encoder.run(None, {self._frames_in: self.preprocess(frames[sl])})[0]
            for sl in self._batches(len(frames), self.frame_batch)
        ]
        return out[0] if len(out) == 1 else np.concatenate(out)

    def score_windows(self, window_feats: np.ndarray) -> np.ndarray:
        """Class probabilities of windows of precomputed features.

        The head graph has a fixed batch (the ONNX exporter bakes the batch into the recurrent
        models' reshapes): windows run ``head_batch`` at a time, the last batch padded with
        copies of its last window, whose scores are dropped.

        Args:
            window_feats: ``(W, L, D)`` or ``(W, L, C, h, w)`` float32 features.

        Returns:
            ``(W, K)`` float32 probabilities.
        """
        x = np.asarray(window_feats, dtype=np.float32)
        n, b = len(x), self.head_batch
        if n == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        out = []
        for sl in self._batches(n, b):
            chunk = x[sl]
            m = len(chunk)
            if m < b:
                pad = np.broadcast_to(chunk[-1:], (b - m, *chunk.shape[1:]))
                chunk = np.concatenate([chunk, pad])
            out.append(self.head.run(None, {self._windows_in: chunk})[0][:m])
        return np.concatenate(out).astype(np.float32, copy=False)

    def predict_clip(self, frames: np.ndarray) -> np.ndarray:
        """Both graphs on one window's frames (no feature sharing): the naive reference.

        Args:
            frames: uint8 ``(L, H, W, 3)`` sampled frames of one window.

        Returns:
            ``(K,)`` float32 probabilities.
        """
        return self.score_windows(self.features(frames)[None])[0]
