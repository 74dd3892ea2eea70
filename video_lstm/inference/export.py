"""``video-lstm export CHECKPOINT OUT.onnx``: a checkpoint as two ONNX graphs plus its metadata.

What is written, and how ``--runtime onnx`` reads it: ``video_lstm.inference.runtime.ort``.
In short, ``OUT.onnx`` is the frame encoder (dynamic batch of frames), ``OUT.head.onnx`` the
temporal model + head + softmax over a fixed batch of windows, ``OUT.step.onnx`` (recurrent
models) one step of one stream with the state as explicit inputs and outputs, for a live path
that carries state, and ``OUT.onnx.json`` the metadata.

The graphs come from the model the torch runtime runs (BatchNorm folded into the convs, eval
mode), through the TorchScript-based exporter (``torch.onnx.export(dynamo=False)``) at opset
:data:`OPSET`. Tracing fixes every shape the model code computes in Python: the frame graph
keeps a dynamic batch (the backbone's ``encode`` only reads the batch through its convs), the
window graph is traced at its window batch and runs only at it (the recurrent models fold
batch x time in Python; the runtime pads the last batch).

Before anything is written in place the export is checked: both graphs run on real frames
(photographs panned across, or frames of ``video``) through the ONNX runtime's own numpy
preprocessing, against the torch runtime on the same frames. An export whose window
probabilities differ by more than ``tolerance`` (default :data:`TOLERANCE`) is refused
(:class:`ExportError`) and nothing is written. The differences found are in the metadata.

``precision="int8"`` then quantises the frame encoder with onnxruntime's static quantisation
(QDQ: per-channel int8 weights, uint8 activations, min/max ranges calibrated on sampled frames
of ``calibration``'s videos, e.g. the val videos), the first :data:`INT8_FLOAT_CONVS` convs kept
in fp32; the head stays fp32. An int8 export is refused unless at least
:data:`INT8_MIN_AGREEMENT` of the windows of the calibration videos keep torch's top class.
Whether a model keeps its localisation metrics in int8 is for its held-out videos to say
(``tools/study_onnx_precision.py`` for the demo model's).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from video_lstm.errors import UsageError, VideoError
from video_lstm.inference.runtime.ort import EXPORT_FORMAT, META_KEY, onnxruntime, sidecar_path
from video_lstm.io.formats import discover_videos

__all__ = [
    "INT8_FLOAT_CONVS",
    "INT8_MIN_AGREEMENT",
    "OPSET",
    "TOLERANCE",
    "ExportError",
    "ExportReport",
    "cache_dir",
    "cached_export",
    "export_onnx",
    "verification_frames",
]

OPSET = 17
TOLERANCE = 1e-4  # largest |probability difference| of a window, ONNX Runtime against torch
WINDOW_BATCH = 32  # the head graph's batch: the torch runtime's CPU window batch
# int8: the stem conv and the first depthwise conv stay fp32. On the demo model (held-out
# videos, tools/study_onnx_precision.py) quantising them cost 0.6-0.8 points of frame accuracy
# and 3.1 of mAP@0.5, keeping them cost nothing, and the graph is faster (3 input channels make
# a poor int8 conv): 3040 frames per CPU-second against 2800 all-int8 and 1710 fp32, 1 thread.
INT8_FLOAT_CONVS = 2
INT8_MIN_AGREEMENT = 0.98  # least share of calibration windows whose top class int8 keeps
INT8_CALIBRATION_FRAMES = 512  # sampled frames the ranges are calibrated on (at most)
_CHECK_FRAMES_PER_VIDEO = 256  # sampled frames of each calibration video decoded (at most)
_EXPORTER_REVISION = 2  # part of the on-the-fly cache's key: bumped when the graphs change


class ExportError(ValueError):
    """The exported graphs disagree with torch beyond the tolerance (nothing was written)."""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and how close it came to torch.

    Args:
        encoder: The frame-encoder graph (the path given).
        head: The temporal model + head graph.
        metadata: The sidecar JSON.
        opset: ONNX opset of both graphs.
        max_prob_diff: Largest |window probability difference| against torch.
        max_feature_diff: Largest |feature difference| against torch.
        frames: How many frames were checked.
        windows: How many windows were checked.
        precision: ``fp32`` or ``int8``.
        agreement: int8: the share of calibration windows keeping torch's top class.
    """

    encoder: Path
    head: Path
    metadata: Path
    opset: int
    max_prob_diff: float
    max_feature_diff: float
    frames: int
    windows: int
    precision: str = "fp32"
    agreement: float | None = None

    def format(self) -> str:
        text = (
            f"wrote {self.encoder}, {self.head.name}, {self.metadata.name} (opset {self.opset}); "
            f"checked on {self.frames} frames / {self.windows} windows against torch: "
        )
        if self.agreement is None:
            return text + (
                f"max |probability difference| {self.max_prob_diff:.2e}, "
                f"max |feature difference| {self.max_feature_diff:.2e}"
            )
        return text + (
            f"fp32 max |feature difference| {self.max_feature_diff:.2e}; int8 frame encoder: "
            f"{self.agreement:.1%} of the calibration windows keep torch's top class, max "
            f"|probability difference| {self.max_prob_diff:.3f}"
        )


def verification_frames(size: int, count: int) -> np.ndarray:
    """``count`` real frames, uint8 ``(count, size, 4 * size // 3, 3)``: photographs
    (scikit-image's bundled ones) with a 4:3 view panning across each."""
    import cv2
    from skimage import data as photos

    images = [photos.astronaut(), photos.coffee(), photos.chelsea()]
    out_wh = (max(size, 4 * size // 3), size)
    frames = []
    for i in range(count):
        img = images[(i // 8) % len(images)]
        h, w = img.shape[:2]
        ch = min(h, w * 3 // 4) * 3 // 4
        cw = ch * 4 // 3
        top, left = (i % 8) * (h - ch) // 8, (i % 8) * (w - cw) // 8
        crop = np.ascontiguousarray(img[top : top + ch, left : left + cw])
        frames.append(cv2.resize(crop, out_wh, interpolation=cv2.INTER_AREA))
    return np.stack(frames)


def _video_frames(video: str | Path, size: int, interval: int, count: int) -> np.ndarray:
    """Up to ``count`` sampled frames of ``video``, decoded as annotation decodes them."""
    from video_lstm.data.sampling import sampled_frames
    from video_lstm.io.decode import open_video

    with open_video(video, size=size) as reader:
        idx = sampled_frames(reader.num_frames, interval)[:count]
        return reader.get_frames(idx)


class _Encoder:
    """Factories of the two exported modules (torch imported only when exporting)."""

    @staticmethod
    def frames(model: Any) -> Any:
        import torch

        class FrameGraph(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.backbone = model.backbone

            def forward(self, frames: torch.Tensor) -> torch.Tensor:
                return self.backbone.encode(frames)  # (N, 3, S, S) -> (N, D) or (N, C, h, w)

        return FrameGraph().eval()

    @staticmethod
    def windows(model: Any) -> Any:
        import torch

        class WindowGraph(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, windows: torch.Tensor) -> torch.Tensor:
                return self.model.forward_head(windows).float().softmax(-1)  # (B, K)

        return WindowGraph().eval()

    @staticmethod
    def step(model: Any) -> Any:
        import torch

        class StepGraph(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, features: torch.Tensor, *state: torch.Tensor) -> Any:
                logits, new = self.model.step_features(features, tuple(state))
                return (logits.float().softmax(-1), *new)  # (1, K), state...

        return StepGraph().eval()


def _sliding(feats: np.ndarray, clip_len: int) -> np.ndarray:
    """Every window of ``clip_len`` consecutive features (stride 1): ``(W, L, ...)``."""
    n = max(1, len(feats) - clip_len + 1)
    return np.stack([feats[s : s + clip_len] for s in range(n)])


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    *,
    video: str | Path | None = None,
    tolerance: float = TOLERANCE,
    window_batch: int = WINDOW_BATCH,
    opset: int = OPSET,
    precision: Literal["fp32", "int8"] = "fp32",
    calibration: str | Path | None = None,
) -> ExportReport:
    """Export a checkpoint for ONNX Runtime (``--runtime onnx``), checked against torch.

    Args:
        checkpoint: A ``.pt``/``.ckpt`` checkpoint.
        out: The frame-encoder graph to write (``model.onnx``); ``model.head.onnx`` and
            ``model.onnx.json`` are written next to it.
        video: Check on this video's sampled frames (default: photographs panned across).
        tolerance: Largest |window probability difference| accepted against torch.
        window_batch: Windows per call of the head graph (its fixed batch).
        opset: ONNX opset.
        precision: ``fp32``, or ``int8``: the frame encoder quantised (static QDQ: int8
            weights per channel, uint8 activations, its first two convs kept fp32) on the
            ranges of ``calibration``'s frames; refused unless 98% of those videos' windows
            keep torch's top class. The head stays fp32.
        calibration: A video or a folder of videos (searched recursively) to calibrate int8
            on, e.g. the val videos; int8 only.

    Returns:
        The :class:`ExportReport`.

    Raises:
        ExportError: The graphs differ from torch beyond ``tolerance``, or int8 keeps
            torch's top class in fewer than :data:`INT8_MIN_AGREEMENT` of the calibration
            windows (nothing written).
        UsageError: ``out`` does not end in ``.onnx``, or bad arguments.
    """
    import torch

    from video_lstm.inference.predictor import Predictor
    from video_lstm.inference.runtime.ort import OnnxPredictor
    from video_lstm.io.checks import require_checkpoint, require_output_dir
    from video_lstm.models.checkpoint import load_checkpoint

    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise UsageError(f"{out}: the exported model's name must end in .onnx")
    if window_batch < 1 or tolerance <= 0:
        raise UsageError(
            f"window_batch must be >= 1 and tolerance > 0, got {window_batch}, {tolerance}"
        )
    if precision not in ("fp32", "int8"):
        raise UsageError(f"precision must be fp32 or int8, got {precision!r}")
    if (precision == "int8") != (calibration is not None):
        raise UsageError(
            "int8 needs --calibration VIDEOS (a video or a folder: e.g. the val videos), "
            "and --calibration is for int8 only"
        )
    calib_videos = _videos(calibration) if calibration is not None else []
    require_checkpoint(checkpoint)
    require_output_dir(out.parent)
    model, meta = load_checkpoint(checkpoint)
    # The torch runtime's model (BatchNorm folded, eval) is what is exported and compared with.
    reference = Predictor(model, meta, device="cpu")
    ref_model = reference.model.to(memory_format=torch.contiguous_format)
    decode = meta.decode_size or meta.frame_size
    count = max(16, meta.clip_len + 4)
    if video is not None:
        frames = _video_frames(video, decode, meta.frame_interval, count)
    else:
        frames = verification_frames(decode, count)

    with torch.inference_mode():
        x = reference.preprocess(frames[:8]).contiguous()  # (n, 3, S, S)
        feats = reference.features(frames).float().numpy()  # (T, ...)
    # A normal tensor: tracing a backbone that trains (parameters requiring grad) refuses an
    # inference-mode input ("Inference tensors cannot be saved for backward").
    x = x.clone()
    windows = _sliding(feats, meta.clip_len)  # (W, L, ...)
    trace_windows = torch.from_numpy(windows[np.arange(window_batch) % len(windows)].copy())

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        enc_path, head_path = tmp / out.name, tmp / f"{out.stem}.head.onnx"
        with warnings.catch_warnings(), _static_adaptive_pools():
            # Tracer warnings name the shapes tracing fixes; the check below is what decides.
            # The frame size is fixed, so a pooled backbone's adaptive pool is a plain one.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Encoder.frames(ref_model), (x,), str(enc_path), input_names=["frames"],
                output_names=["features"], dynamic_axes={"frames": {0: "n"}, "features": {0: "n"}},
                opset_version=opset, dynamo=False,
            )  # fmt: skip
            _fold_constants(enc_path)
            torch.onnx.export(
                _Encoder.windows(ref_model), (trace_windows,), str(head_path),
                input_names=["windows"], output_names=["probs"], opset_version=opset,
                dynamo=False,
            )  # fmt: skip
        step = _export_step(ref_model, feats, tmp / f"{out.stem}.step.onnx", opset)
        doc: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "opset": opset,
            "encoder": out.name,
            "head": head_path.name,
            "window_batch": window_batch,
            "feature_shape": list(feats.shape[1:]),
            "step": step,
            "precision": "fp32",
            "checkpoint": Path(checkpoint).name,
            "checkpoint_sha256": file_digest(checkpoint),
            "model_meta": meta.to_dict(),
        }
        side = sidecar_path(enc_path)
        side.write_text(json.dumps(doc, indent=2))
        onnx_pred = OnnxPredictor(enc_path, device="cpu", threads=torch.get_num_threads())
        got_feats = onnx_pred.features(frames)
        probs = onnx_pred.score_windows(windows)
        with torch.inference_mode():
            want = reference.score_windows(torch.from_numpy(windows)).numpy()
        feat_diff = float(np.abs(got_feats - feats).max())
        prob_diff = float(np.abs(probs - want).max())
        step_diff = None
        if step is not None and "file" in step:  # the windows again, stepped from zero
            stepped = np.stack([_run_steps(onnx_pred, w) for w in windows[:4]])
            step_diff = float(np.abs(stepped - want[:4]).max())
            prob_diff = max(prob_diff, step_diff)
        if not prob_diff <= tolerance:  # also refuses NaN
            raise ExportError(
                f"{checkpoint}: the ONNX graphs differ from torch by {prob_diff:.2e} in a window "
                f"probability (tolerance {tolerance:.0e}; features by {feat_diff:.2e}); "
                "nothing was written"
            )
        doc["verification"] = {
            "frames": len(frames),
            "windows": len(windows),
            "source": str(video) if video is not None else "photographs",
            "max_prob_diff": prob_diff,
            "max_feature_diff": feat_diff,
            "max_step_prob_diff": step_diff,  # None: no step graph
            "tolerance": tolerance,
        }
        report_prob_diff = prob_diff
        if precision == "int8":
            doc["quantisation"] = _quantise_int8(
                enc_path, onnx_pred, reference, calib_videos, checkpoint=checkpoint
            )
            doc["precision"] = "int8"
            report_prob_diff = doc["quantisation"]["max_prob_diff"]
        _embed_metadata(enc_path, doc)
        side.write_text(json.dumps(doc, indent=2))
        final_side = sidecar_path(out)
        # The sidecar last: a reader that finds it finds both graphs complete.
        if step is not None and "file" in step:
            os.replace(tmp / step["file"], out.with_name(step["file"]))
        os.replace(head_path, out.with_name(head_path.name))
        os.replace(enc_path, out)
        os.replace(side, final_side)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportReport(
        encoder=out,
        head=out.with_name(head_path.name),
        metadata=final_side,
        opset=opset,
        max_prob_diff=report_prob_diff,
        max_feature_diff=feat_diff,
        precision=precision,
        agreement=doc.get("quantisation", {}).get("top1_agreement"),
        frames=len(frames),
        windows=len(windows),
    )


def _videos(source: str | Path) -> list[Path]:
    """A video, or the videos of a folder (recursively, as ``run`` finds them)."""
    source = Path(source)
    if source.is_dir():
        found = discover_videos(source)
        if not found:
            raise UsageError(f"{source}: no videos to calibrate on")
        return found
    if not source.is_file():
        raise UsageError(f"{source}: calibration video or folder not found")
    return [source]


def _quantise_int8(
    enc_path: Path, fp32: Any, reference: Any, videos: list[Path], *, checkpoint: str | Path
) -> dict[str, Any]:
    """Quantise the frame encoder at ``enc_path`` in place (static QDQ), then check it.

    Calibration: every other sampled frame of each video (evenly shared, at most
    :data:`INT8_CALIBRATION_FRAMES` in all), preprocessed as the runtime preprocesses. Check:
    every window of each video's sampled frames, int8 against torch.

    Raises:
        ExportError: Fewer than :data:`INT8_MIN_AGREEMENT` of the windows keep torch's top class.
    """
    import onnx
    import torch
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from video_lstm.inference.runtime.ort import OnnxPredictor

    meta = fp32.meta
    decode = meta.decode_size or meta.frame_size
    clips, skipped = [], []
    for v in videos:  # a broken video is left out and named, as in a batch run
        try:
            clips.append(_video_frames(v, decode, meta.frame_interval, _CHECK_FRAMES_PER_VIDEO))
        except VideoError as exc:  # its message names the file
            skipped.append(str(exc))
            print(f"calibration: skipped {exc}", file=sys.stderr)
    if not clips:
        raise UsageError(f"no calibration video could be read ({'; '.join(skipped)})")
    if not any(len(c) >= meta.clip_len for c in clips):
        raise UsageError(
            f"{videos[0].parent}: no calibration video has {meta.clip_len} sampled frames "
            f"(a window) to check int8 on"
        )
    share = max(1, INT8_CALIBRATION_FRAMES // len(clips))
    calib = np.concatenate([fp32.preprocess(c[::2][:share]) for c in clips])
    batches = [calib[lo : lo + 8] for lo in range(0, len(calib), 8)]

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            b = next(self.batches, None)
            return None if b is None else {"frames": b}

    pre, quant = enc_path.with_suffix(".pre.onnx"), enc_path.with_suffix(".int8.onnx")
    quant_pre_process(str(enc_path), str(pre), skip_symbolic_shape=True)
    convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
    with _quiet_native_output():
        quantize_static(
            str(pre), str(quant), Frames(), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
            nodes_to_exclude=convs[:INT8_FLOAT_CONVS],
        )  # fmt: skip
    pre.unlink()
    os.replace(quant, enc_path)
    int8 = OnnxPredictor(enc_path, device="cpu", threads=fp32.threads)
    agree, total, diff = 0, 0, 0.0
    for clip in clips:
        if len(clip) < meta.clip_len:
            continue
        with torch.inference_mode():
            windows = _sliding(reference.features(clip).float().numpy(), meta.clip_len)
            want = reference.score_windows(torch.from_numpy(windows)).numpy()
        got = int8.score_windows(_sliding(int8.features(clip), meta.clip_len))
        agree += int((got.argmax(1) == want.argmax(1)).sum())
        total += len(want)
        diff = max(diff, float(np.abs(got - want).max()))
    agreement = agree / total
    if not agreement >= INT8_MIN_AGREEMENT:
        raise ExportError(
            f"{checkpoint}: int8 keeps torch's top class in {agreement:.1%} of {total} "
            f"calibration windows (at least {INT8_MIN_AGREEMENT:.0%} needed; max |probability "
            f"difference| {diff:.3f}); export it in fp32. Nothing was written"
        )
    return {
        "method": "static QDQ (onnxruntime.quantization), per-channel int8 weights, uint8 "
        "activations, min/max calibration",
        "float_convs": convs[:INT8_FLOAT_CONVS],
        "calibration_videos": len(clips),
        "skipped_videos": skipped,
        "calibration_frames": len(calib),
        "check_windows": total,
        "top1_agreement": agreement,
        "max_prob_diff": diff,
        "min_agreement": INT8_MIN_AGREEMENT,
    }


def _fold_constants(path: Path) -> None:
    """Rewrite the graph at ``path`` with its constants folded, in place: ONNX Runtime's basic
    (hardware-independent, standard-op) optimisations, saved.

    The frame graph's input has a static frame size, so the TF-style "same" pads of the
    stride-2 convs are constants (``_SamePadConv2d`` reads the size as ints), but the
    TorchScript exporter spells each as a chain (ConstantOfShape, Concat, Reshape, Slice,
    Transpose, Cast) feeding a ``Pad`` whose third input is an empty name. ONNX Runtime's
    ``PadFusion`` refuses a ``Pad`` with that empty input, so the ``Pad`` stayed, a copy of
    the maps per call, and its CPU provider's blocked (NCHWc) conv layout was converted out and
    back around each one. With the empty inputs dropped, the basic level folds the chains and
    the ``Pad`` into its conv's (asymmetric) ``pads``: the compact model's graph is 27 nodes,
    Conv, Clip and Add only, where it was 221, and runs 1.5-1.6x faster on one thread (CPU
    time, 16-frame calls; README "Deploy").
    What this level writes runs on every provider (higher levels write provider-specific ops).
    """
    import onnx

    ort = onnxruntime()
    proto = onnx.load(str(path))
    for node in proto.graph.node:
        while node.input and not node.input[-1]:  # an omitted trailing optional input
            node.input.pop()
    stripped = path.with_name(path.name + ".in")
    onnx.save(proto, str(stripped))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(path)
    try:
        ort.InferenceSession(str(stripped), options, providers=["CPUExecutionProvider"])
    finally:
        stripped.unlink()
    # onnxruntime declares all its operator domains; keep the ones the graph uses.
    proto = onnx.load(str(path))
    used = {node.domain for node in proto.graph.node} | {""}
    kept = [op for op in proto.opset_import if op.domain in used]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _export_step(model: Any, feats: np.ndarray, path: Path, opset: int) -> dict[str, Any] | None:
    """The stateful step graph of a recurrent model (``None`` for others): one stream's
    ``features (1, ...)`` and state in, ``probs (1, K)`` and the next state out.

    Traced on a state one step in (not the zero state, which some steps treat apart). Optional:
    where the exporter cannot convert a model's step (the LSTM over the adapter's pooled maps:
    ``adaptive_max_pool2d`` of a map whose size tracing lost), ``{"error": ...}`` says why and
    the offline graphs are written all the same.
    """
    if not getattr(model, "stateful", False):
        return None
    try:
        with _quiet_native_output(), _static_adaptive_pools():
            return _trace_step(model, feats, path, opset)
    except Exception as exc:  # the exporter raises many kinds for an op it cannot convert
        return {"error": " ".join(str(exc).split())[:300]}


@contextlib.contextmanager
def _static_adaptive_pools() -> Iterator[None]:
    """Adaptive pooling as fixed-kernel pooling where the map divides evenly, while tracing.

    The exporter loses the map size before a pooled backbone's ``adaptive_avg_pool2d`` (the
    frame graph: its batch is dynamic) and before the LSTM adapter's ``adaptive_max_pool2d``
    (a single step's local-correlation slices), and ONNX has no adaptive pool: with the size
    read as a constant (the frame size is fixed) it is a plain ``MaxPool``/``AveragePool``.
    The check against torch decides whether it is right.
    """
    import torch
    import torch.nn.functional as F

    saved = F.adaptive_max_pool2d, F.adaptive_avg_pool2d

    def fixed(adaptive: Any, plain: Any, reduce: Any) -> Any:
        def pool(x: Any, output_size: Any, *args: Any, **kwargs: Any) -> Any:
            oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
            h, w = int(x.shape[-2]), int(x.shape[-1])
            if args or kwargs or not (oh and ow):
                return adaptive(x, output_size, *args, **kwargs)
            if h % oh == 0 and w % ow == 0:
                return plain(x, (h // oh, w // ow))
            # Uneven bins (a 3x3 map to 2x2): adaptive pooling's own bins, [floor(i * h / oh),
            # ceil((i + 1) * h / oh)), as static slices.
            rows = [(i * h // oh, -(-(i + 1) * h // oh)) for i in range(oh)]
            cols = [(j * w // ow, -(-(j + 1) * w // ow)) for j in range(ow)]
            cells = [
                torch.stack([reduce(x[..., r0:r1, c0:c1]) for c0, c1 in cols], -1)
                for r0, r1 in rows
            ]
            return torch.stack(cells, -2)

        return pool

    F.adaptive_max_pool2d = fixed(saved[0], F.max_pool2d, lambda t: t.amax((-2, -1)))
    F.adaptive_avg_pool2d = fixed(saved[1], F.avg_pool2d, lambda t: t.mean((-2, -1)))
    try:
        yield
    finally:
        F.adaptive_max_pool2d, F.adaptive_avg_pool2d = saved


@contextlib.contextmanager
def _quiet_native_output() -> Iterator[None]:
    """File descriptors 1 and 2 to /dev/null for the block (native code writes to them)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def _trace_step(model: Any, feats: np.ndarray, path: Path, opset: int) -> dict[str, Any]:
    import torch

    x = torch.from_numpy(feats[:2].copy())  # (2, ...): two steps of one stream
    with torch.inference_mode():
        state = model.init_state(1, x[:1])
        _, state = model.step_features(x[:1], state)
    state = tuple(s.clone() for s in state)
    names = [f"state_{i}" for i in range(len(state))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Encoder.step(model), (x[1:2], *state), str(path),
            input_names=["features", *names], output_names=["probs", *[f"{n}_out" for n in names]],
            opset_version=opset, dynamo=False,
        )  # fmt: skip
    return {
        "file": path.name,
        "state": [{"shape": list(s.shape), "dtype": str(s.dtype).removeprefix("torch.")}
                  for s in state],
    }  # fmt: skip


def _run_steps(predictor: Any, window: np.ndarray) -> np.ndarray:
    """Probabilities after stepping ``window``'s ``L`` features from the zero state."""
    state = predictor.init_state()
    for feat in window:
        probs, state = predictor.step(feat[None], state)
    return probs[0]


def _embed_metadata(path: Path, doc: dict[str, Any]) -> None:
    """The metadata into the graph itself (``metadata_props``): the file alone describes itself."""
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(doc)
    onnx.save(proto, str(path))


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where checkpoints exported on the fly are kept: ``$VIDEO_LSTM_CACHE`` if set, else
    ``$XDG_CACHE_HOME/video_lstm`` (``~/.cache/video_lstm``)."""
    env = os.environ.get("VIDEO_LSTM_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "video_lstm"


def cached_export(checkpoint: str | Path) -> Path:
    """``--runtime onnx`` given a checkpoint: its export, made once and kept by its digest.

    The cache key is the checkpoint's SHA-256 (and the exporter's revision), so a retrained or
    recalibrated checkpoint (``video-lstm calibrate`` rewrites it) is exported anew. Concurrent workers may both
    export; each writes atomically and the result is the same.

    Returns:
        The cached ``model.onnx``.
    """
    from video_lstm.io.checks import require_checkpoint

    require_checkpoint(checkpoint)
    # The exporter's revision in the key too: an export cached by an earlier exporter (the
    # frame graph's pads computed per call, 1.5x slower) is made again, not reused.
    key = f"{file_digest(checkpoint)[:16]}-e{_EXPORTER_REVISION}"
    path = cache_dir() / "onnx" / key / "model.onnx"
    if not sidecar_path(path).is_file():
        export_onnx(checkpoint, path)
    return path
