"""Annotate a whole folder: discovery, mirrored outputs, a run manifest, resume, per-video errors.

Layout: ``input_dir/a/b/clip.mp4`` -> ``output_dir/a/b/clip.json``, ``clip.csv``, ... and
``output_dir/a/b/clips/<label>/clip_<start>-<end>.mp4``; ``output_dir/manifest.json`` records
the settings and every video's status. A video is complete when its marker
``<name>.done.json`` exists (written last, after every output), carries the same settings hash
and lists outputs that all exist; ``resume`` skips such videos. One bad video is recorded with
its reason and the run goes on; the summary's ``exit_code`` is 1 when any video failed.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from video_lstm.errors import UsageError, VideoError
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.inference.stages import annotate_with_predictor, load_predictor
from video_lstm.io.checks import require_dir, require_file, require_output_dir
from video_lstm.io.clips import clip_path
from video_lstm.io.files import write_json
from video_lstm.io.formats import VIDEO_EXTENSIONS

__all__ = [
    "DEFAULT_EXTENSIONS",
    "RunSummary",
    "discover_videos",
    "plan_outputs",
    "run_folder",
    "settings_hash",
]

DEFAULT_EXTENSIONS = VIDEO_EXTENSIONS  # the one list, shared with the datasets
MANIFEST_NAME = "manifest.json"
MARKER_SUFFIX = ".done.json"


def discover_videos(
    input_dir: str | Path,
    *,
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    recursive: bool = True,
    exclude: Sequence[str | Path] = (),
) -> list[Path]:
    """Video files under ``input_dir``, sorted, matched by extension (case-insensitive).

    Hidden files and folders (name starting with ``.``) are skipped, and so is anything under
    ``exclude`` (e.g. the output folder when it lies inside the input folder).

    Args:
        input_dir: Folder to search.
        extensions: Accepted extensions, with or without the dot.
        recursive: Search sub-folders too.
        exclude: Folders to leave out.

    Returns:
        Absolute paths, sorted by their path relative to ``input_dir``.

    Raises:
        UsageError: ``input_dir`` is not a folder.
    """
    root = require_dir(input_dir, "input folder").resolve()
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    excluded = [Path(e).resolve() for e in exclude]
    found = []
    for path in root.rglob("*") if recursive else root.glob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if any(path == e or e in path.parents for e in excluded):
            continue
        if path.suffix.lower() in exts and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


@dataclass(frozen=True)
class VideoJob:
    """Where one input video's outputs go."""

    video: Path
    rel: str  # path relative to the input folder, for reports
    out_dir: Path
    name: str

    @property
    def marker(self) -> Path:
        return self.out_dir / f"{self.name}{MARKER_SUFFIX}"


def plan_outputs(
    videos: Sequence[Path], input_dir: str | Path, output_dir: str | Path
) -> list[VideoJob]:
    """Mirror the input tree: each video's outputs go to the same relative folder.

    Outputs are named after the video's stem; when two videos in one folder share a stem
    (``a.mp4``, ``a.avi``) both get the extension appended (``a_mp4``, ``a_avi``) so that
    nothing is overwritten.
    """
    root, out_root = Path(input_dir).resolve(), Path(output_dir)
    stems: dict[tuple[Path, str], int] = {}
    for v in videos:
        key = (v.parent, v.stem)
        stems[key] = stems.get(key, 0) + 1
    jobs = []
    for v in videos:
        rel = v.relative_to(root)
        clash = stems[(v.parent, v.stem)] > 1
        name = f"{v.stem}_{v.suffix.lstrip('.')}" if clash else v.stem
        jobs.append(VideoJob(v, rel.as_posix(), out_root / rel.parent, name))
    return jobs


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def settings_hash(settings: AnnotateSettings, checkpoint: str | Path) -> str:
    """A short hash of what determines the outputs: the result-affecting settings and the
    checkpoint's content (not its path, so moving a checkpoint does not redo a run)."""
    payload = {"settings": settings.result_dict(), "checkpoint": _file_digest(Path(checkpoint))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def is_complete(job: VideoJob, digest: str) -> bool:
    """True when the job's marker matches ``digest`` and every output it lists exists."""
    try:
        marker = json.loads(job.marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if marker.get("settings_hash") != digest:
        return False
    return all((job.out_dir / p).is_file() for p in marker.get("outputs", []))


def _remove_stale(job: VideoJob) -> None:
    """Before a video is (re)done: drop temp files a killed run left behind (``atomic_path``
    names them ``.<stem>.*.part``) and clips of an earlier run, whose segments may differ."""
    if not job.out_dir.is_dir():
        return
    for part in job.out_dir.rglob("*.part"):  # no glob on the name: it may contain "["
        if part.name.startswith((f".{job.name}.", f".{job.name}_")):
            part.unlink(missing_ok=True)
    # The clip naming scheme is io.clips.clip_path's: <safe name>_<start>-<end>.mp4
    safe = clip_path(job.out_dir, "x", job.name, 0, 0).name[: -len("000000-000000.mp4")]
    pattern = re.compile(rf"{re.escape(safe)}\d{{6,}}-\d{{6,}}\.mp4")
    clips = job.out_dir / "clips"
    if clips.is_dir():
        for clip in clips.glob("*/*.mp4"):
            if pattern.fullmatch(clip.name):
                clip.unlink()


@dataclass
class RunSummary:
    """What a folder run did. ``exit_code`` is 1 when any video failed, else 0."""

    output_dir: str
    manifest: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # video -> reason
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_dir": self.output_dir,
            "manifest": self.manifest,
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
        }

    def format(self) -> str:
        """Human-readable report: counts, then each failure with its reason."""
        verb = "would annotate" if self.dry_run else "done"
        lines = [
            f"{verb}: {len(self.done)}, skipped (complete): {len(self.skipped)}, "
            f"failed: {len(self.failed)}   manifest: {self.manifest}"
        ]
        lines += [f"  FAILED {video}: {reason}" for video, reason in self.failed.items()]
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
) -> RunSummary:
    """Annotate every video in a folder (recursively), mirroring the tree under ``output_dir``.

    Videos whose outputs are complete for the same settings and checkpoint are skipped
    (``resume``); a video that cannot be read is recorded with the reason and the run goes on.
    ``output_dir/manifest.json`` (settings + per-video status) is rewritten after each video.

    Args:
        input_dir: Folder with videos.
        checkpoint: Model checkpoint (``.pt`` / ``.ckpt``).
        output_dir: Where outputs go (the input tree is mirrored).
        settings: The annotation settings (:class:`AnnotateSettings`).
        extensions: Video file extensions to pick up.
        recursive: Search sub-folders.
        resume: Skip videos whose outputs are already complete.
        dry_run: Only list what would be done (nothing is decoded or written).
        limit: Process at most this many videos (after discovery, in sorted order).
        progress: Show progress bars (videos and frames).

    Returns:
        The :class:`RunSummary` (``exit_code`` is 1 when any video failed).

    Raises:
        UsageError: The input folder is missing or holds no video, the checkpoint is missing,
            the output folder is a file; all checked before the model loads.
    """
    from tqdm.auto import tqdm

    from video_lstm.threads import apply_threads

    if limit is not None and limit < 0:
        raise UsageError(f"limit must be >= 0, got {limit}")
    out_root = require_output_dir(output_dir)
    videos = discover_videos(
        input_dir, extensions=extensions, recursive=recursive, exclude=[out_root]
    )
    if not videos:
        raise UsageError(f"{input_dir}: no video files found (extensions {', '.join(extensions)})")
    jobs = plan_outputs(videos, input_dir, out_root)
    if limit is not None:
        jobs = jobs[:limit]
    require_file(checkpoint, "checkpoint")
    digest = settings_hash(settings, checkpoint)
    manifest_path = out_root / MANIFEST_NAME
    summary = RunSummary(output_dir=str(out_root), manifest=str(manifest_path), dry_run=dry_run)
    todo = [j for j in jobs if not (resume and is_complete(j, digest))]
    summary.skipped = [j.rel for j in jobs if j not in todo]
    if dry_run:
        summary.done = [j.rel for j in todo]
        return summary

    records: dict[str, dict[str, Any]] = {
        j.rel: {"status": "skipped", "reason": "complete"} for j in jobs if j not in todo
    }
    header = {
        "input_dir": str(Path(input_dir).resolve()),
        "checkpoint": str(Path(checkpoint).resolve()),
        "settings": settings.to_dict(),
        "settings_hash": digest,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }

    def save_manifest() -> None:
        counts = {
            s: sum(r["status"] == s for r in records.values())
            for s in ("done", "skipped", "failed")
        }
        write_json(manifest_path, {**header, "counts": counts, "videos": records})

    # A bad checkpoint is the caller's error, not a per-video one: load it before the loop.
    predictor = None
    if todo:
        apply_threads(settings.runtime.threads)
        predictor = load_predictor(checkpoint, settings)
    bar = tqdm(todo, desc="videos", unit="video", disable=not progress)
    for job in bar:
        bar.set_postfix_str(job.rel, refresh=False)
        t0 = time.perf_counter()
        _remove_stale(job)
        job.marker.unlink(missing_ok=True)  # the outputs are about to change
        try:
            result = annotate_with_predictor(
                job.video, predictor, job.out_dir, settings, name=job.name, progress=progress
            )
        except VideoError as exc:
            summary.failed[job.rel] = exc.reason
            records[job.rel] = {"status": "failed", "reason": exc.reason}
        except Exception as exc:  # noqa: BLE001 - one bad video must not stop the batch
            reason = f"{type(exc).__name__}: {exc}"
            summary.failed[job.rel] = reason
            records[job.rel] = {
                "status": "failed",
                "reason": reason,
                "traceback": traceback.format_exc(limit=5),
            }
        else:
            outputs_rel = [Path(p).relative_to(job.out_dir).as_posix() for p in result.output_files]
            # Written last: its presence means every output above is complete.
            write_json(
                job.marker,
                {"video": job.rel, "settings_hash": digest, "outputs": outputs_rel},
            )
            summary.done.append(job.rel)
            records[job.rel] = {
                "status": "done",
                "num_frames": result.info.num_frames,
                "segments": len(result.segments),
                "seconds": round(time.perf_counter() - t0, 3),
                "outputs": outputs_rel,
            }
        save_manifest()
    if not todo:
        save_manifest()
    return summary
