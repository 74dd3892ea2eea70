"""The temporal model table: a name -> its builder, its options, what it reads, whether it steps.

A :class:`~video_lstm.models.classifier.ClassifierConfig` names a temporal model (``temporal``)
and gives its options as plain values (``temporal_args``); this table turns both into a module,
the way timm's builders take ``model_args`` and litgpt resolves a class by name. Each entry owns
its options: a dataclass whose ``__post_init__`` checks them, so the classifier config keeps
only what every model shares. Adding a temporal model is one call, from any file (a plugin:
``video-lstm --plugin my_model.py train fit ...``)::

    @dataclass
    class TinyOptions:
        hidden_size: int = 16

    register_temporal_model("tiny", build_tiny, options=TinyOptions, inputs="vectors",
                            stateful=True)

A builder is called as ``builder(options, in_channels=C, map_size=s)`` (``C`` the channels of
the maps or the size of the vectors, ``s`` the side of the maps at the configured frame size)
and returns an ``nn.Module`` with ``out_dim`` and ``forward((B, T, ...)) -> (B, out_dim)``;
a ``stateful`` one also has ``init_state(batch, like)`` and ``step(x_t, state)`` (see
:mod:`video_lstm.models.temporal`). ``inputs`` decides what the backbone gives it, and what the
feature cache stores: ``"maps"`` ``(B, T, C, h, w)`` or ``"vectors"`` ``(B, T, D)``.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from torch import nn

from video_lstm.models.temporal import (
    ConvRecurrentTemporal,
    MeanPoolTemporal,
    PooledRecurrentTemporal,
    RecurrentTemporal,
)
from video_lstm.plugins import load_plugins

__all__ = [
    "AdapterOptions",
    "ConvGRUOptions",
    "ConvLSTMOptions",
    "MeanPoolOptions",
    "RecurrentOptions",
    "TemporalModel",
    "list_temporal_models",
    "register_temporal_model",
    "temporal_model",
]

Inputs = Literal["maps", "vectors"]
Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class TemporalModel:
    """One entry of the table.

    Args:
        name: What ``ClassifierConfig.temporal`` says.
        builder: ``builder(options, *, in_channels, map_size) -> nn.Module``.
        options: The dataclass of its options (plain-value fields with defaults; checked in
            its ``__post_init__``).
        inputs: ``"maps"`` or ``"vectors"``: what the backbone gives it.
        stateful: Whether it carries a recurrent state through a stream (``init_state`` /
            ``step``); ``False`` for a model whose windows are all there is (mean-pooling).
    """

    name: str
    builder: Builder
    options: type
    inputs: Inputs
    stateful: bool

    def parse(self, args: dict[str, Any] | None) -> Any:
        """``temporal_args`` -> the options dataclass, checked.

        Strings are read as YAML where the field is not a string (``--...hidden_size=8`` on a
        command line arrives as ``"8"``).

        Raises:
            ValueError: An option this model does not have, or a value its options refuse.
        """
        args = dict(args or {})
        fields = {f.name: f for f in dataclasses.fields(self.options)}
        unknown = sorted(set(args) - set(fields))
        if unknown:
            raise ValueError(
                f"temporal model {self.name!r} has no option(s) {unknown}; its options: "
                f"{sorted(fields)}"
            )
        for key, value in args.items():
            if isinstance(value, str) and _reads_yaml(self.options, key):
                args[key] = yaml.safe_load(value)
        return self.options(**args)

    def build(self, options: Any, *, in_channels: int, map_size: int) -> nn.Module:
        """The module for ``options`` (from :meth:`parse`) on ``in_channels`` inputs."""
        module = self.builder(options, in_channels=in_channels, map_size=map_size)
        missing = [a for a in ("out_dim", "forward") if not hasattr(module, a)]
        if self.stateful:
            missing += [a for a in ("init_state", "step") if not hasattr(module, a)]
        if missing:
            raise TypeError(
                f"temporal model {self.name!r}: its builder returned a "
                f"{type(module).__name__} without {missing}"
            )
        return module


_TABLE: dict[str, TemporalModel] = {}


def _reads_yaml(options: type, key: str) -> bool:
    """Whether a string given for field ``key`` is a YAML number, bool or list to parse."""
    try:
        hint = typing.get_type_hints(options)[key]
    except Exception:  # a plugin's annotations that do not resolve: take the value as it is
        return False
    return (typing.get_origin(hint) or hint) in (int, float, bool, list, tuple, dict)


def register_temporal_model(
    name: str, builder: Builder, *, options: type, inputs: Inputs, stateful: bool
) -> TemporalModel:
    """Add a temporal model to the table (see the module docstring for the builder's contract).

    Args:
        name: Its name in ``ClassifierConfig.temporal``; a duplicate is an error.
        builder: ``builder(options, *, in_channels, map_size) -> nn.Module``.
        options: Its options dataclass (every field with a default).
        inputs: ``"maps"`` or ``"vectors"``.
        stateful: Whether it steps through a stream carrying a state.

    Returns:
        The entry.
    """
    if name in _TABLE:
        raise ValueError(f"temporal model {name!r} is already registered")
    if inputs not in ("maps", "vectors"):
        raise ValueError(f"inputs must be 'maps' or 'vectors', got {inputs!r}")
    if not dataclasses.is_dataclass(options):
        raise TypeError(f"options of temporal model {name!r} must be a dataclass, got {options}")
    entry = TemporalModel(name, builder, options, inputs, bool(stateful))
    _TABLE[name] = entry
    return entry


def temporal_model(name: str) -> TemporalModel:
    """The entry registered as ``name``.

    Raises:
        ValueError: No such model (the message lists the registered ones).
    """
    load_plugins()  # a worker process (or a checkpoint's loader) finds what --plugin registered
    if name not in _TABLE:
        raise ValueError(f"temporal must be one of {list_temporal_models()}, got {name!r}")
    return _TABLE[name]


def list_temporal_models(inputs: Inputs | None = None) -> list[str]:
    """Registered names, in registration order; only those reading ``inputs`` if given."""
    load_plugins()
    return [n for n, e in _TABLE.items() if inputs is None or e.inputs == inputs]


# ------------------------------------------------------------------------- the built-in models


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _check_recurrence(o: Any) -> None:
    """The dropout and time-pooling checks every recurrent model shares."""
    _check(0.0 <= o.dropout < 1.0, f"dropout must be in [0, 1), got {o.dropout}")
    _check(
        o.time_pool in ("last", "mean", "attention"),
        f"time_pool must be last/mean/attention, got {o.time_pool!r}",
    )


@dataclass
class RecurrentOptions:
    """``lstm`` / ``gru`` over per-frame vectors (:class:`RecurrentTemporal`).

    Args:
        hidden_size: Hidden units per direction.
        num_layers: Stacked layers.
        dropout: Dropout between layers.
        bidirectional: Also run backwards in time (sees the whole window; cannot stream).
        time_pool: ``"last"``, ``"mean"`` or ``"attention"`` over the steps' outputs.
        frame_diff: Also feed each step's change ``x_t - x_{t-1}``.
    """

    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0
    bidirectional: bool = False
    time_pool: str = "last"
    frame_diff: bool = False

    def __post_init__(self) -> None:
        _check(self.hidden_size >= 1, f"hidden_size must be >= 1, got {self.hidden_size}")
        _check(self.num_layers >= 1, f"num_layers must be >= 1, got {self.num_layers}")
        _check_recurrence(self)

    def rnn_kwargs(self) -> dict[str, Any]:
        """The :class:`RecurrentTemporal` keywords these options set."""
        return dict(
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
            time_pool=self.time_pool,
        )


def _check_motion(o: Any, *, space_pool: str) -> None:
    """The motion-input and space-pool checks every model over maps shares."""
    _check(o.proj_channels >= 0, f"proj_channels must be >= 0, got {o.proj_channels}")
    _check(o.motion_radius >= 0, f"motion_radius must be >= 0, got {o.motion_radius}")
    _check(
        not o.motion_only or o.frame_diff or o.motion_radius > 0,
        "motion_only needs frame_diff or motion_radius (the motion inputs)",
    )
    _check(space_pool in ("max", "mean"), f"space_pool must be 'max' or 'mean', got {space_pool!r}")


@dataclass
class AdapterOptions(RecurrentOptions):
    """``adapter_lstm`` / ``adapter_gru``: maps through a trainable 3x3 conv adapter, pooled per
    frame to vectors, then an LSTM/GRU (:class:`PooledRecurrentTemporal`).

    Args (beside :class:`RecurrentOptions`'):
        proj_channels: Adapter output channels (>= 1).
        pool_size: The adapter's maps pooled to ``s x s`` per frame (``proj_channels * s * s``
            values a step).
        space_pool: ``"max"`` or ``"mean"`` for that pooling.
        motion_radius: Also feed each step's local correlation with the previous step within
            this many cells (0: none).
        motion_only: Feed only the motion inputs (``frame_diff`` and/or ``motion_radius``).
    """

    proj_channels: int = 32
    pool_size: int = 1
    space_pool: str = "max"
    motion_radius: int = 0
    motion_only: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.proj_channels >= 1, f"proj_channels must be >= 1, got {self.proj_channels}")
        _check(self.pool_size >= 1, f"pool_size must be >= 1, got {self.pool_size}")
        _check_motion(self, space_pool=self.space_pool)


@dataclass
class ConvGRUOptions:
    """``convgru`` over maps (:class:`ConvRecurrentTemporal`).

    Args:
        hidden_sizes: Hidden channels of each layer (its length is the number of layers).
        kernel_size: Kernel of every layer (odd or even).
        dropout: Dropout between layers.
        bidirectional: Also run backwards in time (cannot stream).
        time_pool: ``"last"``, ``"mean"`` or ``"attention"``.
        frame_diff: Also feed each step's change ``x_t - x_{t-1}``.
        proj_channels: 1x1 conv of the step input to this many channels first (0: none).
        space_pool: ``"max"`` or ``"mean"`` of each step's output over the map.
        motion_radius: Also feed the local correlation with the previous step (0: none).
        motion_only: Feed only the motion inputs.
    """

    hidden_sizes: list[int] = field(default_factory=lambda: [64])
    kernel_size: int = 3
    dropout: float = 0.0
    bidirectional: bool = False
    time_pool: str = "last"
    frame_diff: bool = False
    proj_channels: int = 0
    space_pool: str = "max"
    motion_radius: int = 0
    motion_only: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.hidden_sizes, int):
            self.hidden_sizes = [self.hidden_sizes]
        self.hidden_sizes = [int(h) for h in self.hidden_sizes]
        _check(
            bool(self.hidden_sizes) and min(self.hidden_sizes) >= 1,
            f"hidden_sizes must be positive ints, got {self.hidden_sizes}",
        )
        _check(self.kernel_size >= 1, f"kernel_size must be >= 1, got {self.kernel_size}")
        _check_recurrence(self)
        _check_motion(self, space_pool=self.space_pool)


@dataclass
class ConvLSTMOptions(ConvGRUOptions):
    """``convlstm``: :class:`ConvGRUOptions` plus peepholes.

    Args:
        peephole: ``"none"``, ``"channel"`` or ``"spatial"`` (spatial fixes the map size to
            the configured frame size's).
    """

    peephole: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(
            self.peephole in ("none", "channel", "spatial"),
            f"peephole must be none/channel/spatial, got {self.peephole!r}",
        )


@dataclass
class MeanPoolOptions:
    """``meanpool`` has no options: the order-free baseline (no frame difference either)."""


def _map_input_kwargs(o: AdapterOptions | ConvGRUOptions) -> dict[str, Any]:
    """What a model over maps reads at each step (``StepInput``) and how it pools space."""
    return dict(
        proj_channels=o.proj_channels,
        space_pool=o.space_pool,
        frame_diff=o.frame_diff,
        motion_radius=o.motion_radius,
        content=not o.motion_only,
    )


def _build_recurrent(
    options: RecurrentOptions, *, in_channels: int, map_size: int, cell: str
) -> nn.Module:
    return RecurrentTemporal(
        in_channels, cell=cell, frame_diff=options.frame_diff, **options.rnn_kwargs()
    )


def _build_adapter(
    options: AdapterOptions, *, in_channels: int, map_size: int, cell: str
) -> nn.Module:
    return PooledRecurrentTemporal(
        in_channels,
        pool_size=options.pool_size,
        cell=cell,
        **_map_input_kwargs(options),
        **options.rnn_kwargs(),
    )


def _build_conv(options: ConvGRUOptions, *, in_channels: int, map_size: int) -> nn.Module:
    o = options
    lstm = isinstance(o, ConvLSTMOptions)
    return ConvRecurrentTemporal(
        in_channels,
        hidden_sizes=o.hidden_sizes,
        kernel_size=o.kernel_size,
        cell="convlstm" if lstm else "convgru",
        peephole=o.peephole if lstm else "none",
        spatial_size=(map_size, map_size),
        dropout=o.dropout,
        bidirectional=o.bidirectional,
        time_pool=o.time_pool,
        **_map_input_kwargs(o),
    )


def _build_meanpool(options: MeanPoolOptions, *, in_channels: int, map_size: int) -> nn.Module:
    return MeanPoolTemporal(in_channels)


register_temporal_model(
    "convlstm", _build_conv, options=ConvLSTMOptions, inputs="maps", stateful=True
)
register_temporal_model(
    "convgru", _build_conv, options=ConvGRUOptions, inputs="maps", stateful=True
)
for _cell in ("lstm", "gru"):
    register_temporal_model(
        _cell,
        functools.partial(_build_recurrent, cell=_cell),
        options=RecurrentOptions,
        inputs="vectors",
        stateful=True,
    )
    register_temporal_model(
        f"adapter_{_cell}",
        functools.partial(_build_adapter, cell=_cell),
        options=AdapterOptions,
        inputs="maps",
        stateful=True,
    )
register_temporal_model(
    "meanpool", _build_meanpool, options=MeanPoolOptions, inputs="vectors", stateful=False
)
