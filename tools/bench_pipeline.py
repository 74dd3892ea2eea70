"""Benchmark the annotation pipeline against its parts and against the naive per-window approach.

On a generated 360p 30 fps video with the default compact model (untrained weights: speed only)
it measures, in one run (median of ``--repeats`` rounds, each timing every stage once), source
frames per second of:

- decode (model input: every ``frame_interval``-th frame, resized in the decoder, with the
  backend the pipeline picks; decord's time is shown beside it, outside the bound),
- the CNN alone (per sampled frame, on pre-decoded frames),
- full-resolution decode (the writer pass's PyAV decode to yuv420p planes),
- the writers (overlay drawn on the I420 planes + H.264 at the annotated video's preset),
- the window heads (temporal model + head per sliding window; not in the issue's bound, shown
  next to it because end to end pays for it),
- end to end (``annotate_video`` with json/csv/srt/vtt/video outputs),
- the naive approach (decode each window and run the full model on it, as MMAction2's
  long-video demo does) against the shared-feature first pass on the same short video,

then a folder of ``--runner-videos`` short videos annotated by ``video-lstm run``: one runner
with all ``--threads``, against 2 concurrent runners on the same folder with 1 thread each
(total throughput, and from the per-video records: no video done twice), and finally peak RSS
of ``annotate_video`` in fresh subprocesses for a short and a long video, and the engine row:
``run --engine ray`` with 2 single-thread workers against ``--engine local`` (one process,
``--threads``) over ``--engine-videos`` short videos, outputs compared (``--engine-only`` runs
just this row), and the runtime rows: torch against ONNX Runtime (``video-lstm export``) for the
CNN stage (the default compact model and ``--demo-checkpoint``, interleaved rounds), end to end
``annotate`` x real time, and peak RSS of a fresh inference-only process of each (the ONNX one
imports no torch), segments compared (``--runtime-only`` runs just these); its rates are given
per wall second and per CPU second, which a shared machine's load moves far less.

    python tools/bench_pipeline.py                       # 60 s video, 10 min for peak memory
    python tools/bench_pipeline.py --seconds 20 --long-minutes 2 --repeats 1   # quick look
    python tools/bench_pipeline.py --device cuda --height 720   # GPU path, with GPU utilisation
    python tools/bench_pipeline.py --runtime-only --demo-checkpoint demo_output/model.ckpt
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from video_lstm.inference.annotate import annotate_video  # noqa: E402
from video_lstm.inference.predictor import Predictor  # noqa: E402
from video_lstm.inference.scoring import (  # noqa: E402
    pass_backends,
    score_video,
    score_video_naive,
)
from video_lstm.inference.settings import AnnotateSettings  # noqa: E402
from video_lstm.io.decode import open_video  # noqa: E402
from video_lstm.io.overlay import Overlay  # noqa: E402
from video_lstm.io.video import VideoWriter, h264_encoder, write_annotated_video  # noqa: E402
from video_lstm.models import DEFAULT_MODEL, create_model  # noqa: E402
from video_lstm.models.checkpoint import ModelMeta, save_checkpoint  # noqa: E402
from video_lstm.types import Segment  # noqa: E402

CLASSES = ["clap", "jump", "run", "wave", "sit"]
E2E_OUTPUTS = ["json", "csv", "srt", "vtt", "video"]


def make_video(
    path: Path, seconds: float, *, width: int = 640, height: int = 360, fps: int = 30
) -> Path:
    """Moving, colour-changing shapes over a gradient, encoded in chunks (bounded memory)."""
    n = round(seconds * fps)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 90)], -1).astype(
        np.uint8
    )
    with VideoWriter(path, fps=fps, width=width, height=height, preset="ultrafast") as w:
        for lo in range(0, n, 60):
            chunk = np.repeat(base[None], min(60, n - lo), axis=0)
            for j, frame in enumerate(chunk):
                i = lo + j
                x, y = (i * 7) % (width - 80), int((np.sin(i / 15) + 1) * (height - 80) / 2)
                frame[y : y + 80, x : x + 80] = ((i // 90) * 60 % 256, 200, (i * 3) % 256)
            w.write(chunk)
    return path


def loop_video(src: Path, dst: Path, times: int) -> Path:
    """``times`` copies of ``src`` back to back, stream-copied with the ffmpeg binary."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", str(times - 1)]
    subprocess.run([*cmd, "-i", str(src), "-c", "copy", str(dst)], check=True)
    return dst


def make_checkpoint(path: Path, *, clip_len: int, frame_interval: int) -> Path:
    torch.manual_seed(0)
    model = create_model(DEFAULT_MODEL, num_classes=len(CLASSES))
    meta = ModelMeta.for_model(model, CLASSES, clip_len=clip_len, frame_interval=frame_interval)
    return save_checkpoint(path, model, meta)


class GpuUtilisation:
    """Mean GPU utilisation (%) while the block runs, sampled by ``nvidia-smi`` every 200 ms
    (``None`` where there is no ``nvidia-smi``)."""

    def __enter__(self) -> GpuUtilisation:
        import shutil

        self.mean: float | None = None
        self._proc = None
        if shutil.which("nvidia-smi"):
            self._proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 "-lms", "200"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        out, _ = self._proc.communicate()
        values = [float(v) for v in out.split() if v.replace(".", "", 1).isdigit()]
        self.mean = statistics.mean(values) if values else None


def median_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function over ``repeats`` rounds, each round running every
    function once: a slow spell of a shared machine then hits every stage, not just one."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def median_wall_cpu(
    fns: dict[str, Callable[[], object]], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """As :func:`median_times`, with the process's CPU seconds of each call beside the wall
    seconds: on a shared machine wall time counts the other jobs' turns on the cores too, CPU
    time (``time.process_time``, every thread of this process) only this work's."""
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    med = statistics.median
    return {k: med(v) for k, v in wall.items()}, {k: med(v) for k, v in cpu.items()}


def run_runners(
    folder: Path, ckpt: Path, out: Path, threads: list[int], device: str
) -> tuple[float, list[int]]:
    """``video-lstm run`` in one process per entry of ``threads`` (its torch threads), all on
    ``folder`` -> ``out`` at once; returns the wall time and each runner's "done" count."""
    import os
    import re
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    # --threads decides each runner's threads (an inherited OMP_NUM_THREADS would not)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "pipelines.cli", "run", str(folder), str(ckpt), str(out)]
    cmd += ["--outputs", f"[{','.join(E2E_OUTPUTS)}]", "--progress", "false", "--device", device]
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen([*cmd, "--threads", str(t)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for t in threads
    ]  # fmt: skip
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    done = []
    for p, (stdout, stderr) in zip(procs, outs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"runner failed ({p.returncode}): {stderr[-2000:]}")
        done.append(int(re.search(r"^done: (\d+)", stdout, re.M).group(1)))
    return wall, done


def runner_records(out: Path) -> list[dict]:
    """The per-video records of a folder run (``pipelines.jobs``)."""
    return [json.loads(p.read_text()) for p in (out / ".video_lstm" / "records").glob("*.json")]


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux keeps that across execve, so a
    child started by this torch-loaded process reported the parent's size at fork (a child
    that touches 14 MB reported 813 MB under an 800 MB parent)."""
    import re

    status = Path("/proc/self/status")
    if status.is_file():
        m = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
        if m:
            return int(m.group(1)) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_child(video: str, checkpoint: str, out: str) -> None:
    """Subprocess body: annotate, print peak RSS in MiB as JSON."""
    t0 = time.perf_counter()
    settings = AnnotateSettings.from_flat(
        outputs=E2E_OUTPUTS, device="cpu", threads=torch.get_num_threads()
    )
    result = annotate_video(video, checkpoint, out, settings, progress=False)
    peak = peak_rss_mib()
    print(
        json.dumps(
            {"peak_rss_mib": peak, "frames": result.info.num_frames, "s": time.perf_counter() - t0}
        )
    )


def _segments(out: Path) -> dict[str, object]:
    """Every result JSON's segments under ``out``, by relative path."""
    return {
        p.relative_to(out).as_posix(): json.loads(p.read_text())["segments"]
        for p in sorted(out.rglob("*.json"))
        if ".video_lstm" not in p.parts and p.name != "manifest.json"
    }


def engine_row(work: Path, ckpt: Path, *, videos: int, seconds: float, threads: int) -> None:
    """``--engine ray`` (2 workers x 1 thread) against ``--engine local`` (1 process x
    ``threads``, and x 1 thread: on a busy machine extra threads can cost more than they
    give) on the same folder, in this run: wall time, frames/s, Ray's start-up apart; the
    ratio is against the faster local run."""
    import shutil

    try:
        import ray
    except ImportError:
        print("\nengine row skipped: pip install 'video_lstm[ray]'")
        return
    from pipelines.batch import run_folder

    folder, fps = work / "engine_videos", 30
    for i in range(videos):
        if not (folder / f"v{i:02d}.mp4").exists():
            make_video(folder / f"v{i:02d}.mp4", seconds, fps=fps)
    frames = videos * round(seconds * fps)

    def run(engine: str, per_worker: int = 1, **kw: object) -> float:
        out = work / f"engine_{engine}_{per_worker}"
        shutil.rmtree(out, ignore_errors=True)
        settings = AnnotateSettings.from_flat(outputs=E2E_OUTPUTS, device="cpu", threads=per_worker)
        t0 = time.perf_counter()
        summary = run_folder(
            str(folder), str(ckpt), str(out), settings, progress=False, engine=engine, **kw
        )
        assert len(summary.done) == videos, summary.format()
        return time.perf_counter() - t0

    t_local = run("local", threads)
    t_local1 = run("local", 1) if threads > 1 else t_local
    t0 = time.perf_counter()
    ray.init(num_cpus=threads, include_dashboard=False, configure_logging=False)
    t_init = time.perf_counter() - t0
    try:
        t_ray = run("ray", workers=2)
    finally:
        ray.shutdown()
    same = _segments(work / f"engine_local_{threads}") == _segments(work / "engine_ray_1")
    print(
        f"\nengines: {videos} videos x {seconds:g} s ({frames} frames), {E2E_OUTPUTS}; "
        f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'engine':<34}{'wall s':>10}{'frames/s':>10}{'x real time':>13}")
    rows = [
        (f"local (1 process x {threads} threads)", t_local),
        ("local (1 process x 1 thread)", t_local1),
        ("ray (2 workers x 1 thread)", t_ray),
        ("ray incl. starting a local Ray", t_ray + t_init),
    ]
    for name, t in rows:
        print(f"{name:<34}{t:>10.1f}{frames / t:>10.1f}{frames / t / fps:>13.1f}")
    best = min(t_local, t_local1)
    print(f"  ray / faster local = {best / t_ray:.2f}  (target >= 0.85; Ray already up)")
    print(f"  with ray.init ({t_init:.1f} s) = {best / (t_ray + t_init):.2f}")
    print(f"  outputs identical (segments of every video): {same}")


# A fresh process that annotates with one runtime and reports its peak RSS; it imports only
# what that runtime imports (the ONNX one no torch), so the figure is that of a deployment.
# Peak RSS is VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child of this
# (torch-loaded, ~1.4 GB) process would report the parent's size at fork.
_RSS_CODE = """
import json, re, sys, time
from pathlib import Path
from video_lstm.inference.annotate import annotate_video
from video_lstm.inference.settings import AnnotateSettings
video, model, out, runtime, threads, outputs = sys.argv[1:]
t0 = time.perf_counter()
settings = AnnotateSettings.from_flat(outputs=outputs.split(","), device="cpu",
                                      threads=int(threads), runtime=runtime)
result = annotate_video(video, model, out, settings, progress=False)
hwm = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())
print(json.dumps({"peak_rss_mib": int(hwm.group(1)) / 1024,
                  "frames": result.info.num_frames, "s": time.perf_counter() - t0,
                  "torch": "torch" in sys.modules}))
"""


def runtime_rows(work: Path, video: Path, ckpt: Path, demo: Path | None, args: Any) -> None:
    """torch against ONNX Runtime in this run: CNN frames/s (compact model, and the demo model
    when given, fp32 and, calibrated on the demo's val videos, int8), end to end x real time,
    peak RSS of a fresh process each; same threads.

    Each figure twice: per wall second and per CPU second of this process (every thread), as
    the median of interleaved rounds; on a loaded machine only the CPU-time ratio holds from
    run to run (end to end counts this process's CPU, not a child's). The CNN stage runs the
    same frames through each runtime's ``features()`` (preprocessing included) at its own CPU
    frame batch (torch 8, ONNX Runtime 4) and at 16 frames a call on both; the last column is
    ONNX Runtime's CPU-time ratio to torch eager on the checkpoint's model as it loads
    (BatchNorm unfolded, NCHW: the torch a plain ``torch.onnx.export`` is usually timed
    against), where the torch column is the torch runtime (BatchNorm folded, channels-last).
    ONNX Runtime's threads do not spin (their spinning would count as CPU time).
    """
    try:
        from video_lstm.inference.export import ExportError, export_onnx
        from video_lstm.inference.runtime.ort import OnnxPredictor
    except ImportError:
        print("\nruntime rows skipped: pip install 'video_lstm[onnx]'")
        return
    threads, fps = args.threads, 30
    models: dict[str, tuple[Path, str, Path | None]] = {"compact (untrained)": (ckpt, "fp32", None)}
    if demo is not None:
        models["demo model"] = (demo, "fp32", None)
        val = demo.parent / "data" / "videos" / "val"
        if val.is_dir():
            models["demo model, int8 encoder"] = (demo, "int8", val)
    print(
        f"\nruntimes: torch {torch.__version__} against onnxruntime "
        f"{__import__('onnxruntime').__version__} (CPU provider, no spinning), {threads} threads "
        f"each; 1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'CNN stage':<36}{'frames/s (wall)':>27}{'frames per CPU-second':>27}{'x eager':>9}")
    print(f"{'':<36}{'torch':>9}{'onnx':>9}{'ratio':>9}{'torch':>9}{'onnx':>9}{'ratio':>9}"
          f"{'(CPU)':>9}")  # fmt: skip
    exported: dict[str, Path] = {}
    for name, (path, precision, calibration) in models.items():
        onnx_path = work / f"{Path(path).stem}_{abs(hash(name)) % 10**6}.onnx"
        try:
            export_onnx(path, onnx_path, precision=precision, calibration=calibration)
        except ExportError as exc:
            print(f"{name:<36}export refused: {exc}")
            continue
        exported[name] = onnx_path
        tp = Predictor.from_checkpoint(path, device="cpu")
        op = OnnxPredictor(onnx_path, device="cpu", threads=threads, allow_spinning=False)
        tp16 = Predictor.from_checkpoint(path, device="cpu", frame_batch=16)
        op16 = OnnxPredictor(
            onnx_path, device="cpu", threads=threads, frame_batch=16, allow_spinning=False
        )
        eager = plain_model(path)
        size = tp.meta.decode_size or tp.meta.frame_size
        with open_video(video, size=size, backend="pyav") as r:
            k = tp.meta.frame_interval  # 64 sampled frames (fewer in a short video)
            frames = r.get_frames(np.arange(0, min(64 * k, r.num_frames), k))
        wall, cpu = median_wall_cpu(
            {
                "torch": lambda tp=tp, f=frames: tp.features(f),
                "onnx": lambda op=op, f=frames: op.features(f),
                "torch16": lambda tp=tp16, f=frames: tp.features(f),
                "onnx16": lambda op=op16, f=frames: op.features(f),
                "eager": lambda tp=tp, m=eager, f=frames: plain_features(m, tp, f, tp.frame_batch),
            },
            max(3, args.repeats),
        )
        n = len(frames)
        for label, t, o in (
            (f"{name} ({size} px)", "torch", "onnx"),
            ("  16 frames a call on both", "torch16", "onnx16"),
        ):
            print(f"{label:<36}{n / wall[t]:>9.0f}{n / wall[o]:>9.0f}{wall[t] / wall[o]:>9.2f}"
                  f"{n / cpu[t]:>9.0f}{n / cpu[o]:>9.0f}{cpu[t] / cpu[o]:>9.2f}"
                  f"{cpu['eager'] / cpu[o]:>9.2f}")  # fmt: skip
    print(f"  each runtime at its CPU frame batch (torch {tp.frame_batch}, ONNX Runtime "
          f"{op.frame_batch}) unless stated; x eager: torch eager at torch's batch")  # fmt: skip

    n = round(args.seconds * fps)
    tp = Predictor.from_checkpoint(ckpt, device="cpu")
    op = OnnxPredictor(
        exported["compact (untrained)"], device="cpu", threads=threads, allow_spinning=False
    )

    def e2e(pred: Any, runtime: str) -> None:
        settings = AnnotateSettings.from_flat(
            outputs=E2E_OUTPUTS, threads=threads, runtime=runtime, device="cpu"
        )
        annotate_video(str(video), pred, str(work / f"e2e_{runtime}"), settings, progress=False)

    wall, cpu = median_wall_cpu(
        {"torch": lambda: e2e(tp, "torch"), "onnx": lambda: e2e(op, "onnx")}, args.repeats
    )
    same = _segments(work / "e2e_torch") == _segments(work / "e2e_onnx")
    print(f"{'end to end, x real time':<36}{n / wall['torch'] / fps:>9.1f}"
          f"{n / wall['onnx'] / fps:>9.1f}{wall['torch'] / wall['onnx']:>9.2f}"
          f"{n / cpu['torch'] / fps:>9.1f}{n / cpu['onnx'] / fps:>9.1f}"
          f"{cpu['torch'] / cpu['onnx']:>9.2f}")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rss = {}
    for runtime, model in (("torch", ckpt), ("onnx", exported["compact (untrained)"])):
        out = subprocess.run(
            [sys.executable, "-c", _RSS_CODE, str(video), str(model), str(work / f"rss_{runtime}"),
             runtime, str(threads), ",".join(E2E_OUTPUTS)],
            check=True, capture_output=True, text=True, env=env,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        rss[runtime] = json.loads(out)
    a, b = rss["torch"]["peak_rss_mib"], rss["onnx"]["peak_rss_mib"]
    print(f"{'peak RSS, fresh process (MiB)':<36}{a:>9.0f}{b:>9.0f}{b / a:>9.2f}")
    print(f"  {n} frames ({args.seconds:g} s at {fps} fps), outputs {E2E_OUTPUTS}; segments "
          f"identical: {same}; the ONNX process imported torch: {rss['onnx']['torch']}")  # fmt: skip


def plain_model(checkpoint: Path) -> torch.nn.Module:
    """The checkpoint's model in eval mode as it loads: BatchNorm unfolded, NCHW."""
    from video_lstm.models.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint)[0].eval()


@torch.inference_mode()
def plain_features(model: torch.nn.Module, pred: Predictor, frames: np.ndarray, batch: int) -> None:
    """``pred.features`` with ``model`` (the same preprocessing and calls, no tuning)."""
    for lo in range(0, len(frames), batch):
        model.forward_features(pred.preprocess(frames[lo : lo + batch])[None])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the main test video")
    ap.add_argument(
        "--naive-seconds", type=float, default=10.0, help="video length for the naive comparison"
    )
    ap.add_argument(
        "--long-minutes", type=float, default=10.0, help="long video for peak memory (0 = skip)"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (cores)")
    ap.add_argument("--clip-len", type=int, default=16)
    ap.add_argument("--frame-interval", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the GPU path: autocast, NVENC)")
    ap.add_argument("--height", type=int, default=360, help="main video height (16:9)")
    ap.add_argument("--engine-videos", type=int, default=20, help="engine row (0 = skip)")
    ap.add_argument("--engine-seconds", type=float, default=10.0, help="length of each")
    ap.add_argument("--engine-only", action="store_true", help="run only the engine row")
    ap.add_argument("--runtime-only", action="store_true", help="run only the runtime rows")
    ap.add_argument(
        "--demo-checkpoint",
        type=Path,
        default=ROOT / "demo_output" / "model.ckpt",
        help="the demo's model for the runtime rows' CNN row (skipped where it is missing)",
    )
    ap.add_argument(
        "--runner-videos",
        type=int,
        default=8,
        help="videos (of --naive-seconds) in the 1 vs 2 concurrent runners comparison (0 = skip)",
    )
    ap.add_argument(
        "--rss-child", nargs=3, metavar=("VIDEO", "CKPT", "OUT"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.rss_child:
        rss_child(*args.rss_child)
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    work.mkdir(parents=True, exist_ok=True)
    fps = 30
    video = work / "main.mp4"
    if not video.exists():
        width = round(args.height * 16 / 9 / 2) * 2
        make_video(video, args.seconds, fps=fps, width=width, height=args.height)
    short = work / "naive.mp4"
    if not short.exists():
        make_video(short, args.naive_seconds, fps=fps)
    ckpt = make_checkpoint(
        work / "model.pt", clip_len=args.clip_len, frame_interval=args.frame_interval
    )
    demo = args.demo_checkpoint if args.demo_checkpoint.is_file() else None
    if args.runtime_only:
        runtime_rows(work, video, ckpt, demo, args)
        return
    if args.engine_only:
        engine_row(
            work, ckpt, videos=args.engine_videos, seconds=args.engine_seconds, threads=args.threads
        )
        return
    pred = Predictor.from_checkpoint(ckpt, device=args.device)
    codec = h264_encoder("auto", str(pred.device))  # NVENC on a GPU where it opens
    meta = pred.meta
    interval, size = meta.frame_interval, meta.frame_size
    stride = max(1, meta.clip_len // 4)
    with open_video(video, backend="pyav") as r:
        n, width, height = r.num_frames, r.width, r.height
        full_chunk = r.get_frames(np.arange(64), pixel_format="yuv420p")  # what the writer gets
    model_backend = pass_backends("auto", pred.device)[0]
    with open_video(video, size=size, backend=model_backend) as r:
        small_chunk = r.get_frames(np.arange(0, 64 * interval, interval))
        model_backend = r.backend
    print(
        f"video {width}x{height} {fps} fps, {n} frames ({n / fps:.0f} s); model {DEFAULT_MODEL} "
        f"input {size}, clip_len {meta.clip_len}, interval {interval}, stride {stride}; "
        f"{torch.get_num_threads()} threads; CNN batch {pred.frame_batch}; model-input decoder "
        f"{model_backend}; device {pred.device} ({pred.plan.precision}); encoder {codec}"
    )

    # The decoders get the run's thread count, as in annotate_video (settings.runtime.threads).
    def decode_model_input(backend: str = model_backend) -> None:
        with open_video(video, size=size, backend=backend, num_threads=args.threads) as r:
            for _ in r.iter_chunks(64, step=interval):
                pass

    def decode_nvdec() -> None:  # model input through PyAV on NVDEC (CPU if it does not open)
        with open_video(video, size=size, hwaccel="cuda") as r:
            for _ in r.iter_chunks(64, step=interval):
                pass

    def decode_full() -> None:  # the writer pass: PyAV, the decoder's yuv420p planes
        with open_video(video, backend="pyav", num_threads=args.threads) as r:
            for _ in r.iter_chunks(64, pixel_format="yuv420p"):
                pass

    def cnn() -> None:
        for _ in range(0, -(-n // interval), len(small_chunk)):
            pred.features(small_chunk)

    overlay = Overlay(
        CLASSES,
        num_frames=n,
        width=width,
        height=height,
        segments=[Segment(0, n // 2, "jump", 0.9, 0.0, n / 2 / fps)],
    )

    preset = inspect.signature(write_annotated_video).parameters["preset"].default

    def write() -> None:  # as write_annotated_video: overlay on I420 planes, x264 at its preset
        labels, scores = np.ones(64, dtype=np.int64), np.full(64, 0.9)
        with VideoWriter(
            work / "write.mp4", fps=fps, width=width, height=height, preset=preset, codec=codec
        ) as w:
            for lo in range(0, n, 64):
                k = min(64, n - lo)
                w.write_i420(overlay.draw_i420(full_chunk[:k].copy(), lo, labels[:k], scores[:k]))

    # Temporal model + head on every sliding window (outside the serial bound's three stages).
    feats = pred.features(small_chunk)  # (64, ...)
    num_windows = max(1, (-(-n // interval) - meta.clip_len) // stride + 1)
    window_feats = torch.stack(
        [feats[s % (len(feats) - meta.clip_len + 1) :][: meta.clip_len] for s in range(64)]
    )  # (64, L, ...)

    def heads() -> None:
        for lo in range(0, num_windows, len(window_feats)):
            pred.score_windows(window_feats[: min(len(window_feats), num_windows - lo)])

    def e2e() -> None:
        settings = AnnotateSettings.from_flat(outputs=E2E_OUTPUTS, threads=args.threads)
        with gpu:
            annotate_video(str(video), pred, str(work / "e2e"), settings, progress=False)

    gpu = GpuUtilisation()

    other = "decord" if model_backend == "pyav" else "pyav"
    t = median_times(
        {
            f"decode (model input, {model_backend})": decode_model_input,
            "decode (full res, PyAV)": decode_full,
            "CNN features": cnn,
            "writers (overlay+H.264)": write,
            "heads": heads,
            "e2e": e2e,
            "other decoder": lambda: decode_model_input(other),
            **({"nvdec": decode_nvdec} if pred.device.type == "cuda" else {}),
        },
        args.repeats,
    )
    t_heads, t_e2e, t_other = t.pop("heads"), t.pop("e2e"), t.pop("other decoder")
    t_nvdec = t.pop("nvdec", None)
    rate = {k: n / v for k, v in t.items()}
    bound = 1 / sum(1 / r for r in rate.values())
    bound_heads = 1 / (1 / bound + t_heads / n)

    with open_video(short, size=size, backend=model_backend, num_threads=args.threads) as r:
        n_short = r.num_frames
        first = median_times(
            {
                "shared": lambda: score_video(pred, r, stride=stride),  # the pipeline's default
                "worker": lambda: score_video(pred, r, stride=stride, prefetch=2),
                "naive": lambda: score_video_naive(pred, r, stride=stride),
            },
            args.repeats,
        )

    print(f"\n{'stage':<34}{'frames/s':>10}{'x real time':>13}")
    for k, r in rate.items():
        print(f"{k:<34}{r:>10.1f}{r / fps:>13.1f}")
    print(
        f"{'  decode with ' + other + ' (not in bound)':<34}{n / t_other:>10.1f}{n / t_other / fps:>13.1f}"
    )
    if t_nvdec is not None:
        print(
            f"{'  decode with NVDEC (not in bound)':<34}{n / t_nvdec:>10.1f}{n / t_nvdec / fps:>13.1f}"
        )
    print(f"{'serial bound 1/sum(1/x)':<34}{bound:>10.1f}{bound / fps:>13.1f}")
    print(f"{'window heads (' + str(num_windows) + ' windows)':<34}{n / t_heads:>10.1f}")
    print(f"{'serial bound with the heads':<34}{bound_heads:>10.1f}{bound_heads / fps:>13.1f}")
    print(f"{'end to end (annotate_video)':<34}{n / t_e2e:>10.1f}{n / t_e2e / fps:>13.1f}")
    print(f"  end to end / serial bound = {n / t_e2e / bound:.2f}  (target >= 0.8)")
    if pred.device.type == "cuda":
        util = "n/a (no nvidia-smi)" if gpu.mean is None else f"{gpu.mean:.0f}%"
        print(f"  GPU utilisation during end to end (last round): {util}")
    print(f"  end to end / bound with heads = {n / t_e2e / bound_heads:.2f}")
    print(f"\nfirst pass on {n_short} frames:")
    print(f"{'naive (full model per window)':<34}{n_short / first['naive']:>10.1f}")
    print(f"{'shared features (as the pipeline)':<34}{n_short / first['shared']:>10.1f}")
    print(f"{'shared, decode in a worker process':<34}{n_short / first['worker']:>10.1f}")
    target = 0.8 * meta.clip_len / stride
    ratio = first["naive"] / first["shared"]
    print(f"  shared / naive = {ratio:.2f}  (target >= 0.8 x window/stride = {target:.1f})")
    print(f"  decode worker / pipeline default = {first['shared'] / first['worker']:.2f}")

    if args.runner_videos > 0:
        import os

        folder = work / "runners_in"
        folder.mkdir(exist_ok=True)
        for i in range(args.runner_videos):
            copy = folder / f"v{i:03d}.mp4"
            if not copy.exists():
                os.link(short, copy)
        total = args.runner_videos * n_short
        configs = {
            f"1 runner ({args.threads} threads)": [args.threads],
            "2 concurrent runners (1 thread each)": [1, 1],
        }
        walls: dict[str, list[float]] = {k: [] for k in configs}
        twice = 0
        for _ in range(args.repeats):  # rounds, each running both: a slow spell hits both
            for k, threads in configs.items():
                out = work / f"runners_out_{len(threads)}"
                wall, done = run_runners(folder, ckpt, out, threads, args.device)
                walls[k].append(wall)
                recs = runner_records(out)
                ok = [r for r in recs if r["status"] == "done"]
                if len({r["video"] for r in ok}) != args.runner_videos:
                    raise RuntimeError(f"{k}: {len(ok)} of {args.runner_videos} videos done")
                twice += sum(done) - args.runner_videos  # each runner counts what it did
        wall = {k: statistics.median(v) for k, v in walls.items()}
        print(
            f"\nfolder of {args.runner_videos} x {args.naive_seconds:.0f} s videos ({total} frames), "
            f"video-lstm run, process start and model load included:"
        )
        print(f"{'runners':<38}{'wall s':>8}{'frames/s':>10}{'x real time':>13}")
        for k, t in wall.items():
            print(f"{k:<38}{t:>8.1f}{total / t:>10.1f}{total / t / fps:>13.1f}")
        one, two = wall.values()
        print(
            f"  2 runners / 1 runner throughput = {one / two:.2f}  (target >= 0.9); "
            f"videos done twice: {twice} (from the per-video records)"
        )

    if args.long_minutes > 0:
        long = work / "long.mp4"
        if not long.exists():
            loop_video(video, long, max(1, round(args.long_minutes * 60 / (n / fps))))
        print(f"\n{'peak RSS (fresh process)':<34}{'frames':>10}{'MiB':>10}{'frames/s':>10}")
        for v in (video, long):
            out = subprocess.run(
                [sys.executable, __file__, "--threads", str(args.threads), "--rss-child",
                 str(v), str(ckpt), str(work / f"rss_{v.stem}")],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]  # fmt: skip
            res = json.loads(out)
            print(
                f"{v.name:<34}{res['frames']:>10}{res['peak_rss_mib']:>10.0f}{res['frames'] / res['s']:>10.1f}"
            )
    if args.engine_videos > 0:
        engine_row(
            work, ckpt, videos=args.engine_videos, seconds=args.engine_seconds, threads=args.threads
        )
    runtime_rows(work, video, ckpt, demo, args)
    print(f"\nfiles in {work}")


if __name__ == "__main__":
    main()
