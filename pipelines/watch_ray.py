"""``video-lstm watch --engine ray``: groups of streams on Ray actors, a lost actor's streams
restarted on another.

The streams are dealt round-robin into ``workers`` groups (default: one stream each). Each group
runs on an actor that loads the model once and watches its streams exactly as ``--engine
local`` does (:func:`pipelines.watch.watch_sources`: same folders, events, clips, status), so
the outputs of a Ray run and a local run look the same. The driver (this process) only waits:

- an actor that dies (killed, out of memory, its node lost) has its group started again on a
  new actor, up to ``max_restarts`` times; the restarted watch appends to the same
  ``events.jsonl``, continues its numbers and closes the segment the lost actor left open
  (``reason: "watch restarted"``), as any restart does;
- SIGINT/SIGTERM (or ``duration_s``) stop every actor: each closes its open segments
  (``stopped``) and returns.

Actors need the checkpoint and the output folder at the same paths (one host, or a shared
filesystem) and this package importable; network sources must be reachable from their nodes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from video_lstm.cluster import ray_session

__all__ = ["watch_on_ray"]


class _WatchActor:
    """A Ray actor: watches one group of streams until they end or :meth:`stop` is called."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def run(self, body, srcs, names, checkpoint, out, options, run_kwargs) -> list[dict[str, Any]]:
        summary = body(srcs, names, checkpoint, Path(out), options, run_kwargs, stop=self._stop)
        return summary.streams

    def stop(self) -> None:
        self._stop.set()


def watch_on_ray(
    body: Callable[..., Any],
    srcs: list[str],
    names: list[str],
    checkpoint: str,
    out: Path,
    options: Any,
    run_kwargs: dict[str, Any],
    *,
    stop: threading.Event,
    workers: int | None = None,
    address: str | None = None,
    max_restarts: int = 3,
) -> Any:
    """Watch ``srcs`` on Ray actors (see the module docstring).

    Args:
        body: What each actor runs on its group, ``pipelines.watch.watch_sources`` (passed in,
            so that this module and ``pipelines.watch`` do not import each other).
        srcs: The sources, and their output ``names``.
        names: Output folder name of each source.
        checkpoint: The model.
        out: The output folder.
        options: ``LiveOptions``.
        run_kwargs: The watch options (``pipelines.watch._run``'s).
        stop: Set to stop every actor.
        workers: Actors (default: one per stream).
        address: A Ray cluster to join (``None``: a local Ray).
        max_restarts: Restarts of one group before its streams are given up.

    Returns:
        ``(streams, failed)``: every stream's counters (with ``restarts``), and the streams
        given up (name -> reason; ``watch`` exits 1 then).
    """
    n = max(1, min(workers or len(srcs), len(srcs)))
    groups = [list(range(len(srcs)))[g::n] for g in range(n)]
    threads = run_kwargs.get("threads") or 1
    duration_s = run_kwargs.get("duration_s")
    run_kwargs = {**run_kwargs, "duration_s": None}  # the driver keeps time
    with ray_session(address) as ray:
        actor_cls = ray.remote(num_cpus=threads, max_concurrency=2)(_WatchActor)
        running: dict[Any, tuple[int, Any]] = {}
        restarts = [0] * n
        results: dict[int, list[dict[str, Any]]] = {}
        failed: dict[int, str] = {}

        def start(g: int) -> None:
            actor = actor_cls.options(name=f"watch-{g}-{restarts[g]}").remote()
            idx = groups[g]
            ref = actor.run.remote(body, [srcs[i] for i in idx], [names[i] for i in idx],
                                   str(checkpoint), str(out), options, run_kwargs)  # fmt: skip
            running[ref] = (g, actor)

        for g in range(n):
            start(g)
        t0, stopping = time.monotonic(), False
        while running:
            if duration_s is not None and time.monotonic() - t0 >= duration_s:
                stop.set()
            if stop.is_set() and not stopping:
                stopping = True
                for _, actor in running.values():
                    actor.stop.remote()
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                g, _actor = running.pop(ref)
                try:
                    results[g] = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    if stopping or restarts[g] >= max_restarts:
                        failed[g] = str(exc).splitlines()[0]
                        continue
                    restarts[g] += 1
                    start(g)
    streams = []
    for g in sorted(results):
        for s in results[g]:
            streams.append({**s, "restarts": restarts[g]})
    lost = {names[i]: reason for g, reason in failed.items() for i in groups[g]}
    return streams, lost
