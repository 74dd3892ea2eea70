"""Convolutional recurrent layers over feature maps: ConvLSTM (Shi et al. 2015) and ConvGRU.

Layout is batch-first ``(B, T, C, H, W)``. Both layers are stateful: ``forward(x, state)``
takes and returns one state per layer (and direction), so a long video can be processed in
chunks and give the same result as the whole sequence at once. For a stream, one step at a time:
``init_state(batch, like)`` and ``step(x_t, state) -> (out_t, state)`` with the state a flat
tuple of maps (``h, c`` per ConvLSTM layer, ``h`` per ConvGRU layer), ONNX-friendly.

Speed: the input-to-gates convolution does not depend on the recurrence, so it runs over many
timesteps per call with time folded into the batch (all of them on GPU, blocks of about 16
frames on CPU, where oneDNN slows down on larger batches: see :func:`input_gates`); only the hidden-to-gates convolution stays inside the time loop. The loop walks the
timesteps with ``unbind`` rather than ``x[:, t]`` indexing (indexing made backward 1.5x slower
in our measurements). ``tools/bench_models.py`` compares this with the plain step-by-step form
that concatenates input and hidden state and runs one convolution per step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ConvGRU",
    "ConvGRUCell",
    "ConvLSTM",
    "ConvLSTMCell",
    "refuse_bidirectional",
    "same_padding",
]

Peephole = Literal["none", "channel", "spatial"]
LSTMState = tuple[Tensor, Tensor]  # (h, c), each (B, hidden, H, W)


def same_padding(kernel_size: int) -> tuple[int, int, int, int]:
    """``F.pad`` amounts ``(left, right, top, bottom)`` that keep ``H x W`` for a stride-1 conv.

    Odd kernels pad ``k // 2`` on every side. Even kernels cannot be centred, so they pad one
    less on the left/top than on the right/bottom (the same choice as TensorFlow's ``"same"``).
    """
    lo, hi = (kernel_size - 1) // 2, kernel_size // 2
    return (lo, hi, lo, hi)


class _SameConv2d(nn.Conv2d):
    """A stride-1 conv whose output has the input's ``H x W`` for odd and even kernels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=0, bias=bias)
        self._pad = same_padding(kernel_size)
        self._symmetric = kernel_size % 2 == 1

    def forward(self, x: Tensor) -> Tensor:
        if self._symmetric:  # let the conv pad: cheaper than a separate F.pad copy
            return F.conv2d(x, self.weight, self.bias, padding=self.kernel_size[0] // 2)
        return super().forward(F.pad(x, self._pad))


def refuse_bidirectional(module: nn.Module) -> None:
    """Raise unless ``module`` runs forward in time only: a bidirectional model reads each
    window backwards too, so it cannot step through a stream."""
    if getattr(module, "bidirectional", False):
        raise ValueError(
            "a bidirectional temporal model reads each window backwards too; it cannot step "
            "through a stream (use bidirectional=False)"
        )


def _tanh(x: Tensor) -> Tensor:
    """``tanh(x)``, on CPU computed as ``2 sigmoid(2x) - 1`` (the same function, within 2e-7).

    torch's CPU tanh kernel is slow next to its sigmoid: on a (64, 32, 16, 16) gate map 0.68 ms
    (1.9 ms on a channel slice of the stacked gates) against 0.2 ms this way, which made tanh
    the third largest cost of the compact model's window heads. GPUs keep the one-kernel tanh.
    """
    if x.device.type != "cpu":
        return torch.tanh(x)
    return torch.sigmoid(x * 2) * 2 - 1


def _fold_time(x: Tensor) -> Tensor:
    b, t = x.shape[:2]
    return x.reshape(b * t, *x.shape[2:])  # (B*T, C, H, W)


# oneDNN convolutions on CPU slow down on large batches (cache): at 64x28x28 -> 256 channels, one
# call over 64 frames took 122 ms, four calls over 16 frames 87 ms. On CPU the input-to-gates conv
# therefore runs over time blocks of about this many frames; on GPU over all steps at once.
CPU_FRAMES_PER_CONV = 16


def input_gates(conv: nn.Module, x: Tensor) -> Iterator[Tensor]:
    """Yield ``conv(x_t)`` for each step of ``x`` ``(B, T, C, H, W)``, computed for many steps per call.

    Only the hidden-to-gates convolution is left inside the time loop.
    """
    b, t = x.shape[:2]
    block = t if x.device.type != "cpu" else max(1, CPU_FRAMES_PER_CONV // b)
    for xs in x.split(block, dim=1):  # (B, t_block, C, H, W)
        flat = _fold_time(xs)  # (B*t_block, C, H, W)
        if x.device.type == "cpu" and not torch.is_grad_enabled():
            # Inference on CPU: channels_last made the forward 1.08x (was 1.04x) against the
            # reference, but slowed forward+backward from 1.10x to 1.01x, so training skips it.
            flat = flat.contiguous(memory_format=torch.channels_last)
        gates = conv(flat)  # (B*t_block, G, H, W)
        yield from gates.view(b, xs.shape[1], *gates.shape[1:]).unbind(1)


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer's weights and its single-step update.

    The memory cell ``c`` carries information across time; three gates decide what enters it
    (input gate ``i``), what it keeps (forget gate ``f``) and what it exposes as the hidden
    state ``h`` (output gate ``o``). With ``*`` a 2-D convolution and ``∘`` the Hadamard
    product (Shi et al. 2015, eq. 3)::

        i_t = σ(W_xi * x_t + W_hi * h_{t-1} + W_ci ∘ c_{t-1} + b_i)
        f_t = σ(W_xf * x_t + W_hf * h_{t-1} + W_cf ∘ c_{t-1} + b_f)
        g_t = tanh(W_xg * x_t + W_hg * h_{t-1} + b_g)          # candidate cell content
        c_t = f_t ∘ c_{t-1} + i_t ∘ g_t
        o_t = σ(W_xo * x_t + W_ho * h_{t-1} + W_co ∘ c_t + b_o)
        h_t = o_t ∘ tanh(c_t)

    The peephole terms ``W_c· ∘ c`` are optional: ``peephole="spatial"`` gives each a weight of
    shape ``(hidden, H, W)`` as in the paper (the map size is then fixed by ``spatial_size``);
    ``peephole="channel"`` uses ``(hidden, 1, 1)`` (one weight per channel, any map size);
    ``"none"`` drops them. The four gates' input weights live in ``conv_x`` and their hidden
    weights in ``conv_h``, stacked in the order ``i, f, g, o`` (as in ``nn.LSTM``). ``b_f`` is
    initialised to 1 so the cell starts by remembering (Jozefowicz et al. 2015).

    Args:
        input_size: Input channels ``C``.
        hidden_size: Hidden (and cell) channels.
        kernel_size: Square kernel, odd or even; the output keeps ``H x W``.
        peephole: ``"none"``, ``"channel"`` or ``"spatial"``.
        spatial_size: ``(H, W)`` of the maps; required for ``peephole="spatial"``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        kernel_size: int = 3,
        peephole: Peephole = "none",
        spatial_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        if peephole not in ("none", "channel", "spatial"):
            raise ValueError(f"peephole must be 'none', 'channel' or 'spatial', got {peephole!r}")
        if peephole == "spatial" and spatial_size is None:
            raise ValueError("peephole='spatial' needs spatial_size=(H, W) of the feature maps")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.kernel_size = kernel_size
        self.peephole = peephole
        self.state_size = 2  # (h, c)
        self.conv_x = _SameConv2d(input_size, 4 * hidden_size, kernel_size, bias=True)
        self.conv_h = _SameConv2d(hidden_size, 4 * hidden_size, kernel_size, bias=False)
        if peephole == "none":
            self.w_ci = self.w_cf = self.w_co = None
        else:
            shape = (hidden_size, 1, 1) if peephole == "channel" else (hidden_size, *spatial_size)
            self.w_ci = nn.Parameter(torch.zeros(shape))
            self.w_cf = nn.Parameter(torch.zeros(shape))
            self.w_co = nn.Parameter(torch.zeros(shape))
        with torch.no_grad():  # forget-gate bias = 1
            self.conv_x.bias.zero_()
            self.conv_x.bias[hidden_size : 2 * hidden_size].fill_(1.0)

    def init_state(self, x: Tensor) -> LSTMState:
        """Zero ``(h, c)`` for an input step ``x`` of shape ``(B, C, H, W)``."""
        b, _, h, w = x.shape
        zeros = x.new_zeros(b, self.hidden_size, h, w)
        return zeros, zeros

    def step(self, x_gates: Tensor, state: LSTMState | None) -> LSTMState:
        """One timestep from precomputed input gates.

        Args:
            x_gates: ``conv_x(x_t)``, shape ``(B, 4*hidden, H, W)``.
            state: ``(h_{t-1}, c_{t-1})`` or ``None`` for zeros.

        Returns:
            ``(h_t, c_t)``.
        """
        if state is None:  # h = c = 0: the hidden conv and the peepholes contribute nothing
            gates = x_gates
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(i) * _tanh(g)
        else:
            h_prev, c_prev = state
            gates = self.conv_h(h_prev).add_(x_gates)  # in place on the fresh conv output
            i, f, g, o = gates.chunk(4, dim=1)
            if self.w_ci is not None:
                i = i + self.w_ci * c_prev
                f = f + self.w_cf * c_prev
            # c_t = f_t * c_{t-1} + i_t * g_t, fused as addcmul
            c = torch.addcmul(torch.sigmoid(f) * c_prev, torch.sigmoid(i), _tanh(g))
        if self.w_co is not None:
            o = o + self.w_co * c
        h = torch.sigmoid(o) * _tanh(c)
        return h, c

    def forward(self, x: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        """Run the cell over a sequence.

        Args:
            x: ``(B, T, C, H, W)``.
            state: Initial ``(h, c)``, each ``(B, hidden, H, W)``; ``None`` for zeros.

        Returns:
            ``(out, (h_T, c_T))`` with ``out`` of shape ``(B, T, hidden, H, W)``.
        """
        outs = []
        for xg in input_gates(self.conv_x, x):  # (B, 4*hidden, H, W) per step
            state = self.step(xg, state)
            outs.append(state[0])
        return torch.stack(outs, dim=1), state  # (B, T, hidden, H, W)


class ConvGRUCell(nn.Module):
    """One ConvGRU layer (Ballas et al. 2016): a gated recurrence with no separate memory cell.

    The reset gate ``r`` decides how much of the previous hidden state feeds the candidate;
    the update gate ``z`` blends the previous state and the candidate::

        r_t = σ(W_xr * x_t + W_hr * h_{t-1} + b_r)
        z_t = σ(W_xz * x_t + W_hz * h_{t-1} + b_z)
        n_t = tanh(W_xn * x_t + W_hn * (r_t ∘ h_{t-1}) + b_n)
        h_t = (1 - z_t) ∘ n_t + z_t ∘ h_{t-1}

    ``conv_x`` holds the input weights of ``r, z, n``; ``conv_hrz`` the hidden weights of
    ``r, z``; ``conv_hn`` the hidden weight of ``n`` (applied to ``r ∘ h``).

    Args:
        input_size: Input channels ``C``.
        hidden_size: Hidden channels.
        kernel_size: Square kernel, odd or even; the output keeps ``H x W``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.kernel_size = kernel_size
        self.state_size = 1  # h
        self.conv_x = _SameConv2d(input_size, 3 * hidden_size, kernel_size, bias=True)
        self.conv_hrz = _SameConv2d(hidden_size, 2 * hidden_size, kernel_size, bias=False)
        self.conv_hn = _SameConv2d(hidden_size, hidden_size, kernel_size, bias=False)

    def step(self, x_gates: Tensor, h_prev: Tensor | None) -> Tensor:
        """One timestep from precomputed input gates ``conv_x(x_t)`` ``(B, 3*hidden, H, W)``."""
        xr, xz, xn = x_gates.chunk(3, dim=1)
        if h_prev is None:  # h = 0: the hidden terms vanish
            z = torch.sigmoid(xz)
            return (1 - z) * _tanh(xn)
        hr, hz = self.conv_hrz(h_prev).chunk(2, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = _tanh(xn + self.conv_hn(r * h_prev))
        return (1 - z) * n + z * h_prev

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the cell over ``x`` ``(B, T, C, H, W)`` from ``state`` ``h`` (``None``: zeros).

        Returns:
            ``(out, h_T)`` with ``out`` of shape ``(B, T, hidden, H, W)``.
        """
        outs = []
        h = state
        for xg in input_gates(self.conv_x, x):  # (B, 3*hidden, H, W) per step
            h = self.step(xg, h)
            outs.append(h)
        return torch.stack(outs, dim=1), h


class _ConvRNN(nn.Module):
    """Stacks cells into layers (optionally bidirectional) with dropout between layers."""

    def __init__(
        self,
        make_cell,
        input_size: int,
        hidden_sizes: int | list[int],
        kernel_sizes: int | list[int],
        dropout: float,
        bidirectional: bool,
    ) -> None:
        super().__init__()
        hidden_sizes = [hidden_sizes] if isinstance(hidden_sizes, int) else list(hidden_sizes)
        if isinstance(kernel_sizes, int):  # one kernel for every layer
            kernel_sizes = [kernel_sizes] * len(hidden_sizes)
        if not hidden_sizes:
            raise ValueError("hidden_sizes must name at least one layer")
        if len(kernel_sizes) != len(hidden_sizes):
            raise ValueError(
                f"kernel_sizes ({len(kernel_sizes)}) and hidden_sizes ({len(hidden_sizes)}) "
                "must have one entry per layer"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size = input_size
        self.hidden_sizes = list(hidden_sizes)
        self.kernel_sizes = list(kernel_sizes)
        self.num_layers = len(hidden_sizes)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        cells = []
        in_ch = input_size
        for hidden, k in zip(hidden_sizes, kernel_sizes, strict=True):
            for _ in range(self.num_directions):
                cells.append(make_cell(in_ch, hidden, k))
            in_ch = hidden * self.num_directions
        # cells[layer * num_directions + direction], like nn.LSTM's state layout
        self.cells = nn.ModuleList(cells)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_channels = in_ch

    def forward(self, x: Tensor, state: list | None = None) -> tuple[Tensor, list]:
        """Run all layers.

        Args:
            x: ``(B, T, C, H, W)``.
            state: One state per ``layer * num_directions + direction`` (``None`` entries or
                ``None`` for zeros), as returned by a previous call.

        Returns:
            ``(out, state)``: ``out`` ``(B, T, out_channels, H, W)`` from the last layer (both
            directions concatenated on channels), and the final state of every cell. Carrying
            the state into the next chunk continues the forward direction exactly; a backward
            direction only sees its own chunk.
        """
        if x.dim() != 5:
            raise ValueError(f"expected (B, T, C, H, W) input, got shape {tuple(x.shape)}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"expected {self.input_size} input channels, got {x.shape[2]}")
        n_cells = len(self.cells)
        if state is None:
            state = [None] * n_cells
        if len(state) != n_cells:
            raise ValueError(
                f"state needs {n_cells} entries (layers x directions), got {len(state)}"
            )
        new_state = []
        for layer in range(self.num_layers):
            if layer > 0:
                x = self.dropout(x)
            outs = []
            for d in range(self.num_directions):
                idx = layer * self.num_directions + d
                inp = x if d == 0 else x.flip(1)
                out, s = self.cells[idx](inp, state[idx])
                outs.append(out if d == 0 else out.flip(1))
                new_state.append(s)
            x = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)  # (B, T, C', H, W)
        return x, new_state

    @property
    def state_size(self) -> int:
        """Tensors in the flat step state: each cell's ``(h, c)`` or ``h``, layer by layer."""
        return sum(cell.state_size for cell in self.cells)

    def init_state(self, batch: int, like: Tensor) -> tuple[Tensor, ...]:
        """Zero maps ``(batch, hidden, H, W)`` per cell state; ``like``: one step ``(B, C, H, W)``
        (its map size, device and dtype are used)."""
        refuse_bidirectional(self)
        h, w = like.shape[-2:]
        return tuple(
            like.new_zeros(batch, cell.hidden_size, h, w)
            for cell in self.cells
            for _ in range(cell.state_size)
        )

    def step(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One timestep through all layers: ``(B, C, H, W)`` -> ``(out (B, hidden, H, W), state)``
        with the flat state of :meth:`init_state`; ``T`` steps equal :meth:`forward` on ``T``."""
        refuse_bidirectional(self)
        if x.dim() != 4 or x.shape[1] != self.input_size:
            raise ValueError(
                f"expected one step (B, {self.input_size}, H, W), got shape {tuple(x.shape)}"
            )
        if len(state) != self.state_size:
            raise ValueError(f"expected a state of {self.state_size} tensors, got {len(state)}")
        new_state: list[Tensor] = []
        for layer, cell in enumerate(self.cells):
            if layer > 0:
                x = self.dropout(x)
            n = len(new_state)
            mine = state[n : n + cell.state_size]
            out = cell.step(cell.conv_x(x), mine if cell.state_size > 1 else mine[0])
            cell_state = out if isinstance(out, tuple) else (out,)
            new_state.extend(cell_state)
            x = cell_state[0]  # h
        return x, tuple(new_state)


class ConvLSTM(_ConvRNN):
    """Multi-layer ConvLSTM over ``(B, T, C, H, W)``; see :class:`ConvLSTMCell` for the gates.

    Args:
        input_size: Input channels.
        hidden_sizes: Hidden channels of each layer (its length is the number of layers).
        kernel_sizes: One kernel per layer, or one int for all; odd or even.
        peephole: ``"none"``, ``"channel"`` or ``"spatial"`` (see :class:`ConvLSTMCell`).
        spatial_size: ``(H, W)``; needed for spatial peepholes.
        dropout: Dropout on the maps between layers.
        bidirectional: Also run each layer backwards in time; channels double.

    ``forward(x, state=None) -> (out, state)``, ``state`` a list of ``(h, c)`` per cell.
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: int | list[int],
        *,
        kernel_sizes: int | list[int] = 3,
        peephole: Peephole = "none",
        spatial_size: tuple[int, int] | None = None,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        def make_cell(cin: int, hidden: int, k: int) -> ConvLSTMCell:
            return ConvLSTMCell(
                cin, hidden, kernel_size=k, peephole=peephole, spatial_size=spatial_size
            )

        super().__init__(make_cell, input_size, hidden_sizes, kernel_sizes, dropout, bidirectional)


class ConvGRU(_ConvRNN):
    """Multi-layer ConvGRU over ``(B, T, C, H, W)``; see :class:`ConvGRUCell` for the gates.

    Same arguments as :class:`ConvLSTM` without peepholes; the state is one ``h`` per cell.
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: int | list[int],
        *,
        kernel_sizes: int | list[int] = 3,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        def make_cell(cin: int, hidden: int, k: int) -> ConvGRUCell:
            return ConvGRUCell(cin, hidden, kernel_size=k)

        super().__init__(make_cell, input_size, hidden_sizes, kernel_sizes, dropout, bidirectional)
