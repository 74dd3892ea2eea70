"""How many CPU threads the model and the decoder use: a default that never oversubscribes.

torch's default (one thread per logical core, whatever else runs) made the CNN ~10x slower
than 1 thread on a busy 2-core machine: OpenMP threads that wait for a core spin and stall each
other. The default here is the smallest of

- the cores this process may run on (``os.sched_getaffinity``: containers, ``taskset``),
- the physical cores (hyper-threads share one core's arithmetic units),
- the idle cores: those minus the 1-minute load average (rounded), at least 1,

unless ``OMP_NUM_THREADS`` is set, which then wins (the user decided).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["apply_threads", "available_cores", "default_threads", "physical_cores"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores (distinct ``physical id``/``core id`` pairs in /proc/cpuinfo), or the
    logical count where that is unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return max(1, os.cpu_count() or 1)
    cores, phys = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            phys = value.strip()
        elif key == "core id":
            cores.add((phys, value.strip()))
    return len(cores) or max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """``OMP_NUM_THREADS`` if set, else min(affinity, physical cores, idle cores), at least 1."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = min(available_cores(), physical_cores())
    try:
        busy = round(os.getloadavg()[0])
    except (AttributeError, OSError):
        busy = 0
    return max(1, min(cores, available_cores() - busy))


def apply_threads(threads: int | None = None, *, set_torch: bool = True) -> int:
    """Set torch's intra-op threads to ``threads`` (``None``: :func:`default_threads`).

    Args:
        threads: Thread count, or ``None`` for the default.
        set_torch: Set torch's thread count (importing torch). ``False`` for ONNX Runtime, which
            takes the count per session (``intra_op_num_threads``) and must not need torch.

    Returns:
        The thread count now in use (pass it on to the decoder as well).
    """
    n = default_threads() if threads is None else threads
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    if set_torch:
        import torch  # only when a model is about to run

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return n
