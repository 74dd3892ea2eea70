"""``video-lstm watch``: annotate live streams while they play, events as they happen.

One pass per stream, online: a decoder thread per source (``video_lstm.io.live``) hands every
``frame_interval``-th frame to a bounded queue; the model loop takes the sampled frames of all
streams, runs the CNN once per frame (batched across streams), then the temporal model
(``inference.online``: state carried from step to step, or the offline windows), then the
causal segment rules (``inference.causal``); events go to ``OUT/<stream>/events.jsonl``.

Bounded everywhere (memory stays flat for hours): the queue holds at most ``max_lag_s`` of
sampled frames; the scorer keeps one window of features, the rules ``smoothing + look-ahead``
frames of probabilities; ``status.json`` holds counters, not histories.

**Drop policy.** Frames between the sampled ones never reach the model queue. A live source
(a URL, a webcam, a file with ``realtime``) is never waited for: when the model falls behind
and the queue is full (``max_lag_s`` worth of sampled frames) or its oldest frame is older than
``max_lag_s``, the oldest *queued* half is dropped at once, in one stretch (never every other
frame: a recurrent model needs consecutive steps); frames the scorer has already taken (the
open window's) are never dropped. The scorer then finishes what it has and restarts after the
hole; an open segment stays open across it (it closes by the merge-gap rule if the action is
over). Drops are counted in the progress line and ``status.json``. A plain file (no
``realtime``) is a replay: the decoder waits for the model instead and nothing is dropped.

**Faults.** A lost stream is reopened with exponential backoff for ``reconnect_s``; the open
segment is closed with the reason (``stream lost: ...``) and the scorer starts afresh on the new
connection. SIGINT/SIGTERM close the open segments (``stopped``), flush, and return normally
(exit 0). At the end, ``segments.json`` holds the run's segments in ``annotate``'s result
layout, for ``video-lstm evaluate --predictions``. Every event is one ``os.write`` of one whole line on an ``O_APPEND`` file descriptor,
so the file parses after a ``kill -9``; a restart continues the event and segment numbers and
closes a segment the killed run left open (``reason: "watch restarted"``) instead of repeating it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from video_lstm.errors import UsageError
from video_lstm.io.checks import require_checkpoint, require_output_dir
from video_lstm.io.files import write_json
from video_lstm.io.live import (
    Gap,
    LiveFrame,
    LiveOptions,
    LiveSource,
    check_source,
    stream_name,
)

__all__ = ["EventLog", "WatchSummary", "read_sources", "watch"]

_STATES = ("auto", "carry", "windows")


def read_sources(path: str | Path) -> list[str]:
    """The sources of a ``--sources`` list: one per line; blank lines and ``#`` comments skipped."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: sources list not found")
    out = [ln.split("#", 1)[0].strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    out = [s for s in out if s]
    if not out:
        raise UsageError(f"{path}: sources list is empty")
    return out


class EventLog:
    """``events.jsonl`` of one stream: one whole line per event, appended and flushed.

    A line is written with a single ``os.write`` on an ``O_APPEND`` descriptor, so it is never
    interleaved or half-written by a crash of this process (short of a full disk). On open, the
    existing file gives the next event and segment numbers, and a ``start`` without its ``end``
    (a run killed with a segment open) is closed with ``reason: "watch restarted"``.
    """

    def __init__(self, path: Path, *, stream: str, run: str) -> None:
        self.path, self.stream, self.run = path, stream, run
        self.next_id, self.next_segment = 1, 1
        dangling: dict[int, dict[str, Any]] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a full disk: skipped, never rewritten
                self.next_id = max(self.next_id, int(ev.get("id", 0)) + 1)
                seg = int(ev.get("segment", 0))
                self.next_segment = max(self.next_segment, seg + 1)
                if ev.get("event") == "start":
                    dangling[seg] = ev
                elif ev.get("event") == "end":
                    dangling.pop(seg, None)
        self.count = 0
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            os.write(self.fd, b"\n")  # end a cut line, so that it stays one bad line
        for ev in dangling.values():
            self.write({**ev, "event": "end", "end_frame": None, "end_s": None,
                        "reason": "watch restarted", "run": run})  # fmt: skip

    def write(self, event: dict[str, Any]) -> dict[str, Any]:
        event = {"id": self.next_id, **{k: v for k, v in event.items() if k != "id"}}
        event["wall"] = time.time()
        self.next_id += 1
        os.write(self.fd, (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8"))
        self.count += 1
        return event

    def close(self) -> None:
        os.close(self.fd)


class _FrameQueue:
    """The bounded queue decoder -> model of one stream (the drop policy: module docstring)."""

    def __init__(self, capacity: int, max_lag_s: float, *, drop: bool, wake: threading.Event):
        self.capacity, self.max_lag_s, self.drop = capacity, max_lag_s, drop
        self.items: deque[Any] = deque()
        self.cond = threading.Condition()
        self.dropped = 0
        self.wake = wake

    def _frames(self) -> int:
        return sum(isinstance(x, LiveFrame) for x in self.items)

    def _drop_oldest_half(self) -> None:
        frames = [i for i, x in enumerate(self.items) if isinstance(x, LiveFrame)]
        n = max(1, len(frames) // 2)
        cut = set(frames[:n])
        kept = deque(x for i, x in enumerate(self.items) if i not in cut)
        first = self.items[frames[0]]
        kept.appendleft(_Hole(first.index, n))
        self.items = kept
        self.dropped += n

    def put(self, item: Any, stop: threading.Event) -> None:
        with self.cond:
            if isinstance(item, LiveFrame):
                if self.drop:
                    oldest = next((x for x in self.items if isinstance(x, LiveFrame)), None)
                    late = oldest is not None and time.time() - oldest.wall > self.max_lag_s
                    if self._frames() >= self.capacity or late:
                        self._drop_oldest_half()
                else:
                    while self._frames() >= self.capacity and not stop.is_set():
                        self.cond.wait(0.1)
            self.items.append(item)
        self.wake.set()

    def take(self, n: int) -> list[Any]:
        """Up to ``n`` sampled frames, with the markers before and between them."""
        out: list[Any] = []
        with self.cond:
            taken = 0
            while self.items and taken < n:
                x = self.items.popleft()
                out.append(x)
                taken += isinstance(x, LiveFrame)
            self.cond.notify_all()
        return out

    def __len__(self) -> int:
        with self.cond:
            return self._frames()


@dataclass
class _Hole:
    """``count`` sampled frames from ``index`` on were dropped (the model fell behind)."""

    index: int
    count: int


@dataclass
class _End:
    """The source ended for good; ``index``: one past its last frame."""

    index: int
    reason: str


@dataclass
class StreamStats:
    """Counters of one stream (``status.json``; the progress line)."""

    name: str
    source: str
    state: str = "connecting"
    fps: float = 0.0
    frames: int = 0
    sampled: int = 0
    scored: int = 0
    dropped: int = 0
    lag_s: float = 0.0
    max_lag_seen_s: float = 0.0
    first_wall: float | None = None  # wall time the first frame was decoded
    connections: int = 0
    corrupt_packets: int = 0
    events: int = 0
    label: str | None = None
    confidence: float = 0.0
    open_segment: dict[str, Any] | None = None
    steps_per_s: float = 0.0
    clips: int = 0
    webhook: dict[str, int] | None = None
    last_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


class _Stream:
    """One source: its decoder thread, queue, scorer, rules and event log."""

    def __init__(self, source: str, name: str, out: Path, live: LiveSource, args: Any) -> None:
        self.source, self.name, self.live = source, name, live
        self.dir = out / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stats = StreamStats(name=name, source=source, fps=live.fps,
                                 connections=live.connections)  # fmt: skip
        self.args = args
        self.wake = args["wake"]
        k = args["interval"]
        self.k = k
        capacity = max(4, int(args["max_lag_s"] * live.fps / k))
        drop = live.kind != "file" or live.options.realtime
        self.queue = _FrameQueue(capacity, args["max_lag_s"], drop=drop, wake=self.wake)
        self.thread = threading.Thread(target=self._decode, name=f"decode-{name}", daemon=True)
        self.ended = False
        self.scorer: Any = None
        self.rules: Any = None
        self.log: EventLog | None = None
        self.clips: Any = None  # pipelines.live_outputs.ClipRecorder with --clips
        self.webhook: Any = None  # pipelines.live_outputs.Webhook with --webhook
        self.preview: Any = None  # pipelines.live_page.Preview with --serve
        self._steps: deque[int] = deque()  # frame index of each step since the scorer's reset
        self._pushed = 0  # frames handed to the rules so far (the next frame to push)
        self._conn_lo: int | None = 0  # first frame of the next stretch (None: after a hole)
        self._fresh = True  # the next sampled frame starts a stretch
        self._t_rate = (time.monotonic(), 0)

    # -------------------------------------------------------------- decoder thread

    def _decode(self) -> None:
        stop = self.args["stop"]
        last = 0
        try:
            for item in self.live.frames(stop):
                if isinstance(item, Gap):
                    self.queue.put(item, stop)
                    self.stats.last_error = item.reason
                    self.stats.connections = self.live.connections
                    continue
                last = item.index + 1
                self.stats.frames = last
                if self.stats.first_wall is None:
                    self.stats.first_wall = item.wall
                if self.clips is not None and item.full is not None:
                    self.clips.add_frame(item.index, item.full)
                if self.preview is not None and item.full is not None:
                    self.preview.offer(item.index, item.full)
                if item.index % self.k == 0:
                    self.stats.sampled += 1
                    self.queue.put(item, stop)
            reason = "stopped" if stop.is_set() else "stream ended"
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not hang the model loop
            reason = f"stream lost: {exc}"
        self.stats.corrupt_packets = self.live.corrupt_packets
        self.queue.put(_End(last, reason), stop)

    # -------------------------------------------------------------- model side

    def _event(self, ev: Any) -> None:
        assert self.log is not None
        fps = self.live.fps
        rec = {
            "event": ev.kind,
            "segment": ev.segment,
            "stream": self.name,
            "label": ev.label,
            "score": round(ev.score, 4),
            "start_frame": ev.start_frame,
            "start_s": round(ev.start_frame / fps, 3),
            "end_frame": ev.end_frame,
            "end_s": None if ev.end_frame is None else round(ev.end_frame / fps, 3),
            "decided_frame": ev.decided_frame,
            "decided_s": round(ev.decided_frame / fps, 3),
            "reason": ev.reason,
            "run": self.args["run"],
        }
        written = self.log.write(rec)
        if self.clips is not None:
            self.clips.on_event(written, ev.decided_frame)
        if self.webhook is not None:
            self.webhook.post(written)
        if self.preview is not None:
            self.preview.event(written)
        self.stats.events = self.log.count
        if ev.kind == "start":
            self.stats.open_segment = {"segment": ev.segment, "label": ev.label,
                                       "start_s": rec["start_s"]}  # fmt: skip
        else:
            self.stats.open_segment = None

    def _rules_push(self, upto: int, probs: np.ndarray) -> None:
        """Frames ``[self._pushed, upto)`` take ``probs`` (they belong to one step)."""
        if upto > self._pushed:
            n = upto - self._pushed
            for ev in self.rules.push(self._pushed, np.broadcast_to(probs, (n, len(probs)))):
                self._event(ev)
            self._pushed = upto
        label, conf = self.rules.current
        self.stats.label = self.rules.names[label] if label >= 0 else None
        self.stats.confidence = round(conf, 4)
        if self.preview is not None:
            self.preview.update(self.stats.label, self.stats.confidence, stepped=True)

    def _steps_out(self, out: list[tuple[int, np.ndarray]], *, last_frame: int | None) -> None:
        """Final steps of the scorer -> per-frame probabilities for the rules. A step owns the
        frames nearest to it (``data.sampling.window_frame_spans``); with ``last_frame`` the
        last one runs on to it (the stretch ended)."""
        half = self.k // 2
        for n, (_, probs) in enumerate(out):
            frame = self._steps.popleft()
            end = frame - half + self.k
            if last_frame is not None and n == len(out) - 1 and not self._steps:
                end = max(end, last_frame)
            self._rules_push(end, probs)
            self.stats.scored += 1

    def _end_stretch(self, last_frame: int, reason: str | None) -> None:
        """The stretch of consecutive steps ended at ``last_frame`` (exclusive)."""
        self._steps_out(self.scorer.finish(), last_frame=last_frame)
        self._steps.clear()
        self.scorer.reset()
        if self._pushed < last_frame and reason is not None:
            self._pushed = last_frame  # frames no step scored (a tail after the last step)
        for ev in self.rules.flush(reason):
            self._event(ev)
        if reason is not None:
            self._pushed = last_frame

    def handle(self, items: list[Any], feats: list[Any]) -> None:
        """Markers and sampled frames from the queue, in order; ``feats``: the CNN features
        of the frames among them (same order)."""
        fi = 0
        for item in items:
            if isinstance(item, LiveFrame):
                self.stats.state = "running"
                if self._fresh:  # the first step of a stretch owns the frames before it too
                    lo = item.index - self.k // 2 if self._conn_lo is None else self._conn_lo
                    self._pushed = max(self._pushed, lo)
                    self._fresh = False
                self._steps.append(item.index)
                lag = time.time() - item.wall
                self.stats.lag_s = round(lag, 3)
                self.stats.max_lag_seen_s = max(self.stats.max_lag_seen_s, self.stats.lag_s)
                self._steps_out(self.scorer.push(feats[fi]), last_frame=None)
                fi += 1
            elif isinstance(item, _Hole):
                self.stats.dropped = self.queue.dropped
                last = self._steps[-1] + self.k - self.k // 2 if self._steps else self._pushed
                self._end_stretch(last, None)
                self._conn_lo, self._fresh = None, True
            elif isinstance(item, Gap):
                self._end_stretch(item.index, item.reason)
                self._conn_lo, self._fresh = item.index, True
                self.stats.state = "reconnecting"
            elif isinstance(item, _End):
                self._end_stretch(max(item.index, self._pushed), item.reason)
                self.ended = True
                self.stats.state = "ended"
        if self.clips is not None:
            self.clips.on_decided(self.rules._done - 1)
        now = time.monotonic()
        t0, s0 = self._t_rate
        if now - t0 >= 2.0:
            self.stats.steps_per_s = round((self.stats.scored - s0) / (now - t0), 2)
            self._t_rate = (now, self.stats.scored)

    def write_result(self, class_names: list[str], info: dict[str, Any]) -> None:
        """``segments.json``: this run's closed segments in the result JSON layout of
        ``annotate`` (what ``video-lstm evaluate --predictions OUT`` scores), from the events."""
        assert self.log is not None
        segments = []
        for line in self.log.path.read_text(encoding="utf-8").splitlines():
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (
                ev.get("run") == self.args["run"]
                and ev.get("event") == "end"
                and ev.get("end_frame")
            ):
                segments.append({k: ev[k] for k in ("start_frame", "end_frame", "label", "score",
                                                    "start_s", "end_s", "reason")})  # fmt: skip
        path = self.source if self.live.kind != "file" else str(Path(self.source).resolve())
        write_json(self.dir / "segments.json", {
            "video": {"path": path, "num_frames": self.stats.frames, "fps": self.live.fps},
            "model": {"class_names": class_names, "checkpoint": info["checkpoint"]},
            "settings": {"watch": info},
            "segments": segments,
        })  # fmt: skip

    def stop(self, reason: str) -> None:
        """Close what is open (the command stops)."""
        if not self.ended:
            last = self._steps[-1] + self.k - self.k // 2 if self._steps else self._pushed
            self._end_stretch(last, reason)
            self.ended = True
            self.stats.state = "stopped"


@dataclass
class WatchSummary:
    """What ``watch`` did: per stream counters, where the outputs are, the exit code."""

    out_dir: str
    streams: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # --engine ray: streams given up

    def format(self) -> str:
        lines = []
        for s in self.streams:
            lines.append(
                f"{s['name']}: {s['frames']} frames, {s['scored']} steps scored, "
                f"{s['dropped']} dropped, {s['events']} events ({s['state']})"
            )
        lines += [f"{name}: given up: {why}" for name, why in self.failed.items()]
        return "\n".join(lines)


def _install_signals(stop: threading.Event) -> list[tuple[int, Any]]:
    """SIGINT/SIGTERM set ``stop`` (the main loop closes segments and returns)."""
    saved = []
    if threading.current_thread() is not threading.main_thread():
        return saved
    for sig in (signal.SIGINT, signal.SIGTERM):
        saved.append((sig, signal.signal(sig, lambda *_: stop.set())))
    return saved


def watch(
    source: str,
    checkpoint: str,
    out_dir: str,
    *,
    sources: str | None = None,
    realtime: bool = False,
    follow: bool = False,
    state: str = "auto",
    reset_steps: int = 0,
    latency_s: float = 0.5,
    reconnect_s: float = 10.0,
    open_timeout_s: float = 5.0,
    max_lag_s: float = 5.0,
    rtsp_listen: bool = False,
    ffmpeg_options: dict[str, str] | None = None,
    stride: int | None = None,
    threshold: float | None = None,
    smoothing_s: float | None = None,
    min_duration_s: float | None = None,
    merge_gap_s: float | None = None,
    background: str | None = None,
    duration_s: float | None = None,
    status_every_s: float = 2.0,
    runtime: str = "torch",
    device: str = "auto",
    threads: int | None = 1,
    clips: bool = False,
    pre_roll_s: float = 2.0,
    post_roll_s: float = 2.0,
    webhook: str | None = None,
    serve: str | None = None,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
) -> WatchSummary:
    """Annotate live streams as they play: events while they happen, in ``OUT/<stream>/``.

    Each stream is decoded once; every ``frame_interval``-th frame goes through the CNN once,
    then the temporal model (its state carried from step to step, or the offline windows), then
    the checkpoint's segment rules made causal. ``OUT/<stream>/events.jsonl`` gets a ``start``
    event as a segment opens and an ``end`` event as it closes (id, segment, label, score,
    start/end in stream seconds and frames, wall-clock time, reason); ``status.json`` (every
    ``status_every_s``) has the counters: frames, dropped, lag, steps/s, the current label.

    Args:
        source: A URL (``rtsp://``, ``rtmp://``, ``srt://``, ``udp://``, ``tcp://``,
            ``http(s)://`` incl. HLS ``.m3u8``), a webcam (``/dev/video0`` or ``0``) or a file;
            ``-`` with ``sources``.
        checkpoint: Model checkpoint (its clip length, frame interval and calibrated rules).
        out_dir: Output folder; one subfolder per stream.
        sources: A text file of sources, one per line (several streams in one process: the
            model loads once, the CNN batches frames across streams).
        realtime: Files: play at the file's own frame rate (a replay; a test).
        follow: Files: a file still being written (read to its end, wait, go on; MPEG-TS,
            Matroska or fragmented MP4).
        state: ``windows`` (the offline windowed scorer: the same scores as ``annotate``),
            ``carry`` (the recurrent state carried step to step: 1/4 of the temporal cost, but a
            model trained on short windows localises worse so; see the README) or ``auto``
            (``windows``).
        reset_steps: ``carry``: restart the state every this many sampled steps (0: never).
        latency_s: Look-ahead the causal rules may wait for (seconds of stream time); at least
            half the smoothing window gives the offline smoothing exactly.
        reconnect_s: Keep reopening a lost (or, at start, unopenable) source this long, with
            exponential backoff; 0: do not. At start, a source still not open after it is an
            error (exit code 2).
        open_timeout_s: How long one open or read may block before the stream counts as lost.
        max_lag_s: How far behind the stream the model may fall before queued frames are
            dropped (see the drop policy in the module docstring).
        rtsp_listen: ``rtsp://``: wait for a publisher to push (``ffmpeg -f rtsp URL``) instead
            of connecting to a server.
        ffmpeg_options: FFmpeg protocol/demuxer options, e.g. ``{rtsp_transport: tcp}`` or, for
            HLS, ``{live_start_index: "0"}`` (start at the playlist's first segment).
        stride: ``windows``: window stride in steps (default ``clip_len // 4``).
        threshold: Segment rule (``None``: the checkpoint's calibrated value, else the default).
        smoothing_s: Segment rule, as ``threshold``.
        min_duration_s: Segment rule, as ``threshold``.
        merge_gap_s: Segment rule, as ``threshold``.
        background: The no-action class (``None``: the checkpoint's).
        duration_s: Stop after this many seconds of wall-clock time (``None``: when the
            sources end, or on SIGINT/SIGTERM).
        status_every_s: Seconds between ``status.json`` refreshes and progress lines.
        runtime: ``torch`` (a checkpoint) or ``onnx`` (ONNX Runtime, no torch: a model from
            ``video-lstm export``, or a checkpoint exported on the fly; ``carry`` then runs its
            step graph), as ``annotate --runtime``.
        device: ``auto``, ``cpu`` or ``cuda``.
        threads: CPU threads of the model (``None``: the idle cores).
        clips: Write a labelled clip of every segment, ``clips/<label>/<stream>_<a>-<b>.mp4``
            (H.264, faststart), cut from a bounded ring buffer of recent frames.
        pre_roll_s: Seconds of video before the segment in its clip.
        post_roll_s: Seconds after it.
        webhook: POST every event's JSON to this URL (a background thread; retried with
            backoff; never blocks the decoder).
        serve: ``HOST:PORT`` of a live page (current label and confidence, a rolling
            confidence curve, recent events with their clips, an MJPEG preview), e.g.
            ``127.0.0.1:8765``.
        engine: ``local`` (this process) or ``ray``: groups of streams on Ray actors (the
            ``run`` engine's cluster module), a lost actor's streams restarted on another
            (``pipelines.watch_ray``).
        workers: ``ray``: actors (default: one per stream).
        ray_address: ``ray``: a running cluster (``auto``, ``ray://host:10001``); ``None``
            starts a local Ray.
        progress: Print a progress line every ``status_every_s`` on stderr.

    Returns:
        A :class:`WatchSummary`.

    Raises:
        UsageError: A missing checkpoint or source list, an output folder that is a file.
        SourceError: A source that cannot be opened within ``reconnect_s`` (checked before
            the model loads).
    """
    from video_lstm.inference.settings import SegmentRules

    if state not in _STATES:
        raise UsageError(f"--state must be one of {list(_STATES)}, got {state!r}")
    if latency_s < 0 or max_lag_s <= 0 or status_every_s <= 0:
        raise UsageError("latency_s must be >= 0, max_lag_s and status_every_s > 0")
    if sources is not None and source not in ("-", ""):
        raise UsageError("give either SOURCE or --sources LIST.txt, not both (SOURCE '-')")
    if webhook is not None and not webhook.lower().startswith(("http://", "https://")):
        raise UsageError(f"--webhook must be an http(s):// URL, got {webhook!r}")
    if serve is not None and not serve.rpartition(":")[2].isdigit():
        raise UsageError(f"--serve must be HOST:PORT (e.g. 127.0.0.1:8765), got {serve!r}")
    srcs = read_sources(sources) if sources is not None else [source]
    require_checkpoint(checkpoint)
    out = require_output_dir(out_dir)
    options = LiveOptions(realtime=realtime, follow=follow, reconnect_s=reconnect_s,
                          open_timeout_s=open_timeout_s, rtsp_listen=rtsp_listen,
                          ffmpeg_options={str(k): str(v) for k, v in (ffmpeg_options or {}).items()})  # fmt: skip
    for s in srcs:
        check_source(s, options)
    if engine not in ("local", "ray"):
        raise UsageError(f"--engine must be local or ray, got {engine!r}")
    names = _unique_names(srcs)
    run_kwargs = dict(state=state, reset_steps=reset_steps, latency_s=latency_s,
                      max_lag_s=max_lag_s, stride=stride,
                      rules=SegmentRules(threshold, smoothing_s, min_duration_s, merge_gap_s,
                                         background),
                      duration_s=duration_s, status_every_s=status_every_s, device=device,
                      runtime=runtime, threads=threads, progress=progress, clips=clips,
                      pre_roll_s=pre_roll_s, post_roll_s=post_roll_s, webhook=webhook,
                      serve=serve)  # fmt: skip
    stop = threading.Event()
    saved = _install_signals(stop)
    try:
        if engine == "ray":
            from pipelines.watch_ray import watch_on_ray

            streams, lost = watch_on_ray(watch_sources, srcs, names, checkpoint, out, options,
                                         run_kwargs, stop=stop, workers=workers,
                                         address=ray_address)  # fmt: skip
            return WatchSummary(str(out), streams, 1 if lost else 0, failed=lost)
        return watch_sources(srcs, names, checkpoint, out, options, run_kwargs, stop=stop)
    finally:
        for sig, handler in saved:
            signal.signal(sig, handler)


def watch_sources(
    srcs: list[str],
    names: list[str],
    checkpoint: str,
    out: Path,
    options: LiveOptions,
    run_kwargs: dict[str, Any],
    *,
    stop: threading.Event,
) -> WatchSummary:
    """Open ``srcs`` (retrying for ``options.reconnect_s``), then load the model and watch them
    until they end or ``stop`` is set (the body of :func:`watch`; a Ray actor runs it for its
    group of streams)."""
    # The sources open first: a wrong URL is reported before the model loads.
    lives = []
    for s in srcs:
        live = LiveSource(s, LiveOptions(**{**options.__dict__}))
        live.open(stop)
        lives.append(live)
    return _run(lives, names, checkpoint, out, stop=stop, **run_kwargs)


def _unique_names(sources: list[str]) -> list[str]:
    names: list[str] = []
    for s in sources:
        base, n = stream_name(s), 2
        name = base
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def _run(lives, names, checkpoint, out, *, stop, state, reset_steps, latency_s, max_lag_s,
         stride, rules, duration_s, status_every_s, device, threads, progress, runtime="torch",
         clips=False,
         pre_roll_s=2.0, post_roll_s=2.0, webhook=None, serve=None) -> WatchSummary:  # fmt: skip
    from video_lstm.inference.causal import CausalSegmenter
    from video_lstm.inference.online import OnlineScorer, supports_carry
    from video_lstm.inference.runtime import load_predictor
    from video_lstm.inference.settings import AnnotateSettings
    from video_lstm.threads import apply_threads

    apply_threads(threads, set_torch=runtime == "torch")
    settings = AnnotateSettings.from_flat(runtime=runtime, device=device, threads=threads)
    predictor = load_predictor(checkpoint, settings)
    meta = predictor.meta
    resolved = rules.resolve(getattr(meta, "segment_rules", None))
    # auto: carry only for a model adapted to it (training.stream_adapt); one trained on short
    # windows from a zero state localises far worse with its state carried (README).
    adapted = "stream_adapted" in (getattr(meta, "extra", None) or {})
    mode = (
        ("carry" if adapted and supports_carry(predictor) else "windows")
        if state == "auto"
        else state
    )
    if mode == "carry" and not supports_carry(predictor):
        raise UsageError(f"{checkpoint}: --state carry needs a recurrent, one-directional "
                         "temporal model (lstm, gru, convlstm, convgru); use --state windows")  # fmt: skip
    if stride is not None and not 1 <= stride <= meta.clip_len:
        raise UsageError(f"--stride must be in 1..clip_len ({meta.clip_len}), got {stride}")
    for live in lives:
        live.options.size = getattr(meta, "decode_size", None) or meta.frame_size
        live.options.keep_full = clips or serve is not None
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"
    hook = None
    if webhook is not None:
        from pipelines.live_outputs import Webhook

        hook = Webhook(webhook)
    wake = threading.Event()
    args = {"stop": stop, "wake": wake, "interval": meta.frame_interval, "max_lag_s": max_lag_s,
            "run": run_id}  # fmt: skip
    streams = []
    for live, name in zip(lives, names, strict=True):
        st = _Stream(live.source, name, out, live, args)
        st.scorer = OnlineScorer(predictor, mode=mode, stride=stride, reset_steps=reset_steps)
        st.log = EventLog(st.dir / "events.jsonl", stream=name, run=run_id)
        st.rules = CausalSegmenter(
            predictor.class_names,
            fps=live.fps,
            threshold=resolved.threshold,
            smoothing_s=resolved.smoothing_s,
            min_duration_s=resolved.min_duration_s,
            merge_gap_s=resolved.merge_gap_s,
            background=resolved.background,
            latency_s=latency_s,
            first_segment=st.log.next_segment,
        )
        st.stats.state = "running"
        if clips:
            from pipelines.live_outputs import ClipRecorder

            k, fps = meta.frame_interval, live.fps
            # Decisions come at most merge gap + min duration (a deferred close) after a frame.
            delay = int(resolved.merge_gap_s * fps) + int(resolved.min_duration_s * fps) + 2
            ring = int((pre_roll_s + max_lag_s + latency_s + 1.0) * fps) + delay + k * meta.clip_len
            st.clips = ClipRecorder(st.dir, name, fps, pre_roll_s=pre_roll_s,
                                    post_roll_s=post_roll_s, delay_frames=delay, ring_frames=ring)  # fmt: skip
        if hook is not None:
            st.webhook = hook
        if serve is not None:
            from pipelines.live_page import Preview

            st.preview = Preview(name, st.dir)
            st.preview.clips = st.clips
        streams.append(st)
    info = {
        "checkpoint": str(checkpoint),
        "scoring": mode,
        "rules": {**resolved.__dict__, "latency_s": latency_s},
        "frame_interval": meta.frame_interval,
        "clip_len": meta.clip_len,
        "run": run_id,
    }
    page = None
    if serve is not None:
        from pipelines.live_page import LivePage

        page = LivePage(serve, [st.preview for st in streams])
        info["page"] = page.url
        print(f"watch: live page at {page.url}", file=sys.stderr, flush=True)
    for st in streams:
        st.thread.start()
    t_start = time.monotonic()
    next_status = t_start
    batch = max(1, predictor.frame_batch)
    try:
        while True:
            if duration_s is not None and time.monotonic() - t_start >= duration_s:
                stop.set()
            if stop.is_set() or all(st.ended for st in streams):
                break
            wake.clear()
            work = [(st, st.queue.take(batch)) for st in streams if not st.ended]
            frames = [x.image for _, items in work for x in items if isinstance(x, LiveFrame)]
            feats = _features(predictor, frames) if frames else []
            at = 0
            for st, items in work:
                n = sum(isinstance(x, LiveFrame) for x in items)
                if items:
                    st.handle(items, feats[at : at + n])
                at += n
            now = time.monotonic()
            if now >= next_status:
                _status(out, streams, info, progress)
                next_status = now + status_every_s
            if not any(items for _, items in work):
                wake.wait(0.05)
    finally:
        stop.set()
        for st in streams:
            st.stop("stopped")
        for st in streams:
            st.thread.join(timeout=max(2.0, lives[0].options.open_timeout_s + 1))
            st.live.close()
            if st.clips is not None:
                st.clips.close()
                st.stats.clips = len(st.clips.written)
            if st.log is not None:
                st.write_result(predictor.class_names, info)
                st.log.close()
        if hook is not None:
            hook.close()
            for st in streams:
                st.stats.webhook = hook.stats()
        if page is not None:
            page.close()
        _status(out, streams, info, progress)
    return WatchSummary(str(out), [st.stats.to_dict() for st in streams], 0)


def _features(predictor: Any, frames: list[np.ndarray]) -> list[Any]:
    """CNN features of sampled frames from any streams: one batch per frame shape."""
    out: list[Any] = [None] * len(frames)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, f in enumerate(frames):
        by_shape.setdefault(f.shape, []).append(i)
    for idx in by_shape.values():
        feats = predictor.features(np.stack([frames[i] for i in idx]))
        for j, i in enumerate(idx):
            out[i] = feats[j]
    return out


def _status(out: Path, streams: list[_Stream], info: dict[str, Any], progress: bool) -> None:
    """``status.json`` per stream folder and one for the run; the progress line."""
    for st in streams:
        st.stats.dropped = st.queue.dropped
        st.stats.corrupt_packets = st.live.corrupt_packets
        st.stats.connections = st.live.connections
        write_json(st.dir / "status.json", {**info, **st.stats.to_dict(), "time": time.time()})
    if len(streams) > 1:
        write_json(out / "status.json", {**info, "time": time.time(),
                                         "streams": [st.stats.to_dict() for st in streams]})  # fmt: skip
    if progress:
        parts = [
            f"{s.name}: {s.stats.frames} frames, lag {s.stats.lag_s:.1f} s, "
            f"{s.stats.dropped} dropped, {s.stats.steps_per_s:.1f} steps/s, "
            f"{s.stats.events} events, {s.stats.label or '-'} {s.stats.confidence:.2f}"
            for s in streams
        ]
        print("watch " + " | ".join(parts), file=sys.stderr, flush=True)
