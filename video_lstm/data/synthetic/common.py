"""Helpers every synthetic scene shares: frame size, drawn counts, a sequence's arguments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """``112`` or ``(h, w)`` as ``(h, w)``, at least 16x16."""
    h, w = (size, size) if isinstance(size, int) else size
    if h < 16 or w < 16:
        raise ValueError(f"frame size must be at least 16x16, got {h}x{w}")
    return int(h), int(w)


def draw_count(value: int | tuple[int, int], rng: np.random.Generator) -> int:
    """A count, or one drawn from an inclusive ``(low, high)`` range."""
    lo, hi = (value, value) if isinstance(value, int) else value
    if lo < 0 or hi < lo:
        raise ValueError(f"bad frame count range {value!r}")
    return int(rng.integers(lo, hi + 1))


def check_sequence(
    actions: Sequence[str],
    known: Sequence[str],
    gap: str | Sequence[str],
    gaps: Sequence[str],
    fps: float,
    *,
    noun: str = "action",
) -> list[str]:
    """Check a sequence's arguments (one error line each); returns the idle kinds as a list."""
    for a in actions:
        if a not in known:
            raise ValueError(f"unknown {noun} {a!r}; expected one of {tuple(known)}")
    kinds = [gap] if isinstance(gap, str) else list(gap)
    if not kinds or any(k not in gaps for k in kinds):
        raise ValueError(f"gap must be one or several of {tuple(gaps)}, got {gap!r}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return kinds
