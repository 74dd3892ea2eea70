"""LightningModule: loss, metrics, optimiser and schedule around a :class:`VideoClassifier`.

The same module trains on decoded clips (batch key ``"clip"``: the whole model runs) and on
cached per-frame features (batch key ``"features"``: only ``model.forward_head`` runs, the frozen
backbone is skipped). Every batch carries a view axis ``V`` (several clips per video at
evaluation, ``V = 1`` in training); scores are averaged over views, which gives video-level
accuracy with multi-clip evaluation.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from torchmetrics.classification import MulticlassAccuracy

from video_lstm.data.features import adapt_features
from video_lstm.models.checkpoint import META_KEY, ModelMeta


def pick_precision(accelerator: str = "auto") -> str:
    """The Lightning precision for the device: fp32 on CPU, bf16 (or fp16) mixed on GPU.

    bf16 autocast on the CPUs we run on is 7-30x slower than fp32, so CPU always gets
    ``"32-true"``. On CUDA, ``"bf16-mixed"`` where supported (Ampere and later), else ``"16-mixed"``.

    Args:
        accelerator: ``"cpu"``, ``"gpu"``/``"cuda"`` or ``"auto"`` (CUDA when available).

    Returns:
        A value for ``Trainer(precision=...)``.
    """
    use_cuda = accelerator in ("gpu", "cuda") or (
        accelerator == "auto" and torch.cuda.is_available()
    )
    if not use_cuda or not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to ``min_ratio``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class LastEpochCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (the best ``save_top_k``) plus a ``last.ckpt`` that is the last epoch.

    Lightning 2.6 writes its own ``last.ckpt`` only in a step where a top-k checkpoint was saved
    too, so with ``save_top_k=1`` it held the best epoch, not the last, and ``--ckpt_path
    last.ckpt`` resumed from the wrong place. Here Lightning's ``save_last`` stays off and
    ``last.ckpt`` is written through the public API (``trainer.save_checkpoint``) at the end of
    every training epoch, after that epoch's validation and top-k checkpoint.

    Args:
        save_last: Write ``last.ckpt`` (``last_model_path``) after every epoch.
        *args, **kwargs: ``ModelCheckpoint``'s.
    """

    def __init__(self, *args: Any, save_last: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, save_last=False, **kwargs)
        self.keep_last = bool(save_last)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if not self.keep_last or trainer.sanity_checking or trainer.fast_dev_run:
            return
        path = self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)
        # Set before saving: the path is part of the callback's state in the checkpoint.
        self.last_model_path = path
        trainer.save_checkpoint(path, self.save_weights_only)  # every rank: DDP gathers


class VideoLSTMModule(L.LightningModule):
    """Train a registered video classifier.

    Args:
        model_name: A name from :func:`video_lstm.models.list_models`.
        model_args: Overrides passed to ``create_model``: shared fields, ``temporal`` and the
            temporal model's options in ``temporal_args`` (e.g. ``{"temporal": "convgru",
            "temporal_args": {"hidden_sizes": [64]}}``).
        temporal_args: Options of the temporal model merged over ``model_args``'
            ``temporal_args``, one by one: ``--model.temporal_args.hidden_sizes [64]`` changes
            that option and keeps the config's others (a dotted key into ``model_args`` would
            replace its whole ``temporal_args``).
        class_names: Label of each output index. With LightningCLI this is linked from
            ``data.class_names``; its length sets ``num_classes``.
        lr: Peak AdamW learning rate.
        weight_decay: AdamW weight decay (not applied to biases and norm weights).
        warmup_epochs: Linear warm-up length in epochs (fractions allowed).
        min_lr_ratio: Final learning rate as a fraction of ``lr`` at the end of the cosine.
        label_smoothing: Cross-entropy label smoothing.
    """

    def __init__(
        self,
        model_name: str = "default",
        model_args: dict[str, Any] | None = None,
        temporal_args: dict[str, Any] | None = None,
        class_names: list[str] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        warmup_epochs: float = 1.0,
        min_lr_ratio: float = 0.01,
        label_smoothing: float = 0.1,
    ) -> None:
        super().__init__()
        from video_lstm.models import DEFAULT_MODEL, create_model

        if not class_names:
            raise ValueError("VideoLSTMModule needs class_names (link them from the data module)")
        self.save_hyperparameters()
        name = DEFAULT_MODEL if model_name == "default" else model_name
        args = dict(model_args or {})
        if temporal_args:
            args["temporal_args"] = {**(args.get("temporal_args") or {}), **temporal_args}
        self.model = create_model(name, num_classes=len(class_names), **args)
        self.class_names = list(class_names)
        k = len(class_names)
        top5 = min(5, k)
        self.train_acc = MulticlassAccuracy(num_classes=k, top_k=1)
        self.val_acc = MulticlassAccuracy(num_classes=k, top_k=1)
        self.val_acc5 = MulticlassAccuracy(num_classes=k, top_k=top5)
        self.val_class_acc = MulticlassAccuracy(num_classes=k, top_k=1, average="none")
        self.test_acc = MulticlassAccuracy(num_classes=k, top_k=1)
        self.test_acc5 = MulticlassAccuracy(num_classes=k, top_k=top5)
        self.test_class_acc = MulticlassAccuracy(num_classes=k, top_k=1, average="none")
        # Preprocessing facts for the checkpoint; filled from the data module in `setup`.
        self.data_info: dict[str, Any] = {}
        self.on_features = False

    # ----------------------------------------------------------------------------- forward
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Video-level logits ``(B, K)``: the mean over the batch's views of per-clip logits."""
        if "features" in batch:
            x = batch["features"]  # (B, V, T, D) or (B, V, T, C, h, w)
            b, v = x.shape[:2]
            feats = adapt_features(x.flatten(0, 1), self.model.config)  # (B*V, T, ...)
            logits = self.model.forward_head(feats)  # (B*V, K)
        else:
            x = batch["clip"]  # (B, V, T, C, H, W)
            b, v = x.shape[:2]
            logits = self.model(x.flatten(0, 1))  # (B*V, K)
        return logits.view(b, v, -1).mean(dim=1)  # (B, K)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.hparams.label_smoothing)

    # ------------------------------------------------------------------------------- steps
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch)
        loss = self._loss(logits, batch["label"])
        self.train_acc(logits, batch["label"])
        bs = logits.shape[0]
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=bs)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        labels = batch["label"]
        bs = logits.shape[0]
        self.log(
            "val/loss", self._loss(logits, labels), prog_bar=True, batch_size=bs, sync_dist=True
        )
        self.val_acc(logits, labels)
        self.val_acc5(logits, labels)
        self.val_class_acc.update(logits, labels)
        self.log("val/acc", self.val_acc, prog_bar=True, batch_size=bs)
        self.log("val/acc5", self.val_acc5, batch_size=bs)

    def on_validation_epoch_end(self) -> None:
        self._log_class_acc(self.val_class_acc, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        labels = batch["label"]
        bs = logits.shape[0]
        self.log("test/loss", self._loss(logits, labels), batch_size=bs, sync_dist=True)
        self.test_acc(logits, labels)
        self.test_acc5(logits, labels)
        self.test_class_acc.update(logits, labels)
        self.log("test/acc", self.test_acc, batch_size=bs)
        self.log("test/acc5", self.test_acc5, batch_size=bs)

    def on_test_epoch_end(self) -> None:
        self._log_class_acc(self.test_class_acc, "test")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, Any]:
        probs = self(batch).float().softmax(dim=-1)
        return {"probs": probs.cpu(), "label": batch["label"].cpu(), "index": batch["index"].cpu()}

    def _log_class_acc(self, metric: MulticlassAccuracy, prefix: str) -> None:
        per_class = metric.compute()
        metric.reset()
        for name, acc in zip(self.class_names, per_class.tolist(), strict=True):
            if not math.isnan(acc):
                self.log(f"{prefix}/acc_class/{name}", acc, sync_dist=True)

    # ------------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> dict[str, Any]:
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue  # a frozen backbone stays frozen
            if self.on_features and name.startswith("backbone."):
                continue  # on cached features the backbone never runs
            (no_decay if p.ndim <= 1 else decay).append(p)
        hp = self.hparams
        opt = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": hp.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=hp.lr,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        max_epochs = max(1, self.trainer.max_epochs or 1)
        warmup = int(round(hp.warmup_epochs * total / max_epochs))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda step: warmup_cosine(
                step, warmup_steps=warmup, total_steps=total, min_ratio=hp.min_lr_ratio
            ),
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------------- checkpoint
    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is not None and hasattr(dm, "meta_info"):
            self.data_info = dm.meta_info()
        self.on_features = bool(getattr(dm, "features_dir", None))
        if self.on_features:
            from pathlib import Path

            from video_lstm.data.features import check_compatible, load_index

            cache = Path(dm.features_dir) / "train"
            check_compatible(self.model, load_index(cache), cache)

    def on_train_epoch_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "set_epoch"):
            dm.set_epoch(self.current_epoch)

    def meta(self) -> ModelMeta:
        """The checkpoint metadata: classes, model config and the data module's preprocessing."""
        info = self.data_info
        return ModelMeta.for_model(
            self.model,
            self.class_names,
            clip_len=info.get("clip_len", 16),
            frame_interval=info.get("frame_interval", 1),
            frame_size=info.get("frame_size"),
            mean=info.get("mean"),
            std=info.get("std"),
            extra={"dataset": info.get("dataset", {}), "hparams": dict(self.hparams)},
            decode_size=info.get("decode_size"),
            # A model with the automatic background class says so: its gaps are no action.
            segment_rules={"background": "background"}
            if "background" in self.class_names
            else None,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[META_KEY] = self.meta().to_dict()
