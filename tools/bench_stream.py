"""Benchmark ``video-lstm watch``: streams kept in real time, event latency, temporal FLOPs
stateful against windowed, CPU per stream against offline ``annotate``, memory over a long stream.

    python tools/bench_stream.py --checkpoint demo_output/model.ckpt --videos demo_output/data/videos/test
    python tools/bench_stream.py --checkpoint model.ckpt --only flops,cpu       # the quick rows

Rows (each printed as a Markdown table, all on this machine in this run):

- ``streams``: N copies of a generated 25 fps video (noise over a test pattern: decoding costs
  what real content costs) watched at once with ``--realtime true`` for ``--seconds``, at 360p
  and 720p, events only and with the live preview (``--serve``, one viewer pulling the MJPEG);
  a run keeps up when no frame was dropped and the lag stayed under 1 s.
- ``latency``: the held-out videos (``--videos``, with ``annotations.csv`` above them) replayed
  in real time; per ground-truth action matched by a predicted segment, the wall time from the
  moment the action's last frame was decoded to its ``end`` event; median and p95 against the
  target ``window + latency_s + 0.5 s``.
- ``flops``: the temporal model + head per sampled frame: ``--state windows`` runs one window
  of ``clip_len`` steps per ``stride`` frames, ``--state carry`` one step
  (``torch.utils.flop_counter``).
- ``cpu``: process CPU seconds per video second, watch (a plain file replay, every frame
  decoded) against ``annotate`` with JSON output only, on the same video.
- ``memory``: peak RSS of one stream over a long generated video (``--minutes``), sampled as it
  plays (flat means bounded).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_video(path: Path, height: int, seconds: float) -> Path:
    """A 25 fps H.264 video with a moving pattern and temporal noise (decodes like footage)."""
    if path.is_file():
        return path
    width = height * 16 // 9 // 2 * 2
    subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={width}x{height}:rate=25", "-vf", "noise=alls=12:allf=t",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-g", "50",
                    "-pix_fmt", "yuv420p", str(path)], check=True)  # fmt: skip
    return path


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    sys.stdout.flush()


def _pull_mjpeg(url: str, stop: threading.Event) -> None:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            while not stop.is_set() and r.read(65536):
                pass
    except OSError:
        pass


def bench_streams(args, work: Path) -> None:
    from pipelines.watch import watch

    rows = []
    for height in (360, 720):
        video = make_video(work / f"noise_{height}p.mp4", height, args.seconds + 5)
        for preview in (False, True):
            for n in args.counts:
                listing = work / f"sources_{n}.txt"
                listing.write_text("\n".join([str(video)] * n) + "\n")
                out = work / f"streams_{height}_{n}_{int(preview)}"
                port = 18765 + n + (1000 if height == 720 else 0)
                stop = threading.Event()
                if preview:  # one viewer pulls the first stream's MJPEG
                    url = f"http://127.0.0.1:{port}/mjpeg/noise_{height}p"
                    threading.Timer(3.0, _pull_mjpeg, (url, stop)).start()
                t0, c0 = time.monotonic(), time.process_time()
                s = watch("-", args.checkpoint, str(out), sources=str(listing), realtime=True,
                          reconnect_s=0, duration_s=args.seconds, threads=args.threads,
                          progress=False, serve=f"127.0.0.1:{port}" if preview else None)  # fmt: skip
                stop.set()
                wall, cpu = time.monotonic() - t0, time.process_time() - c0
                dropped = sum(x["dropped"] for x in s.streams)
                lag = max(x["max_lag_seen_s"] for x in s.streams)
                frames = sum(x["frames"] for x in s.streams)
                kept = dropped == 0 and lag < 1.0 and frames >= 0.9 * n * 25 * (wall - 1.5)
                rows.append([f"{height}p", "preview" if preview else "events", n,
                             "yes" if kept else "no", dropped, f"{lag:.2f}",
                             f"{frames / wall:.0f}", f"{cpu / wall:.2f}"])  # fmt: skip
                if not kept:
                    break
    table("Streams kept in real time (25 fps)",
          ["size", "outputs", "streams", "kept", "dropped", "max lag s", "frames/s", "CPU cores"],
          rows)  # fmt: skip


def bench_latency(args, work: Path) -> None:
    from pipelines.watch import watch
    from video_lstm.models.checkpoint import load_checkpoint

    videos = sorted(Path(args.videos).glob("*.mp4"))
    ann = next((p / "annotations.csv" for p in Path(args.videos).parents
                if (p / "annotations.csv").is_file()), None)  # fmt: skip
    if not videos or ann is None:
        print("latency: no videos with annotations.csv above them; skipped")
        return
    truth: dict[str, list] = {}
    with open(ann) as f:
        for row in csv.DictReader(f):
            truth.setdefault(Path(row["video"]).name, []).append(
                (float(row["start_s"]), float(row["end_s"]), row["label"])
            )
    _, meta = load_checkpoint(args.checkpoint)
    window_s = meta.clip_len * meta.frame_interval / 25.0
    lat = []
    for v in videos:
        out = work / "latency"
        s = watch(str(v), args.checkpoint, str(out), realtime=True, reconnect_s=0,
                  latency_s=args.latency_s, threads=args.threads, progress=False)  # fmt: skip
        t0 = s.streams[0]["first_wall"]
        events = [json.loads(x) for x in (out / v.stem / "events.jsonl").read_text().splitlines()]
        run = events[-1]["run"]
        ends = [e for e in events if e["run"] == run and e["event"] == "end" and e["end_s"]]
        for start, end, label in truth.get(v.name, []):
            best = max(
                ends, default=None, key=lambda e: min(e["end_s"], end) - max(e["start_s"], start)
            )
            if (
                best
                and best["label"] == label
                and min(best["end_s"], end) > max(best["start_s"], start)
            ):
                lat.append(best["wall"] - (t0 + end))
    if not lat:
        print("latency: no matched actions")
        return
    lat.sort()
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    target = window_s + args.latency_s + 0.5
    table("Event latency (end of action -> end event, wall clock)",
          ["actions", "median s", "p95 s", "target s (window + latency_s + 0.5)", "met"],
          [[len(lat), f"{statistics.median(lat):.2f}", f"{p95:.2f}", f"{target:.2f}",
            "yes" if p95 <= target else "no"]])  # fmt: skip


def bench_flops(args) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from video_lstm.inference.predictor import Predictor

    p = Predictor.from_checkpoint(args.checkpoint, device="cpu")
    m, meta = p.model, p.meta
    frames = torch.zeros(meta.clip_len, meta.frame_size, meta.frame_size, 3, dtype=torch.uint8)
    feats = p.features(frames.numpy())  # (L, ...)
    stride = max(1, meta.clip_len // 4)

    def count(fn) -> int:
        with FlopCounterMode(display=False) as fc, torch.inference_mode():
            fn()
        return fc.get_total_flops()

    windowed = count(lambda: m.forward_head(feats[None])) / stride
    rows = [["windows (annotate)", f"{windowed / 1e6:.2f}", "1.00"]]
    if getattr(m, "stateful", False):
        state = m.init_state(1, feats[:1])
        carry = count(lambda: m.step_features(feats[:1], state))
        rows.append(["carry", f"{carry / 1e6:.2f}", f"{carry / windowed:.2f}"])
    cnn = count(lambda: p.features(frames[:1].numpy()))
    rows.append(["(CNN, per sampled frame)", f"{cnn / 1e6:.2f}", "-"])
    table(f"Temporal model + head per sampled frame (clip_len {meta.clip_len}, stride {stride})",
          ["scorer", "MFLOPs", "ratio"], rows)  # fmt: skip


def _child_cpu(code: str) -> float:
    """CPU seconds of a fresh process running ``code`` (imports excluded: measured inside)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def bench_cpu(args, work: Path) -> None:
    video = make_video(work / "noise_360p_60s.mp4", 360, args.cpu_seconds)
    ck = str(Path(args.checkpoint).resolve())
    common = f"import time, torch; torch.set_num_threads({args.threads}); "
    watch_cpu = _child_cpu(common + (
        "from pipelines.watch import watch; c = time.process_time(); "
        f"watch({str(video)!r}, {ck!r}, {str(work / 'cpu_watch')!r}, reconnect_s=0, "
        f"threads={args.threads}, progress=False); print(time.process_time() - c)"))  # fmt: skip
    annotate_cpu = _child_cpu(common + (
        "from video_lstm.inference.annotate import annotate_video; "
        "from video_lstm.inference.settings import AnnotateSettings; c = time.process_time(); "
        f"annotate_video({str(video)!r}, {ck!r}, {str(work / 'cpu_annotate')!r}, "
        f"AnnotateSettings.from_flat(outputs=['json'], threads={args.threads}), progress=False); "
        "print(time.process_time() - c)"))  # fmt: skip
    table(f"CPU per stream ({args.cpu_seconds:.0f} s of 360p, {args.threads} thread(s))",
          ["command", "CPU s", "CPU s per video s", "ratio"],
          [["watch (file replay)", f"{watch_cpu:.1f}", f"{watch_cpu / args.cpu_seconds:.3f}",
            f"{watch_cpu / annotate_cpu:.2f}"],
           ["annotate --outputs [json]", f"{annotate_cpu:.1f}",
            f"{annotate_cpu / args.cpu_seconds:.3f}", "1.00"]])  # fmt: skip


def bench_memory(args, work: Path) -> None:
    import psutil

    clip = make_video(work / "noise_360p_10s.mp4", 360, 10)
    long = work / f"noise_360p_{args.minutes}min.ts"
    if not long.is_file():
        subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-stream_loop",
                        str(int(args.minutes * 6) - 1), "-i", str(clip), "-c", "copy", "-f",
                        "mpegts", str(long)], check=True)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pipelines.cli", "watch", str(long), args.checkpoint,
           str(work / "memory"), "--threads", str(args.threads), "--progress", "false"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    ps = psutil.Process(proc.pid)
    samples = []
    status = work / "memory" / long.stem / "status.json"
    while proc.poll() is None:
        try:
            frames = json.loads(status.read_text())["frames"] if status.is_file() else 0
            samples.append((frames / 25 / 60, ps.memory_info().rss / 2**20))
        except (OSError, ValueError, psutil.Error):
            pass
        time.sleep(1.0)
    rows = []
    for frac in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        at = [r for m, r in samples if m <= frac * args.minutes + 1e-9 and m > 0]
        if at:
            rows.append([f"{frac * args.minutes:.1f}", f"{max(at):.0f}"])
    if samples:
        rows.append(["after the end", f"{max(r for _, r in samples):.0f}"])
    table(f"Peak RSS of one stream over {args.minutes} min of 360p (replayed as fast as it goes)",
          ["stream minutes", "peak RSS MiB so far"], rows)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--videos", default=None, help="held-out videos (latency row)")
    ap.add_argument("--only", default="streams,latency,flops,cpu,memory")
    ap.add_argument("--seconds", type=float, default=15.0, help="per streams run")
    ap.add_argument("--counts", default="1,2,4,8", help="stream counts tried")
    ap.add_argument("--latency_s", type=float, default=0.5)
    ap.add_argument("--cpu_seconds", type=float, default=60.0)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default=None, help="scratch folder (default: a temp folder)")
    args = ap.parse_args()
    args.counts = [int(x) for x in args.counts.split(",")]
    only = set(args.only.split(","))
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_stream_"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"{args.threads} thread(s); peak RSS so far "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")  # fmt: skip
    if "flops" in only:
        bench_flops(args)
    if "cpu" in only:
        bench_cpu(args, work)
    if "latency" in only and args.videos:
        bench_latency(args, work)
    if "streams" in only:
        bench_streams(args, work)
    if "memory" in only:
        bench_memory(args, work)


if __name__ == "__main__":
    main()
