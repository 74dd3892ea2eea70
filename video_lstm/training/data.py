"""LightningDataModule: manifests -> clip datasets (decoded on the fly) or a feature cache.

Two sources, the same batches for the module:

- videos (default): ``ClipDataset`` decodes clips with the train/eval transform presets;
  batches carry ``"clip"`` ``(B, V, T, C, S, S)``;
- ``features_dir``: ``FeatureClipDataset`` reads per-frame features cached by
  ``tools/extract_features.py`` (``<features_dir>/train``, ``<features_dir>/test``); batches carry
  ``"features"`` ``(B, V, T, ...)`` and only the temporal model and head run.

Validation uses the ``test`` subset (UCF101/HMDB51 have no separate validation split) with
``num_clips`` views per video, i.e. video-level accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VideoDataModule(L.LightningDataModule):
    """Action-recognition data for :class:`~video_lstm.training.module.VideoLSTMModule`.

    Args:
        root: Dataset root (videos, and split files where the layout has them). For ``"folder"``
            and ``"list"``, ``{subset}`` in it is replaced by ``train`` / ``test_subset``
            (e.g. ``data/my_actions/{subset}`` with one folder per class below each).
        kind: Manifest layout for ``load_manifest``: ``"ucf101"``, ``"hmdb51"``, ``"kinetics"``,
            ``"folder"`` or ``"list"``.
        split: Official split number (UCF101/HMDB51).
        test_subset: Name of the held-out subset (``"test"``; ``"val"`` for Kinetics CSVs).
        manifest_args: Extra keyword arguments for ``load_manifest`` (``split_dir``,
            ``annotations``, ``missing``, ...).
        features_dir: Train on cached features from this folder instead of decoding videos.
        clip_len: Frames per clip.
        frame_interval: Distance between clip frames in the source video.
        frame_size: Square model input size.
        decode_size: Short side the decoder resizes to (``None``: ``frame_size * 8 // 7``).
        num_clips: Views per video at validation/test (video-level score = mean over views).
        batch_size: Videos per batch.
        num_workers: DataLoader worker processes.
        scale: Area range of the training random resized crop.
        hflip_prob: Horizontal flip probability; keep 0 when classes have a left/right direction.
        jitter: Strength of the training colour jitter.
        seed: Base seed for clip sampling and augmentation.
        mean: Normalisation mean (``None``: from the model's backbone at setup).
        std: Normalisation std (``None``: from the model's backbone at setup).
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        kind: str = "ucf101",
        split: int = 1,
        test_subset: str = "test",
        manifest_args: dict[str, Any] | None = None,
        features_dir: str | None = None,
        clip_len: int = 16,
        frame_interval: int = 1,
        frame_size: int = 112,
        decode_size: int | None = None,
        num_clips: int = 3,
        batch_size: int = 8,
        num_workers: int = 0,
        scale: tuple[float, float] = (0.6, 1.0),
        hflip_prob: float = 0.0,
        jitter: float = 0.1,
        seed: int = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.root = root
        self.kind = kind
        self.split = split
        self.test_subset = test_subset
        self.manifest_args = dict(manifest_args or {})
        self.features_dir = features_dir
        self.clip_len = clip_len
        self.frame_interval = frame_interval
        self.frame_size = frame_size
        self.decode_size = decode_size or frame_size * 8 // 7
        self.num_clips = num_clips
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.scale = tuple(scale)
        self.hflip_prob = hflip_prob
        self.jitter = jitter
        self.seed = seed
        self.mean = list(mean) if mean is not None else None
        self.std = list(std) if std is not None else None
        self._class_names: list[str] | None = None
        self.datasets: dict[str, Dataset] = {}

    # ------------------------------------------------------------------ manifests / info
    def manifest(self, subset: str):
        """The ``Manifest`` of ``subset`` (``"train"`` or ``"test"``, the held-out subset)."""
        from video_lstm.data.datasets import load_manifest

        name = "train" if subset == "train" else self.test_subset
        root = str(self.root)
        options = dict(self.manifest_args)
        if self.kind in ("ucf101", "hmdb51"):
            options.update(split=self.split, subset=name)
        elif self.kind == "kinetics":
            options.update(subset=name)
        else:  # folder / list: one folder or list file per subset
            root = root.replace("{subset}", name)
        return load_manifest(self.kind, root, **options)

    @property
    def class_names(self) -> list[str]:
        """Label names (from the training manifest or the feature cache's index)."""
        if self._class_names is None:
            index = Path(self.features_dir or "") / "train" / "index.json"
            if self.features_dir and index.is_file():
                from video_lstm.data.features import load_index

                self._class_names = list(load_index(index.parent)["class_names"])
            else:  # no cache yet (e.g. while extracting it): the manifest decides
                self._class_names = list(self.manifest("train").class_names)
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _norm(self) -> tuple[list[float], list[float]]:
        if self.mean is not None and self.std is not None:
            return self.mean, self.std
        if self.features_dir:
            from video_lstm.data.features import load_index

            index = load_index(Path(self.features_dir) / "train")
            return list(index["mean"]), list(index["std"])
        module = self.trainer.lightning_module if self.trainer is not None else None
        model = getattr(module, "model", None)
        if model is not None:
            return [float(m) for m in model.mean], [float(s) for s in model.std]
        return list(IMAGENET_MEAN), list(IMAGENET_STD)

    def meta_info(self) -> dict[str, Any]:
        """Preprocessing facts the checkpoint needs (see ``ModelMeta``)."""
        mean, std = self._norm()
        return {
            "class_names": self.class_names,
            "clip_len": self.clip_len,
            "frame_interval": self.frame_interval,
            "frame_size": self.frame_size,
            "mean": mean,
            "std": std,
            "dataset": {
                "root": str(self.root),
                "kind": self.kind,
                "split": self.split,
                "features_dir": self.features_dir,
            },
        }

    # ---------------------------------------------------------------------------- datasets
    def build_dataset(self, subset: str, *, train: bool) -> Dataset:
        """The dataset of ``subset`` with training (random clip, augmentation) or eval views."""
        if self.features_dir:
            from video_lstm.data.features import FeatureClipDataset

            return FeatureClipDataset(
                Path(self.features_dir) / subset,
                clip_len=self.clip_len,
                train=train,
                num_clips=1 if train else self.num_clips,
                seed=self.seed,
            )
        from video_lstm.data.clip_dataset import ClipDataset
        from video_lstm.data.transforms import eval_transform, train_transform

        mean, std = self._norm()
        if train:
            transform = train_transform(
                size=self.frame_size,
                mean=mean,
                std=std,
                scale=self.scale,
                hflip_prob=self.hflip_prob,
                jitter=self.jitter,
                seed=self.seed,
            )
        else:
            transform = eval_transform(size=self.frame_size, mean=mean, std=std)
        manifest = self.manifest(subset)
        return ClipDataset(
            manifest.samples,
            manifest.class_names,
            transform=transform,
            clip_len=self.clip_len,
            frame_interval=self.frame_interval,
            train=train,
            num_clips=1 if train else self.num_clips,
            decode_size=self.decode_size,
            seed=self.seed,
        )

    def setup(self, stage: str) -> None:
        if stage == "fit" and "train" not in self.datasets:
            self.datasets["train"] = self.build_dataset("train", train=True)
        if stage in ("fit", "validate", "test", "predict") and "test" not in self.datasets:
            self.datasets["test"] = self.build_dataset("test", train=False)

    def set_epoch(self, epoch: int) -> None:
        """New random training clips; called by the module at each epoch start.

        Workers are re-created every epoch (``persistent_workers=False``), so they pick it up.
        """
        ds = self.datasets.get("train")
        if ds is not None and hasattr(ds, "set_epoch"):
            ds.set_epoch(epoch)

    def _loader(self, subset: str, *, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.datasets[subset],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            drop_last=False,
            persistent_workers=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
