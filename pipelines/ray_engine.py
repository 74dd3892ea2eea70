"""The Ray engine of a folder run: the videos of a run spread over Ray actors (one host or a cluster).

Each worker is a Ray actor that loads the checkpoint once and then does videos one at a time
through the same per-video job API as the local engine (``pipelines.jobs``: claim, ``run_job``,
record), so outputs, claims, resume and the manifest are those of ``--engine local``, and a Ray
run, local runs and other Ray runs can share one output folder. The driver (this process) only
schedules: it hands each idle worker the next video and watches for

- a worker that dies mid-video (killed, out of memory, its node lost): the video goes back to
  the queue and is retried on another worker (the dead worker's claim is taken over at once,
  without waiting for its heartbeat to go stale); a fresh worker replaces the dead one. A video
  whose worker died ``max_attempts`` times is recorded as failed and the run goes on;
- Ctrl-C: the workers are stopped, their claims given back (their videos are done by the next
  run), and ``KeyboardInterrupt`` goes on to the caller.

One progress bar counts videos and frames over all workers; each record names the worker and
host that did the video. Ray is imported only here (``pip install 'video_lstm[ray]'``).

Workers need the videos, the checkpoint and the output folder at the same paths (one host, or a
shared filesystem) and this package installed (or on ``PYTHONPATH``, which local workers
inherit).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.jobs import VideoJob, process_job, write_failed_record
from video_lstm.errors import UsageError
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.io.claims import DEFAULT_STALE_AFTER_S, read_claim

__all__ = ["RayRunResult", "run_jobs_on_ray", "worker_resources"]


def worker_resources(
    cluster: dict[str, float],
    *,
    workers: int | None = None,
    gpus_per_worker: float = 0.0,
    threads: int | None = None,
) -> tuple[int, int, float]:
    """How many workers, and the CPUs (= torch threads) and GPUs of each.

    Defaults: with ``gpus_per_worker`` > 0, as many workers as the cluster's GPUs hold
    (``0.5`` puts two workers, two videos in flight, on each GPU), each with an equal share of
    the CPUs; on CPU, one single-threaded worker per core (videos in parallel scale better than
    threads inside one video on small inputs).

    Args:
        cluster: ``ray.cluster_resources()`` (``"CPU"``, ``"GPU"``).
        workers: Number of workers (default: as above).
        gpus_per_worker: GPUs per worker (fractions share a GPU).
        threads: CPUs per worker (default: as above).

    Returns:
        ``(workers, cpus_per_worker, gpus_per_worker)``.
    """
    cpus, gpus = int(cluster.get("CPU", 1)), float(cluster.get("GPU", 0))
    if gpus_per_worker < 0:
        raise UsageError(f"gpus_per_worker must be >= 0, got {gpus_per_worker}")
    if gpus_per_worker > 0 and gpus < gpus_per_worker:
        raise UsageError(f"gpus_per_worker={gpus_per_worker} but the Ray cluster has {gpus:g} GPUs")
    if workers is None:
        workers = int(gpus // gpus_per_worker) if gpus_per_worker > 0 else cpus // (threads or 1)
    if workers < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    threads = threads or max(1, cpus // workers)
    # Actors that do not fit would wait for resources forever: say so instead.
    if workers * threads > cpus:
        raise UsageError(
            f"{workers} workers x {threads} threads need {workers * threads} CPUs; "
            f"the Ray cluster has {cpus}"
        )
    if workers * gpus_per_worker > gpus + 1e-9:
        raise UsageError(
            f"{workers} workers x {gpus_per_worker:g} GPUs need {workers * gpus_per_worker:g} "
            f"GPUs; the Ray cluster has {gpus:g}"
        )
    return workers, threads, gpus_per_worker


@dataclass
class RayRunResult:
    """What the Ray workers did: the outcome of every video they were given."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # video -> record
    skipped: list[str] = field(default_factory=list)  # complete when a worker got to it
    elsewhere: list[str] = field(default_factory=list)  # held by another live runner
    retried: dict[str, int] = field(default_factory=dict)  # video -> workers lost on it
    workers: list[str] = field(default_factory=list)  # every worker started, in order
    history: list[tuple[str, str, str]] = field(default_factory=list)  # (video, worker, outcome)


class _Progress:
    """Frames done per worker on its current video (the actor the bar reads)."""

    def __init__(self) -> None:
        self.frames: dict[str, int] = {}

    def start(self, worker: str) -> None:
        self.frames[worker] = 0

    def add(self, worker: str, n: int) -> None:
        self.frames[worker] = self.frames.get(worker, 0) + n

    def snapshot(self) -> dict[str, int]:
        return dict(self.frames)


class _Worker:
    """A Ray actor: loads the checkpoint once, then does one video per ``process`` call."""

    def __init__(
        self,
        name: str,
        checkpoint: str,
        settings: dict[str, Any],
        digest: str,
        *,
        threads: int,
        resume: bool,
        started: float,
        stale_after: float,
        progress: Any,
    ) -> None:
        import socket

        from video_lstm.inference.stages import load_predictor
        from video_lstm.threads import apply_threads

        self.settings = AnnotateSettings(**settings)
        self.settings.runtime.threads = threads
        apply_threads(threads, set_torch=self.settings.runtime.runtime == "torch")
        self.digest, self.resume, self.started = digest, resume, started
        self.stale_after, self.progress = stale_after, progress
        self.name = f"{name}@{socket.gethostname()}:{os.getpid()}"
        self.predictor = load_predictor(checkpoint, self.settings)

    def ready(self) -> str:
        """This worker's name (``worker-N@host:pid``) once the model is loaded."""
        return self.name

    def process(self, job: VideoJob, dead_owners: Sequence[str] = ()) -> tuple[str, Any]:
        """Claim and do ``job`` (see ``pipelines.jobs.process_job``)."""
        self.progress.start.remote(self.name)
        return process_job(
            job,
            self.predictor,
            self.settings,
            self.digest,
            owner=self.name,
            resume=self.resume,
            started=self.started,
            stale_after=self.stale_after,
            dead_owners=dead_owners,
            on_frames=lambda n: self.progress.add.remote(self.name, n),
        )


def run_jobs_on_ray(
    jobs: Sequence[VideoJob],
    checkpoint: str | Path,
    settings: AnnotateSettings,
    digest: str,
    *,
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float = 0.0,
    resume: bool = True,
    started: float | None = None,
    stale_after: float = DEFAULT_STALE_AFTER_S,
    max_attempts: int = 3,
    progress: bool = True,
    on_dispatch: Callable[[VideoJob, Any, str], None] | None = None,
) -> RayRunResult:
    """Do ``jobs`` on Ray workers; see the module docstring.

    Args:
        jobs: The videos to do (from ``pipelines.jobs.plan_jobs``).
        checkpoint: The model checkpoint (readable by every worker at this path).
        settings: The annotation settings; ``runtime.threads`` is per worker (its CPUs).
        digest: ``pipelines.jobs.settings_hash(settings, checkpoint)``.
        address: Ray cluster to join (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``);
            default: the Ray session this process has, else a local Ray sized to the machine.
        workers: Number of worker actors (default: see :func:`worker_resources`).
        gpus_per_worker: GPUs per worker; fractions put several workers (videos in flight) on
            one GPU.
        resume: Skip videos that are complete when a worker gets to them.
        started: When the run started (``time.time()``): records finished since then by
            another runner are not redone.
        stale_after: Claim timeout (``video_lstm.io.claims``).
        max_attempts: Workers lost on one video before it is recorded as failed.
        progress: Show the progress bar.
        on_dispatch: Called with ``(job, actor, worker name)`` each time a video is handed to a worker
            (the tests kill that actor mid-video).

    Returns:
        The :class:`RayRunResult`.

    Raises:
        KeyboardInterrupt: After stopping the workers and giving their claims back.
        RuntimeError: No worker could load the model.
    """
    from tqdm.auto import tqdm

    from video_lstm.cluster import ray_session

    if max_attempts < 1:
        raise UsageError(f"max_attempts must be >= 1, got {max_attempts}")
    started = time.time() if started is None else started
    result = RayRunResult()
    if not jobs:
        return result
    with ray_session(address) as ray:
        from ray.exceptions import RayActorError, RayTaskError

        n_workers, cpus, gpus = worker_resources(
            ray.cluster_resources(),
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            threads=settings.runtime.threads,
        )
        n_workers = min(n_workers, len(jobs))
        tracker = ray.remote(num_cpus=0)(_Progress).remote()
        worker_cls = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=0)(_Worker)
        options = {
            "threads": cpus,
            "resume": resume,
            "started": started,
            "stale_after": stale_after,
            "progress": tracker,
        }

        starting: dict[Any, tuple[Any, int]] = {}  # ready() ref -> (actor loading, its index)
        idle: list[tuple[Any, str]] = []  # (actor, name)
        busy: dict[Any, tuple[VideoJob, Any, str]] = {}  # process() ref -> (job, actor, name)

        def start_worker() -> None:
            """A new worker; it joins ``idle`` once its model is loaded (the others go on)."""
            name = f"worker-{len(result.workers)}"
            result.workers.append(name)
            actor = worker_cls.remote(name, str(checkpoint), settings.to_dict(), digest, **options)
            starting[actor.ready.remote()] = (actor, len(result.workers) - 1)

        for _ in range(n_workers):
            start_worker()
        queue: deque[VideoJob] = deque(jobs)
        attempts: dict[str, int] = {}
        dead: dict[str, list[str]] = {}  # job key -> workers that died holding it
        start_errors: list[str] = []
        frames_done = 0
        second_pass = False
        bar = tqdm(total=len(jobs), desc="videos", unit="video", disable=not progress)
        t0 = time.perf_counter()
        try:
            while queue or busy or (not second_pass and result.elsewhere):
                if not queue and not busy:
                    # As the local engine: the videos other runners held are tried once more
                    # (those whose runner died meanwhile are taken over).
                    second_pass = True
                    held = set(result.elsewhere)
                    queue.extend(j for j in jobs if j.rel in held)
                    result.elsewhere.clear()
                    continue
                while queue and idle:
                    job = queue.popleft()
                    actor, name = idle.pop(0)
                    busy[actor.process.remote(job, dead.get(job.key, []))] = (job, actor, name)
                    if on_dispatch is not None:
                        on_dispatch(job, actor, name)
                if not (idle or busy or starting):
                    raise RuntimeError(
                        f"no Ray worker could load {checkpoint}: {'; '.join(start_errors)}"
                    )
                ready, _ = ray.wait([*busy, *starting], num_returns=1, timeout=0.5)
                for ref in ready:
                    if ref in starting:
                        actor, index = starting.pop(ref)
                        try:
                            name = ray.get(ref)
                        except RayActorError as exc:
                            start_errors.append(_last_line(exc))
                        else:
                            result.workers[index] = name  # worker-N@host:pid
                            idle.append((actor, name))
                        continue
                    job, actor, name = busy.pop(ref)
                    try:
                        status, record = ray.get(ref)
                    except (RayActorError, RayTaskError) as exc:
                        # RayActorError: the worker died (killed, out of memory, node lost);
                        # RayTaskError: an error outside the per-video isolation. Either way
                        # the video is retried on another worker, up to max_attempts.
                        result.history.append((job.rel, name, "lost"))
                        lost = attempts[job.key] = attempts.get(job.key, 0) + 1
                        result.retried[job.rel] = lost
                        dead.setdefault(job.key, []).append(name)
                        if lost >= max_attempts:
                            reason = f"gave up after {lost} attempts (last on {name}: "
                            result.records[job.rel] = write_failed_record(
                                job, digest, reason + _last_line(exc) + ")", owner=name
                            )
                            _give_back(job, dead[job.key])
                            bar.update(1)
                        else:
                            queue.appendleft(job)  # to the next idle worker
                        if isinstance(exc, RayActorError):
                            if queue or busy:
                                start_worker()  # a replacement
                        else:
                            idle.append((actor, name))
                        continue
                    idle.append((actor, name))
                    result.history.append((job.rel, name, status))
                    bar.update(1)
                    if status == "elsewhere":
                        result.elsewhere.append(job.rel)
                    elif status == "skipped":
                        result.skipped.append(job.rel)
                    else:
                        result.records[job.rel] = record
                        frames_done += int(record.get("num_frames") or 0)
                in_flight = ray.get(tracker.snapshot.remote())
                busy_names = {name for _, _, name in busy.values()}
                frames = frames_done + sum(n for w, n in in_flight.items() if w in busy_names)
                rate = frames / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix_str(
                    f"{frames} frames, {rate:.0f} frames/s, {len(busy)}/{len(busy) + len(idle)}"
                    " workers busy",
                    refresh=False,
                )
        except KeyboardInterrupt:
            for job, actor, name in busy.values():
                with contextlib.suppress(Exception):
                    ray.kill(actor)
                _give_back(job, [name])
            raise
        finally:
            bar.close()
            for actor in [*(a for a, _ in starting.values()), *(a for a, _ in idle)]:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
    return result


def _give_back(job: VideoJob, owners: Sequence[str]) -> None:
    """Remove the claim on ``job`` if one of ``owners`` (workers stopped or dead) holds it."""
    info = read_claim(job.claim_path)
    if info and info.get("owner") in owners:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(job.claim_path)


def _last_line(exc: BaseException) -> str:
    """An exception's last line (Ray's carry the remote traceback above it)."""
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__
