"""The device of a runtime without torch, in a module of its own so that the runtimes
(``runtime.ort``) and the package that chooses between them import it, not each other."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RuntimeDevice"]


@dataclass(frozen=True)
class RuntimeDevice:
    """A device named as torch names it (``cpu``, ``cuda:0``), for runtimes without torch.

    ``type`` is what the stages test (``predictor.device.type == "cuda"``), as on a
    ``torch.device``.
    """

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"
