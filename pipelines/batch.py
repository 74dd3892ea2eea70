"""Annotate a whole folder: the engines over ``pipelines.jobs`` (claims, records, manifest).

``engine="local"`` does the videos in this process; ``engine="ray"`` spreads them over Ray
actors (``pipelines.ray_engine``). Both call ``pipelines.jobs.process_job`` per video, so they
write the same files and can share one output folder.

Layout: ``input_dir/a/b/clip.mp4`` -> ``output_dir/a/b/clip.mp4.json``, ``clip.mp4.csv``, ...
and ``output_dir/a/b/clips/<label>/clip.mp4_<start>-<end>.mp4`` (see ``pipelines.jobs``).
Several runners may share one output folder at once (processes, hosts, Ray actors): each video
is claimed before work, so each is done once; ``output_dir/manifest.json`` is rebuilt from the
per-video records. A video is complete when its record says ``done`` for the same settings hash
and every output it lists exists; ``resume`` skips such videos. One bad video is recorded with
its reason and the run goes on; the summary's ``exit_code`` is 1 when any video failed or the
manifest could not be written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.jobs import (
    DEFAULT_EXTENSIONS,
    VideoJob,
    build_manifest,
    default_owner,
    discover_videos,
    is_complete,
    plan_jobs,
    process_job,
    resolve_inputs,
    settings_hash,
)
from video_lstm.errors import UsageError
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.inference.stages import load_predictor
from video_lstm.io.checks import require_checkpoint, require_output_dir
from video_lstm.io.claims import DEFAULT_STALE_AFTER_S
from video_lstm.io.files import printable

__all__ = [
    "DEFAULT_EXTENSIONS",
    "RunSummary",
    "discover_videos",
    "run_folder",
    "settings_hash",
]


@dataclass
class RunSummary:
    """What a folder run did. ``exit_code`` is 1 when any video failed, else 0."""

    output_dir: str
    manifest: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # video -> reason
    elsewhere: list[str] = field(default_factory=list)  # held by another live runner
    owners: dict[str, str] = field(default_factory=dict)  # video -> who did it (worker@host)
    manifest_error: str | None = None
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.manifest_error else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_dir": self.output_dir,
            "manifest": self.manifest,
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "elsewhere": self.elsewhere,
            "owners": self.owners,
            "manifest_error": self.manifest_error,
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
        }

    def format(self) -> str:
        """Human-readable report: counts, then each failure with its reason."""
        verb = "would annotate" if self.dry_run else "done"
        elsewhere = f", in progress elsewhere: {len(self.elsewhere)}" if self.elsewhere else ""
        lines = [
            f"{verb}: {len(self.done)}, skipped (complete): {len(self.skipped)}, "
            f"failed: {len(self.failed)}{elsewhere}   manifest: {self.manifest}"
        ]
        lines += [f"  FAILED {video}: {reason}" for video, reason in self.failed.items()]
        by_owner: dict[str, list[str]] = {}
        for video, who in self.owners.items():
            by_owner.setdefault(who, []).append(video)
        for who, videos in sorted(by_owner.items()):
            more = f", +{len(videos) - 8} more" if len(videos) > 8 else ""
            lines.append(f"  {who}: {len(videos)} videos ({', '.join(videos[:8])}{more})")
        if self.manifest_error:
            lines.append(f"  MANIFEST NOT WRITTEN: {self.manifest_error}")
        return "\n".join(lines)


def run_folder(
    input_dir: str,
    checkpoint: str,
    output_dir: str,
    settings: AnnotateSettings = AnnotateSettings(),  # noqa: B008 (never mutated; the CLI shows its fields)
    *,
    extensions: list[str] = list(DEFAULT_EXTENSIONS),  # noqa: B006 (a plain default for the CLI)
    recursive: bool = True,
    resume: bool = True,
    dry_run: bool = False,
    limit: int | None = None,
    progress: bool = True,
    claim_timeout_s: float = DEFAULT_STALE_AFTER_S,
    owner: str | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float = 0.0,
) -> RunSummary:
    """Annotate every video in a folder (recursively), mirroring the tree under ``output_dir``.

    Videos whose outputs are complete for the same settings and checkpoint are skipped
    (``resume``); a video that cannot be read is recorded with the reason and the run goes on.
    Any number of runs may share ``output_dir`` at once: each video is claimed before work
    and done by one of them (``pipelines.jobs``). ``output_dir/manifest.json`` (settings +
    per-video records) is rebuilt from the records at the start and the end of each run.

    Args:
        input_dir: Folder with videos, or a list file (``.txt``: one path per line) or a glob
            pattern (``'videos/**/*.mp4'``); outputs mirror the tree below the folder (below
            the videos' common folder for a list or a glob).
        checkpoint: Model checkpoint (``.pt`` / ``.ckpt``).
        output_dir: Where outputs go (the input tree is mirrored).
        settings: The annotation settings (:class:`AnnotateSettings`).
        extensions: Video file extensions to pick up.
        recursive: Search sub-folders.
        resume: Skip videos whose outputs are already complete.
        dry_run: Only list what would be done (nothing is decoded or written).
        limit: Process at most this many videos (after discovery, in sorted order).
        progress: Show progress bars (videos and frames).
        claim_timeout_s: A claim whose runner sent no heartbeat for this long is taken over
            (a claim of a dead process on this host is taken over at once).
        owner: This runner's name in claims and records (default ``host:pid``).
        engine: ``local`` (this process) or ``ray`` (Ray actors on a local Ray or a cluster;
            ``pip install 'video_lstm[ray]'``). Same outputs, claims, records and manifest.
        address: Ray cluster to join (``ray`` engine; default: a local Ray sized to the machine).
        workers: Ray workers (default: one per core, or one per ``gpus_per_worker`` of GPU);
            ``--threads`` is then per worker.
        gpus_per_worker: GPUs per Ray worker (``0.5``: two videos in flight on each GPU).

    Returns:
        The :class:`RunSummary` (``exit_code`` is 1 when any video failed or the manifest
        could not be written).

    Raises:
        UsageError: The input folder is missing or holds no video, the checkpoint is missing,
            the output folder is a file; all checked before the model loads.
    """
    from tqdm.auto import tqdm

    from video_lstm.threads import apply_threads

    if limit is not None and limit < 0:
        raise UsageError(f"limit must be >= 0, got {limit}")
    out_root = require_output_dir(output_dir)
    if engine not in ("local", "ray"):
        raise UsageError(f"engine must be 'local' or 'ray', got {engine!r}")
    root, videos = resolve_inputs(
        input_dir, extensions=extensions, recursive=recursive, exclude=[out_root]
    )
    jobs = plan_jobs(root, out_root, videos=videos)
    if not jobs:
        raise UsageError(f"{input_dir}: no video files found (extensions {', '.join(extensions)})")
    if limit is not None:
        jobs = jobs[:limit]
    require_checkpoint(checkpoint)
    digest = settings_hash(settings, checkpoint)
    manifest_path = out_root / "manifest.json"
    summary = RunSummary(output_dir=str(out_root), manifest=str(manifest_path), dry_run=dry_run)
    complete = {j.key for j in jobs if resume and is_complete(j, digest)}  # sets: O(n)
    todo = [j for j in jobs if j.key not in complete]
    summary.skipped = [j.rel for j in jobs if j.key in complete]
    if dry_run:
        summary.done = [j.rel for j in todo]
        return summary

    owner = owner or default_owner()
    started = time.time()
    header = {
        "input_dir": printable(str(root)),
        "checkpoint": printable(str(Path(checkpoint).resolve())),
        "settings": settings.to_dict(),
        "settings_hash": digest,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }

    def manifest() -> None:
        try:
            build_manifest(out_root, digest, header, stale_after=claim_timeout_s)
            summary.manifest_error = None
        except Exception as exc:  # noqa: BLE001 - e.g. a full disk: reported in the summary
            summary.manifest_error = printable(f"{type(exc).__name__}: {exc}")

    def record(video: str, status: str, record: dict[str, Any] | None) -> None:
        if status == "done":
            summary.done.append(video)
        elif status == "skipped":
            summary.skipped.append(video)
        elif status == "failed":
            summary.failed[video] = str((record or {}).get("reason", "failed"))
        if status in ("done", "failed") and record and record.get("owner"):
            summary.owners[video] = f"{record['owner']}"

    if engine == "ray":
        from pipelines.ray_engine import run_jobs_on_ray

        manifest()
        result = run_jobs_on_ray(
            todo,
            checkpoint,
            settings,
            digest,
            address=address,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            resume=resume,
            started=started,
            stale_after=claim_timeout_s,
            progress=progress,
        )
        for video, rec in result.records.items():
            record(video, rec["status"], rec)
        summary.skipped += result.skipped
        summary.elsewhere += result.elsewhere
    else:
        # A bad checkpoint is the caller's error, not a per-video one: load it before the loop.
        predictor = None
        if todo:
            apply_threads(settings.runtime.threads, set_torch=settings.runtime.runtime == "torch")
            predictor = load_predictor(checkpoint, settings)
        manifest()

        def attempt(job: VideoJob) -> bool:
            """Claim and do one video; False when another live runner holds it."""
            status, rec = process_job(
                job,
                predictor,
                settings,
                digest,
                owner=owner,
                resume=resume,
                started=started,
                stale_after=claim_timeout_s,
                progress=progress,
            )
            if status == "elsewhere":
                return False
            record(job.rel, status, rec)
            return True

        bar = tqdm(todo, desc="videos", unit="video", disable=not progress)
        held_elsewhere = []
        for job in bar:
            bar.set_postfix_str(job.rel, refresh=False)
            if not attempt(job):
                held_elsewhere.append(job)
        # The videos other runners held: those whose runner died meanwhile are taken over now;
        # those still held by live runners are theirs to finish.
        for job in held_elsewhere:
            if not attempt(job):
                summary.elsewhere.append(job.rel)
    manifest()
    from pipelines.report import write_run_report

    write_run_report(out_root)  # index.html: a view over the records; never fails the run
    return summary
