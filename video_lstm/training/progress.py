"""One plain line per training epoch, for logs and terminals where a progress bar is off."""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only


class EpochLine(Callback):
    """Print ``epoch 3/12  loss 0.812  val acc 0.875  (2.1 s)`` at the end of every epoch.

    Args:
        prefix: Put in front of every line (e.g. indentation).
    """

    def __init__(self, prefix: str = "  ") -> None:
        self.prefix = prefix
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        for key, name in (("train/loss_epoch", "loss"), ("val/loss", "val loss")):
            if key in m:
                parts.append(f"{name} {float(m[key]):.3f}")
        if "val/acc" in m:
            parts.append(f"val acc {float(m['val/acc']):.3f}")
        parts.append(f"({time.perf_counter() - self._t0:.1f} s)")
        print(self.prefix + "  ".join(parts), flush=True)
