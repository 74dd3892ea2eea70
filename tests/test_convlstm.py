"""ConvLSTM / ConvGRU against a plain step-by-step reference with the same weights.

The reference classes here are the textbook form (concatenate input and hidden state, one
convolution per step, ``x[:, t]`` indexing). ``tools/bench_models.py`` imports them from this
file so the benchmark times exactly what these tests prove equal.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from video_lstm.models.convlstm import ConvGRU, ConvLSTM


def _pad_same(x: Tensor, k: int) -> Tensor:
    lo, hi = (k - 1) // 2, k // 2  # even kernels: one more on the right/bottom
    return F.pad(x, (lo, hi, lo, hi))


class RefConvLSTM(nn.Module):
    """Plain ConvLSTM: per step ``conv(cat[x_t, h]) -> i, f, g, o``; weights copied from ours."""

    def __init__(self, fast: ConvLSTM) -> None:
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.peepholes = []
        self.kernels = []
        for cell in fast.cells:
            w = torch.cat([cell.conv_x.weight, cell.conv_h.weight], dim=1)
            self.weights.append(nn.Parameter(w.detach().clone()))
            self.biases.append(nn.Parameter(cell.conv_x.bias.detach().clone()))
            self.kernels.append(cell.kernel_size)
            if cell.w_ci is None:
                self.peepholes.append(None)
            else:
                self.peepholes.append(
                    [nn.Parameter(p.detach().clone()) for p in (cell.w_ci, cell.w_cf, cell.w_co)]
                )
        self.num_layers = fast.num_layers

    def forward(self, x: Tensor, state: list | None = None) -> tuple[Tensor, list]:
        new_state = []
        for layer in range(self.num_layers):
            w, b, k, peep = (
                self.weights[layer],
                self.biases[layer],
                self.kernels[layer],
                self.peepholes[layer],
            )
            hidden = w.shape[0] // 4
            bsz, t, _, hh, ww = x.shape
            if state is None or state[layer] is None:
                h = x.new_zeros(bsz, hidden, hh, ww)
                c = x.new_zeros(bsz, hidden, hh, ww)
            else:
                h, c = state[layer]
            outs = []
            for step in range(t):
                gates = F.conv2d(_pad_same(torch.cat([x[:, step], h], dim=1), k), w, b)
                i, f, g, o = torch.split(gates, hidden, dim=1)
                if peep is not None:
                    i = i + peep[0] * c
                    f = f + peep[1] * c
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                if peep is not None:
                    o = o + peep[2] * c
                h = torch.sigmoid(o) * torch.tanh(c)
                outs.append(h)
            x = torch.stack(outs, dim=1)
            new_state.append((h, c))
        return x, new_state


class RefConvGRU(nn.Module):
    """Plain ConvGRU: per step ``conv(cat[x_t, h]) -> r, z`` and ``conv(cat[x_t, r*h]) -> n``."""

    def __init__(self, fast: ConvGRU) -> None:
        super().__init__()
        self.w_rz = nn.ParameterList()
        self.w_n = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.kernels = []
        for cell in fast.cells:
            hidden = cell.hidden_size
            wx = cell.conv_x.weight
            self.w_rz.append(
                nn.Parameter(
                    torch.cat([wx[: 2 * hidden], cell.conv_hrz.weight], 1).detach().clone()
                )
            )
            self.w_n.append(
                nn.Parameter(torch.cat([wx[2 * hidden :], cell.conv_hn.weight], 1).detach().clone())
            )
            self.biases.append(nn.Parameter(cell.conv_x.bias.detach().clone()))
            self.kernels.append(cell.kernel_size)
        self.num_layers = fast.num_layers

    def forward(self, x: Tensor, state: list | None = None) -> tuple[Tensor, list]:
        new_state = []
        for layer in range(self.num_layers):
            k, b = self.kernels[layer], self.biases[layer]
            hidden = self.w_n[layer].shape[0]
            bsz, t, _, hh, ww = x.shape
            h = x.new_zeros(bsz, hidden, hh, ww) if state is None else state[layer]
            outs = []
            for step in range(t):
                xt = x[:, step]
                rz = F.conv2d(
                    _pad_same(torch.cat([xt, h], 1), k), self.w_rz[layer], b[: 2 * hidden]
                )
                r, z = torch.sigmoid(rz).split(hidden, dim=1)
                n = torch.tanh(
                    F.conv2d(
                        _pad_same(torch.cat([xt, r * h], 1), k), self.w_n[layer], b[2 * hidden :]
                    )
                )
                h = (1 - z) * n + z * h
                outs.append(h)
            x = torch.stack(outs, dim=1)
            new_state.append(h)
        return x, new_state


def _randomise(module: nn.Module) -> None:
    # Peepholes start at zero; random values make the test see them.
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.2)


CASES = [
    pytest.param(hidden, k, peep, id=f"L{len(hidden)}-k{k}-{peep}")
    for hidden in ([6], [6, 5])
    for k in (3, 2, 1, 4)
    for peep in ("none", "channel", "spatial")
]


@pytest.mark.parametrize(("hidden", "kernel", "peephole"), CASES)
def test_convlstm_matches_reference(hidden: list[int], kernel: int, peephole: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 7, 6, requires_grad=True)
    fast = ConvLSTM(3, hidden, kernel_sizes=kernel, peephole=peephole, spatial_size=(7, 6))
    _randomise(fast)
    ref = RefConvLSTM(fast)
    out, state = fast(x)
    ref_out, ref_state = ref(x)
    assert out.shape == (2, 5, hidden[-1], 7, 6)
    torch.testing.assert_close(out, ref_out)
    for (h, c), (rh, rc) in zip(state, ref_state, strict=True):
        torch.testing.assert_close(h, rh)
        torch.testing.assert_close(c, rc)
    # Gradients w.r.t. the input agree too (the fast path's backward is what training uses).
    (g,) = torch.autograd.grad(out.square().sum(), x)
    (rg,) = torch.autograd.grad(ref_out.square().sum(), x)
    torch.testing.assert_close(g, rg)


@pytest.mark.parametrize("hidden", [[6], [6, 5]])
@pytest.mark.parametrize("kernel", [3, 2])
def test_convgru_matches_reference(hidden: list[int], kernel: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 5, 3, 6, 7)
    fast = ConvGRU(3, hidden, kernel_sizes=kernel)
    _randomise(fast)
    out, state = fast(x)
    ref_out, ref_state = RefConvGRU(fast)(x)
    torch.testing.assert_close(out, ref_out)
    for h, rh in zip(state, ref_state, strict=True):
        torch.testing.assert_close(h, rh)


@pytest.mark.parametrize("kernel", [3, 2])
def test_inference_path_matches_reference(kernel: int) -> None:
    # Without autograd the CPU path runs channels_last over time blocks (B=2: 8 steps a block),
    # so T=11 crosses a block boundary.
    torch.manual_seed(3)
    x = torch.randn(2, 11, 3, 7, 6)
    lstm = ConvLSTM(3, [6, 5], kernel_sizes=kernel, peephole="channel")
    gru = ConvGRU(3, [6, 5], kernel_sizes=kernel)
    _randomise(lstm)
    _randomise(gru)
    with torch.inference_mode():
        out, _ = lstm(x)
        ref_out, _ = RefConvLSTM(lstm)(x)
        gru_out, _ = gru(x)
        gru_ref, _ = RefConvGRU(gru)(x)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(gru_out, gru_ref)


@pytest.mark.parametrize("cls", [ConvLSTM, ConvGRU])
def test_streaming_in_chunks_equals_whole_sequence(cls: type) -> None:
    torch.manual_seed(2)
    model = cls(4, [5, 3], kernel_sizes=[3, 2]).eval()
    x = torch.randn(2, 9, 4, 5, 5)
    whole, whole_state = model(x)
    state, outs = None, []
    for chunk in x.split([4, 1, 4], dim=1):
        out, state = model(chunk, state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, dim=1), whole)
    for a, b in zip(state, whole_state, strict=True):
        torch.testing.assert_close(a, b)


def test_forget_gate_bias_starts_at_one() -> None:
    cell = ConvLSTM(3, 4).cells[0]
    bias = cell.conv_x.bias.detach()
    torch.testing.assert_close(bias[4:8], torch.ones(4))
    assert bias[:4].abs().sum() == 0 and bias[8:].abs().sum() == 0


@pytest.mark.parametrize("cls", [ConvLSTM, ConvGRU])
def test_bidirectional_sees_the_future(cls: type) -> None:
    torch.manual_seed(3)
    model = cls(2, [4], bidirectional=True).eval()
    x = torch.randn(1, 6, 2, 4, 4)
    out, state = model(x)
    assert out.shape == (1, 6, 8, 4, 4)
    assert len(state) == 2
    assert cls(2, [3, 4], bidirectional=True)(x)[0].shape == (1, 6, 8, 4, 4)
    x2 = x.clone()
    x2[:, -1] += 1.0  # change only the last frame
    out2, _ = model(x2)
    # The first step changes only because the backward direction reads the last frame.
    assert not torch.allclose(out[:, 0, 4:], out2[:, 0, 4:])
    torch.testing.assert_close(out[:, 0, :4], out2[:, 0, :4])


def test_dropout_between_layers_only_in_training() -> None:
    torch.manual_seed(4)
    model = ConvLSTM(2, [3, 3], dropout=0.5)
    x = torch.randn(1, 3, 2, 4, 4)
    model.eval()
    torch.testing.assert_close(model(x)[0], model(x)[0])
    model.train()
    assert not torch.allclose(model(x)[0], model(x)[0])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="spatial_size"):
        ConvLSTM(3, 4, peephole="spatial")
    with pytest.raises(ValueError, match="peephole"):
        ConvLSTM(3, 4, peephole="yes")
    with pytest.raises(ValueError, match="one entry per layer"):
        ConvLSTM(3, [4, 4], kernel_sizes=[3])
    with pytest.raises(ValueError, match="input channels"):
        ConvLSTM(3, 4)(torch.zeros(1, 2, 5, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        ConvGRU(3, 4)(torch.zeros(2, 3, 4, 4))
