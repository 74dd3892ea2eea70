"""Benchmark the ConvLSTM layer against the plain step-by-step form, and the frame encoders.

1. ConvLSTM at B=4, T=16, C=64, 28x28, hidden 64, kernel 3, 1 and 2 layers: forward and
   forward+backward milliseconds of ``video_lstm.models.ConvLSTM`` vs the reference in
   ``tests/test_convlstm.py`` (concat input and hidden, one convolution per step), same weights,
   same run; outputs are checked equal.
2. Frames/s of each backbone at 112 and 224 px: plain fp32 vs ``inference_mode`` +
   channels_last.

Every number is the median of several timed runs after warm-up.

    python tools/bench_models.py [--repeats 5] [--backbones resnet18 mobilenet_v3_small]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from video_lstm.models import ConvLSTM, FrameEncoder, list_backbones

ROOT = Path(__file__).resolve().parents[1]


def _reference_module():
    # The reference lives with the equivalence test, so the benchmark times what the test proves.
    spec = importlib.util.spec_from_file_location("_ref", ROOT / "tests" / "test_convlstm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _median_ms(*fns: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    """Median wall-clock ms of each function; runs are interleaved so that load from other
    processes hits the peers alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1000)
    return [statistics.median(ts) for ts in times]


def _forward(model: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        model(x)


def _forward_backward(model: torch.nn.Module, x: torch.Tensor) -> None:
    model(x.clone().requires_grad_(True))[0].sum().backward()


def bench_convlstm(repeats: int) -> None:
    ref_mod = _reference_module()
    print("ConvLSTM  B=4 T=16 C=64 28x28 hidden=64 k=3 (ms, median)")
    print(f"{'layers':>6} {'pass':>8} {'reference':>10} {'ours':>8} {'speedup':>8} {'equal':>6}")
    for layers in (1, 2):
        torch.manual_seed(0)
        fast = ConvLSTM(64, [64] * layers, kernel_sizes=3)
        ref = ref_mod.RefConvLSTM(fast)
        x = torch.randn(4, 16, 64, 28, 28)
        with torch.no_grad():
            equal = torch.allclose(fast(x)[0], ref(x)[0], atol=1e-5, rtol=1e-4)
        for label, step in (("forward", _forward), ("fwd+bwd", _forward_backward)):
            t_ref, t_ours = _median_ms(
                partial(step, ref, x), partial(step, fast, x), repeats=repeats
            )
            print(
                f"{layers:>6} {label:>8} {t_ref:>10.1f} {t_ours:>8.1f} "
                f"{t_ref / t_ours:>7.2f}x {str(equal):>6}"
            )


def bench_backbones(names: list[str], repeats: int, batch: int) -> None:
    print(f"\nFrame encoders: frames/s, batch of {batch} frames (median)")
    print(f"{'backbone':>20} {'px':>4} {'plain':>8} {'inf+CL':>8} {'ratio':>6}")
    for name in names:
        enc = FrameEncoder(name, output="vector").eval()
        for size in (112, 224):
            x = torch.randn(batch, 3, size, size)

            def plain(enc=enc, x=x):
                with torch.no_grad():
                    enc.encode(x)

            enc_cl = (
                FrameEncoder(name, output="vector").eval().to(memory_format=torch.channels_last)
            )
            enc_cl.load_state_dict(enc.state_dict())
            x_cl = x.contiguous(memory_format=torch.channels_last)

            def fast(enc_cl=enc_cl, x_cl=x_cl):
                with torch.inference_mode():
                    enc_cl.encode(x_cl)

            t_plain, t_fast = _median_ms(plain, fast, repeats=repeats)
            fps_plain, fps_fast = batch / t_plain * 1000, batch / t_fast * 1000
            print(
                f"{name:>20} {size:>4} {fps_plain:>8.1f} {fps_fast:>8.1f} "
                f"{fps_fast / fps_plain:>5.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16, help="frames per backbone call")
    parser.add_argument("--backbones", nargs="*", default=list_backbones())
    parser.add_argument("--skip-backbones", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    bench_convlstm(args.repeats)
    if not args.skip_backbones:
        bench_backbones(args.backbones, args.repeats, args.batch)


if __name__ == "__main__":
    main()
