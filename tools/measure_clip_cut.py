"""Frame accuracy of a stream-copy cut (ffmpeg ``-ss -to -c copy``) vs ``io.clips.cut_clip``.

Writes a 25 fps H.264 source with one keyframe every 250 frames whose frames carry their index in
binary blocks, cuts the same spans both ways, and prints how many frames each clip holds and which
source frames they are (packets in the file, and frames PyAV decodes, which honours MP4 edit lists).

    python tools/measure_clip_cut.py
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np

from video_lstm.io.clips import cut_clip
from video_lstm.io.video import VideoWriter

FPS, N, GOP, W, H, BITS, BW = 25, 600, 250, 320, 240, 10, 32


def pattern(i: int) -> np.ndarray:
    frame = np.full((H, W, 3), 128, np.uint8)
    for b in range(BITS):
        frame[:32, b * BW : (b + 1) * BW] = 255 if (i >> b) & 1 else 0
    return frame


def index_of(frame: np.ndarray) -> int:
    return sum(
        1 << b for b in range(BITS) if frame[4:28, b * BW + 4 : (b + 1) * BW - 4].mean() > 128
    )


class Decoded:
    """Source decoded once with PyAV, served through the reader interface cut_clip uses."""

    def __init__(self, path: Path) -> None:
        with av.open(str(path)) as c:
            self.frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
        self.num_frames, self.height, self.width = self.frames.shape[:3]
        self.fps = FPS

    def get_frames(self, indices) -> np.ndarray:
        return self.frames[np.asarray(indices)]


def inspect(path: Path) -> tuple[int, list[int], int]:
    """Packets stored, source indices of the frames PyAV decodes, frame count decord reports."""
    with av.open(str(path)) as c:
        packets = sum(1 for p in c.demux(video=0) if p.size)
    with av.open(str(path)) as c:
        idx = [index_of(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    import decord  # decord ignores MP4 edit lists: it shows what the cut really contains

    return packets, idx, len(decord.VideoReader(str(path)))


def main() -> None:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.mp4"
        with VideoWriter(src, fps=FPS, width=W, height=H, gop=GOP, crf=18) as w:
            for i in range(N):
                w.write(pattern(i))
        reader = Decoded(src)
        print(f"source: {N} frames, {FPS} fps, H.264, GOP {GOP} (keyframes at 0, 250, 500)\n")
        print(
            f"{'span [start,end)':>16} {'want':>5} | {'copy pkts':>9} {'decord':>6} "
            f"{'pyav':>5} {'pyav extra':>11} | {'ours':>5} {'ours first..last':>16}"
        )
        for start, end in [(100, 150), (260, 300), (380, 470), (510, 560)]:
            copy = Path(tmp) / f"copy_{start}.mp4"
            subprocess.run(
                [ffmpeg, "-v", "error", "-y", "-ss", f"{start / FPS:.3f}", "-to",
                 f"{end / FPS:.3f}", "-i", str(src), "-c", "copy", str(copy)],
                check=True,
            )  # fmt: skip
            pk, ci, dn = inspect(copy)
            extra = sorted(set(ci) - set(range(start, end)))
            ours = cut_clip(reader, start, end, Path(tmp) / f"ours_{start}.mp4")
            _, oi, _ = inspect(ours)
            assert oi == list(range(start, end))
            print(
                f"{f'[{start},{end})':>16} {end - start:>5} | {pk:>9} {dn:>6} {len(ci):>5} "
                f"{str(extra):>11} | {len(oi):>5} {f'{oi[0]}..{oi[-1]}':>16}"
            )


if __name__ == "__main__":
    main()
