"""Claims: one lock file per piece of work, so that many runners never do the same work twice.

A runner (a process, on this host or another one sharing the filesystem, or a Ray actor) calls
:func:`try_claim` before it starts a piece of work. The claim is a file created with
``O_CREAT | O_EXCL``, which is atomic on local filesystems and on NFSv3+: exactly one caller
creates it, every other one gets ``None``. The file holds JSON::

    {"owner": "host:1234", "host": "host", "pid": 1234, "token": "9f...", "created": 1764...,
     "heartbeat": 1764...}

The holder refreshes ``heartbeat`` while it works (:meth:`Claim.refresh`, or a background thread
with :meth:`Claim.keep_alive`) and deletes the file when done (:meth:`Claim.release`). A claim
is *stale*, and :func:`try_claim` takes it over, when

- its heartbeat is older than ``stale_after`` seconds (the runner hung, or its host died), or
- it was made on this host by a process that no longer exists (killed: taken over at once).

Two runners that both find a claim stale cannot both take it: the takeover happens under a
second ``O_EXCL`` file (``<claim>.takeover``), and the claim is replaced only if it still
holds the stale token that was seen.

Heartbeats are compared with this host's clock, so hosts sharing a folder need clocks that
agree to well within ``stale_after`` (NTP does). A runner that stalls longer than
``stale_after`` without a heartbeat may find its work taken over; :meth:`Claim.held` tells.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HOST = socket.gethostname()
DEFAULT_STALE_AFTER_S = 300.0

__all__ = ["DEFAULT_STALE_AFTER_S", "HOST", "Claim", "is_stale", "read_claim", "try_claim"]


@dataclass
class Claim:
    """A held claim (see the module docstring). Picklable: plain values only."""

    path: Path
    owner: str
    host: str
    pid: int
    token: str
    created: float
    heartbeat: float
    taken_over: dict[str, Any] | None = None  # the stale claim this one replaced, if any

    def info(self) -> dict[str, Any]:
        """The JSON the claim file holds."""
        d = asdict(self)
        del d["path"], d["taken_over"]
        return d

    def held(self) -> bool:
        """True while the claim file is still this claim (not released, not taken over)."""
        current = read_claim(self.path)
        return current is not None and current.get("token") == self.token

    def refresh(self) -> bool:
        """Write a new heartbeat; returns False (and writes nothing) when the claim was lost."""
        if not self.held():
            return False
        self.heartbeat = time.time()
        tmp = self.path.with_name(f".{self.path.name}.{self.token[:8]}.part")
        try:
            tmp.write_text(json.dumps(self.info()), encoding="utf-8")
            os.replace(tmp, self.path)  # the file never disappears: no window for a new claim
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return True

    def release(self) -> None:
        """Give the work back (delete the claim file) unless somebody else holds it now."""
        if self.held():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    @contextlib.contextmanager
    def keep_alive(self, interval: float) -> Iterator[Claim]:
        """Refresh the heartbeat every ``interval`` seconds in a daemon thread while the block
        runs (a refresh that fails, e.g. on a full disk, is retried at the next tick)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    if not self.refresh():
                        return
                except OSError:
                    continue

        thread = threading.Thread(target=beat, name=f"heartbeat {self.path.name}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


def read_claim(path: str | Path) -> dict[str, Any] | None:
    """The claim file's JSON; ``{}`` when it exists but cannot be read as a claim (being written,
    or damaged); ``None`` when there is no claim."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except (OSError, OverflowError):
        return False
    return True


def is_stale(
    info: dict[str, Any],
    path: str | Path,
    stale_after: float,
    now: float | None = None,
    dead_owners: Collection[str] = (),
) -> bool:
    """Whether a claim (``read_claim``'s dict) may be taken over; see the module docstring.

    An unreadable claim (``{}``) counts from its file's modification time; a claim whose owner
    is in ``dead_owners`` (a runner its engine saw die, on any host) is stale at once.
    """
    if info.get("owner") in dead_owners:
        return True
    now = time.time() if now is None else now
    beat = info.get("heartbeat")
    if not isinstance(beat, (int, float)):
        try:
            beat = os.stat(path).st_mtime
        except FileNotFoundError:
            return True
    if now - beat > stale_after:
        return True
    pid = info.get("pid")
    return info.get("host") == HOST and isinstance(pid, int) and not _pid_alive(pid)


def _create(path: Path, owner: str, taken_over: dict[str, Any] | None = None) -> Claim | None:
    now = time.time()
    claim = Claim(path, owner, HOST, os.getpid(), secrets.token_hex(16), now, now, taken_over)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(claim.info()))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a claim nobody can read must not block the work (e.g. disk full)
        raise
    return claim


def try_claim(
    path: str | Path,
    owner: str,
    *,
    stale_after: float = DEFAULT_STALE_AFTER_S,
    dead_owners: Collection[str] = (),
) -> Claim | None:
    """Claim the work that ``path`` stands for, atomically.

    Args:
        path: The claim file (its folder is created).
        owner: Who works on it (shown to other runners and in records), e.g. ``host:pid``.
        stale_after: Seconds without a heartbeat after which a claim is taken over.
        dead_owners: Owners known to be dead: their claims are taken over at once.

    Returns:
        The :class:`Claim`, or ``None`` when another live runner holds it.

    Raises:
        OSError: The claim file could not be created or written (e.g. a full disk).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    claim = _create(path, owner)
    if claim is not None:
        return claim
    seen = read_claim(path)
    if seen is None:  # released meanwhile: try once more
        return _create(path, owner)
    if not is_stale(seen, path, stale_after, dead_owners=dead_owners):
        return None
    return _take_over(path, seen, owner, stale_after, dead_owners)


def _take_over(
    path: Path,
    seen: dict[str, Any],
    owner: str,
    stale_after: float,
    dead_owners: Collection[str] = (),
) -> Claim | None:
    guard = path.with_name(path.name + ".takeover")
    try:
        os.close(os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        # Another runner is taking it over. A guard that outlived stale_after belongs to a
        # runner that died mid-takeover: remove it so that the next attempt can proceed.
        with contextlib.suppress(FileNotFoundError):
            if time.time() - guard.stat().st_mtime > stale_after:
                guard.unlink()
        return None
    try:
        current = read_claim(path)
        if current is None:
            return _create(path, owner, taken_over=seen)
        if current.get("token") != seen.get("token") or not is_stale(
            current, path, stale_after, dead_owners=dead_owners
        ):
            return None  # refreshed or replaced since we looked
        os.unlink(path)
        return _create(path, owner, taken_over=seen)
    finally:
        with contextlib.suppress(FileNotFoundError):
            guard.unlink()
