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
import signal
import socket
import subprocess
import sys
import threading
import time
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


def test_watch_on_onnx_runtime_gives_the_torch_events(blocks, ckpt, offline, tmp_path):
    """``--runtime onnx`` with an exported model: windows as annotate, and ``carry`` through
    the export's step graph with the torch runtime's events."""
    from video_lstm.inference.export import export_onnx

    model = export_onnx(ckpt, tmp_path / "model.onnx").encoder
    got = {}
    for runtime, m, state in (("onnx", model, "windows"), ("onnx", model, "carry"),
                              ("torch", ckpt, "carry")):  # fmt: skip
        out = tmp_path / f"{runtime}_{state}"
        watch(str(blocks), str(m), str(out), state=state, latency_s=0.2, reconnect_s=0,
              device="cpu", runtime=runtime, progress=False, **RULES)  # fmt: skip
        got[runtime, state] = ends(read_events(out / "blocks" / "events.jsonl"))
    assert got["onnx", "windows"] == [
        (s["start_frame"], s["end_frame"], s["label"]) for s in offline
    ]
    assert got["onnx", "carry"] == got["torch", "carry"] and got["torch", "carry"]


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


def test_watch_unopenable_source_is_one_line_exit_2(ckpt, tmp_path, capsys):
    from pipelines.cli import main

    port = free_port()  # nothing listens there
    code = main(
        ["watch", f"tcp://127.0.0.1:{port}", str(ckpt), str(tmp_path), "--reconnect_s", "0"]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("video-lstm watch: error: tcp://127.0.0.1")
    assert "cannot open" in lines[0]
    code = main(["watch", str(tmp_path / "nope.mp4"), str(ckpt), str(tmp_path)])
    assert code == 2 and "source not found" in capsys.readouterr().err
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


def _start_publisher(video: Path, *out: str, tries: int = 40, **kw) -> Publisher:
    """A publisher pushing to a reader that listens (UDP, RTSP): retried until the reader is
    up (ffmpeg exits at once while nothing listens on an RTSP port)."""
    for _ in range(tries):
        pub = Publisher(video, *out, **kw)
        try:
            pub.proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            return pub
        time.sleep(0.25)
    raise AssertionError(f"the publisher did not start: {pub.proc.stderr.read()!r}")


def _run_stream(protocol: str, video: Path, ckpt: Path, out: Path, **kw) -> tuple[dict, list]:
    """Publish ``video`` in real time over ``protocol`` and watch it to its end."""
    opts = dict(state="windows", latency_s=0.2, reconnect_s=0, open_timeout_s=3, device="cpu",
                progress=False, **RULES)  # fmt: skip
    opts.update(kw)
    server = None
    if protocol == "tcp":
        port = free_port()
        pub = Publisher(video, "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1")
        opts["reconnect_s"] = max(opts["reconnect_s"], 3)  # until ffmpeg listens
        t, box = _watch_in_thread(f"tcp://127.0.0.1:{port}", str(ckpt), str(out), **opts)
    elif protocol == "udp":
        port = free_port(socket.SOCK_DGRAM)
        t, box = _watch_in_thread(f"udp://127.0.0.1:{port}", str(ckpt), str(out), **opts)
        time.sleep(1.0)  # the reader binds the port before the first packet
        pub = Publisher(video, "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316")
    elif protocol == "rtsp":
        port = free_port()
        url = f"rtsp://127.0.0.1:{port}/live"
        opts.update(rtsp_listen=True, open_timeout_s=20)
        t, box = _watch_in_thread(url, str(ckpt), str(out), **opts)
        pub = _start_publisher(video, "-f", "rtsp", url)
    elif protocol == "hls":
        folder = out / "hls_server"
        folder.mkdir()
        pub = Publisher(video, "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
                        "-hls_flags", "temp_file", str(folder / "s.m3u8"))  # fmt: skip
        server, port = _serve(folder)
        for _ in range(200):
            if (folder / "s.m3u8").is_file():
                break
            time.sleep(0.05)
        opts["ffmpeg_options"] = {"live_start_index": "0"}
        opts["reconnect_s"] = 2  # an ended playlist reopens as a replay: nothing new, no repeat
        t, box = _watch_in_thread(f"http://127.0.0.1:{port}/s.m3u8", str(ckpt), str(out), **opts)
    else:
        raise ValueError(protocol)
    try:
        t.join(timeout=120)
        assert not t.is_alive(), "watch did not end"
    finally:
        pub.kill()
        if server is not None:
            server.shutdown()
    if "error" in box:
        raise box["error"]
    folder = next(p for p in out.iterdir() if (p / "events.jsonl").is_file())
    return box["summary"].streams[0], read_events(folder / "events.jsonl")


@pytest.mark.parametrize(
    "protocol",
    ["tcp", *(pytest.param(p, marks=[pytest.mark.slow, pytest.mark.ci]) for p in ("udp", "rtsp", "hls"))],
)  # fmt: skip
def test_watch_stream_matches_annotate(protocol, blocks, ckpt, offline, tmp_path):
    """A stream published in real time: annotate's segments of the same file, each boundary
    within two sampled steps (a reader joining a stream may miss its first frames)."""
    stats, events = _run_stream(protocol, blocks, ckpt, tmp_path)
    assert stats["frames"] >= 90
    matches(offline, events, tol=4)
    assert stats["sampled"] == stats["scored"] + stats["dropped"]


# ------------------------------------------------------------------------------- faults


def _segments_closed_once(events: list[dict]) -> None:
    """Every segment has one start and one end, ids only grow, nothing is written twice."""
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    by_seg: dict[int, list[str]] = {}
    for e in events:
        by_seg.setdefault(e["segment"], []).append(e["event"])
    assert all(kinds == ["start", "end"] for kinds in by_seg.values()), by_seg


def test_watch_reconnects_after_the_publisher_is_killed(ckpt, tmp_path):
    """The publisher dies mid-stream and comes back: the open segment is closed with the
    reason, the stream is reopened (two connections), stream time goes on, nothing repeats."""
    video = write_blocks(tmp_path / "long.mp4", 3.0, block_s=3.0)  # one red stretch
    port = free_port()
    out = tmp_path / "out"
    pub = Publisher(video, "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1")
    t, box = _watch_in_thread(f"tcp://127.0.0.1:{port}", str(ckpt), str(out), state="windows",
                              latency_s=0.2, reconnect_s=3, open_timeout_s=2, device="cpu",
                              progress=False, **RULES)  # fmt: skip
    try:
        events_file = out / f"127.0.0.1_{port}" / "events.jsonl"
        for _ in range(400):  # until the segment is open
            if events_file.is_file() and events_file.read_text().strip():
                break
            time.sleep(0.05)
        pub.kill()
        time.sleep(0.5)
        pub = Publisher(video, "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1")
        t.join(timeout=120)
        assert not t.is_alive()
    finally:
        pub.kill()
    if "error" in box:
        raise box["error"]
    stats = box["summary"].streams[0]
    assert stats["connections"] == 2
    events = read_events(events_file)
    _segments_closed_once(events)
    lost = [e for e in events if e["event"] == "end" and e["reason"].startswith("stream")]
    assert lost, events
    first_end = lost[0]
    later = [e for e in events if e["id"] > first_end["id"] and e["event"] == "start"]
    assert later and all(e["start_frame"] >= first_end["end_frame"] for e in later)
    assert events[-1]["event"] == "end"


def test_frame_queue_drops_the_oldest_stretch(tmp_path):
    """The drop policy: a full queue drops its oldest half in one stretch, marks the hole,
    keeps the newest frames in order and counts the drops."""
    from pipelines.watch import _FrameQueue, _Hole
    from video_lstm.io.live import LiveFrame

    q = _FrameQueue(4, max_lag_s=60, drop=True, wake=threading.Event())
    stop = threading.Event()
    img = np.zeros((2, 2, 3), np.uint8)
    for i in range(10):
        q.put(LiveFrame(i, i / 25, time.time(), img, None, 1), stop)
    items = q.take(100)
    frames = [x.index for x in items if isinstance(x, LiveFrame)]
    holes = [x for x in items if isinstance(x, _Hole)]
    assert q.dropped == 10 - len(frames) and holes
    assert frames == sorted(frames) and frames[-1] == 9
    assert sum(h.count for h in holes) == q.dropped


def _watch_process(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "watch", *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def _wait_for_open_segment(events_file: Path, proc: subprocess.Popen) -> None:
    for _ in range(1200):
        if events_file.is_file():
            lines = events_file.read_text().splitlines()
            if lines and json.loads(lines[-1])["event"] == "start":
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no segment opened")


def _rules_args() -> list[str]:
    return [a for k, v in RULES.items() for a in (f"--{k}", str(v))]


def test_sigterm_closes_open_segments_and_exits_0(ckpt, tmp_path):
    """A file replayed in real time, stopped with SIGTERM while a segment is open: exit 0,
    the segment closed with reason "stopped", status.json says stopped. (In this process:
    ``video-lstm watch`` through ``pipelines.cli.main``; a thread sends the signal once the
    segment has opened, so the handler is the command's own.)"""
    from pipelines.cli import main

    video = write_blocks(tmp_path / "red.mp4", 8.0, block_s=8.0)
    out = tmp_path / "out"
    events_file = out / "red" / "events.jsonl"
    before = signal.getsignal(signal.SIGTERM)  # another test's library (Ray) may have set one

    def signal_when_open() -> None:
        for _ in range(2400):
            if events_file.is_file() and events_file.read_text().strip():
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)

    threading.Thread(target=signal_when_open, daemon=True).start()
    code = main(["watch", str(video), str(ckpt), str(out), "--realtime", "true", "--device",
                 "cpu", "--state", "windows", "--progress", "false", *_rules_args()])  # fmt: skip
    assert code == 0
    events = read_events(events_file)
    _segments_closed_once(events)
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "stopped"
    assert events[-1]["end_frame"] < 8 * FPS  # stopped before the file's end: real time
    status = json.loads((out / "red" / "status.json").read_text())
    assert status["state"] == "stopped"
    assert signal.getsignal(signal.SIGTERM) is before  # the handler was put back


@pytest.mark.slow
@pytest.mark.ci
def test_kill_9_leaves_whole_lines_and_a_restart_closes_the_segment(ckpt, tmp_path):
    video = write_blocks(tmp_path / "red.mp4", 8.0, block_s=8.0)
    out = tmp_path / "out"
    args = [str(video), str(ckpt), str(out), "--realtime", "true", "--device", "cpu",
            "--state", "windows", *_rules_args()]  # fmt: skip
    proc = _watch_process(*args)
    events_file = out / "red" / "events.jsonl"
    try:
        _wait_for_open_segment(events_file, proc)
        proc.kill()  # SIGKILL: no handler runs
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = read_events(events_file)  # every line parses
    assert before[-1]["event"] == "start"
    proc = _watch_process(*args[:3], "--device", "cpu", "--state", "windows", "--duration_s",
                          "1", *_rules_args())  # fmt: skip
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    after = read_events(events_file)
    assert after[: len(before)] == before
    closed = after[len(before)]
    assert (closed["event"], closed["segment"], closed["reason"]) == (
        "end", before[-1]["segment"], "watch restarted"
    )  # fmt: skip
    _segments_closed_once(after)


@pytest.mark.slow
@pytest.mark.ci
def test_lag_stays_bounded_at_twice_real_time(ckpt, tmp_path):
    """Published at 2x real time on a busy machine: the lag stays near --max_lag_s (a
    generous bound: the machine is shared), every sampled frame is scored or counted dropped."""
    video = write_blocks(tmp_path / "v.mp4", 8.0)
    port = free_port()
    pub = Publisher(video, "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1", speed=2.0)
    try:
        summary = watch(f"tcp://127.0.0.1:{port}", str(ckpt), str(tmp_path), state="windows",
                        reconnect_s=3, open_timeout_s=3, max_lag_s=1.0, device="cpu",
                        progress=False, **RULES)  # fmt: skip
    finally:
        pub.kill()
    s = summary.streams[0]
    assert s["frames"] >= 190
    assert s["sampled"] == s["scored"] + s["dropped"]
    assert s["max_lag_seen_s"] <= 1.0 + 3.0
    events = read_events(next(tmp_path.glob("*/events.jsonl")))
    _segments_closed_once(events)


@pytest.mark.slow
@pytest.mark.ci
def test_follow_a_growing_file(blocks, ckpt, offline, tmp_path):
    """An MPEG-TS file still being written (ffmpeg in real time): --follow reads to its end,
    waits, goes on; the segments are annotate's."""
    ts = tmp_path / "growing.ts"
    pub = Publisher(blocks, "-f", "mpegts", str(ts))
    try:
        for _ in range(200):
            if ts.is_file() and ts.stat().st_size > 2000:
                break
            time.sleep(0.05)
        summary = watch(str(ts), str(ckpt), str(tmp_path / "out"), follow=True, state="windows",
                        latency_s=0.2, reconnect_s=0, device="cpu", progress=False, **RULES)  # fmt: skip
    finally:
        pub.kill()
    assert summary.streams[0]["frames"] == 100
    matches(offline, read_events(tmp_path / "out" / "growing" / "events.jsonl"), tol=0)


# ------------------------------------------------------------------------------- outputs


class _Hooks(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that refuses the first POST (500): the sender must retry."""

    got: list = []
    refused = 0

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if type(self).refused == 0:
            type(self).refused = 1
            self.send_response(500)
        else:
            type(self).got.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_clips_from_the_ring_buffer_and_webhook(blocks, ckpt, offline, tmp_path):
    """Every segment gets a frame-exact clip [start - pre, end + post) (H.264, faststart);
    every event is POSTed once to the webhook, a refused POST retried."""
    import av
    from test_write import is_faststart

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        summary = watch(str(blocks), str(ckpt), str(tmp_path), state="windows", latency_s=0.2,
                        reconnect_s=0, device="cpu", progress=False, clips=True,
                        pre_roll_s=0.2, post_roll_s=0.2,
                        webhook=f"http://127.0.0.1:{server.server_address[1]}/hook", **RULES)  # fmt: skip
    finally:
        server.shutdown()
    pre = post = round(0.2 * FPS)
    clips = sorted((tmp_path / "blocks" / "clips").rglob("*.mp4"))
    want = [(max(0, s["start_frame"] - pre), min(100, s["end_frame"] + post)) for s in offline]
    assert [c.name for c in clips] == [f"blocks_{a:06d}-{b:06d}.mp4" for a, b in want]
    for clip, (a, b) in zip(clips, want, strict=True):
        with av.open(str(clip)) as c:
            assert sum(1 for _ in c.decode(video=0)) == b - a
        assert is_faststart(clip)
    events = read_events(tmp_path / "blocks" / "events.jsonl")
    assert sorted(e["id"] for e in _Hooks.got) == [e["id"] for e in events]
    assert summary.streams[0]["webhook"]["sent"] == len(events)
    assert summary.streams[0]["clips"] == len(clips)


def test_sources_list_watches_several_streams_in_one_process(blocks, ckpt, offline, tmp_path):
    other = write_blocks(tmp_path / "other.mp4", 2.0)
    listing = tmp_path / "sources.txt"
    listing.write_text(f"# two streams\n{blocks}\n\n{other}\n{blocks}\n")
    from pipelines.cli import main

    code = main(["watch", "--sources", str(listing), str(ckpt), str(tmp_path / "out"),
                 "--state", "windows", "--latency_s", "0.2", "--device", "cpu",
                 "--progress", "false", *_rules_args()])  # fmt: skip
    assert code == 0
    folders = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert folders == ["blocks", "blocks_2", "other"]
    for name in ("blocks", "blocks_2"):
        events = read_events(tmp_path / "out" / name / "events.jsonl")
        assert ends(events) == [(s["start_frame"], s["end_frame"], s["label"]) for s in offline]
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert [s["name"] for s in status["streams"]] == ["blocks", "other", "blocks_2"]


def test_live_page_in_chromium(ckpt, tmp_path):
    """The live page in headless Chromium: the MJPEG preview updates (red, then yellow
    frames), the label and the events appear, an end event links its clip. The watch runs in
    this thread (a long real-time replay); the browser's thread stops it with SIGTERM."""
    from pipelines.report_browser import chromium_path, launch_chromium

    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: `make browser` installs it")
        pytest.skip("no chromium: apt-get install chromium")
    pytest.importorskip("playwright.sync_api")
    video = write_blocks(tmp_path / "page.mp4", 60.0, block_s=2.0)
    port = free_port()
    seen: dict = {"colours": []}

    def look() -> None:
        try:
            with launch_chromium() as browser:
                page = browser.new_page()
                for _ in range(300):
                    try:
                        page.goto(f"http://127.0.0.1:{port}/")
                        break
                    except Exception:  # noqa: BLE001 - the server is not up yet
                        time.sleep(0.1)
                page.wait_for_selector("section[data-stream='page'] img.preview", timeout=60000)
                pixel = """() => { const img = document.querySelector('img.preview');
                    if (!img.naturalWidth) return null;
                    const c = document.createElement('canvas'); c.width = 4; c.height = 4;
                    const g = c.getContext('2d'); g.drawImage(img, 0, 0, 4, 4);
                    return Array.from(g.getImageData(2, 2, 1, 1).data.slice(0, 3)); }"""
                colours = seen["colours"]
                for _ in range(600):
                    rgb = page.evaluate(pixel)
                    if rgb is not None:
                        kind = (
                            "red"
                            if rgb[0] > 150 and rgb[1] < 100
                            else "yellow"
                            if rgb[1] > 150
                            else "?"
                        )
                        if not colours or colours[-1] != kind:
                            colours.append(kind)
                    link = page.query_selector("li[data-event='end'] a.clip")
                    if len(set(colours) - {"?"}) == 2 and link:
                        break
                    time.sleep(0.1)
                seen["label"] = page.text_content("section[data-stream='page'] .label")
                seen["link"] = link = page.get_attribute("li[data-event='end'] a.clip", "href")
                seen["clip"] = page.request.get(f"http://127.0.0.1:{port}{link}").body()[:8]
        except Exception as exc:  # noqa: BLE001 - reported by the test
            seen["error"] = exc
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # stops the watch (its handler)

    threading.Thread(target=look, daemon=True).start()
    watch(str(video), str(ckpt), str(tmp_path / "out"), realtime=True, state="windows",
          latency_s=0.2, reconnect_s=0, device="cpu", progress=False, clips=True,
          pre_roll_s=0.1, post_roll_s=0.1, serve=f"127.0.0.1:{port}", **RULES)  # fmt: skip
    if "error" in seen:
        raise seen["error"]
    assert [c for c in seen["colours"] if c != "?"][:2] in (["red", "yellow"], ["yellow", "red"])
    assert "(frame " in seen["label"]
    assert seen["link"].startswith("/files/page/clips/") and seen["clip"][4:8] == b"ftyp"


# ------------------------------------------------------------------------------- carried state


@pytest.mark.slow
@pytest.mark.ci
def test_adapt_stream_then_watch_carries_the_state(tmp_path):
    """``adapt-stream`` fine-tunes the temporal model and head (not the backbone) through the
    step API on the training videos; ``watch --state auto`` then carries the state, and the
    carried scores are what stepping the adapted model gives."""
    import torch

    from video_lstm.data.synthetic import write_untrimmed_dataset
    from video_lstm.models import create_model
    from video_lstm.models.checkpoint import ModelMeta, load_checkpoint, save_checkpoint
    from video_lstm.training.stream_adapt import adapt_for_streaming

    root = write_untrimmed_dataset(tmp_path / "u", videos={"train": 2, "test": 1},
                                   scene="objects", classes=["grow", "shrink"],
                                   actions_per_video=2, frames_per_action=(12, 14),
                                   gap_frames=(6, 8), size=48, workers=1)  # fmt: skip
    torch.manual_seed(0)
    model = create_model("lstm_efficientnet_lite0", num_classes=3, frame_size=48)
    meta = ModelMeta.for_model(model, ["background", "grow", "shrink"], clip_len=4,
                               frame_interval=2, segment_rules={"background": "background"})  # fmt: skip
    ck = save_checkpoint(tmp_path / "m.pt", model, meta)
    out = adapt_for_streaming(str(ck), str(tmp_path / "adapted.pt"), root=str(root),
                              manifest_args={"annotations": "annotations.csv"}, epochs=2,
                              seq_steps=8, threads=1, progress=False)  # fmt: skip
    adapted, ameta = load_checkpoint(out)
    assert ameta.extra["stream_adapted"]["epochs"] == 2
    before, after = model.state_dict(), adapted.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("head."))
    video = next((root / "videos" / "test").glob("*.mp4"))
    summary = watch(str(video), out, str(tmp_path / "w"), reconnect_s=0, device="cpu",
                    progress=False, threshold=0.0)  # fmt: skip
    status = json.loads((tmp_path / "w" / video.stem / "status.json").read_text())
    assert status["scoring"] == "carry"
    assert summary.streams[0]["scored"] == summary.streams[0]["sampled"]


def test_corrupt_packets_do_not_stop_the_stream(blocks, ckpt, tmp_path, capsys):
    """An MPEG-TS stream with bytes destroyed in the middle: decoding goes on past the damage
    to the end (FFmpeg conceals or skips what it cannot decode), the events are written; a
    missing webcam device is one clear line."""
    from pipelines.cli import main

    ts = tmp_path / "damaged.ts"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(blocks),
                    "-c", "copy", "-f", "mpegts", str(ts)], check=True)  # fmt: skip
    data = bytearray(ts.read_bytes())
    rng = np.random.default_rng(0)
    at = int(len(data) * 0.4)
    data[at : at + 3000] = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    ts.write_bytes(bytes(data))
    summary = watch(str(ts), str(ckpt), str(tmp_path / "out"), state="windows", reconnect_s=0,
                    device="cpu", progress=False, **RULES)  # fmt: skip
    stats = summary.streams[0]
    assert stats["state"] == "ended" and 60 <= stats["frames"] <= 100
    events = read_events(tmp_path / "out" / "damaged" / "events.jsonl")
    assert events and events[-1]["event"] == "end"
    code = main(["watch", "/dev/video9", str(ckpt), str(tmp_path / "cam")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no such video device /dev/video9" in err[0]


@pytest.mark.slow
@pytest.mark.ci
def test_engine_ray_restarts_a_lost_actor(ckpt, tmp_path):
    """``--engine ray``: two streams on two actors; one actor is killed while its segment is
    open: its stream starts again on a new actor, the segment it left open is closed
    ("watch restarted"), the other stream is untouched."""
    ray = pytest.importorskip("ray")
    a = write_blocks(tmp_path / "a.mp4", 6.0, block_s=6.0)
    b = write_blocks(tmp_path / "b.mp4", 4.0)
    listing = tmp_path / "sources.txt"
    listing.write_text(f"{a}\n{b}\n")
    out = tmp_path / "out"
    events_a = out / "a" / "events.jsonl"

    def kill_when_open() -> None:
        for _ in range(2400):
            if events_a.is_file() and events_a.read_text().strip():
                ray.kill(ray.get_actor("watch-0-0"))
                return
            time.sleep(0.05)

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    try:
        threading.Thread(target=kill_when_open, daemon=True).start()
        summary = watch("-", str(ckpt), str(out), sources=str(listing), engine="ray",
                        realtime=True, state="windows", latency_s=0.2, reconnect_s=0,
                        device="cpu", progress=False, **RULES)  # fmt: skip
    finally:
        ray.shutdown()
    by_name = {s["name"]: s for s in summary.streams}
    assert by_name["a"]["restarts"] == 1 and by_name["b"]["restarts"] == 0
    events = read_events(events_a)
    _segments_closed_once(events)
    restarted = [e for e in events if e.get("reason") == "watch restarted"]
    assert len(restarted) == 1
    assert len({e["run"] for e in events}) == 2  # the lost actor's run and the new one
    assert read_events(out / "b" / "events.jsonl")
