"""Writers: result files, atomicity, annotated video, frame-exact clips (real files in tmp dirs)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from video_lstm.io.clips import clip_path, cut_clip
from video_lstm.io.decode import open_video
from video_lstm.io.files import atomic_path, write_json
from video_lstm.io.overlay import AnnotationStyle, Overlay, class_colors, rgb_to_i420
from video_lstm.io.results import format_timestamp, write_segments_csv, write_srt, write_vtt
from video_lstm.io.video import VideoWriter, write_annotated_video
from video_lstm.types import Segment

NAMES = ["walk", "jump", "wave"]
SEGS = [
    Segment(start_frame=0, end_frame=45, label="walk", score=0.871, start_s=0.0, end_s=1.5),
    Segment(start_frame=60, end_frame=3690, label="jump", score=0.5, start_s=2.0, end_s=123.0),
]

# ------------------------------------------------------------------ helpers: known-pattern videos

BLOCK_W, BLOCK_H, BITS = 8, 16, 8


def pattern_frame(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Grey frame whose top row of 8 blocks spells ``index`` in binary (survives H.264)."""
    frame = np.full((height, width, 3), 128, dtype=np.uint8)
    for bit in range(BITS):
        value = 255 if (index >> bit) & 1 else 0
        frame[:BLOCK_H, bit * BLOCK_W : (bit + 1) * BLOCK_W] = value
    return frame


def read_index(frame: np.ndarray) -> int:
    index = 0
    for bit in range(BITS):
        block = frame[2 : BLOCK_H - 2, bit * BLOCK_W + 2 : (bit + 1) * BLOCK_W - 2]
        if block.mean() > 128:
            index |= 1 << bit
    return index


def decode_all(path: Path) -> tuple[np.ndarray, float]:
    """Every frame of a file as (N, H, W, 3) RGB, and its fps, with PyAV."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
        return np.stack(frames), float(stream.average_rate)


class DecodedVideo:
    """A real file decoded with PyAV up front, served through the writers' reader interface."""

    def __init__(self, path: Path) -> None:
        self.frames, self.fps = decode_all(path)
        self.num_frames, self.height, self.width = self.frames.shape[:3]

    def get_frames(self, indices) -> np.ndarray:
        return self.frames[np.asarray(indices)]

    def iter_chunks(self, chunk_size: int):
        for start in range(0, self.num_frames, chunk_size):
            yield start, self.frames[start : start + chunk_size]


def make_video(
    path: Path, n: int, *, codec: str = "libx264", gop: int | None = None, size=(64, 48)
) -> Path:
    w, h = size
    with VideoWriter(path, fps=25, width=w, height=h, codec=codec, gop=gop, crf=18) as vw:
        vw.write(np.stack([pattern_frame(i, w, h) for i in range(n)]))
    return path


# ------------------------------------------------------------------ result files


@pytest.mark.parametrize(
    "seconds, srt",
    [
        (0.0, "00:00:00,000"),
        (1.5, "00:00:01,500"),
        (3661.001, "01:01:01,001"),
        (59.9996, "00:01:00,000"),  # rounds to the millisecond, carrying into minutes
        (-0.01, "00:00:00,000"),
    ],
)
def test_format_timestamp(seconds, srt):
    assert format_timestamp(seconds) == srt
    assert format_timestamp(seconds, sep=".") == srt.replace(",", ".")


def test_write_srt_exact(tmp_path):
    path = write_srt(tmp_path / "a.srt", SEGS)
    assert path.read_text(encoding="utf-8") == (
        "1\n00:00:00,000 --> 00:00:01,500\nwalk (87%)\n\n"
        "2\n00:00:02,000 --> 00:02:03,000\njump (50%)\n"
    )


def test_write_vtt_exact(tmp_path):
    path = write_vtt(tmp_path / "a.vtt", SEGS)
    assert path.read_text(encoding="utf-8") == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.500\nwalk (87%)\n\n"
        "00:00:02.000 --> 00:02:03.000\njump (50%)\n"
    )
    assert write_vtt(tmp_path / "empty.vtt", []).read_text() == "WEBVTT\n"


def test_write_segments_csv_exact(tmp_path):
    path = write_segments_csv(tmp_path / "s.csv", SEGS, extra_columns={"video": "a b.mp4"})
    assert path.read_text(encoding="utf-8") == (
        "video,label,start_frame,end_frame,start_s,end_s,duration_s,score\n"
        "a b.mp4,walk,0,45,0.000,1.500,1.500,0.8710\n"
        "a b.mp4,jump,60,3690,2.000,123.000,121.000,0.5000\n"
    )
    with open(path, newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_write_json_numpy_and_segments(tmp_path):
    obj = {
        "n": np.int64(3),
        "fps": np.float32(25.0),
        "ok": np.bool_(True),
        "probs": np.array([[0.25, 0.75]]),
        "nan": float("nan"),
        "path": tmp_path / "x.mp4",
        "segments": SEGS[:1],
        "name": "café",
    }
    path = write_json(tmp_path / "r.json", obj)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {
        "n": 3,
        "fps": 25.0,
        "ok": True,
        "probs": [[0.25, 0.75]],
        "nan": None,
        "path": str(tmp_path / "x.mp4"),
        "segments": [SEGS[0].to_dict()],
        "name": "café",
    }


# ------------------------------------------------------------------ atomicity


def test_atomic_path_interrupted_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_failed_json_write_keeps_old_file(tmp_path):
    target = write_json(tmp_path / "r.json", {"v": 1})
    with pytest.raises(TypeError, match="object"):
        write_json(target, {"v": object()})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_aborted_video_writer_leaves_nothing(tmp_path):
    with (
        pytest.raises(RuntimeError),
        VideoWriter(tmp_path / "v.mp4", fps=25, width=64, height=48) as w,
    ):
        w.write(np.stack([pattern_frame(i) for i in range(5)]))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ overlay


def test_class_colors_stable_and_distinct():
    many = class_colors(25)
    np.testing.assert_array_equal(class_colors(3), many[:3])
    assert len({tuple(c) for c in many}) == 25


def test_overlay_draws_box_bar_and_playhead():
    h, w, n = 120, 160, 100
    segs = [Segment(0, 40, "walk", 0.9, 0.0, 1.6), Segment(60, 100, "wave", 0.8, 2.4, 4.0)]
    overlay = Overlay(NAMES, num_frames=n, width=w, height=h, segments=segs)
    frames = np.full((3, h, w, 3), 100, dtype=np.uint8)
    out = overlay.draw(frames, 10, labels=[0, 2, -1], scores=[0.87, 0.6, 0.1])
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert (frames == 100).all()  # drew on a copy
    colors = class_colors(3)

    # Label box top-left on frames with a label, not on the no-action frame.
    m = round(AnnotationStyle().margin * h)
    box = (slice(m, m + 10), slice(m, m + 30))
    assert (out[0][box] != 100).any() and (out[1][box] != 100).any()
    assert (out[2][box] == 100).all()
    # The frame body is untouched.
    assert (out[:, h // 2 - 5 : h // 2 + 5, w // 2 - 5 : w // 2 + 5] == 100).all()

    # Timeline: walk colour at the left, wave colour at the right, dark in the gap (frames 40-60).
    bar = out[2, h - 2]
    a = AnnotationStyle().bar_alpha
    expect = (100 * (1 - a) + colors.astype(np.float32) * a).astype(np.uint8)
    np.testing.assert_allclose(bar[2], expect[0], atol=1)
    np.testing.assert_allclose(bar[w - 3], expect[2], atol=1)
    assert bar[w // 2].max() < 100

    # Playhead: white columns at frame index * w // n, moving one frame per image.
    for i in range(3):
        x = overlay.playhead_x(10 + i)
        assert x == (10 + i) * w // n
        assert (out[i, h - overlay.bar_h :, x] == 255).all()
    assert not (out[0, h - overlay.bar_h :, overlay.playhead_x(12)] == 255).all()


def test_overlay_no_action_text_and_validation():
    overlay = Overlay(
        NAMES, num_frames=10, width=64, height=48, style=AnnotationStyle(no_action_text="none")
    )
    frames = np.zeros((1, 48, 64, 3), dtype=np.uint8)
    assert (overlay.draw(frames, 0, [-1], [0.0])[0, :10] != 0).any()
    with pytest.raises(ValueError, match="labels"):
        overlay.draw(frames, 0, [3], [0.5])
    with pytest.raises(ValueError, match="frames"):
        overlay.draw(frames[:, :10], 0, [0], [0.5])
    with pytest.raises(ValueError, match="not one of"):
        Overlay(NAMES, num_frames=10, width=64, height=48, segments=[Segment(0, 1, "x", 1, 0, 1)])
    with pytest.raises(ValueError, match="bar_alpha"):
        AnnotationStyle(bar_alpha=1.5)


def smooth_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Random smooth colour frames that survive 4:2:0 (as decoded video does)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, h // 8, w // 8, 3), dtype=np.uint8)
    frames = [cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in small]
    return np.stack([cv2.cvtColor(rgb_to_i420(f), cv2.COLOR_YUV2RGB_I420) for f in frames])


def test_rgb_to_i420_matches_swscale():
    frame = smooth_frames(1, 48, 64)[0]
    sws = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
    diff = np.abs(rgb_to_i420(frame).astype(int) - sws.to_ndarray().astype(int))
    assert diff.max() <= 4 and diff.mean() < 0.5
    # Chroma is the 2x2 mean (OpenCV alone would take the top-left pixel: U 90, V 240).
    red_dots = np.zeros((4, 4, 3), dtype=np.uint8)
    red_dots[0::2, 0::2, 0] = 255
    np.testing.assert_allclose(rgb_to_i420(red_dots)[4:].reshape(-1), [119] * 4 + [156] * 4, atol=1)


@pytest.mark.parametrize(
    "w, h, style",
    [
        (128, 96, None),
        (66, 50, AnnotationStyle(margin=0.03, no_action_text="none")),  # odd margin and bar
    ],
)
def test_overlay_draw_i420_equals_draw_then_convert(w, h, style):
    n = 12
    frames = smooth_frames(n, h, w)
    segs = [Segment(0, 20, "walk", 0.9, 0.0, 0.8), Segment(30, 50, "wave", 0.8, 1.2, 2.0)]
    overlay = Overlay(NAMES, num_frames=50, width=w, height=h, segments=segs, style=style)
    labels = np.array([0, 0, 1, 2, -1, 1, 0, 2, 2, -1, 0, 1])
    scores = np.linspace(0.3, 0.99, n)
    expect = np.stack([rgb_to_i420(f) for f in overlay.draw(frames, 7, labels, scores)])
    planes = np.stack([rgb_to_i420(f) for f in frames])
    got = overlay.draw_i420(planes, 7, labels, scores)
    assert got is planes  # in place
    np.testing.assert_allclose(got, expect, atol=1, rtol=0)
    with pytest.raises(ValueError, match="I420"):
        overlay.draw_i420(frames, 7, labels, scores)


def test_reader_i420_planes_are_the_decoders(tmp_path):
    src = make_video(tmp_path / "src.mp4", 10)
    with av.open(str(src)) as c:
        expect = np.stack([f.to_ndarray(format="yuv420p") for f in c.decode(video=0)])
    with open_video(src, backend="pyav") as r:
        assert r.supports_i420
        np.testing.assert_array_equal(r.get_frames([3, 1], pixel_format="yuv420p"), expect[[3, 1]])
        chunks = [f for _, f in r.iter_chunks(4, pixel_format="yuv420p")]
        np.testing.assert_array_equal(np.concatenate(chunks), expect)
    with open_video(src, backend="pyav", size=32) as r:
        assert not r.supports_i420
        with pytest.raises(ValueError, match="yuv420p"):
            r.get_frames([0], pixel_format="yuv420p")


@pytest.mark.parametrize("via", ["rgb", "i420"])
def test_write_annotated_video_roundtrip(tmp_path, via):
    n, w, h = 30, 128, 96
    src = make_video(tmp_path / "src.mkv", n, codec="ffv1", size=(w, h))
    reader = DecodedVideo(src)
    if via == "i420":  # the real reader: drawn on its yuv420p planes
        reader = open_video(src, backend="pyav")
        assert reader.supports_i420
        reader.frames = DecodedVideo(src).frames
    labels = np.array([0] * 15 + [-1] * 5 + [1] * 10)
    scores = np.full(n, 0.9)
    segs = [Segment(0, 15, "walk", 0.9, 0.0, 0.6), Segment(20, 30, "jump", 0.9, 0.8, 1.2)]
    out = write_annotated_video(
        reader,
        tmp_path / "out" / "annotated.mp4",
        class_names=NAMES,
        segments=segs,
        labels=labels,
        scores=scores,
        chunk_size=7,
    )
    frames, fps = decode_all(out)
    assert frames.shape == (n, h, w, 3) and fps == pytest.approx(25)
    assert is_faststart(out)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
    diff = np.abs(frames.astype(int) - reader.frames.astype(int)).max(axis=-1)  # (n, H, W)
    bar_rows = slice(h - Overlay(NAMES, num_frames=n, width=w, height=h).bar_h, h)
    assert (diff[:, bar_rows] > 30).mean() > 0.8  # the timeline replaced the grey
    assert diff[:, 40:60, 40:90].mean() < 8  # the body is the source (H.264 noise only)
    m = round(AnnotationStyle().margin * h)
    labelled = diff[:, m + 2 : m + 8, m + 2 : m + 8].mean(axis=(1, 2))
    assert (labelled[:15] > 20).all() and (labelled[15:20] < 8).all()


# ------------------------------------------------------------------ faststart


def mp4_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (ISO BMFF: 32-bit size, 4-char type, with
    the 64-bit ``largesize`` when size is 1 and "to the end" when it is 0)."""
    types, data = [], Path(path).read_bytes()
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:
            size = len(data) - pos
        assert size >= 8, f"{path}: bad box size {size} at {pos}"
        types.append(kind.decode("latin-1"))
        pos += size
    assert pos == len(data), f"{path}: boxes end at {pos}, file at {len(data)}"
    return types


def is_faststart(path: Path) -> bool:
    """True when the index (moov) comes before the media data (mdat)."""
    boxes = mp4_boxes(path)
    return "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")


def test_video_writer_is_faststart_and_the_box_parser_can_tell(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (12, 48, 64, 3), dtype=np.uint8)
    with VideoWriter(tmp_path / "v.mp4", fps=10, width=64, height=48) as w:
        w.write(frames)
    assert mp4_boxes(tmp_path / "v.mp4")[:2] == ["ftyp", "moov"]
    assert is_faststart(tmp_path / "v.mp4")
    # A plain mux (what the writer did before) puts moov last: the check must say so.
    with av.open(str(tmp_path / "plain.mp4"), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
    assert not is_faststart(tmp_path / "plain.mp4")
    assert decode_all(tmp_path / "v.mp4")[0].shape == frames.shape


# ------------------------------------------------------------------ clips


def test_clip_path_format(tmp_path):
    assert clip_path(tmp_path / "clips", "jump", "match01", 120, 245) == (
        tmp_path / "clips" / "jump" / "match01_000120-000245.mp4"
    )
    # A safe name stays as it is; an unsafe one is cleaned and gets a hash of the original.
    path = clip_path("c", "high/five", "my video.mp4", 5, 1234567).as_posix()
    assert re.fullmatch(r"c/high_five-[0-9a-f]{10}/my video\.mp4_000005-1234567\.mp4", path)


def test_cut_clip_ffv1_bit_exact(tmp_path):
    reader = DecodedVideo(make_video(tmp_path / "src.mkv", 40, codec="ffv1"))
    out = cut_clip(reader, 7, 23, tmp_path / "clip.mkv", codec="ffv1", chunk_size=5)
    frames, fps = decode_all(out)
    np.testing.assert_array_equal(frames, reader.frames[7:23])
    assert fps == pytest.approx(25)


@pytest.mark.parametrize("via", ["rgb", "i420"])
def test_cut_clip_h264_long_gop_is_frame_exact(tmp_path, via):
    # One keyframe for the whole source: a stream copy could only start at frame 0.
    reader = DecodedVideo(make_video(tmp_path / "src.mp4", 120, gop=250))
    if via == "i420":
        frames = reader.frames
        reader = open_video(tmp_path / "src.mp4", backend="pyav")
        reader.frames = frames
    assert [read_index(f) for f in reader.frames] == list(range(120))
    out = cut_clip(reader, 53, 97, clip_path(tmp_path, "jump", "src", 53, 97), chunk_size=16)
    assert is_faststart(out)
    frames, _ = decode_all(out)
    assert len(frames) == 97 - 53
    assert [read_index(f) for f in frames] == list(range(53, 97))


def test_cut_clip_pads_odd_size_and_validates(tmp_path):
    src = tmp_path / "odd.mkv"
    with VideoWriter(src, fps=10, width=33, height=21, codec="ffv1") as w:
        w.write(np.random.default_rng(0).integers(0, 255, (6, 21, 33, 3), dtype=np.uint8))
    reader = DecodedVideo(src)
    frames, _ = decode_all(cut_clip(reader, 1, 4, tmp_path / "odd.mp4"))
    assert frames.shape == (3, 22, 34, 3)
    for start, end in [(-1, 3), (3, 3), (2, 7)]:
        with pytest.raises(ValueError, match="not inside"):
            cut_clip(reader, start, end, tmp_path / "bad.mp4")
    assert not (tmp_path / "bad.mp4").exists()
