"""Causal segment rules: the offline rules of ``inference.segments`` seeing only the past plus a
bounded look-ahead, for live streams.

Offline, :func:`~video_lstm.inference.segments.scores_to_segments` smooths per-frame
probabilities with a centred window, thresholds them, merges same-label runs closer than the
merge gap and drops runs shorter than the minimum duration. Live, the same rules run as frames
arrive (:class:`CausalSegmenter`):

- **smoothing** averages the ``half = round(smoothing_s * fps) // 2`` frames before a frame and
  ``min(half, round(latency_s * fps))`` after it: with ``latency_s >= smoothing_s / 2`` it is
  exactly the offline smoothing (edge-aware at the stream's start, at its end and at a gap);
  less look-ahead makes it lean on the past;
- **threshold** and **background** as offline, per smoothed frame;
- **segments**: a run of one label *opens* (a ``start`` event) once it is ``min_duration_s``
  long, counting same-label stretches merged across gaps shorter than ``merge_gap_s``; it
  *closes* (an ``end`` event) once ``merge_gap_s`` of frames have gone by without its label, or
  when another label's run becomes long enough to open, and ends at its last frame of its label.
  A short run of another label inside a segment is absorbed as a gap, as offline the dropped
  interloper and the second merge do.

Decision delays, in stream time: a frame's smoothed value is known ``look-ahead`` frames after
it; a ``start`` comes ``min_duration_s`` after the action's first frame (plus the look-ahead),
an ``end`` ``merge_gap_s`` after its last (plus the look-ahead). The scorer adds its own delay
before a frame's probabilities are final (``inference.online``). Nothing here holds more than
``half + look-ahead + 1`` frames of probabilities, whatever the stream's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CausalSegmenter", "SegmentEvent"]


@dataclass
class SegmentEvent:
    """A segment opened (``kind == "start"``) or closed (``"end"``).

    Frames are stream-time frame indices (``end_frame`` exclusive); ``decided_frame`` is the
    newest frame the decision had seen (its delay behind the action is the event's latency in
    stream time). ``score`` is the mean smoothed probability of ``label`` over the segment's
    frames so far (gap frames included, as offline). ``reason`` says why an ``end`` came:
    ``"gap"`` (its label stopped), ``"next"`` (another label opened), or the caller's
    (``"stream lost: ..."``, ``"stopped"``, ``"stream ended"``).
    """

    kind: str
    segment: int
    label: str
    score: float
    start_frame: int
    end_frame: int | None
    decided_frame: int
    reason: str | None = None


class _Run:
    """A run of one label: frames ``[start, end)`` whose last frame has the label."""

    __slots__ = ("label", "start", "end", "total", "total_at_end")

    def __init__(self, label: int, start: int, p: float) -> None:
        self.label, self.start, self.end = label, start, start + 1
        self.total = self.total_at_end = p  # sum of the label's probability over the frames

    def score(self) -> float:
        return self.total_at_end / max(1, self.end - self.start)


class CausalSegmenter:
    """Per-frame probabilities in, segment events out (see the module docstring).

    Args:
        class_names: The model's ``K`` classes.
        fps: Stream frame rate.
        threshold: See :func:`~video_lstm.inference.segments.frames_to_segments`.
        smoothing_s: Centred mean smoothing window in seconds (0: off).
        min_duration_s: Shortest segment, in seconds.
        merge_gap_s: Same-label runs closer than this are one segment.
        background: The model's no-action class, if any.
        latency_s: Look-ahead of the smoothing, in seconds.
        first_segment: Number of the first segment (segment ids go on across restarts).
    """

    def __init__(
        self,
        class_names: Sequence[str],
        *,
        fps: float,
        threshold: float = 0.5,
        smoothing_s: float = 0.5,
        min_duration_s: float = 0.5,
        merge_gap_s: float = 0.25,
        background: str | None = None,
        latency_s: float = 0.5,
        first_segment: int = 1,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s}")
        self.names = list(class_names)
        if background is not None and background not in self.names:
            raise ValueError(f"background class {background!r} is not one of {self.names}")
        self.fps, self.threshold = float(fps), float(threshold)
        self.background = self.names.index(background) if background is not None else -1
        self.half = int(round(smoothing_s * fps)) // 2
        self.ahead = min(self.half, int(round(latency_s * fps)))
        eps = 1e-9  # as frames_to_segments: 0.5 s at 30 fps is 15 frames, not 14.99
        self.max_gap = merge_gap_s * fps - eps
        self.min_len = min_duration_s * fps - eps
        self.next_segment = first_segment
        self._raw = np.zeros((0, len(self.names)))  # frames [raw_lo, raw_lo + len) unsmoothed
        self._raw_lo = 0  # stream frame of _raw[0]
        self._seg_lo = 0  # first frame of the current connection (smoothing stops at gaps)
        self._done = 0  # frames smoothed and decided so far
        self.open: _Run | None = None
        self._open_id = 0
        self._cand: _Run | None = None
        self._tail = False  # whether _cand is the open segment's last run
        self.current: tuple[int, float] = (-1, 0.0)  # label and confidence of the newest frame

    @property
    def delay_frames(self) -> int:
        """Frames of look-ahead before a frame is decided."""
        return self.ahead

    # ---------------------------------------------------------------- input

    def push(self, first_frame: int, probs: np.ndarray) -> list[SegmentEvent]:
        """Per-frame probabilities ``(n, K)`` of frames ``first_frame .. first_frame + n - 1``
        (consecutive with what came before, or after a :meth:`flush`); returns the events."""
        probs = np.asarray(probs, dtype=np.float64).reshape(-1, len(self.names))
        if len(self._raw) == 0:
            self._raw_lo = first_frame
            if self._done < first_frame:
                self._done = first_frame
        elif first_frame != self._raw_lo + len(self._raw):
            raise ValueError(
                f"frames must be consecutive: got {first_frame}, expected "
                f"{self._raw_lo + len(self._raw)}"
            )
        self._raw = np.concatenate([self._raw, probs])
        return self._decide(self._raw_lo + len(self._raw) - self.ahead)

    def flush(self, reason: str | None = None) -> list[SegmentEvent]:
        """Decide every frame still waiting for look-ahead (the stream ended or was lost there:
        the smoothing stops at its edge, as offline at a video's end). With ``reason``, also
        close the open segment with it; the next :meth:`push` may start anywhere later."""
        events = self._decide(self._raw_lo + len(self._raw))
        if reason is not None:
            events += self.close(reason, self._done - 1)
            self._cand = None
        self._seg_lo = self._raw_lo + len(self._raw)
        self._raw = self._raw[:0]
        return events

    def close(self, reason: str, decided: int | None = None) -> list[SegmentEvent]:
        """Close the open segment (if any) at its last frame with ``reason``; ``decided``: the
        newest frame seen (default: the last decided one)."""
        if self.open is None:
            return []
        run, self.open = self.open, None
        self._tail = False
        return [self._event("end", run, self._done - 1 if decided is None else decided, reason)]

    # ---------------------------------------------------------------- decisions

    def _decide(self, upto: int) -> list[SegmentEvent]:
        """Smooth and decide frames ``[self._done, upto)``.

        Each frame's window is ``[f - half, f + ahead]``, cut at the connection's first frame
        and at the newest frame, so a result never depends on how frames were batched."""
        events: list[SegmentEvent] = []
        hi_all = self._raw_lo + len(self._raw)
        if upto <= self._done:
            return events
        csum = np.concatenate([np.zeros((1, self._raw.shape[1])), np.cumsum(self._raw, axis=0)])
        for f in range(self._done, upto):
            lo = max(f - self.half, self._seg_lo, self._raw_lo)
            hi = min(f + self.ahead + 1, hi_all)
            p = (csum[hi - self._raw_lo] - csum[lo - self._raw_lo]) / (hi - lo)
            events += self._frame(f, p)
        self._done = upto
        # Keep the frames later smoothing windows still read.
        keep = max(self._done - self.half, self._raw_lo)
        if keep > self._raw_lo:
            self._raw = self._raw[keep - self._raw_lo :]
            self._raw_lo = keep
        return events

    def _frame(self, f: int, p: np.ndarray) -> list[SegmentEvent]:
        """One smoothed frame. ``_cand`` is the run the offline first merge is building (same
        label, across gaps shorter than the merge gap, never across another label); a run that
        reaches the minimum duration is kept: it joins the open segment when it has its label
        and starts within the merge gap of its end (the offline second merge), else it opens a
        new one. The open segment closes once no run that could still join it is possible."""
        k = int(p.argmax())
        conf = float(p[k])
        label = k if conf >= self.threshold and k != self.background else -1
        self.current = (label, conf)
        events: list[SegmentEvent] = []
        open_, cand = self.open, self._cand
        if open_ is not None:
            open_.total += float(p[open_.label])
        if cand is not None:
            cand.total += float(p[cand.label])
        if label >= 0:
            if (
                cand is not None
                and cand.label == label
                and (f == cand.end or f - cand.end < self.max_gap)
            ):
                cand.end, cand.total_at_end = f + 1, cand.total
            else:
                cand = self._cand = _Run(label, f, float(p[label]))
                self._tail = False
            if open_ is not None and self._tail:
                open_.end, open_.total_at_end = cand.end, open_.total
            elif cand.end - cand.start >= self.min_len:
                if (
                    open_ is not None
                    and open_.label == cand.label
                    and cand.start - open_.end < self.max_gap
                ):
                    open_.end, open_.total_at_end = cand.end, open_.total  # second merge
                else:
                    if open_ is not None:
                        events += self.close("next", f)
                    self.open = _Run(cand.label, cand.start, 0.0)
                    self.open.end = cand.end
                    self.open.total = self.open.total_at_end = cand.total
                    self._open_id = self.next_segment
                    self.next_segment += 1
                    events.append(self._event("start", self.open, f, None))
                self._tail = True
        open_, cand = self.open, self._cand
        if open_ is not None and open_.end <= f and f + 1 - open_.end >= self.max_gap:
            could_join = (
                cand is not None
                and not self._tail
                and cand.label == open_.label
                and cand.start - open_.end < self.max_gap
                and (cand.end == f + 1 or f + 1 - cand.end < self.max_gap)
            )
            if not could_join:
                events += self.close("gap", f)
        return events

    def _event(self, kind: str, run: _Run, decided: int, reason: str | None) -> SegmentEvent:
        return SegmentEvent(
            kind=kind,
            segment=self._open_id,
            label=self.names[run.label],
            score=run.score(),
            start_frame=run.start,
            end_frame=run.end if kind == "end" else None,
            decided_frame=decided,
            reason=reason,
        )

    def seconds(self, frame: int) -> float:
        """Stream time of ``frame``."""
        return frame / self.fps
