"""``video-lstm watch``: live sources on loopback, causal rules, events, faults.

Streams are real: the imageio-ffmpeg binary publishes a video the test writes, in real time
(``-re``), over TCP / UDP (MPEG-TS), RTSP (we listen, ffmpeg pushes) and HLS (ffmpeg writes the
playlist, ``http.server`` serves it). The model is an untrained checkpoint whose arg-max class
stays the same while its top probability moves with the colour of the frame: with the
threshold between the two colours' values, red stretches are segments and yellow ones are not,
so annotate and watch have boundaries to agree on. Every wait is bounded and generous: the
machine these run on is shared (8 engineers, 2 cores), so nothing asserts a speed.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from test_annotate import make_checkpoint

from pipelines.watch import EventLog, watch
from video_lstm.inference.annotate import annotate_video
from video_lstm.inference.causal import CausalSegmenter
from video_lstm.inference.segments import frames_to_segments, smooth
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.io.video import VideoWriter

FPS = 25
RED, YELLOW = (250, 20, 20), (240, 240, 20)
# The untrained model's top class ("wave") scores ~0.46 on red and ~0.43 on yellow.
RULES = dict(threshold=0.45, smoothing_s=0.24, min_duration_s=0.2, merge_gap_s=0.0)
REPO = Path(__file__).resolve().parents[1]


def ffmpeg_exe() -> str:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_blocks(path: Path, seconds: float, *, block_s: float = 1.0) -> Path:
    """Red and yellow stretches of ``block_s`` (red first), 64x48, H.264 with a keyframe every
    12 frames (a UDP or HLS reader that joins late decodes from the next one)."""
    n, per = int(seconds * FPS), int(block_s * FPS)
    frames = np.zeros((n, 48, 64, 3), dtype=np.uint8)
    for i in range(n):
        frames[i] = RED if (i // per) % 2 == 0 else YELLOW
    with VideoWriter(path, fps=FPS, width=64, height=48, gop=12) as w:
        w.write(frames)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt", clip_len=6, frame_interval=2)


@pytest.fixture(scope="module")
def blocks(tmp_path_factory) -> Path:
    return write_blocks(tmp_path_factory.mktemp("vid") / "blocks.mp4", 4.0)


@pytest.fixture(scope="module")
def offline(blocks, ckpt, tmp_path_factory) -> list[dict]:
    """``annotate``'s segments of the blocks video under RULES."""
    out = tmp_path_factory.mktemp("annotated")
    settings = AnnotateSettings.from_flat(outputs=["json"], device="cpu", threads=1, **RULES)
    result = annotate_video(str(blocks), str(ckpt), str(out), settings, progress=False)
    segs = [s.to_dict() for s in result.segments]
    assert len(segs) >= 2  # the red stretches
    return segs


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def ends(events: list[dict]) -> list[tuple[int, int, str]]:
    return [(e["start_frame"], e["end_frame"], e["label"]) for e in events if e["event"] == "end"]


def matches(offline: list[dict], events: list[dict], *, tol: int, offset: int = 0) -> None:
    """Every offline segment has an ``end`` event with its label and boundaries within ``tol``
    frames (``offset``: frames of the file before the stream's first decoded frame)."""
    got = [(s + offset, e + offset, lab) for s, e, lab in ends(events) if e is not None]
    assert len(got) == len(offline), (got, offline)
    for seg, (s, e, lab) in zip(offline, got, strict=True):
        assert lab == seg["label"]
        assert abs(s - seg["start_frame"]) <= tol and abs(e - seg["end_frame"]) <= tol, (
            got,
            offline,
        )


# ------------------------------------------------------------------------------- causal rules


def test_causal_rules_equal_offline_with_enough_look_ahead():
    """With look-ahead >= half the smoothing window, the causal rules give annotate's segments
    exactly (frames, labels, scores), whatever the batching of the frames."""
    rng = np.random.default_rng(0)
    names = ["a", "b", "c", "bg"]
    for _ in range(120):
        n = int(rng.integers(20, 250))
        probs, f = np.zeros((n, 4)), 0
        while f < n:
            length, k = int(rng.integers(1, 40)), int(rng.integers(0, 4))
            probs[f : f + length] = rng.dirichlet(np.ones(4) * 0.5)
            probs[f : f + length, k] += rng.uniform(0, 2)
            f += length
        probs /= probs.sum(1, keepdims=True)
        fps = float(rng.choice([10, 25, 30]))
        rules = dict(
            threshold=float(rng.choice([0, 0.3, 0.5])),
            min_duration_s=float(rng.choice([0, 0.25, 1])),
            merge_gap_s=float(rng.choice([0, 0.25, 1])),
            background=rng.choice([None, "bg"]),
        )
        smoothing_s = float(rng.choice([0, 0.25, 0.5, 1]))
        want = frames_to_segments(
            smooth(probs, round(smoothing_s * fps)), fps=fps, class_names=names, **rules
        )
        seg = CausalSegmenter(
            names, fps=fps, smoothing_s=smoothing_s, latency_s=smoothing_s / 2 + 0.01, **rules
        )
        events, pos = [], 0
        while pos < n:
            m = int(rng.integers(1, 9))
            events += seg.push(pos, probs[pos : pos + m])
            pos += m
        events += seg.flush("stream ended")
        got = [(e.start_frame, e.end_frame, e.label, round(e.score, 9)) for e in events
               if e.kind == "end"]  # fmt: skip
        assert got == [(s.start_frame, s.end_frame, s.label, round(s.score, 9)) for s in want]
        starts = [e for e in events if e.kind == "start"]
        assert len(starts) == len(got)
        # A start is decided no later than min duration + look-ahead after the segment began.
        delay = round(rules["min_duration_s"] * fps) + seg.delay_frames + 1
        assert all(e.decided_frame - e.start_frame <= delay for e in starts)


def test_event_log_restart_continues_ids_and_closes_dangling(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, stream="s", run="r1")
    log.write({"event": "start", "segment": 1, "label": "wave", "start_frame": 0})
    log.write({"event": "end", "segment": 1, "label": "wave", "start_frame": 0, "end_frame": 9})
    log.write({"event": "start", "segment": 2, "label": "clap", "start_frame": 20})
    log.close()  # killed with segment 2 open
    with open(path, "ab") as f:
        f.write(b'{"id": 4, "event": "sta')  # a line cut short (a full disk): skipped
    log = EventLog(path, stream="s", run="r2")
    assert (log.next_id, log.next_segment) == (5, 3)  # id 4: the end of segment 2
    log.close()
    lines = path.read_text().splitlines()
    assert lines[-2] == '{"id": 4, "event": "sta'
    closed = json.loads(lines[-1])
    assert closed["id"] == 4
    assert closed["event"] == "end" and closed["segment"] == 2
    assert closed["reason"] == "watch restarted" and closed["run"] == "r2"


# ------------------------------------------------------------------------------- files


def test_watch_file_windows_equals_annotate(blocks, ckpt, offline, tmp_path):
    """``--state windows`` on a file: annotate's window scores, so with enough look-ahead
    annotate's segments exactly; events.jsonl, status.json and segments.json are written."""
    summary = watch(str(blocks), str(ckpt), str(tmp_path), state="windows", latency_s=0.2,
                    reconnect_s=0, device="cpu", progress=False, **RULES)  # fmt: skip
    folder = tmp_path / "blocks"
    events = read_events(folder / "events.jsonl")
    assert ends(events) == [(s["start_frame"], s["end_frame"], s["label"]) for s in offline]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    for e in events:
        assert e["start_s"] == pytest.approx(e["start_frame"] / FPS, abs=1e-3)
        assert e["wall"] > 0 and e["stream"] == "blocks"
    assert [e["event"] for e in events[:2]] == ["start", "end"]
    status = json.loads((folder / "status.json").read_text())
    assert status["frames"] == 100 and status["dropped"] == 0 and status["state"] == "ended"
    result = json.loads((folder / "segments.json").read_text())
    assert [(s["start_frame"], s["end_frame"]) for s in result["segments"]] == [
        (s["start_frame"], s["end_frame"]) for s in offline
    ]
    assert summary.streams[0]["scored"] == 50


def test_watch_restart_appends_new_ids(blocks, ckpt, tmp_path):
    kw = dict(state="windows", reconnect_s=0, device="cpu", progress=False, **RULES)
    watch(str(blocks), str(ckpt), str(tmp_path), **kw)
    first = read_events(tmp_path / "blocks" / "events.jsonl")
    watch(str(blocks), str(ckpt), str(tmp_path), **kw)
    both = read_events(tmp_path / "blocks" / "events.jsonl")
    assert both[: len(first)] == first  # nothing rewritten
    ids = [e["id"] for e in both]
    assert ids == sorted(set(ids))
    segs = [e["segment"] for e in both[len(first) :]]
    assert min(segs) > max(e["segment"] for e in first)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO,
    )  # fmt: skip


def test_watch_unopenable_source_is_one_line_exit_2(ckpt, tmp_path):
    port = free_port()  # nothing listens there
    r = _cli("watch", f"tcp://127.0.0.1:{port}", str(ckpt), str(tmp_path), "--reconnect_s", "0")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("video-lstm watch: error: tcp://127.0.0.1")
    assert "cannot open" in lines[0]
    r = _cli("watch", str(tmp_path / "nope.mp4"), str(ckpt), str(tmp_path))
    assert r.returncode == 2 and "source not found" in r.stderr
    assert not list(tmp_path.rglob("events.jsonl"))


# ------------------------------------------------------------------------------- streams


class Publisher:
    """``ffmpeg -re -i VIDEO -c copy -f FORMAT URL`` in the background (real time)."""

    def __init__(self, video: Path, *out: str, pre: tuple[str, ...] = (), speed: float = 1.0):
        rate = ("-readrate", str(speed)) if speed != 1.0 else ("-re",)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *rate, *pre, "-i",
               str(video), "-c", "copy", *out]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def _watch_in_thread(*args, **kwargs) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run() -> None:
        try:
            box["summary"] = watch(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def _serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _stream(protocol: str, video: Path, tmp: Path):
    """(publisher, url, watch options) for ``protocol``; the watcher must be started (UDP,
    RTSP listen) before or after the publisher as the protocol needs."""
    if protocol == "tcp":
        port = free_port()
        pub = Publisher(video, "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1")
        return pub, f"tcp://127.0.0.1:{port}", {}
    raise ValueError(protocol)


@pytest.mark.parametrize("protocol", ["tcp"])
def test_watch_stream_matches_annotate(protocol, blocks, ckpt, offline, tmp_path):
    """A stream published in real time: the same segments as annotate of the file, within
    one sampled step at each boundary (windows scorer; the stream may start a frame late)."""
    port = free_port()
    pub = Publisher(blocks, "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1")
    try:
        summary = watch(f"tcp://127.0.0.1:{port}", str(ckpt), str(tmp_path), state="windows",
                        latency_s=0.2, reconnect_s=3, open_timeout_s=3, device="cpu",
                        progress=False, **RULES)  # fmt: skip
    finally:
        pub.kill()
    events = read_events(next(tmp_path.glob("*/events.jsonl")))
    matches(offline, [e for e in events if e["reason"] != "stream ended" or e["end_frame"]], tol=2)
    assert summary.streams[0]["frames"] >= 95
