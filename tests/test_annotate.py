"""One-video annotation: streaming == batched == naive window scores, outputs on disk, atomicity."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from test_write import is_faststart

import video_lstm.io.video as video_mod  # the video writer imports its encoder from here
from video_lstm import open_video
from video_lstm.data.sampling import sliding_window_starts
from video_lstm.errors import NotAVideoError
from video_lstm.inference.annotate import annotate_video
from video_lstm.inference.predictor import Predictor
from video_lstm.inference.scoring import (
    pass_backends,
    score_video,
    score_video_batched,
    score_video_naive,
)
from video_lstm.inference.settings import AnnotateSettings, SegmentRules
from video_lstm.io.video import VideoWriter
from video_lstm.models import DEFAULT_MODEL, create_model
from video_lstm.models.checkpoint import ModelMeta, save_checkpoint

CLASSES = ["clap", "jump", "wave"]


def make_checkpoint(path: Path, *, clip_len: int = 6, frame_interval: int = 2) -> Path:
    """An untrained default model (mechanics only: its labels are arbitrary)."""
    torch.manual_seed(0)
    model = create_model(DEFAULT_MODEL, num_classes=len(CLASSES), frame_size=64)
    meta = ModelMeta.for_model(model, CLASSES, clip_len=clip_len, frame_interval=frame_interval)
    return save_checkpoint(path, model, meta)


def write_video(path: Path, num_frames: int, *, width: int = 80, height: int = 60, fps: float = 25):
    """Moving bars whose colour changes every 20 frames (something for the CNN to see)."""
    rng = np.random.default_rng(num_frames)
    colors = rng.integers(0, 256, (num_frames // 20 + 1, 3))
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    for i in range(num_frames):
        frames[i, :, :] = colors[i // 20] // 3
        x = (i * 3) % width
        frames[i, :, x : x + 10] = colors[i // 20]
    with VideoWriter(path, fps=fps, width=width, height=height) as w:
        w.write(frames)
    return path


def count_frames(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as c:
        n, shape = 0, None
        for frame in c.decode(video=0):
            n += 1
            shape = (frame.width, frame.height)
    return n, *shape


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "untrained.pt")


@pytest.fixture(scope="module")
def predictor(checkpoint) -> Predictor:
    return Predictor.from_checkpoint(checkpoint, device="cpu", frame_batch=5, window_batch=3)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("vid") / "walk.mp4", 61)


@pytest.mark.parametrize(("chunk_size", "prefetch"), [(1, 0), (5, 2), (64, 1)])
def test_streaming_equals_batched_and_naive(predictor, video, chunk_size, prefetch):
    with open_video(video, size=64) as reader:
        stream = score_video(predictor, reader, stride=2, chunk_size=chunk_size, prefetch=prefetch)
        batched = score_video_batched(predictor, reader, stride=2)
        n = reader.num_frames
    assert stream.num_sampled == batched.num_sampled == (n + 1) // 2
    np.testing.assert_array_equal(stream.starts, sliding_window_starts(stream.num_sampled, 6, 2))
    np.testing.assert_array_equal(stream.spans, batched.spans)
    torch.testing.assert_close(
        torch.from_numpy(stream.probs), torch.from_numpy(batched.probs), rtol=1e-4, atol=1e-5
    )
    # Windows tile the video: first starts at 0, last ends at the last frame.
    assert stream.spans[0, 0] == 0 and stream.spans[-1, 1] == n


def test_decode_worker_passes_errors_on_with_their_type(predictor, video, tmp_path):
    # The worker process opens the video itself: spoil the file after the main process opened
    # it, and the worker's error reaches the caller as the same VideoError, path and reason.
    path = tmp_path / "spoiled.mp4"
    path.write_bytes(video.read_bytes())
    with open_video(path, size=64) as reader:
        path.write_text("not a video any more\n")
        with pytest.raises(NotAVideoError, match="spoiled.mp4") as caught:
            score_video(predictor, reader, prefetch=2)
    assert caught.value.path == str(path) and caught.value.reason


def test_naive_equals_shared_features(predictor, video):
    with open_video(video, size=64) as reader:
        naive = score_video_naive(predictor, reader, stride=3)
        stream = score_video(predictor, reader, stride=3, chunk_size=5)
    np.testing.assert_array_equal(naive.starts, stream.starts)
    torch.testing.assert_close(
        torch.from_numpy(naive.probs), torch.from_numpy(stream.probs), rtol=1e-4, atol=1e-5
    )


def test_video_shorter_than_a_window(predictor, tmp_path):
    short = write_video(tmp_path / "short.mp4", 7)
    with open_video(short, size=64) as reader:
        stream = score_video(predictor, reader, chunk_size=2, prefetch=0)
        batched = score_video_batched(predictor, reader)
    assert stream.spans.tolist() == [[0, 7]]
    torch.testing.assert_close(torch.from_numpy(stream.probs), torch.from_numpy(batched.probs))


def test_annotate_writes_every_output(checkpoint, video, tmp_path):
    out = tmp_path / "out"
    # threshold 0 and no minimum duration: an untrained model still yields segments to cut.
    result = annotate_video(
        str(video),
        str(checkpoint),
        str(out),
        AnnotateSettings.from_flat(
            threshold=0.0,
            min_duration_s=0.0,
            smoothing_s=0.0,
            chunk_size=8,
            save_window_scores=True,
            device="cpu",
        ),
        progress=False,
    )
    n = result.info.num_frames
    assert n == 61 and result.segments
    # Segments tile the video (threshold 0: every frame has a label), in order, valid labels.
    assert result.segments[0].start_frame == 0 and result.segments[-1].end_frame == n
    for a, b in zip(result.segments, result.segments[1:], strict=False):
        assert a.end_frame <= b.start_frame
    assert {s.label for s in result.segments} <= set(CLASSES)

    doc = json.loads((out / "walk.json").read_text())
    assert doc["video"]["num_frames"] == n and doc["model"]["class_names"] == CLASSES
    assert doc["settings"]["windows"]["stride"] == 6 // 4
    assert doc["settings"]["segments"]["threshold"] == 0.0
    # Unset rules are stored as resolved (the defaults: this checkpoint has no calibrated ones).
    assert doc["settings"]["segments"]["merge_gap_s"] == SegmentRules.DEFAULTS["merge_gap_s"]
    assert len(doc["segments"]) == len(result.segments)
    assert len(doc["windows"]["probs"]) == len(result.windows.starts)
    with open(out / "walk.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == [s.label for s in result.segments]
    assert (out / "walk.srt").read_text().count("-->") == len(result.segments)
    assert (out / "walk.vtt").read_text().startswith("WEBVTT")

    assert count_frames(out / "walk_annotated.mp4") == (n, 80, 60)
    clips = sorted((out / "clips").rglob("*.mp4"))
    assert len(clips) == len(result.segments)
    for seg in result.segments:
        path = out / "clips" / seg.label / f"walk_{seg.start_frame:06d}-{seg.end_frame:06d}.mp4"
        assert count_frames(path) == (seg.num_frames, 80, 60)
    assert sorted(map(Path, result.output_files)) == sorted(
        [*clips, *(out / f"walk{s}" for s in (".json", ".csv", ".srt", ".vtt", "_annotated.mp4"))]
    )
    # The annotated video and every clip start playing before they are fully downloaded.
    assert all(is_faststart(mp4) for mp4 in out.rglob("*.mp4"))
    # Nothing temporary left behind.
    assert not list(out.rglob("*.part"))


def test_outputs_option_limits_what_is_written(checkpoint, video, tmp_path):
    result = annotate_video(
        str(video),
        str(checkpoint),
        str(tmp_path),
        AnnotateSettings(outputs=["json", "csv"]),
        progress=False,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.csv", "walk.json"]
    assert len(result.output_files) == 2


def test_interrupted_annotation_leaves_no_final_files(checkpoint, video, tmp_path, monkeypatch):
    real_write = video_mod.write_annotated_video

    class FailingReader:
        """The real reader, but decoding stops with an error after one chunk."""

        def __init__(self, reader):
            self._reader = reader

        def __getattr__(self, name):
            return getattr(self._reader, name)

        def iter_chunks(self, chunk_size, step=1, **kwargs):
            yield next(iter(self._reader.iter_chunks(chunk_size, step, **kwargs)))
            raise RuntimeError("interrupted mid-video")

    monkeypatch.setattr(
        video_mod,
        "write_annotated_video",
        lambda reader, *a, **k: real_write(FailingReader(reader), *a, **k),
    )
    with pytest.raises(RuntimeError, match="interrupted"):
        settings = AnnotateSettings.from_flat(threshold=0.0)
        annotate_video(str(video), str(checkpoint), str(tmp_path), settings, progress=False)
    # The annotated video was being encoded: no file under its final name, no temp file left,
    # and the JSON (written last) is absent.
    assert not (tmp_path / "walk_annotated.mp4").exists()
    assert not (tmp_path / "walk.json").exists()
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize(
    ("backend", "device", "expected"),
    [
        ("auto", "cpu", ("pyav", "pyav")),  # decord's read-ahead thread slows the CPU CNN
        ("auto", "cuda", ("auto", "pyav")),
        ("decord", "cpu", ("decord", "decord")),
        ("pyav", "cuda", ("pyav", "pyav")),
    ],
)
def test_pass_backends(backend, device, expected):
    assert pass_backends(backend, torch.device(device)) == expected


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown outputs"):
        AnnotateSettings(outputs=["json", "gif"])
    with pytest.raises(ValueError, match="threshold"):
        AnnotateSettings.from_flat(threshold=1.5)
    with pytest.raises(ValueError, match="threshold"):
        AnnotateSettings(segments={"threshold": -0.1})


# ------------------------------------------------------------- end to end with a model that works

# "Actions" a frozen pretrained CNN separates after a few training steps of a linear head: the
# scene's colour (with a moving object and noise), plus a grey "none" class for the gaps. The
# test is about the pipeline (windows, spans, smoothing, thresholds, segments, clips) finding
# known boundaries, so the recognition task is kept trivially learnable to train in seconds.
E2E_CLASSES = ["none", "red", "green", "blue"]
E2E_COLORS = {
    "none": (128, 128, 128),
    "red": (200, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 60, 200),
}
E2E_TOLERANCE = 6  # frames at 25 fps: a window is 4 frames, smoothing 0.2 s


def colour_frames(label: str, n: int, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    frames = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        noise = rng.normal(0, 12, (size, size, 3))
        frame = np.clip(np.array(E2E_COLORS[label]) + noise, 0, 255)
        x = int(rng.integers(0, size - 12))
        frame[size // 3 : size // 3 + 12, x : x + 12] = 255
        frames[i] = frame
    return frames


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> Path:
    return train_colour_checkpoint(tmp_path_factory.mktemp("trained") / "trained.pt")


def train_colour_checkpoint(path: Path) -> Path:
    """A model that recognises the colour "actions": the CNN is frozen pretrained
    EfficientNet-Lite0; only the linear head learns, on features computed once."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = create_model(
        "meanpool_efficientnet_lite0", num_classes=len(E2E_CLASSES), frame_size=32, freeze="all"
    ).eval()
    meta = ModelMeta.for_model(model, E2E_CLASSES, clip_len=4, frame_interval=1)
    pred = Predictor(model, meta, device="cpu")
    feats, labels = [], []
    for k, label in enumerate(E2E_CLASSES):
        f = pred.features(colour_frames(label, 16, rng))  # (16, D)
        feats.append(f.reshape(4, 4, *f.shape[1:]))  # (4 windows, 4 frames, D)
        labels += [k] * 4
    feats, labels = torch.cat(feats), torch.tensor(labels)
    head = [p for n, p in model.named_parameters() if not n.startswith("backbone")]
    opt = torch.optim.Adam(head, lr=1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model.forward_head(feats), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        accuracy = (model.forward_head(feats).argmax(-1) == labels).float().mean().item()
    assert accuracy == 1.0, f"the test model did not learn the colours ({accuracy:.2f})"
    return save_checkpoint(path, model, meta)


@pytest.mark.slow
def test_end_to_end_finds_the_actions(trained_checkpoint, tmp_path):
    rng = np.random.default_rng(1)
    plan = [("none", 10), ("red", 30), ("blue", 25), ("none", 15), ("green", 30), ("red", 20)]
    frames, truth, t = [], [], 0
    for label, n in plan:
        frames.append(colour_frames(label, n, rng))
        if label != "none":
            truth.append((label, t, t + n))
        t += n
    src = tmp_path / "colours.mp4"
    with VideoWriter(src, fps=25, width=64, height=64, crf=12) as w:
        w.write(np.concatenate(frames))
    result = annotate_video(
        str(src),
        str(trained_checkpoint),
        str(tmp_path / "out"),
        AnnotateSettings.from_flat(
            stride=1,
            smoothing_s=0.2,
            min_duration_s=0.3,
            background="none",
            chunk_size=16,
            device="cpu",
        ),
        progress=False,
    )
    assert [s.label for s in result.segments] == [label for label, _, _ in truth]
    for found, (_, start, end) in zip(result.segments, truth, strict=True):
        assert abs(found.start_frame - start) <= E2E_TOLERANCE, (found, start, end)
        assert abs(found.end_frame - end) <= E2E_TOLERANCE, (found, start, end)
        assert found.score > 0.5
    clips = sorted((tmp_path / "out" / "clips").rglob("*.mp4"))
    assert sorted(c.parent.name for c in clips) == sorted(label for label, _, _ in truth)


# ------------------------------------------------------------------------------ CUDA == CPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["auto", "fp16"])
def test_cuda_annotation_equals_cpu(trained_checkpoint, tmp_path, precision):
    """Pinned transfers, GPU preprocessing and half-precision autocast give the CPU's window
    scores within half-precision tolerance, and the same segments."""
    rng = np.random.default_rng(2)
    plan = [("none", 10), ("red", 30), ("blue", 25), ("none", 15), ("green", 30)]
    src = tmp_path / "colours.mp4"
    with VideoWriter(src, fps=25, width=64, height=64, crf=12) as w:
        w.write(np.concatenate([colour_frames(label, n, rng) for label, n in plan]))
    kw = dict(
        stride=1, smoothing_s=0.2, min_duration_s=0.3, background="none", chunk_size=16,
        save_window_scores=True,
    )  # fmt: skip
    cpu = annotate_video(
        str(src), str(trained_checkpoint), str(tmp_path / "cpu"),
        AnnotateSettings.from_flat(device="cpu", **kw), progress=False,
    )  # fmt: skip
    gpu = annotate_video(
        str(src), str(trained_checkpoint), str(tmp_path / "gpu"),
        AnnotateSettings.from_flat(device="cuda", precision=precision, **kw), progress=False,
    )  # fmt: skip
    assert gpu.settings["runtime"]["device"].startswith("cuda")
    assert gpu.settings["runtime"]["precision"] in ("bf16", "fp16")
    np.testing.assert_array_equal(gpu.windows.spans, cpu.windows.spans)
    assert gpu.windows.probs.dtype == np.float32
    np.testing.assert_allclose(gpu.windows.probs, cpu.windows.probs, rtol=0, atol=0.05)
    assert [s.label for s in gpu.segments] == [s.label for s in cpu.segments]
    for a, b in zip(gpu.segments, cpu.segments, strict=True):
        assert abs(a.start_frame - b.start_frame) <= 1 and abs(a.end_frame - b.end_frame) <= 1
    doc = json.loads((tmp_path / "gpu" / "colours.json").read_text())
    assert doc["settings"]["runtime"]["precision"] == gpu.settings["runtime"]["precision"]


# ------------------------------------------------------ end to end on motion (order-only) actions

MOTION_CLASSES = ["move_left", "move_right"]  # the same frames in the other order: only time tells
MOTION_SIZE = 96
MOTION_TOLERANCE = 12  # frames at 25 fps; a window spans 16 sampled frames = 31 source frames


@pytest.fixture(scope="module")
def motion_checkpoint(tmp_path_factory) -> Path:
    """The default model (frozen lite0 stride-8 maps + their change -> ConvLSTM) trained on
    rendered move_left / move_right clips, in this fixture, on features computed once."""
    from video_lstm.data.synthetic import render_action

    torch.manual_seed(0)
    model = create_model(DEFAULT_MODEL, num_classes=2, frame_size=MOTION_SIZE).eval()
    meta = ModelMeta.for_model(model, MOTION_CLASSES, clip_len=16, frame_interval=2)
    pred = Predictor(model, meta, device="cpu")
    feats, labels = [], []
    for k, action in enumerate(MOTION_CLASSES):
        for i in range(48):
            rng = np.random.default_rng([7, k, i])
            frames = render_action(action, num_frames=32, size=MOTION_SIZE, rng=rng)[::2]
            feats.append(pred.features(frames))  # (16, C, h, w)
            labels.append(k)
    feats, labels = torch.stack(feats), torch.tensor(labels)
    head = [p for n, p in model.named_parameters() if not n.startswith("backbone")]
    opt = torch.optim.AdamW(head, lr=3e-3)
    model.train()
    # 30 epochs: at 15 the boundaries moved by up to 21 frames from one training seed to the
    # next (0-13 for most); at 30 six seeds all stayed within 10.
    for _ in range(30):
        for batch in torch.randperm(len(labels)).split(16):
            loss = torch.nn.functional.cross_entropy(
                model.forward_head(feats[batch]), labels[batch]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return save_checkpoint(tmp_path_factory.mktemp("motion") / "motion.pt", model, meta)


@pytest.mark.slow
def test_end_to_end_finds_motion_actions(motion_checkpoint, tmp_path):
    """Known sequence of order-only actions -> segments with the right labels and boundaries."""
    from video_lstm.data.synthetic import make_action_sequence

    plan = ["move_left", "move_right", "move_left", "move_right"]
    frames, truth = make_action_sequence(
        plan, frames_per_action=60, size=MOTION_SIZE, fps=25, rng=3, distractors=0
    )
    src = tmp_path / "motion.mp4"
    with VideoWriter(src, fps=25, width=MOTION_SIZE, height=MOTION_SIZE, crf=12) as w:
        w.write(frames)
    result = annotate_video(
        str(src),
        str(motion_checkpoint),
        str(tmp_path / "out"),
        AnnotateSettings.from_flat(
            stride=2,
            threshold=0.5,
            min_duration_s=0.5,
            smoothing_s=0.3,
            chunk_size=32,
            device="cpu",
        ),
        progress=False,
    )
    assert [s.label for s in result.segments] == plan
    for found, want in zip(result.segments, truth, strict=True):
        assert abs(found.start_frame - want.start_frame) <= MOTION_TOLERANCE, (found, want)
        assert abs(found.end_frame - want.end_frame) <= MOTION_TOLERANCE, (found, want)


def test_auto_backend_takes_a_plugin_backend_that_accepts_the_file(
    checkpoint, video, tmp_path, monkeypatch
):
    """``--backend auto`` reads the backend table as ``open_video`` does: a plugin's backend
    whose ``accepts`` takes the file decodes both passes (decord is passed over on CPU)."""
    import video_lstm.io.decode.reader as reader_module
    from video_lstm.io.decode import IndexedSource, VideoReader, register_backend

    monkeypatch.setattr(reader_module, "_BACKENDS", dict(reader_module._BACKENDS))
    opened = []

    class Wrapped(IndexedSource):
        """PyAV's frames through a plugin row (so the test sees the pipeline chose it)."""

        def __init__(self, path, options):
            opened.append((Path(path).name, options.size))
            self.inner = VideoReader(path, options, backend="pyav")
            self.path, self.fps = Path(path), self.inner.fps
            self.num_frames, self.width, self.height = (
                self.inner.num_frames,
                self.inner.width,
                self.inner.height,
            )

        def read(self, targets, **kwargs):
            return self.inner.get_frames(targets)

        def close(self):
            self.inner.close()

    register_backend("wrapped", Wrapped, accepts=lambda probe: True, priority=30)
    settings = AnnotateSettings(outputs=["json"])
    result = annotate_video(str(video), str(checkpoint), str(tmp_path), settings, progress=False)
    assert [size is None for _, size in opened] == [False, True]  # model input, then full size
    assert result.info.backend == "wrapped"
    # Without the plugin, auto on CPU is PyAV for both passes (pass_backends), as before.
    with open_video(video, skip=("decord", "wrapped")) as plain:
        assert plain.backend == "pyav"


def test_a_named_backend_may_open_a_folder(checkpoint, video, tmp_path, monkeypatch):
    """``--backend NAME`` hands the input to that backend as it is: a plugin that reads a
    folder (of frames, say) is not refused as "not a file"; ``auto`` still needs a file."""
    import shutil

    import video_lstm.io.decode.reader as reader_module
    from video_lstm.errors import UsageError
    from video_lstm.io.decode import VideoReader, register_backend

    monkeypatch.setattr(reader_module, "_BACKENDS", dict(reader_module._BACKENDS))
    folder = tmp_path / "shots"
    folder.mkdir()
    shutil.copy(video, folder / "only.mp4")

    def open_folder(path, options):  # the folder's one video, as a stand-in for its frames
        return VideoReader(Path(path) / "only.mp4", options, backend="pyav")

    register_backend("folder_video", open_folder)
    settings = AnnotateSettings.from_flat(outputs=["json"], backend="folder_video")
    result = annotate_video(str(folder), str(checkpoint), str(tmp_path / "out"), settings,
                            progress=False)  # fmt: skip
    assert (tmp_path / "out" / "shots.json").is_file() and result.info.num_frames > 0
    with pytest.raises(UsageError, match="shots: video is not a file"):
        annotate_video(str(folder), str(checkpoint), str(tmp_path / "o2"), progress=False)
    with pytest.raises(UsageError, match="nope: video not found"):
        annotate_video(str(tmp_path / "nope"), str(checkpoint), str(tmp_path / "o3"), settings)
