"""The frame index (which decoded frame is frame ``i``) and the per-process cache of probed files.

Frame ``i`` is the ``i``-th frame that ``ffmpeg -i F -map 0:v -f null -`` decodes. Every frame
is identified by a *key* of the packet it comes from (its dts, byte position or pts, whichever
is unique in the file). An :class:`Index` is either *predicted* from the packets (the shown
packets in presentation order) or *measured* by decoding from the start (``exact``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["NO_TS", "Index", "ProbeCache", "measured_seek", "predicted_index"]

NO_TS = np.iinfo(np.int64).min  # a packet with neither dts nor pts


@dataclass
class Index:
    """Which decoded frame is frame ``i``: ``keys[i]`` is the key of the packet it comes from.

    ``exact``: measured by decoding from the start (what FFmpeg shows, by definition); else
    predicted from the packets. ``seek``: ``(frame index, seek timestamp)`` of keyframes,
    ascending; decoding from that timestamp yields frames ``>= frame index`` correctly.
    """

    keys: np.ndarray  # (num_frames,) int64
    exact: bool
    seek: list[tuple[int, int]]
    lookup: dict[int, int] = field(init=False)

    seek_frames: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.lookup = {int(k): i for i, k in enumerate(self.keys.tolist())}
        self.seek_frames = np.asarray([f for f, _ in self.seek], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.keys)


def predicted_index(
    pts: list[int | None],
    keyframe: list[bool],
    discard: list[bool],
    packet_keys: np.ndarray,
    packet_ts: np.ndarray,
) -> Index:
    """The index the packets predict: shown packets in presentation-timestamp order.

    Args:
        pts: Presentation timestamp per packet, decode order (unique among shown packets).
        keyframe: Keyframe flag per packet.
        discard: Whether an edit list discards the packet.
        packet_keys: Key per packet.
        packet_ts: Seek timestamp per packet (dts, else pts).
    """
    shown = [i for i in range(len(pts)) if not discard[i]]
    shown_pts = np.asarray([pts[i] for i in shown], dtype=np.int64)
    order = np.argsort(shown_pts, kind="stable")
    sorted_pts = shown_pts[order]
    seek = []
    for i in range(len(pts)):
        if keyframe[i] and pts[i] is not None:
            first_shown = int(np.searchsorted(sorted_pts, pts[i], side="left"))
            if first_shown < len(sorted_pts):
                seek.append((first_shown, int(packet_ts[i])))
    return Index(packet_keys[shown][order], exact=False, seek=_monotone(seek))


def _monotone(seek: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Seek points sorted by frame index, keeping for each index the latest keyframe."""
    best: dict[int, int] = {}
    for frame, ts in seek:
        best[frame] = ts if frame not in best else max(best[frame], ts)
    return sorted(best.items())


def measured_seek(
    keys: np.ndarray,
    packet_keys: np.ndarray,
    packet_keyframe: np.ndarray,
    packet_ts: np.ndarray,
) -> list[tuple[int, int]]:
    """Seek points of a measured index: a keyframe's own frame index and its timestamp.

    Args:
        keys: The measured index's keys (frame ``i`` comes from packet ``keys[i]``).
        packet_keys: Key per packet, decode order.
        packet_keyframe: Keyframe flag per packet.
        packet_ts: Seek timestamp per packet (``NO_TS`` when it has none).
    """
    lookup = {int(k): i for i, k in enumerate(keys.tolist())}
    seek = []
    for key, is_key, ts in zip(
        packet_keys.tolist(), packet_keyframe.tolist(), packet_ts.tolist(), strict=True
    ):
        frame = lookup.get(key)
        if is_key and frame is not None and ts != NO_TS:
            seek.append((frame, int(ts)))
    # A seek point must not come after a later frame's keyframe in frame order.
    out: list[tuple[int, int]] = []
    for frame, ts in sorted(seek):
        if not out or (frame > out[-1][0] and ts > out[-1][1]):
            out.append((frame, ts))
    return out


class ProbeCache:
    """Probes of recently opened files, with their (predicted or measured) index.

    The pipeline opens each video twice, a training set many times; a measured index must
    not be measured again. Keyed by (resolved path, size, mtime) so that a rewritten file is
    probed afresh; bounded by files and by packets held (about 100 bytes each with the index,
    so hour-long videos cannot grow it to gigabytes). Thread-safe.
    """

    def __init__(self, max_files: int = 128, max_packets: int = 1_000_000) -> None:
        self.max_files = max_files
        self.max_packets = max_packets
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: Hashable, probe: Any) -> None:
        """Keep ``probe`` (anything with ``packet_keys``), dropping the oldest beyond the bounds."""
        with self._lock:
            self._items[key] = probe
            held = sum(len(p.packet_keys) for p in self._items.values())
            while len(self._items) > 1 and (
                len(self._items) > self.max_files or held > self.max_packets
            ):
                held -= len(self._items.popitem(last=False)[1].packet_keys)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
