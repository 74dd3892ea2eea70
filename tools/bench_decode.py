"""Decode benchmark: video_lstm's reader against raw decord, PyAV, OpenCV and the ffmpeg CLI.

Makes 360p and 720p 30 fps H.264 test videos (GOP 250, moving texture plus noise), cached in
``--workdir``, and prints one table per resolution (median of ``--runs`` runs):

* ``stream``: every frame, full size, in order.
* ``stream@224`` / ``stream@112``: every frame resized so the short side is 224 / 112.
* ``clips16``: ``--clips`` clips of 16 consecutive frames at random starts; each clip opens the
  file, reads the clip and closes it, as a training dataset's ``__getitem__`` does.

Raw decord is measured as people call it (``get_batch`` over chunks of 64 indices) and, for
streaming, through ``next()`` (``decord-next``), its fastest sequential path.

Ratios: ``vs ffmpeg`` against the ffmpeg command line decoding to rgb24 into a pipe that this
script reads and discards (the practical limit), ``vs decord`` against raw decord.

Usage:
    python tools/bench_decode.py [--quick] [--workdir DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import decord
import imageio_ffmpeg
import numpy as np

from video_lstm.io.decode import open_video, output_size
from video_lstm.io.video import VideoWriter

CHUNK = 64
CLIP_LEN = 16


def make_video(path: Path, width: int, height: int, seconds: float, fps: int = 30) -> Path:
    """A GOP-250 H.264 file with a moving texture and per-frame noise (not trivially coded)."""
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height * 2, width * 2, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(texture, (0, 0), 6)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
    n = round(seconds * fps)
    with VideoWriter(
        path, fps=fps, width=width, height=height, crf=23, preset="veryfast", gop=250
    ) as w:
        for i in range(n):
            x = int((width / 2) * (1 + np.sin(i / 40)))
            y = int((height / 2) * (1 + np.cos(i / 55)))
            frame = texture[y : y + height, x : x + width].astype(np.int16)
            frame += rng.integers(-12, 13, frame.shape, dtype=np.int16)
            box = (i * 7) % (width - 64)
            frame[height // 3 : height // 3 + 64, box : box + 64] = (255, 40, 40)
            w.write(np.clip(frame, 0, 255).astype(np.uint8))
    return path


# ------------------------------------------------------------------------------ methods


def ours_stream(path: Path, size: int | None) -> int:
    n = 0
    with open_video(path, size=size) as r:
        for _, frames in r.iter_chunks(CHUNK):
            n += len(frames)
    return n


def decord_stream(path: Path, size: int | None) -> int:
    kw = {}
    if size is not None:
        with av.open(str(path)) as c:
            cc = c.streams.video[0].codec_context
            kw["width"], kw["height"] = output_size(cc.width, cc.height, size)
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=0, **kw)
    n = 0
    for start in range(0, len(vr), CHUNK):
        n += len(vr.get_batch(list(range(start, min(start + CHUNK, len(vr))))).asnumpy())
    return n


def decord_next_stream(path: Path, size: int | None) -> int:
    """decord's fastest sequential path: ``next()`` frame by frame (no get_batch)."""
    kw = {}
    if size is not None:
        with av.open(str(path)) as c:
            cc = c.streams.video[0].codec_context
            kw["width"], kw["height"] = output_size(cc.width, cc.height, size)
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=0, **kw)
    for _ in range(len(vr)):
        vr.next().asnumpy()
    return len(vr)


def pyav_stream(path: Path, size: int | None) -> int:
    n = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        kw = {}
        if size is not None:
            w, h = output_size(s.codec_context.width, s.codec_context.height, size)
            kw = {"width": w, "height": h, "interpolation": "BILINEAR"}
        for frame in c.decode(s):
            frame.to_ndarray(format="rgb24", **kw)
            n += 1
    return n


def opencv_stream(path: Path, size: int | None) -> int:
    cap = cv2.VideoCapture(str(path))
    wh = None
    if size is not None:
        wh = output_size(
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), size
        )
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if wh is not None:
            frame = cv2.resize(frame, wh, interpolation=cv2.INTER_LINEAR)
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    return n


def _ffmpeg_frames(
    path: Path,
    width: int,
    height: int,
    scale: tuple[int, int] | None,
    extra: list[str],
    out_opts: tuple[str, ...] = (),
) -> int:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", *extra, "-i", str(path), *out_opts]
    if scale is not None:
        cmd += ["-vf", f"scale={scale[0]}:{scale[1]}:flags=bilinear"]
        width, height = scale
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    frame_bytes = width * height * 3
    n = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=0) as p:
        assert p.stdout is not None
        while True:
            buf = p.stdout.read(frame_bytes * 16)  # read and discard
            if not buf:
                break
            n += len(buf)
    return n // frame_bytes


def ffmpeg_stream(path: Path, size: int | None, wh: tuple[int, int]) -> int:
    scale = output_size(*wh, size) if size is not None else None
    return _ffmpeg_frames(path, *wh, scale, ["-threads", "0"])


def ours_clips(path: Path, starts: list[int]) -> int:
    for s in starts:
        with open_video(path) as r:
            r.get_frames(np.arange(s, s + CLIP_LEN))
    return len(starts)


def decord_clips(path: Path, starts: list[int]) -> int:
    for s in starts:
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=0)
        vr.get_batch(list(range(s, s + CLIP_LEN))).asnumpy()
        del vr
    return len(starts)


def pyav_clips(path: Path, starts: list[int], fps: float) -> int:
    for s in starts:
        with av.open(str(path)) as c:
            st = c.streams.video[0]
            st.thread_type = "AUTO"
            # Seek to the keyframe before the clip, decode forward to the wanted pts.
            target = int(round(s / fps / st.time_base))
            c.seek(target, stream=st, backward=True)
            got = 0
            for frame in c.decode(st):
                if frame.pts < target:
                    continue
                frame.to_ndarray(format="rgb24")
                got += 1
                if got == CLIP_LEN:
                    break
    return len(starts)


def opencv_clips(path: Path, starts: list[int]) -> int:
    for s in starts:
        cap = cv2.VideoCapture(str(path))
        cap.set(cv2.CAP_PROP_POS_FRAMES, s)
        for _ in range(CLIP_LEN):
            ok, frame = cap.read()
            cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        cap.release()
    return len(starts)


def ffmpeg_clips(path: Path, starts: list[int], fps: float, wh: tuple[int, int]) -> int:
    for s in starts:
        # -ss before -i: seek to the keyframe, then decode and drop up to the exact time.
        _ffmpeg_frames(path, *wh, None, ["-ss", f"{s / fps:.6f}"], ("-frames:v", str(CLIP_LEN)))
    return len(starts)


# ------------------------------------------------------------------------------ runner


def measure(methods: dict[str, Callable[[], int]], runs: int) -> dict[str, float]:
    """Median items per second of each method over ``runs`` rounds (after one warm-up).

    Methods take turns within each round, so a load change on the machine hits all of them
    alike rather than one method's whole series.
    """
    rates: dict[str, list[float]] = {name: [] for name in methods}
    for fn in methods.values():
        fn()
    for _ in range(runs):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            n = fn()
            rates[name].append(n / (time.perf_counter() - t0))
    return {name: statistics.median(r) for name, r in rates.items()}


def bench_file(path: Path, runs: int, clips: int) -> None:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        wh = (s.codec_context.width, s.codec_context.height)
        fps = float(s.average_rate)
    with open_video(path) as r:
        n = r.num_frames
    rng = np.random.default_rng(0)
    starts = sorted(rng.integers(0, n - CLIP_LEN, clips).tolist())
    rng.shuffle(starts)

    rows: list[tuple[str, str, float, str]] = []
    for size in (None, 224, 112):
        case = "stream" if size is None else f"stream@{size}"
        methods = {
            "video_lstm": lambda size=size: ours_stream(path, size),
            "decord": lambda size=size: decord_stream(path, size),
            "decord-next": lambda size=size: decord_next_stream(path, size),
            "pyav": lambda size=size: pyav_stream(path, size),
            "opencv": lambda size=size: opencv_stream(path, size),
            "ffmpeg-cli": lambda size=size: ffmpeg_stream(path, size, wh),
        }
        for name, rate in measure(methods, runs).items():
            rows.append((case, name, rate, "frames/s"))
    clip_methods = {
        "video_lstm": lambda: ours_clips(path, starts),
        "decord": lambda: decord_clips(path, starts),
        "pyav": lambda: pyav_clips(path, starts, fps),
        "opencv": lambda: opencv_clips(path, starts),
        "ffmpeg-cli": lambda: ffmpeg_clips(path, starts, fps, wh),
    }
    for name, rate in measure(clip_methods, runs).items():
        rows.append(("clips16", name, rate, "clips/s"))

    ref = {(case, name): rate for case, name, rate, _ in rows}
    print(f"\n{path.name}: {wh[0]}x{wh[1]}, {n} frames, {fps:g} fps, GOP 250")
    print(f"{'case':<12} {'method':<11} {'rate':>10} {'unit':<9} {'vs ffmpeg':>9} {'vs decord':>9}")
    for case, name, rate, unit in rows:
        r_ff = rate / ref[(case, "ffmpeg-cli")]
        r_dc = rate / ref[(case, "decord")]
        print(f"{case:<12} {name:<11} {rate:>10.1f} {unit:<9} {r_ff:>8.2f}x {r_dc:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s videos, 1 run, 8 clips")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_decode"
    )
    parser.add_argument("--runs", type=int, default=None, help="timed runs per cell (median)")
    parser.add_argument("--clips", type=int, default=None, help="clips per clip-sampling run")
    args = parser.parse_args()
    seconds = 4.0 if args.quick else 10.0
    runs = args.runs or (1 if args.quick else 5)
    clips = args.clips or (8 if args.quick else 20)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        "threads: video_lstm num_threads=0, decord num_threads=0, PyAV thread_type=AUTO, "
        "OpenCV default, ffmpeg -threads 0 (all auto) on "
        f"{__import__('os').cpu_count()} cores; ffmpeg CLI = rgb24 to a pipe, read and discarded; "
        f"OpenCV includes BGR->RGB; resize = bilinear; median of {runs} run(s)"
    )
    for width, height in ((640, 360), (1280, 720)):
        path = make_video(
            args.workdir / f"bench_{height}p_{int(seconds)}s.mp4", width, height, seconds
        )
        bench_file(path, runs, clips)


if __name__ == "__main__":
    main()
