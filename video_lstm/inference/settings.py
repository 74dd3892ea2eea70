"""The one declaration of the annotation knobs: :class:`AnnotateSettings` and its groups.

``video-lstm annotate`` / ``run``, their YAML configs (``configs/pipeline/``), the settings saved
in every result JSON and the resume hash all derive from these dataclasses. Plain values only
(no torch import here), so the console script parses them and answers ``--help`` at once.

Groups:

- ``segments`` (:class:`SegmentRules`): how per-frame scores become segments. ``None`` means
  "the checkpoint's calibrated value if it has one, else the built-in default"
  (:meth:`SegmentRules.resolve`).
- ``windows`` (:class:`WindowOptions`): what the model sees (window stride, decode size).
- ``runtime`` (:class:`RuntimeOptions`): speed and memory only (device, precision, batches,
  threads, decoder); left out of the resume hash because they do not change the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from video_lstm.inference.writers import DEFAULT_OUTPUTS, writer_names

__all__ = [
    "AnnotateSettings",
    "RuntimeOptions",
    "SegmentRules",
    "WindowOptions",
]


@dataclass
class SegmentRules:
    """How smoothed per-frame probabilities become segments (``inference.segments``).

    Every field may be ``None``: then the checkpoint's calibrated rule is used if it carries
    one, else :attr:`DEFAULTS` (see :meth:`resolve`). An explicit value always wins.

    Args:
        threshold: Minimum smoothed probability for a frame to count as an action, in [0, 1].
        smoothing_s: Temporal smoothing of per-frame probabilities, in seconds (0 = off).
        min_duration_s: Shortest segment kept, in seconds.
        merge_gap_s: Same-label segments closer than this are merged, in seconds.
        background: A class name meaning "no action", if the model has one.
    """

    threshold: float | None = None
    smoothing_s: float | None = None
    min_duration_s: float | None = None
    merge_gap_s: float | None = None
    background: str | None = None

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "threshold": 0.5,
        "smoothing_s": 0.5,
        "min_duration_s": 0.5,
        "merge_gap_s": 0.25,
        "background": None,
    }

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        for name in ("smoothing_s", "min_duration_s", "merge_gap_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    def resolve(self, calibrated: SegmentRules | Mapping[str, Any] | None = None) -> SegmentRules:
        """Fill every ``None``: the explicit value, else ``calibrated``'s, else the default.

        Args:
            calibrated: The rules a checkpoint carries (e.g. chosen on validation videos), as a
                :class:`SegmentRules` or a dict with some of its fields; ``None`` if it has none.

        Returns:
            A new :class:`SegmentRules` with no ``None`` left (except ``background``, whose
            default is "no background class").
        """
        if isinstance(calibrated, SegmentRules):
            calibrated = asdict(calibrated)
        calibrated = dict(calibrated or {})
        unknown = sorted(set(calibrated) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"unknown segment rules {unknown}; known: {sorted(self.DEFAULTS)}")
        values = {}
        for name, default in self.DEFAULTS.items():
            value = getattr(self, name)
            if value is None:
                value = calibrated.get(name)
            values[name] = default if value is None else value
        return SegmentRules(**values)


@dataclass
class WindowOptions:
    """What the model sees.

    Args:
        stride: Window stride in sampled frames (``None``: ``clip_len // 4``, at least 1).
        decode_size: Short side the decoder resizes to for the model (``None``: the model's size).
    """

    stride: int | None = None
    decode_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("stride", "decode_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


@dataclass
class RuntimeOptions:
    """Speed and memory only: these never change the result (not in the resume hash).

    Args:
        runtime: What runs the model: ``torch`` (a checkpoint; the default) or ``onnx`` (ONNX
            Runtime: a model written by ``video-lstm export``, or a checkpoint, exported on the
            fly and cached; needs the ``onnx`` extra and no torch, see
            ``video_lstm.inference.runtime``). Both give the same segments.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``. With ``onnx``: CUDA's execution
            provider where onnxruntime-gpu and a GPU are present, else CPU's.
        precision: ``auto`` (bf16/fp16 autocast on CUDA, fp32 on CPU), ``fp32``, ``bf16``, ``fp16``.
        backend: Decoder backend: ``auto``, ``decord``, ``pyav`` or a registered one
            (``video_lstm.io.decode.register_backend``).
        threads: CPU threads for the model and the decoder (``None``: what
            ``video_lstm.threads.default_threads`` picks: the idle cores, never more than the
            physical ones).
        chunk_size: Sampled frames decoded per chunk (bounds memory).
        frame_batch: Frames per CNN pass (``None``: 8 on CPU, 32 on GPU).
        window_batch: Windows per temporal-model pass (``None``: 32 on CPU, 64 on GPU).
        prefetch: Chunks decoded ahead in a worker process (0 = inline). ``None``: 2 on GPU, 0
            on CPU, where the decoder and the CNN compete for the same cores (a 60 s video's
            first pass on 2 cores: 2.7 s with the worker against 2.3 s inline).
        encoder: H.264 encoder of annotated videos and clips: ``auto`` (NVENC on a CUDA run
            where it opens, else x264), ``libx264``, ``h264_nvenc``.
        hwaccel: ``cuda``: on a CUDA run, decode both passes with NVDEC through PyAV where it
            opens (CPU decode threads otherwise). Off by default: not yet measured against
            CPU decode feeding the GPU.
    """

    runtime: str = "torch"
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    threads: int | None = None
    chunk_size: int = 64
    frame_batch: int | None = None
    window_batch: int | None = None
    prefetch: int | None = None
    encoder: str = "auto"
    hwaccel: str | None = None

    def __post_init__(self) -> None:
        if self.runtime not in ("torch", "onnx"):
            raise ValueError(f"runtime must be torch or onnx, got {self.runtime!r}")
        if self.hwaccel not in (None, "cuda"):
            raise ValueError(f"hwaccel must be None or 'cuda', got {self.hwaccel!r}")
        if self.encoder not in ("auto", "libx264", "h264_nvenc"):
            raise ValueError(f"encoder must be auto, libx264 or h264_nvenc, got {self.encoder!r}")
        for name in ("threads", "chunk_size", "frame_batch", "window_batch"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.prefetch is not None and self.prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {self.prefetch}")
        from video_lstm.io.decode import list_backends  # the decoder table, plugins included

        if self.backend not in list_backends():
            raise ValueError(f"backend must be one of {list_backends()}, got {self.backend!r}")


@dataclass
class AnnotateSettings:
    """Everything that decides how a video is annotated (saved in the JSON next to the outputs).

    On the command line each field is ``--settings.GROUP.FIELD`` (e.g.
    ``--settings.segments.threshold 0.6``) or, shorter, ``--FIELD`` (``--threshold 0.6``): every
    field name is unique across the groups (:meth:`flat_fields`). In YAML, the same nesting
    under ``settings:``.

    Args:
        outputs: Which outputs to write, by writer name (``video_lstm.inference.writers``):
            json, csv, srt, vtt, video, clips, or a plugin's writer; a list
            (``'[json,csv]'``) or comma-separated (``json,csv``).
        save_window_scores: Also store per-window spans and probabilities in the JSON.
        on_error: Damaged video streams: ``skip`` (default) annotates the frames FFmpeg can
            decode and reports how many were lost (``video.frames_lost`` in the JSON, and in
            the manifest); ``raise`` fails such a video with its reason.
        segments: Segment rules (``None`` fields: the checkpoint's calibrated value, else the default).
        windows: Window stride and decode size.
        runtime: Device, precision, decoder, threads and batch sizes (speed only).
    """

    outputs: list[str] | str = field(default_factory=lambda: list(DEFAULT_OUTPUTS))
    save_window_scores: bool = False
    on_error: str = "skip"
    segments: SegmentRules = field(default_factory=SegmentRules)
    windows: WindowOptions = field(default_factory=WindowOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)

    # Groups that change speed or memory but never the result: left out of the resume hash.
    RUNTIME_GROUPS: ClassVar[tuple[str, ...]] = ("runtime",)

    def __post_init__(self) -> None:
        items = [self.outputs] if isinstance(self.outputs, str) else list(self.outputs)
        self.outputs = [o.strip() for item in items for o in str(item).split(",") if o.strip()]
        known = writer_names()  # the table: the plugins' writers count
        unknown = sorted(set(self.outputs) - set(known))
        if unknown:
            raise ValueError(
                f"unknown outputs {unknown}; choose from {known} (a plugin's writer needs "
                "--plugin FILE.py or VIDEO_LSTM_PLUGINS)"
            )
        if self.on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be skip or raise, got {self.on_error!r}")
        # Dicts (from YAML or a saved JSON) become the group dataclasses.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                setattr(self, f.name, _GROUPS[f.name](**value))

    def to_dict(self) -> dict[str, Any]:
        """Nested plain values, as in the YAML configs and the result JSON."""
        return asdict(self)

    def result_dict(self) -> dict[str, Any]:
        """The settings that determine the outputs (for the resume hash)."""
        return {k: v for k, v in asdict(self).items() if k not in self.RUNTIME_GROUPS}

    @classmethod
    def flat_fields(cls) -> dict[str, str]:
        """``{field: dotted path}`` for every setting, e.g. ``threshold -> segments.threshold``.

        The short ``--FIELD`` options of the console script and :meth:`from_flat` use it.
        """
        paths: dict[str, str] = {}
        for f in dataclasses.fields(cls):
            group = _GROUPS.get(f.name)
            names = [g.name for g in dataclasses.fields(group)] if group else [None]
            for sub in names:
                leaf, path = (sub, f"{f.name}.{sub}") if sub else (f.name, f.name)
                if leaf in paths:  # a duplicate would make the short options ambiguous
                    raise TypeError(f"setting {leaf!r} is declared twice in AnnotateSettings")
                paths[leaf] = path
        return paths

    @classmethod
    def from_flat(cls, **values: Any) -> AnnotateSettings:
        """Build from short names: ``AnnotateSettings.from_flat(threshold=0.6, device="cpu")``."""
        paths = cls.flat_fields()
        unknown = sorted(set(values) - set(paths))
        if unknown:
            raise TypeError(f"unknown settings {unknown}; known: {sorted(paths)}")
        nested: dict[str, Any] = {}
        for name, value in values.items():
            group, _, sub = paths[name].partition(".")
            if sub:
                nested.setdefault(group, {})[sub] = value
            else:
                nested[group] = value
        return cls(**nested)


_GROUPS: dict[str, type] = {
    "segments": SegmentRules,
    "windows": WindowOptions,
    "runtime": RuntimeOptions,
}
