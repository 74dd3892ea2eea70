"""Ray, imported only when asked for: join a cluster or start a local one sized to the machine.

``pip install 'video_lstm[ray]'`` brings Ray (with Tune); nothing else in the package imports it.
Both Ray users (``run --engine ray`` and ``compare --engine ray``) start Ray here, so a session
the caller already started (``ray.init(num_cpus=2)`` in a test) is reused, never restarted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["import_ray", "ray_session"]


def import_ray() -> Any:
    """The ``ray`` module, or one clear error saying what to install."""
    from video_lstm.errors import UsageError

    try:
        import ray
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise UsageError(
            "the Ray engine needs Ray: pip install 'video_lstm[ray]'  (ray[tune] >= 2.58)"
        ) from exc
    return ray


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray connected for the duration of the block; yields the ``ray`` module.

    Args:
        address: A running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``).
            ``None``: reuse the session this process already has, else start a local Ray with
            ``num_cpus`` (default: every core) and stop it at the end of the block.
        num_cpus: CPUs of a local Ray (ignored when joining a cluster).
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": True,
            "configure_logging": False,
        }
        if address is None:
            kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
        else:
            kwargs["address"] = address
        # Workers inherit the environment; PYTHONPATH lets them import a source checkout.
        ray.init(**kwargs)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
