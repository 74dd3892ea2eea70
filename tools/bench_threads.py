"""CPU threads for annotation: torch's default against 1 thread and ``video_lstm.threads``'s default.

Times the first pass of annotation (decode + CNN + window heads, ``inference.stages.score``) on
a generated 360p video, with the compact model (untrained: speed only), for each thread count,
in one run and in rotation (so that a change in the machine's load hits every setting alike).
Prints the load average, each setting's median frames/s and its ratio to torch's default (one
thread per logical core). On a busy machine the default of ``--threads`` should be near the
best row and torch's default far below it.

    python tools/bench_threads.py                  # 20 s video, 3 rounds
    python tools/bench_threads.py --seconds 10 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_pipeline import make_checkpoint, make_video  # noqa: E402
from video_lstm.inference.predictor import Predictor  # noqa: E402
from video_lstm.inference.settings import AnnotateSettings  # noqa: E402
from video_lstm.inference.stages import score  # noqa: E402
from video_lstm.threads import available_cores, default_threads, physical_cores  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_threads_"))
    video = make_video(work / "main.mp4", seconds=args.seconds, width=640, height=360, fps=30)
    ckpt = make_checkpoint(work / "model.pt", clip_len=16, frame_interval=2)
    pred = Predictor.from_checkpoint(ckpt, device="cpu")
    logical = os.cpu_count() or 1
    ours = default_threads()
    settings = {
        f"torch default ({logical}, one per logical core)": logical,
        "1 thread": 1,
        f"--threads default ({ours})": ours,
    }
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {k: [] for k in settings}
    frames = 0
    for _ in range(args.repeats):
        for key, n in settings.items():
            torch.set_num_threads(n)
            s = AnnotateSettings.from_flat(threads=n, device="cpu")
            t0 = time.perf_counter()
            _, frames, _ = score(video, pred, s)
            times[key].append(time.perf_counter() - t0)
    load_after = os.getloadavg()[0]

    print(
        f"{frames} frames 640x360; cores: {logical} logical, {physical_cores()} physical, "
        f"{available_cores()} in affinity; load average {load_before:.1f} -> {load_after:.1f}"
    )
    base = statistics.median(times[next(iter(settings))])
    print(f"\n{'threads':<44}{'frames/s':>10}{'vs torch default':>18}")
    for key, ts in times.items():
        t = statistics.median(ts)
        print(f"{key:<44}{frames / t:>10.1f}{base / t:>17.2f}x")
    print(f"\nfiles in {work}")


if __name__ == "__main__":
    main()
