"""The live page of ``video-lstm watch --serve HOST:PORT``: one self-contained HTML page (no CDN,
no build step) and a small HTTP server on a thread of its own.

- ``/``: per stream, the current label and confidence, a rolling confidence curve (a canvas,
  the last :data:`CURVE_POINTS` sampled steps), the recent events (their clips linked), and the
  annotated preview: an MJPEG stream (``multipart/x-mixed-replace``, which ``<img>`` plays).
- ``/api/status``: the same as JSON (the page polls it every second).
- ``/mjpeg/<stream>``: the preview, at most :data:`PREVIEW_FPS` frames a second, each the
  newest decoded frame with the label and confidence drawn on it.
- ``/files/<stream>/<path>``: the stream's outputs (clips), never outside its folder.

Everything is bounded: the curve and the event list are fixed-length deques, the preview holds
one frame per stream, and a slow viewer only ever gets the newest frame.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CURVE_POINTS", "PREVIEW_FPS", "LivePage", "Preview"]

CURVE_POINTS = 300
PREVIEW_FPS = 5.0
PREVIEW_MAX_SIDE = 480


class Preview:
    """The newest frame of one stream and what the page shows about it."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name, self.folder = name, folder
        self.lock = threading.Lock()
        self.frame: np.ndarray | None = None
        self.index = -1
        self.label: str | None = None
        self.confidence = 0.0
        self.curve: deque[float] = deque(maxlen=CURVE_POINTS)
        self.events: deque[dict[str, Any]] = deque(maxlen=20)
        self.clips: Any = None  # ClipRecorder: its recent clips
        self.sent = 0

    def offer(self, index: int, frame: np.ndarray) -> None:
        """Decoder thread: the newest frame (only a reference is kept)."""
        with self.lock:
            self.frame, self.index = frame, index

    def update(self, label: str | None, confidence: float, stepped: bool) -> None:
        with self.lock:
            self.label, self.confidence = label, confidence
            if stepped:
                self.curve.append(round(confidence, 4))

    def event(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(event)

    def jpeg(self) -> tuple[int, bytes] | None:
        """The newest frame annotated, as JPEG bytes (``None`` before the first frame)."""
        import cv2

        with self.lock:
            frame, index, label, conf = self.frame, self.index, self.label, self.confidence
        if frame is None:
            return None
        h, w = frame.shape[:2]
        scale = min(1.0, PREVIEW_MAX_SIDE / max(h, w))
        img = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if scale < 1.0:
            img = cv2.resize(img, (max(2, int(w * scale)), max(2, int(h * scale))))
        text = f"{label or '-'} {conf:.2f}"
        size = max(0.4, img.shape[0] / 400)
        cv2.putText(img, text, (6, int(22 * size)), cv2.FONT_HERSHEY_SIMPLEX, size,
                    (255, 255, 255), max(1, int(2 * size)), cv2.LINE_AA)  # fmt: skip
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
        return (index, buf.tobytes()) if ok else None

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            clips = list(self.clips.recent) if self.clips is not None else []
            return {
                "name": self.name,
                "frame": self.index,
                "label": self.label,
                "confidence": self.confidence,
                "curve": list(self.curve),
                "events": list(self.events),
                "clips": clips,
                "preview_frames_sent": self.sent,
            }


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>video-lstm watch</title>
<style>
body{font-family:system-ui,sans-serif;margin:1rem;background:#111;color:#eee}
.stream{display:flex;gap:1rem;margin-bottom:1.5rem;flex-wrap:wrap}
.preview{max-width:480px;background:#000}
.label{font-size:1.6rem;font-weight:600}
canvas{background:#222;display:block;margin:.5rem 0}
ul{padding-left:1.2rem;margin:.3rem 0;max-height:14rem;overflow:auto}
a{color:#8cf}
</style></head><body>
<h1>video-lstm watch</h1>
<div id="streams"></div>
<script>
const root = document.getElementById("streams");
const made = {};
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function make(s) {
  const box = el("section", {class: "stream", "data-stream": s.name});
  const img = el("img", {class: "preview", alt: "preview of " + s.name,
                         src: "/mjpeg/" + encodeURIComponent(s.name)});
  const side = el("div");
  side.append(el("h2", {}, s.name), el("div", {class: "label"}),
              el("canvas", {width: 400, height: 100, class: "curve"}),
              el("h3", {}, "Recent events"), el("ul", {class: "events"}));
  box.append(img, side);
  root.append(box);
  return box;
}
function draw(canvas, curve) {
  const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#6c6";
  g.beginPath();
  curve.forEach((v, i) => {
    const x = curve.length > 1 ? i * w / (curve.length - 1) : 0, y = h - v * h;
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
}
async function poll() {
  try {
    const status = await (await fetch("/api/status", {cache: "no-store"})).json();
    for (const s of status.streams) {
      const box = made[s.name] || (made[s.name] = make(s));
      box.querySelector(".label").textContent =
        (s.label || "-") + " " + s.confidence.toFixed(2) + "  (frame " + s.frame + ")";
      draw(box.querySelector(".curve"), s.curve);
      const clips = {};
      for (const c of s.clips) clips[c.segment] = c.path;
      const ul = box.querySelector(".events");
      ul.replaceChildren(...s.events.slice().reverse().map(e => {
        const li = el("li", {"data-segment": e.segment, "data-event": e.event});
        li.textContent = e.event + " " + e.label + " " + e.start_s.toFixed(2) + " s" +
          (e.end_s !== null && e.end_s !== undefined ? " - " + e.end_s.toFixed(2) + " s" : "") +
          " (" + e.score.toFixed(2) + ")" + (e.reason ? " " + e.reason : "");
        if (e.event === "end" && clips[e.segment]) {
          li.append(" ", el("a", {href: "/files/" + encodeURIComponent(s.name) + "/" +
                                   clips[e.segment], class: "clip"}, "clip"));
        }
        return li;
      }));
    }
  } catch (err) { /* the watch stopped: keep the last view */ }
  setTimeout(poll, 1000);
}
poll();
</script></body></html>
"""


class LivePage:
    """The HTTP server of the live page (see the module docstring).

    Args:
        address: ``HOST:PORT`` (``127.0.0.1:8765``; port 0 picks a free one).
        previews: One :class:`Preview` per stream.
    """

    def __init__(self, address: str, previews: list[Preview]) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--serve must be HOST:PORT (e.g. 127.0.0.1:8765), got {address!r}")
        self.previews = {p.name: p for p in previews}
        self.closing = threading.Event()
        page = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: the progress line is the log
                pass

            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                page._get(self)

        self.server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def _send(self, h: Any, code: int, body: bytes, kind: str) -> None:
        h.send_response(code)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Cache-Control", "no-store")
        h.end_headers()
        h.wfile.write(body)

    def _get(self, h: Any) -> None:
        path = urllib.parse.unquote(urllib.parse.urlparse(h.path).path)
        if path in ("/", "/index.html"):
            return self._send(h, 200, _PAGE.encode(), "text/html; charset=utf-8")
        if path == "/api/status":
            body = json.dumps({"streams": [p.to_dict() for p in self.previews.values()]})
            return self._send(h, 200, body.encode(), "application/json")
        parts = path.strip("/").split("/", 2)
        if len(parts) >= 2 and parts[0] == "mjpeg" and parts[1] in self.previews:
            return self._mjpeg(h, self.previews[parts[1]])
        if len(parts) == 3 and parts[0] == "files" and parts[1] in self.previews:
            folder = self.previews[parts[1]].folder.resolve()
            file = (folder / parts[2]).resolve()
            if file.is_file() and folder in file.parents:
                kind = "video/mp4" if file.suffix == ".mp4" else "application/octet-stream"
                return self._send(h, 200, file.read_bytes(), kind)
        self._send(h, 404, b"not found", "text/plain")

    def _mjpeg(self, h: Any, preview: Preview) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        h.send_header("Cache-Control", "no-store")
        h.end_headers()
        last = -1
        try:
            while not self.closing.is_set():
                got = preview.jpeg()
                if got is not None and got[0] != last:
                    last, data = got
                    h.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                  + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n")  # fmt: skip
                    h.wfile.flush()
                    preview.sent += 1
                time.sleep(1.0 / PREVIEW_FPS)
        except (BrokenPipeError, ConnectionResetError):
            return
