"""A folder run as per-video jobs that any number of runners can share.

Runners are processes on one host or on many hosts sharing the output folder (NFS, SMB, a
cluster filesystem), or Ray actors (``--engine ray``). They coordinate only through files in
the output folder: each video is claimed atomically before work, each finished video leaves a
record, and the manifest is rebuilt from the records. Nothing is ever rewritten by two runners.

What a run left is read back with :func:`read_run` (header and records) and
:func:`record_files` (a record's files by writer): the report and ``export-labels`` use them.

The API an engine calls (the local engine, ``pipelines.batch.run_folder``, is this loop)::

    from pipelines.jobs import (
        build_manifest, claim, is_complete, plan_jobs, read_record, run_job, settings_hash,
    )

    jobs = plan_jobs(input_dir, output_dir)          # one VideoJob per video, sorted, O(n)
    digest = settings_hash(settings, checkpoint)     # what the outputs depend on
    for job in jobs:
        if is_complete(job, digest):                 # done, by anyone, with these settings
            continue
        c = claim(job, owner="worker-3")             # None: another live runner has it
        if c is None:
            continue
        try:
            if is_complete(job, digest):             # finished by another runner meanwhile
                continue
            with c.keep_alive(heartbeat_interval(timeout)):
                record = run_job(job, predictor, settings, digest, owner="worker-3")
        finally:
            c.release()
    build_manifest(output_dir, digest, header)       # manifest.json, a view over the records

- :func:`plan_jobs` lists the videos and where each one's outputs go (:class:`VideoJob`,
  picklable). Output names keep the source file name with its extension (``a b.mp4`` ->
  ``a b.mp4.json``, ``a b.mp4_annotated.mp4``, ``clips/<label>/a b.mp4_000012-000040.mp4``),
  so two videos of one folder never share an output; names that are unsafe as paths (line
  breaks, undecodable bytes, over 200 bytes) go through ``io.files.safe_name`` (hash suffix).
- :func:`claim` creates the job's claim file with ``O_EXCL`` (``video_lstm.io.claims``: owner,
  host, pid, heartbeat; a claim whose heartbeat is older than ``stale_after`` seconds, or whose
  process on this host is gone, is taken over).
- :func:`run_job` does one video end to end while the caller holds its claim: removes what an
  earlier attempt left (the temporaries of every writer's files, what a writer's ``clean``
  names such as its clips, its record), annotates, and writes the per-video record atomically
  (``status`` ``done`` or ``failed`` with the reason, outputs and the files by writer, owner,
  host, timings). Per-video errors never raise: they end in a ``failed`` record (also a
  record that cannot be written, e.g. on a full disk: then the returned record says so).
  ``KeyboardInterrupt`` propagates and leaves no record (the video is redone later).
- :func:`is_complete` is true when the record says ``done`` for ``digest``, every output it
  lists exists and so does every file its writers declare (the writer table,
  ``video_lstm.inference.writers``: a plugin's writer is part of a complete video too).
- :func:`build_manifest` rebuilds ``manifest.json`` from all records under a manifest claim, so
  concurrent rebuilds are ordered and the last one written is the most complete.

Layout of an output folder::

    out/<rel dir>/<file name>.json .csv .srt .vtt, <file name>_annotated.mp4 (+ plugins')
    out/<rel dir>/clips/<label>/<file name>_<start>-<end>.mp4
    out/.video_lstm/claims/<key>.claim     a video being worked on (deleted when done)
    out/.video_lstm/records/<key>.json     a video's record (written last)
    out/.video_lstm/runs/<digest>.json     settings and checkpoint behind a settings hash
    out/manifest.json                      every record, by video

``<key>`` is the video's file name (made safe) plus a hash of its path relative to the input
folder. Discovery skips hidden folders, so no mirrored output lands under ``.video_lstm``.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import time
import traceback
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from video_lstm.errors import UsageError, VideoError
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.inference.stages import annotate_with_predictor
from video_lstm.inference.writers import list_writers
from video_lstm.io.claims import DEFAULT_STALE_AFTER_S, HOST, Claim, try_claim
from video_lstm.io.clips import NAME_MAX_BYTES
from video_lstm.io.files import printable, safe_name, temp_pattern, write_json
from video_lstm.io.formats import VIDEO_EXTENSIONS, discover_videos

__all__ = [
    "DEFAULT_EXTENSIONS",
    "MANIFEST_NAME",
    "VideoJob",
    "build_manifest",
    "claim",
    "default_owner",
    "discover_videos",
    "heartbeat_interval",
    "is_complete",
    "plan_jobs",
    "process_job",
    "read_record",
    "read_run",
    "record_files",
    "resolve_inputs",
    "run_job",
    "settings_hash",
    "write_failed_record",
]

DEFAULT_EXTENSIONS = VIDEO_EXTENSIONS  # the one list, shared with the datasets
MANIFEST_NAME = "manifest.json"
STATE_DIR = ".video_lstm"


LIST_SUFFIXES = (".txt", ".lst", ".list")


def resolve_inputs(
    spec: str | Path,
    *,
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    recursive: bool = True,
    exclude: Sequence[str | Path] = (),
) -> tuple[Path, list[Path]]:
    """The videos a run's input names, and the folder whose tree the outputs mirror.

    Args:
        spec: A folder (its videos, discovered), a list file (``.txt``, ``.lst``, ``.list``:
            one path per line, relative to the list's folder; blank lines and ``#`` comments
            skipped), a glob pattern (``videos/**/*.mp4``; ``**`` descends), or one video.
        extensions: Video extensions (folder discovery and glob matches).
        recursive: Discover in sub-folders (folders only).
        exclude: Folders left out (e.g. the output folder inside the input folder).

    Returns:
        ``(root, videos)``: the folder itself, else the deepest folder holding every video.

    Raises:
        UsageError: Nothing by that name, a listed video that does not exist, or no video.
    """
    p = Path(spec)
    if p.is_dir():
        root = p.resolve()
        return root, discover_videos(
            root, extensions=extensions, recursive=recursive, exclude=exclude
        )
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    if p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
        videos = []
        for n, line in enumerate(
            p.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
        ):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            v = (p.parent / line).resolve()
            if not v.is_file():
                raise UsageError(f"{p}:{n + 1}: {line}: video not found")
            videos.append(v)
    elif p.is_file():
        videos = [p.resolve()]
    elif any(c in str(spec) for c in "*?["):
        matches = glob.glob(os.fspath(spec), recursive=True)
        videos = sorted(
            Path(m).resolve()
            for m in matches
            if Path(m).suffix.lower() in exts and Path(m).is_file()
        )
        if not videos:
            raise UsageError(f"{spec}: no video files match (extensions {', '.join(extensions)})")
    else:
        raise UsageError(f"{spec}: input folder not found (nor a list file or a glob pattern)")
    videos = list(dict.fromkeys(videos))  # a video listed twice is one job
    root = Path(os.path.commonpath([v.parent for v in videos])) if videos else p.parent.resolve()
    return root, sorted(videos, key=lambda v: v.relative_to(root).as_posix())


@dataclass(frozen=True)
class VideoJob:
    """One input video and where its outputs, claim and record go (plain values: picklable)."""

    video: Path  # the input file
    rel: str  # its path relative to the input folder, printable (reports, records)
    out_dir: Path  # folder of its outputs (the input tree mirrored)
    name: str  # output name: the file name with its extension, made safe
    key: str  # unique per video of the run: names its claim and record files
    root: Path  # the output folder

    @property
    def claim_path(self) -> Path:
        return self.root / STATE_DIR / "claims" / f"{self.key}.claim"

    @property
    def record_path(self) -> Path:
        return self.root / STATE_DIR / "records" / f"{self.key}.json"


def _job_key(rel: Path) -> str:
    digest = hashlib.sha256(os.fsencode(rel.as_posix())).hexdigest()[:16]
    return f"{safe_name(rel.name, max_bytes=80)}.{digest}"


def plan_jobs(
    input_dir: str | Path,
    output_dir: str | Path,
    *,
    videos: Sequence[Path] | None = None,
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    recursive: bool = True,
) -> list[VideoJob]:
    """One job per video, mirroring the input tree under ``output_dir``; O(number of videos).

    Args:
        input_dir: The input folder.
        output_dir: The output folder (left out of discovery when inside ``input_dir``).
        videos: The videos (under ``input_dir``); discovered when ``None``.
        extensions: Video extensions for discovery.
        recursive: Discover in sub-folders too.

    Returns:
        Jobs in the order of ``videos`` (sorted by relative path when discovered).
    """
    root, out_root = Path(input_dir).resolve(), Path(output_dir)
    if videos is None:
        videos = discover_videos(
            root, extensions=extensions, recursive=recursive, exclude=[out_root]
        )
    jobs = []
    for v in videos:
        rel = Path(os.path.abspath(v)).relative_to(root)  # not resolve(): links stay links
        jobs.append(
            VideoJob(
                video=Path(v),
                rel=printable(rel.as_posix()),
                out_dir=out_root / rel.parent,
                name=safe_name(rel.name, max_bytes=NAME_MAX_BYTES),
                key=_job_key(rel),
                root=out_root,
            )
        )
    return jobs


def default_owner() -> str:
    """``host:pid``: who a claim or record belongs to when the engine names no worker."""
    return f"{HOST}:{os.getpid()}"


def heartbeat_interval(stale_after: float) -> float:
    """How often a holder refreshes its claim: a quarter of the timeout (at least 0.2 s)."""
    return max(0.2, stale_after / 4)


def claim(
    job: VideoJob,
    owner: str,
    *,
    stale_after: float = DEFAULT_STALE_AFTER_S,
    dead_owners: Collection[str] = (),
) -> Claim | None:
    """Claim ``job`` atomically (``video_lstm.io.claims.try_claim`` on its claim file).

    Returns:
        The :class:`~video_lstm.io.claims.Claim` (refresh it with ``keep_alive``, give it back
        with ``release``), or ``None`` when another live runner holds the video.

    Raises:
        OSError: The claim file could not be written (e.g. a full disk).
    """
    return try_claim(job.claim_path, owner, stale_after=stale_after, dead_owners=dead_owners)


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


def _read_json(path: Path) -> Any:
    """The JSON in ``path``, or ``None`` when it is missing or unreadable (a half-written or
    foreign file: records are written atomically, so that is never ours mid-write)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_record(job: VideoJob) -> dict[str, Any] | None:
    """The job's record, or ``None`` when there is none (or it cannot be read)."""
    record = _read_json(job.record_path)
    return record if isinstance(record, dict) else None


def is_complete(job: VideoJob, digest: str) -> bool:
    """True when the job's record says ``done`` for ``digest``, every output it lists exists,
    and so does every file its writers declare (``inference.writers``: a plugin's writer
    counts as any other; a writer that is not registered here makes the video incomplete)."""
    record = read_record(job)
    if not record or record.get("status") != "done" or record.get("settings_hash") != digest:
        return False
    if not all((job.root / p).is_file() for p in record.get("outputs", [])):
        return False
    ran = record.get("files")  # writer -> files; records of older versions have none
    if isinstance(ran, dict) and ran:
        writers = {w.name: w for w in list_writers()}
        if any(name not in writers for name in ran):
            return False
        declared = (p for name in ran for p in writers[name].paths(job.out_dir, job.name))
        return all(p.is_file() for p in declared)
    return True


def _clear_previous(job: VideoJob) -> None:
    """Before a video is (re)done by the runner holding its claim: its record (the outputs are
    about to change), the temporaries a killed attempt left of every writer's files, and what
    each writer's ``clean`` removes (the clips of an earlier attempt: their segments may
    differ). Other videos' files are never touched: temporaries are matched by exact final
    name (``io.files.temp_pattern``)."""
    job.record_path.unlink(missing_ok=True)
    writers = list_writers()
    patterns = [temp_pattern(p) for w in writers for p in w.paths(job.out_dir, job.name)]
    if job.out_dir.is_dir():
        for entry in os.scandir(job.out_dir):
            if entry.name.startswith(".") and any(p.fullmatch(entry.name) for p in patterns):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
    for writer in writers:
        if writer.clean is not None:
            writer.clean(job.out_dir, job.name)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def run_job(
    job: VideoJob,
    predictor: Any,
    settings: AnnotateSettings,
    digest: str,
    *,
    owner: str | None = None,
    progress: bool = False,
    on_frames: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Annotate one video end to end and write its record; call it while holding its claim.

    Every per-video failure (unreadable video, a write error such as a full disk, a failure to
    write the record itself) ends in a record with ``status: "failed"`` and the ``reason``;
    nothing but ``KeyboardInterrupt``/``SystemExit`` propagates.

    Args:
        job: The video (from :func:`plan_jobs`).
        predictor: A loaded ``video_lstm.inference.predictor.Predictor``
            (``video_lstm.inference.stages.load_predictor(checkpoint, settings)``).
        settings: The annotation settings.
        digest: :func:`settings_hash` of ``settings`` and the checkpoint.
        owner: Who did it (default ``host:pid``).
        progress: Show a progress bar over the video's frames.
        on_frames: Called with the source frames each scored chunk covers (an engine's bar).

    Returns:
        The record (as written to ``job.record_path``; when it could not be written,
        ``status`` is ``failed`` and ``reason`` says why).
    """
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "video": job.rel,
        "settings_hash": digest,
        "owner": owner or default_owner(),
        "host": HOST,
        "pid": os.getpid(),
        "started": _now(),
    }
    try:
        _clear_previous(job)
        result = annotate_with_predictor(
            job.video,
            predictor,
            job.out_dir,
            settings,
            name=job.name,
            progress=progress,
            on_frames=on_frames,
        )
    except VideoError as exc:
        record.update(status="failed", reason=printable(exc.reason))
    except Exception as exc:  # noqa: BLE001 - one bad video must not stop the batch
        record.update(
            status="failed",
            reason=printable(f"{type(exc).__name__}: {exc}"),
            traceback=printable(traceback.format_exc(limit=5)),
        )
    else:

        def rel(paths: list[str]) -> list[str]:
            return [printable(Path(p).relative_to(job.root).as_posix()) for p in paths]

        record.update(
            status="done",
            num_frames=result.info.num_frames,
            frames_lost=result.info.frames_lost,  # damaged stream, on_error="skip"
            rotation=result.info.rotation,
            segments=len(result.segments),
            outputs=rel(result.output_files),
            files={name: rel(paths) for name, paths in result.files.items()},  # by writer
        )
    record.update(finished=_now(), finished_ts=time.time())
    record["seconds"] = round(time.perf_counter() - t0, 3)
    try:
        write_json(job.record_path, record)  # last: a record on disk means the outputs are there
    except Exception as exc:  # noqa: BLE001
        why = printable(f"record not written: {exc}")
        failed = record.get("status") == "failed"
        record.update(status="failed", reason=f"{record['reason']}; {why}" if failed else why)
    return record


def process_job(
    job: VideoJob,
    predictor: Any,
    settings: AnnotateSettings,
    digest: str,
    *,
    owner: str,
    resume: bool = True,
    started: float = 0.0,
    stale_after: float = DEFAULT_STALE_AFTER_S,
    dead_owners: Collection[str] = (),
    progress: bool = False,
    on_frames: Callable[[int], None] | None = None,
) -> tuple[str, dict[str, Any] | None]:
    """Claim ``job``, do it unless it is done, give the claim back: what every engine calls.

    Args:
        job: The video.
        predictor: A loaded ``Predictor``.
        settings: The annotation settings.
        digest: :func:`settings_hash` of ``settings`` and the checkpoint.
        owner: This runner's name in the claim and the record.
        resume: Skip the video when it is complete.
        started: When the run started (``time.time()``): a record another runner finished
            since then (done or failed) is taken as this run's result, not redone.
        stale_after: Claim timeout.
        dead_owners: Runners known to be dead (an engine lost them): their claims on ``job``
            are taken over at once.
        progress: Show a progress bar over the video's frames.
        on_frames: Called with the source frames each scored chunk covers.

    Returns:
        ``("elsewhere", None)`` when another live runner holds the video; ``("skipped",
        record)`` when it is complete; else ``(status, record)`` of the record now on disk
        (``"done"`` or ``"failed"``).

        A claim that cannot be written (e.g. a full disk) is ``("failed", record)``, the record
        not written.
    """
    try:
        held = claim(job, owner, stale_after=stale_after, dead_owners=dead_owners)
    except OSError as exc:
        reason = printable(f"cannot claim: {exc}")
        return "failed", {"video": job.rel, "status": "failed", "reason": reason}
    if held is None:
        return "elsewhere", None
    try:
        prior = read_record(job)
        recent = (
            prior is not None
            and prior.get("settings_hash") == digest
            and prior.get("finished_ts", 0) >= started
        )
        if (resume or recent) and is_complete(job, digest):
            return "skipped", prior
        if recent and prior.get("status") == "failed":
            return "failed", prior
        with held.keep_alive(heartbeat_interval(stale_after)):
            record = run_job(
                job,
                predictor,
                settings,
                digest,
                owner=owner,
                progress=progress,
                on_frames=on_frames,
            )
    finally:
        held.release()
    return record["status"], record


def write_failed_record(
    job: VideoJob, digest: str, reason: str, *, owner: str | None = None
) -> dict[str, Any]:
    """Record ``job`` as failed without running it (an engine gave up on it, e.g. its workers
    kept dying); returns the record."""
    record = {
        "video": job.rel,
        "settings_hash": digest,
        "owner": owner or default_owner(),
        "host": HOST,
        "pid": os.getpid(),
        "status": "failed",
        "reason": printable(reason),
        "finished": _now(),
        "finished_ts": time.time(),
    }
    try:
        write_json(job.record_path, record)
    except Exception as exc:  # noqa: BLE001
        record["reason"] += printable(f" (record not written: {exc})")
    return record


def build_manifest(
    output_dir: str | Path,
    digest: str | None = None,
    header: dict[str, Any] | None = None,
    *,
    wait_s: float = 60.0,
    stale_after: float = DEFAULT_STALE_AFTER_S,
) -> Path:
    """Rebuild ``output_dir/manifest.json`` from the per-video records.

    Runs under a claim on the manifest (waiting up to ``wait_s`` for another runner's rebuild),
    so rebuilds are ordered: one that starts after a record was written includes it. Leftover
    temporaries of the manifest and of run headers are removed, and so are those of records and
    claim refreshes older than ``stale_after``.

    Args:
        output_dir: The run's output folder.
        digest: The settings hash whose header goes on top (``settings``, ``checkpoint``);
            default: the most recently started run.
        header: This run's header, stored as ``.video_lstm/runs/<digest>.json`` first.
        wait_s: How long to wait for the manifest claim.
        stale_after: Claim timeout (see ``video_lstm.io.claims``).

    Returns:
        The manifest's path.

    Raises:
        OSError: It could not be written (e.g. a full disk), or the claim was not obtained.
    """
    out = Path(output_dir)
    state = out / STATE_DIR
    lock_path = state / "manifest.claim"
    deadline = time.monotonic() + wait_s
    while (lock := try_claim(lock_path, default_owner(), stale_after=stale_after)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{lock_path}: another runner holds the manifest for {wait_s} s")
        time.sleep(0.05)
    try:
        runs_dir, records_dir = state / "runs", state / "records"
        manifest_path = out / MANIFEST_NAME
        _remove_temps(out, lambda name: temp_pattern(manifest_path).fullmatch(name), 0)
        _remove_temps(runs_dir, lambda name: name.endswith(".part"), 0)
        for folder in (records_dir, state / "claims"):
            _remove_temps(folder, lambda name: name.endswith(".part"), stale_after)
        if header is not None and digest is not None:
            write_json(runs_dir / f"{digest}.json", header)
        runs = {}
        if runs_dir.is_dir():
            for entry in os.scandir(runs_dir):
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    with contextlib.suppress(OSError, ValueError):
                        runs[entry.name[: -len(".json")]] = json.loads(
                            Path(entry.path).read_text(encoding="utf-8")
                        )
        if digest is None and runs:
            digest = max(runs, key=lambda d: str(runs[d].get("started", "")))
        videos: dict[str, dict[str, Any]] = {}
        if records_dir.is_dir():
            for entry in os.scandir(records_dir):
                if entry.name.startswith(".") or not entry.name.endswith(".json"):
                    continue
                with contextlib.suppress(OSError, ValueError):
                    record = json.loads(Path(entry.path).read_text(encoding="utf-8"))
                    if isinstance(record, dict) and "video" in record:
                        if record.get("status") == "done" and record.get("settings_hash") != digest:
                            record["status"] = "outdated"  # done with other settings
                        videos[str(record["video"])] = record
        videos = dict(sorted(videos.items()))
        counts = {s: 0 for s in ("done", "failed", "outdated")}
        for record in videos.values():
            counts[record["status"]] = counts.get(record["status"], 0) + 1
        manifest = {
            **(runs.get(digest, {}) if digest else {}),
            "settings_hash": digest,
            "updated": _now(),
            "counts": counts,
            "videos": videos,
        }
        return write_json(manifest_path, manifest)
    finally:
        lock.release()


def read_run(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A folder run's header and its per-video records, as ``manifest.json`` gives them (a view
    over the records, :func:`build_manifest`); what the report and ``export-labels`` read.

    Args:
        run_dir: The output folder of ``video-lstm run``.

    Returns:
        ``(header, {video path relative to the input folder: its record})``.

    Raises:
        FileNotFoundError: No readable ``manifest.json``: not a folder run.
    """
    run_dir = Path(run_dir)
    manifest = _read_json(run_dir / "manifest.json")
    if not isinstance(manifest, dict):
        raise FileNotFoundError(f"{run_dir}: no readable manifest.json: not a folder run")
    videos = manifest.get("videos") or {}
    header = {k: v for k, v in manifest.items() if k != "videos"}
    return header, {str(k): dict(v) for k, v in videos.items() if isinstance(v, dict)}


def record_files(run_dir: str | Path, rel: str, record: dict[str, Any]) -> dict[str, list[Path]]:
    """A record's (:func:`read_run`) output files on disk, by the writer that wrote them (the
    record's ``files``; ``inference.writers``). Paths are relative to the run folder (or, in records of older runs,
    to the video's own output folder); records of older versions list files only, sorted here
    by the built-in writers' file names; a record without outputs (a video skipped as
    complete) takes them from the video's completion marker."""
    run_dir = Path(run_dir)
    listed, grouped = record.get("outputs"), record.get("files")
    if not listed:
        for marker in (run_dir / rel).parent.glob("*.done.json"):
            doc = _read_json(marker)
            if isinstance(doc, dict) and doc.get("video") == rel:
                listed = doc.get("outputs") or []
                break

    def on_disk(paths: list[Any]) -> list[Path]:
        found = []
        for p in paths or []:
            for base in (run_dir, (run_dir / rel).parent):
                if (base / p).is_file():
                    found.append(base / p)
                    break
        return found

    if isinstance(grouped, dict):
        return {str(name): on_disk(paths) for name, paths in grouped.items()}
    by_writer: dict[str, list[Path]] = {}
    for f in on_disk(listed):
        if f.name.endswith("_annotated.mp4"):
            name = "video"
        elif f.suffix == ".mp4":
            name = "clips"
        else:
            name = f.suffix.lstrip(".")
        by_writer.setdefault(name, []).append(f)
    return by_writer


def _remove_temps(folder: Path, match: Any, older_than: float) -> None:
    if not folder.is_dir():
        return
    now = time.time()
    for entry in os.scandir(folder):
        if not (entry.name.startswith(".") and match(entry.name)):
            continue
        with contextlib.suppress(FileNotFoundError):
            if older_than <= 0 or now - entry.stat().st_mtime > older_than:
                os.unlink(entry.path)
