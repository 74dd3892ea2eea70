"""What ``video-lstm watch`` sends out besides ``events.jsonl``: labelled clips cut from a ring
buffer of recent frames, and webhook POSTs. Both bounded, neither ever blocks the decoder.

**Clips** (:class:`ClipRecorder`): the decoder thread keeps the last frames at full resolution
in a ring buffer (``pre_roll_s`` plus how far the decisions lag behind the stream, plus
``max_lag_s``). When a segment opens, its clip starts at ``start - pre_roll`` from the ring;
the clip thread encodes frames only once they are older than the rules' decision delay, so when
the ``end`` event comes (``merge_gap + look-ahead`` after the segment's last frame) nothing past
``end + post_roll`` has been written: the clip holds exactly the frames
``[start - pre_roll, end + post_roll)`` (H.264, faststart, atomic: ``run``'s clip writer and
file names, ``clips/<label>/<stream>_<first>-<last>.mp4``), unless the ring had already let go
of its first frames (a model far behind), then it starts at the oldest frame it still had.

**Webhook** (:class:`Webhook`): one POST of the event's JSON per event, from a thread of its
own with a bounded queue (the oldest waiting event is dropped, and counted, when it is full);
each POST has a timeout and is retried with exponential backoff.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from video_lstm.io.clips import clip_path
from video_lstm.io.video import VideoWriter, pad_even

__all__ = ["ClipRecorder", "Webhook"]


class ClipRecorder:
    """Labelled clips of one stream from a bounded ring buffer (see the module docstring).

    Args:
        folder: The stream's output folder (clips go to ``folder/clips/<label>/``).
        name: The stream name (in the clip file names).
        fps: Stream frame rate.
        pre_roll_s: Seconds of video kept before a segment's first frame.
        post_roll_s: Seconds after its last frame.
        delay_frames: How many frames behind the model's newest frame the decisions may be
            (merge gap + look-ahead + the scorer's delay): frames are encoded only once older.
        ring_frames: Frames the ring buffer holds at most.
    """

    def __init__(self, folder: Path, name: str, fps: float, *, pre_roll_s: float,
                 post_roll_s: float, delay_frames: int, ring_frames: int) -> None:  # fmt: skip
        self.folder, self.name, self.fps = folder, name, fps
        self.pre = int(round(pre_roll_s * fps))
        self.post = int(round(post_roll_s * fps))
        self.delay = delay_frames
        self.ring: deque[tuple[int, np.ndarray]] = deque(maxlen=max(2, ring_frames))
        self.lock = threading.Condition()
        self.decided = -1  # newest frame the model has decided
        self.last_frame = -1  # newest frame in the ring
        self.tasks: deque[dict[str, Any]] = deque()
        self.written: list[str] = []
        self.recent: deque[dict[str, Any]] = deque(maxlen=20)  # for the live page
        self.closing = False
        self.thread = threading.Thread(target=self._loop, name=f"clips-{name}", daemon=True)
        self.thread.start()

    # ---------------------------------------------------------------- producers

    def add_frame(self, index: int, frame: np.ndarray) -> None:
        """Decoder thread: a decoded full-resolution frame."""
        with self.lock:
            self.ring.append((index, frame))
            self.last_frame = index
            self.lock.notify_all()

    def on_event(self, event: dict[str, Any], decided: int) -> None:
        """Model thread: a ``start`` opens a clip, an ``end`` fixes where it stops."""
        with self.lock:
            self.decided = max(self.decided, decided)
            if event["event"] == "start":
                self.tasks.append({"segment": event["segment"], "label": event["label"],
                                   "lo": max(0, event["start_frame"] - self.pre), "hi": None,
                                   "next": None, "writer": None, "start": event["start_frame"]})  # fmt: skip
            else:
                for task in self.tasks:
                    if task["segment"] == event["segment"] and task["hi"] is None:
                        end = event["end_frame"]
                        # No post-roll across a lost stream (the frames after are another
                        # connection's); none without an end frame (a restart).
                        post = 0 if (event.get("reason") or "").startswith("stream") else self.post
                        task["hi"] = (end + post) if end is not None else self.decided + 1
                        task["end"] = end if end is not None else self.decided + 1
            self.lock.notify_all()

    def on_decided(self, decided: int) -> None:
        with self.lock:
            if decided > self.decided:
                self.decided = decided
                self.lock.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Finish the open clips with what the ring has (the stream ended or stopped)."""
        with self.lock:
            self.closing = True
            self.lock.notify_all()
        self.thread.join(timeout)

    # ---------------------------------------------------------------- clip thread

    def _loop(self) -> None:
        while True:
            with self.lock:
                if not self.tasks:
                    if self.closing:
                        return
                    self.lock.wait(0.2)
                    continue
                task = self.tasks[0]
                nxt = task["lo"] if task["next"] is None else task["next"]
                if task["hi"] is None and self.closing:
                    task["hi"] = task["end"] = self.last_frame + 1
                limit = task["hi"] if task["hi"] is not None else self.decided - self.delay
                frames = [(i, f) for i, f in self.ring if nxt <= i < limit]
                done = task["hi"] is not None and (
                    nxt >= task["hi"] or (self.closing and not frames)
                )
                if done:
                    self.tasks.popleft()
                elif not frames:
                    self.lock.wait(0.2)
                    continue
            if done:
                self._finish(task)
                continue
            for i, f in frames:
                self._write(task, i, f)

    def _write(self, task: dict[str, Any], index: int, frame: np.ndarray) -> None:
        if task["writer"] is None:
            h, w = frame.shape[:2]
            task["first"] = index
            task["tmp_path"] = clip_path(self.folder / "clips", task["label"], self.name,
                                         index, index + 1)  # fmt: skip
            task["writer"] = VideoWriter(task["tmp_path"], fps=self.fps, width=w + w % 2,
                                         height=h + h % 2, crf=20)  # fmt: skip
        task["writer"].write(pad_even(frame[None]))
        task["next"] = index + 1

    def _finish(self, task: dict[str, Any]) -> None:
        writer = task["writer"]
        if writer is None:
            return
        writer.close()
        final = clip_path(self.folder / "clips", task["label"], self.name, task["first"],
                          task["next"])  # fmt: skip
        Path(task["tmp_path"]).replace(final)
        self.written.append(str(final))
        self.recent.append({"segment": task["segment"], "label": task["label"],
                            "path": str(final.relative_to(self.folder))})  # fmt: skip


class Webhook:
    """POST each event's JSON to ``url`` from a background thread (see the module docstring).

    Args:
        url: ``http(s)://`` endpoint.
        timeout_s: Per request.
        retries: Attempts per event after the first.
        backoff_s: First retry delay (doubling).
        capacity: Events waiting at most (the oldest is dropped beyond it).
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0, retries: int = 4,
                 backoff_s: float = 0.5, capacity: int = 1000) -> None:  # fmt: skip
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"--webhook must be an http(s):// URL, got {url!r}")
        self.url, self.timeout_s, self.retries, self.backoff_s = url, timeout_s, retries, backoff_s
        self.queue: deque[dict[str, Any]] = deque()
        self.capacity = capacity
        self.cond = threading.Condition()
        self.sent = self.failed = self.dropped = 0
        self.closing = False
        self.sending = False  # an event taken off the queue and not yet answered
        # An opener of its own, with the proxies of the environment as it is now: urlopen's
        # process-wide opener keeps the proxies of whenever it was first used.
        self.opener = urllib.request.build_opener()
        self.thread = threading.Thread(target=self._loop, name="webhook", daemon=True)
        self.thread.start()

    def post(self, event: dict[str, Any]) -> None:
        """Queue ``event`` (never blocks)."""
        with self.cond:
            if len(self.queue) >= self.capacity:
                self.queue.popleft()
                self.dropped += 1
            self.queue.append(event)
            self.cond.notify()

    def _send(self, event: dict[str, Any]) -> bool:
        body = json.dumps(event).encode("utf-8")
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
            try:
                with self.opener.open(req, timeout=self.timeout_s) as resp:
                    if 200 <= resp.status < 300:
                        return True
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if attempt < self.retries and not self.closing:
                time.sleep(delay)
                delay *= 2
        return False

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closing:
                    self.cond.wait(0.5)
                if not self.queue:
                    return
                event = self.queue.popleft()
                self.sending = True
            ok = self._send(event)
            with self.cond:
                self.sending = False
                if ok:
                    self.sent += 1
                else:
                    self.failed += 1

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (for up to ``timeout`` seconds), then stop."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.cond:
                if not self.queue and not self.sending:  # the last event answered too
                    break
            time.sleep(0.05)
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.thread.join(max(0.1, deadline - time.monotonic()))

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped,
                "queued": len(self.queue)}  # fmt: skip
