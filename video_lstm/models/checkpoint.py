"""The one checkpoint format: weights plus everything inference needs (classes, config, preprocessing).

A checkpoint is a ``torch.save`` dict with two keys:

- ``"video_lstm"``: :class:`ModelMeta` as plain values (class names, the classifier config,
  clip length, frame interval, input size, normalisation);
- ``"state_dict"``: the :class:`~video_lstm.models.classifier.VideoClassifier` weights.

Lightning checkpoints written by ``video_lstm.training`` carry the same ``"video_lstm"`` entry and
the weights under ``"model."``-prefixed keys; :func:`load_checkpoint` reads both.

Checkpoints written before the temporal model table (a flat model config) load too:
:func:`migrate_model_config` moves their options into today's nested layout.

Loading never unpickles code: ``torch.load(..., weights_only=True)`` accepts tensors and plain
values (dict, list, str, numbers) only, which is all both formats hold. A file that needs any
other Python object (a crafted ``__reduce__`` that would run a command) is refused with
:class:`UnsafeCheckpointError` before anything in it runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from video_lstm.io.files import atomic_path
from video_lstm.types import ModelMeta  # plain values: torch-free inference reads it too

__all__ = [
    "META_KEY",
    "ModelMeta",
    "UnsafeCheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "store_segment_rules",
]

META_KEY = "video_lstm"


class UnsafeCheckpointError(ValueError):
    """A checkpoint that holds Python objects beyond tensors and plain values (it could run
    code when unpickled); it is refused, not loaded."""


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: ModelMeta) -> Path:
    """Write ``model``'s weights and ``meta`` to ``path`` atomically.

    Returns:
        The path written.
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({META_KEY: meta.to_dict(), "state_dict": state}, tmp)
    return path


def store_segment_rules(
    path: str | Path,
    rules: dict[str, Any],
    *,
    report: dict[str, Any] | None = None,
    out: str | Path | None = None,
) -> Path:
    """Write calibrated segment rules into a checkpoint's metadata (``ModelMeta.segment_rules``,
    fields of ``inference.settings.SegmentRules``) and how they were chosen
    (``extra["calibration"]``).

    Everything else in the file (weights, a Lightning checkpoint's optimizer state) is kept, so a
    calibrated ``last.ckpt`` still resumes training.

    Args:
        path: A checkpoint readable by :func:`load_checkpoint`.
        rules: ``threshold``, ``smoothing_s``, ``min_duration_s``, ``merge_gap_s``,
            ``background`` as plain values.
        report: Plain values describing the calibration (data, scores reached).
        out: Where to write (default: replace ``path``, atomically).

    Returns:
        The path written.
    """
    import json

    load_checkpoint(path)  # the same checks (and refusals) as any load
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    meta = ckpt[META_KEY]
    meta["segment_rules"] = json.loads(json.dumps(rules))  # plain values only
    if report is not None:
        meta["extra"] = {**meta.get("extra", {}), "calibration": json.loads(json.dumps(report))}
    out = Path(out or path)
    with atomic_path(out) as tmp:
        torch.save(ckpt, tmp)
    return out


# The flat ClassifierConfig layout written until the temporal model table (December 2026): the
# temporal model's options sat beside the shared fields.
_FLAT_TEMPORAL_FIELDS = (
    "hidden_sizes", "kernel_size", "peephole", "time_pool", "temporal_dropout", "bidirectional",
    "frame_diff", "proj_channels", "motion_radius", "motion_only", "space_pool",
)  # fmt: skip


def migrate_model_config(model: dict[str, Any], *, source: str | Path = "") -> dict[str, Any]:
    """A checkpoint's ``ModelMeta.model`` in today's layout (``temporal`` + ``temporal_args``).

    Configs saved before the temporal model table were flat: every model's options beside the
    shared fields. They move into ``temporal_args`` under the model that read them; an LSTM/GRU
    with ``proj_channels > 0`` (which read maps through its conv adapter) becomes
    ``adapter_lstm`` / ``adapter_gru``, taking the flat ``pool_size`` as its adapter's. The
    module tree, and so the weights' names, are the same. A config in today's layout is
    returned unchanged.

    Raises:
        ValueError: A flat config naming a temporal model that layout never had.
    """
    if not any(k in model for k in _FLAT_TEMPORAL_FIELDS):
        return dict(model)
    flat = dict(model)
    temporal = flat.get("temporal", "convlstm")
    old = {k: flat.pop(k) for k in _FLAT_TEMPORAL_FIELDS if k in flat}
    hidden = list(old.get("hidden_sizes", [64]))
    motion = {k: old[k] for k in ("motion_radius", "motion_only", "space_pool") if k in old}
    common = {k: old[k] for k in ("time_pool", "bidirectional", "frame_diff") if k in old}
    if "temporal_dropout" in old:
        common["dropout"] = old["temporal_dropout"]
    if temporal in ("convlstm", "convgru"):
        args = {"hidden_sizes": hidden, **common, **motion}
        args.update({k: old[k] for k in ("kernel_size", "proj_channels") if k in old})
        if temporal == "convlstm" and "peephole" in old:
            args["peephole"] = old["peephole"]
    elif temporal in ("lstm", "gru"):
        args = {"hidden_size": hidden[0], "num_layers": len(hidden), **common}
        if old.get("proj_channels", 0) > 0:  # read maps through the conv adapter
            temporal = f"adapter_{temporal}"
            args.update(motion, proj_channels=old["proj_channels"])
            args["pool_size"] = flat.get("pool_size", 1)
            flat["pool_size"] = 1
    elif temporal == "meanpool":
        args = {}
    else:
        raise ValueError(
            f"{source}: the checkpoint's flat model config names temporal model {temporal!r}, "
            "which that layout never had; re-save it with this version of video_lstm"
        )
    return {**flat, "temporal": temporal, "temporal_args": args}


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu"):
    """Rebuild the classifier from a checkpoint (ours or a Lightning one from ``video_lstm``).

    Args:
        path: A ``.pt`` written by :func:`save_checkpoint` or a Lightning ``.ckpt``.
        map_location: Where to load the tensors.

    Returns:
        ``(model, meta)``: a :class:`VideoClassifier` in eval mode and its :class:`ModelMeta`.

    Raises:
        FileNotFoundError: No file at ``path``.
        UnsafeCheckpointError: The file holds Python objects other than tensors and plain values
            (nothing in it is run).
        ValueError: The file is not a video_lstm checkpoint.
    """
    from video_lstm.models.classifier import ClassifierConfig, VideoClassifier

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise ValueError(f"{path}: not a readable checkpoint ({exc})") from exc
        # weights_only refuses a global it does not allow before calling it: nothing ran.
        lines = [line.strip() for line in str(exc).splitlines()]
        detail = next((line for line in lines if "GLOBAL" in line or "global" in line), "")
        raise UnsafeCheckpointError(
            f"{path}: refused to load: the checkpoint contains Python objects beyond tensors "
            f"and plain values, which could run code when unpickled"
            + (f" ({detail})" if detail else "")
            + "; if you trust its source, load it with torch.load(weights_only=False) and re-save "
            "the model with video_lstm.models.checkpoint.save_checkpoint"
        ) from None
    except Exception as exc:  # torch raises several types for a damaged file
        raise ValueError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or META_KEY not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a video_lstm checkpoint (no '{META_KEY}' metadata)")
    meta = ModelMeta(**ckpt[META_KEY])
    meta.model = migrate_model_config(meta.model, source=path)
    state = ckpt["state_dict"]
    if any(k.startswith("model.") for k in state):  # Lightning: the classifier is `module.model`
        state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    # The weights come from the checkpoint: never download or read pretrained files here.
    from video_lstm.models.temporal_table import list_temporal_models

    temporal = meta.model.get("temporal")
    if temporal not in list_temporal_models():
        raise ValueError(
            f"{path}: the checkpoint's temporal model {temporal!r} is not registered (registered: "
            f"{list_temporal_models()}); load the plugin that registers it "
            "(video-lstm --plugin FILE.py, or VIDEO_LSTM_PLUGINS)"
        )
    try:
        config = ClassifierConfig(**{**meta.model, "pretrained": False})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the checkpoint's model config is not valid here: {exc}") from exc
    model = VideoClassifier.from_config(config)
    model.load_state_dict(state)
    model.eval()
    return model, meta
