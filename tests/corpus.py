"""A real-world video corpus, written by the tests themselves with PyAV and the ffmpeg binary.

The kinds of files people actually have, which decoders get wrong: AVIs with B-frames (MPEG-4
ASP and H.264), stream-copy cuts whose MP4 edit list discards packets, phone-style files
(display rotation, edit lists, negative start), VP9 realtime WebM, 10-bit, odd sizes, Theora,
MPEG-TS, and damaged variants. Every file is small (96 x 64, about 3 s) so the whole corpus is
built in a few seconds, once per test session (the ``real_corpus`` fixture in conftest.py).

Frames are :func:`corpus_frame` images: a 4 x 2 grid of coloured blocks encoding the frame
index (light block = bit 1, dark = 0) with a colour gradient inside every block, so that frame
identity survives any codec and resize (:func:`corpus_index`) and the colour conversion is
exercised (saturated hues, gradients).

The reference for every file is FFmpeg's own decode (:func:`ffmpeg_frames`): ``ffmpeg -i F
-map 0:v:0 -f rawvideo -pix_fmt rgb24 -fps_mode passthrough -``, which is what
``ffmpeg -i F -map 0:v -f null -`` counts (edit lists honoured, discarded packets not output,
display rotation applied by autorotate).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
CORPUS_FPS = 25
CORPUS_FRAMES = 75  # 3 s
CORPUS_WIDTH, CORPUS_HEIGHT = 96, 64

# Light (bit 1) and dark (bit 0) colour of each block: distinct saturated hues.
_LIGHT = np.array(
    [
        (255, 230, 60),
        (90, 240, 255),
        (255, 140, 230),
        (170, 255, 110),
        (255, 190, 120),
        (200, 170, 255),
        (240, 240, 240),
        (130, 255, 200),
    ],
    dtype=np.float32,
)
_DARK = np.array(
    [
        (20, 30, 120),
        (120, 20, 30),
        (10, 90, 30),
        (70, 10, 90),
        (0, 60, 80),
        (90, 60, 0),
        (25, 25, 25),
        (100, 0, 60),
    ],
    dtype=np.float32,
)


def corpus_frame(index: int, width: int = CORPUS_WIDTH, height: int = CORPUS_HEIGHT) -> np.ndarray:
    """Frame ``index`` (0..255): 4 x 2 coloured blocks, bit ``b`` of the index in block ``b``.

    Returns:
        ``(height, width, 3)`` uint8 RGB.
    """
    frame = np.empty((height, width, 3), dtype=np.float32)
    for bit in range(8):
        r, c = divmod(bit, 4)
        y0, y1 = r * height // 2, (r + 1) * height // 2
        x0, x1 = c * width // 4, (c + 1) * width // 4
        base = _LIGHT[bit] if (index >> bit) & 1 else _DARK[bit]
        # A gentle diagonal gradient (+-20 levels) inside the block.
        yy, xx = np.mgrid[0 : y1 - y0, 0 : x1 - x0]
        ramp = (yy / max(1, y1 - y0 - 1) + xx / max(1, x1 - x0 - 1) - 1.0) * 20.0
        frame[y0:y1, x0:x1] = base + ramp[..., None] * np.array([1.0, -0.5, 0.7])
    return np.clip(frame, 0, 255).astype(np.uint8)


def corpus_index(frame: np.ndarray) -> int:
    """The index drawn by :func:`corpus_frame`, read back from a decoded frame (any size).

    Rotated frames must be turned back first; the reading samples the middle of every block.
    """
    height, width = frame.shape[:2]
    index = 0
    for bit in range(8):
        r, c = divmod(bit, 4)
        bh, bw = height / 2, width / 4
        y0, y1 = int(r * bh + bh / 4), int(r * bh + 3 * bh / 4) + 1
        x0, x1 = int(c * bw + bw / 4), int(c * bw + 3 * bw / 4) + 1
        if frame[y0:y1, x0:x1].astype(np.float32).mean() > 127:
            index |= 1 << bit
    return index


def write_source(
    path: Path,
    num_frames: int = CORPUS_FRAMES,
    width: int = CORPUS_WIDTH,
    height: int = CORPUS_HEIGHT,
) -> Path:
    """The lossless master (FFV1 in Matroska, bgr0) every corpus file is transcoded from."""
    with av.open(str(path), mode="w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=Fraction(CORPUS_FPS))
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(corpus_frame(i, width, height), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def ffmpeg(*args: str, timeout: float = 60) -> None:
    """Run the ffmpeg binary (quiet, overwrite); raise with its stderr on failure."""
    done = subprocess.run(
        [FFMPEG, "-nostdin", "-y", "-v", "error", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {done.stderr[-800:]}")


@dataclass(frozen=True)
class Reference:
    """FFmpeg's own decode of a file: ``frames`` ``(N, H, W, 3)`` uint8 RGB."""

    frames: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def ffmpeg_frames(
    path: str | Path, *, threads: int | None = None, timeout: float = 60
) -> Reference:
    """Decode ``path`` with the ffmpeg CLI to rgb24, every frame its decoder outputs.

    ``-fps_mode passthrough``: no frame is duplicated or dropped to make a constant rate (the
    rawvideo muxer would otherwise ask for CFR); what remains is what ``-f null`` counts.
    ``threads=1`` for damaged files: with frame threads, FFmpeg's concealment of a damaged
    stream varies from run to run (measured: 2 runs in 10 differ on ``flipped_middle.avi``).
    """
    done = subprocess.run(
        [
            FFMPEG,
            "-nostdin",
            "-v",
            "info",
            *(["-threads", str(threads)] if threads else []),
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        timeout=timeout,
    )
    err = done.stderr.decode("utf-8", "replace")
    sizes = re.findall(r"rawvideo[^\n]*?rgb24[^\n]*?, (\d+)x(\d+)", err)
    if not sizes:
        return Reference(np.empty((0, 0, 0, 3), dtype=np.uint8))
    w, h = (int(v) for v in sizes[-1])
    data = np.frombuffer(done.stdout, dtype=np.uint8)
    n = len(data) // (w * h * 3)
    return Reference(data[: n * w * h * 3].reshape(n, h, w, 3))


def ffmpeg_count(path: str | Path, *, timeout: float = 60) -> int:
    """Frames ``ffmpeg -i F -map 0:v -f null -`` decodes (0 when it cannot open the file)."""
    done = subprocess.run(
        [FFMPEG, "-nostdin", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    counts = re.findall(r"frame=\s*(\d+)", done.stderr)
    return int(counts[-1]) if counts else 0


def _flip_bytes(src: Path, dst: Path, where: float, count: int, seed: int = 0) -> Path:
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(seed)
    start = int(len(data) * where)
    for off in rng.choice(np.arange(start, start + 64 * count), count, replace=False):
        data[off] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def _flip_mdat(src: Path, dst: Path, where: float, count: int, seed: int) -> Path:
    """Flip ``count`` bytes at ``where`` (0..1) of the ``mdat`` payload; the index stays intact."""
    data = bytearray(src.read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    start = at + 4 + int((size - 8) * where)
    rng = np.random.default_rng(seed)
    for off in rng.choice(np.arange(start, min(start + 64 * count, at - 4 + size)), count, False):
        data[off] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def _damage_box(src: Path, dst: Path, box: bytes, seed: int = 1) -> Path:
    """Scramble the middle of the first ``box`` atom (e.g. ``b"stsz"``: sample sizes)."""
    data = bytearray(src.read_bytes())
    at = data.find(box)
    if at < 0:
        raise ValueError(f"{src} has no {box!r} box")
    size = int.from_bytes(data[at - 4 : at], "big")
    rng = np.random.default_rng(seed)
    lo, hi = at + 12 + (size - 16) // 3, at - 4 + size
    for off in range(lo, hi, 4):
        data[off : off + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


# Valid files: name -> (how it was made, for messages). Built by build_corpus.
VALID = (
    "mpeg4_asp_bframes.avi",  # MPEG-4 ASP with 2 B-frames in AVI (the classic DivX/Xvid clip)
    "h264_bframes.avi",  # H.264 with B-frames in AVI
    "mpeg4_odd_size.avi",  # 97 x 63, MPEG-4 ASP with B-frames
    "dropped_frames.avi",  # a capture that dropped frames: timestamp gaps, header counts them
    "cut_editlist.mp4",  # ffmpeg -ss 1.1 -i in.mp4 -c copy out.mp4 (edit list discards packets)
    "phone_editlist.mp4",  # H.264 + AAC, cut by one frame: edit list discards one packet
    "negative_start.mp4",  # a stream-copy cut without edit list: first pts negative
    "rotate90.mp4",  # display matrix: rotate 90 (portrait phone video)
    "rotate270.mov",  # display matrix: rotate 270
    "rotate180.mp4",  # display matrix: rotate 180
    "vp9_realtime.webm",  # libvpx-vp9 -deadline realtime -cpu-used 8
    "h264_10bit.mp4",  # yuv420p10le
    "h264_444_odd_size.mkv",  # 95 x 65 H.264 4:4:4 (screen recordings)
    "vp8_odd_size.webm",  # 95 x 65 VP8 4:2:0 (odd sizes round the chroma planes up)
    "theora.ogv",
    "mpeg2_bframes.ts",  # MPEG-2 with B-frames in MPEG-TS
    "mpeg2_program_stream.mpg",  # MPEG-2 + MP2 audio in an MPEG-PS (camcorder/DVD style)
    "mpeg1_bframes.mpg",  # MPEG-1 with B-frames in an MPEG-PS (the classic .mpg)
    "h264.m2ts",  # H.264 in an M2TS/MTS-style transport stream
    "h264.flv",
    "h264_full_range.mp4",  # yuvj420p (full range, as phone cameras write)
    "h264_bt709.mp4",  # BT.709 matrix tagged (HD camera footage)
)
# Damaged files: ffmpeg decodes some or none; the reader must agree or raise one VideoError.
DAMAGED = (
    "flipped_middle.mp4",  # bytes flipped in the middle of the media data
    "flipped_middle.avi",
    "truncated.mkv",  # cut at 60 %
    "truncated_faststart.mp4",  # cut at 60 %, index at the front claims every frame
    "damaged_moov.mp4",  # sample size table scrambled
    "flipped_mdat.mp4",  # bytes flipped inside mdat, index intact: the decoder loses a frame
)


def build_corpus(root: Path) -> dict[str, Path]:
    """Write every :data:`VALID` and :data:`DAMAGED` file under ``root``; return name -> path."""
    root.mkdir(parents=True, exist_ok=True)
    src = write_source(root / "master.mkv")
    odd = write_source(root / "master_odd.mkv", width=97, height=63)
    odd2 = write_source(root / "master_odd2.mkv", width=95, height=65)
    s = str(src)
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    out = {name: root / name for name in (*VALID, *DAMAGED)}
    o = {k: str(v) for k, v in out.items()}

    ffmpeg(
        "-i", s, "-c:v", "mpeg4", "-bf", "2", "-g", "12", "-q:v", "3", o["mpeg4_asp_bframes.avi"]
    )
    ffmpeg("-i", s, *x264, "-bf", "2", "-g", "12", o["h264_bframes.avi"])
    ffmpeg(
        "-i",
        str(odd),
        "-c:v",
        "mpeg4",
        "-bf",
        "2",
        "-g",
        "12",
        "-q:v",
        "3",
        o["mpeg4_odd_size.avi"],
    )
    ffmpeg(
        "-i", s, "-vf", "setpts=(N+floor(N/10))/25/TB", "-fps_mode", "passthrough",
        "-enc_time_base", "1/25", "-c:v", "mpeg4", "-q:v", "3", o["dropped_frames.avi"],
    )  # fmt: skip
    # An H.264 master with audio and B-frames, GOP 30: cut it the ways people do.
    master = root / "master_h264.mp4"
    ffmpeg(
        "-i",
        s,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=3",
        *x264,
        "-bf",
        "2",
        "-g",
        "30",
        "-c:a",
        "aac",
        "-shortest",
        str(master),
    )
    ffmpeg("-ss", "1.1", "-i", str(master), "-c", "copy", o["cut_editlist.mp4"])
    ffmpeg("-ss", "0.04", "-i", str(master), "-c", "copy", o["phone_editlist.mp4"])
    ffmpeg(
        "-ss", "1.1", "-i", str(master), "-c", "copy", "-use_editlist", "0", o["negative_start.mp4"]
    )
    ffmpeg("-display_rotation", "90", "-i", str(master), "-c", "copy", o["rotate90.mp4"])
    ffmpeg("-display_rotation", "270", "-i", str(master), "-c", "copy", o["rotate270.mov"])
    ffmpeg("-display_rotation", "180", "-i", str(master), "-c", "copy", o["rotate180.mp4"])
    ffmpeg(
        "-i",
        s,
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-pix_fmt",
        "yuv420p",
        "-cpu-used",
        "8",
        "-b:v",
        "400k",
        o["vp9_realtime.webm"],
    )
    ffmpeg(
        "-i",
        s,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p10le",
        o["h264_10bit.mp4"],
    )
    ffmpeg(
        "-i",
        str(odd2),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv444p",
        o["h264_444_odd_size.mkv"],
    )
    ffmpeg("-i", str(odd2), "-c:v", "libvpx", "-b:v", "400k", o["vp8_odd_size.webm"])
    ffmpeg(
        "-i",
        s,
        "-c:v",
        "libtheora",
        "-pix_fmt",
        "yuv420p",
        "-q:v",
        "7",
        "-g",
        "12",
        o["theora.ogv"],
    )
    ffmpeg(
        "-i", s, "-c:v", "mpeg2video", "-bf", "2", "-g", "12", "-q:v", "3", o["mpeg2_bframes.ts"]
    )
    # After a seek the PS demuxer's parser restarts mid-frame and shifts the timestamps of the
    # packets it hands out (random access was one frame off, streaming right).
    ffmpeg(
        "-i", s, "-f", "lavfi", "-i", "sine=duration=3", "-c:v", "mpeg2video", "-bf", "2",
        "-g", "15", "-b:v", "1M", "-c:a", "mp2", "-shortest", o["mpeg2_program_stream.mpg"],
    )  # fmt: skip
    ffmpeg(
        "-i", s, "-c:v", "mpeg1video", "-bf", "2", "-g", "12", "-q:v", "3", o["mpeg1_bframes.mpg"]
    )
    ffmpeg(
        "-i",
        s,
        *x264,
        "-bf",
        "2",
        "-g",
        "25",
        "-mpegts_m2ts_mode",
        "1",
        "-f",
        "mpegts",
        o["h264.m2ts"],
    )
    ffmpeg("-i", s, *x264, "-bf", "2", "-g", "25", o["h264.flv"])
    ffmpeg(
        "-i",
        s,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuvj420p",
        o["h264_full_range.mp4"],
    )
    ffmpeg(
        "-i",
        s,
        *x264,
        "-vf",
        "scale=out_color_matrix=bt709",
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        o["h264_bt709.mp4"],
    )

    _flip_bytes(master, out["flipped_middle.mp4"], 0.55, 24)
    _flip_bytes(out["mpeg4_asp_bframes.avi"], out["flipped_middle.avi"], 0.5, 24)
    mkv = root / "h264.mkv"
    ffmpeg("-i", s, *x264, "-g", "12", str(mkv))
    data = mkv.read_bytes()
    out["truncated.mkv"].write_bytes(data[: int(len(data) * 0.6)])
    fast = root / "faststart.mp4"
    ffmpeg("-i", s, *x264, "-g", "12", "-movflags", "+faststart", str(fast))
    data = fast.read_bytes()
    out["truncated_faststart.mp4"].write_bytes(data[: int(len(data) * 0.6)])
    _damage_box(fast, out["damaged_moov.mp4"], b"stsz")
    # 90 frames, 4 bytes flipped near the end of mdat: FFmpeg decodes 89 and decord, seeing
    # no error, pads its 90 with a copy of the last frame (these flips, measured; most others
    # make decord fail on read, which auto already survives).
    long_src = write_source(root / "master_90.mkv", num_frames=90)
    h264_90 = root / "h264_90.mp4"
    ffmpeg("-i", str(long_src), *x264, "-g", "30", str(h264_90))
    _flip_mdat(h264_90, out["flipped_mdat.mp4"], 0.9, 4, seed=11)
    return out
