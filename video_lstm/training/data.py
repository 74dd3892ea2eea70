"""LightningDataModule: manifests -> clip datasets (decoded on the fly) or a feature cache.

Two sources, the same batches for the module:

- videos (default): ``ClipDataset`` decodes clips with the train/eval transform presets;
  batches carry ``"clip"`` ``(B, V, T, C, S, S)``;
- ``features_dir``: ``FeatureClipDataset`` reads per-frame features cached by
  ``tools/extract_features.py`` (``<features_dir>/train``, ``<features_dir>/test``); batches carry
  ``"features"`` ``(B, V, T, ...)`` and only the temporal model and head run.

Validation uses the ``test`` subset (UCF101/HMDB51 have no separate validation split) with
``num_clips`` views per video, i.e. video-level accuracy.

Which dataset is a :class:`~video_lstm.data.datasets.DatasetSpec` built from ``root``, ``kind``,
``split``, ``manifest_args`` and the subset names (:attr:`VideoDataModule.spec`): the kind's
loader, options and temporal flag come from the table of dataset kinds, so a kind registered by a
plugin trains like a built-in one.

Untrimmed videos (temporal kinds: ``"activitynet"``, ``"thumos14"``, ``"segments_csv"``,
``"results"``, or a plugin's) train on windows drawn from the feature cache (:class:`WindowFeatureDataset`): classes are
``background`` plus the actions, windows are labelled by overlap with the segments and drawn
class-balanced; validation accuracy is then window accuracy. ``val_subset`` names the videos
``video-lstm calibrate`` tunes the segment rules on.

Relative paths among a kind's path options (``split_dir``, ``annotations``, ``video_dir``) are
relative to ``root``, so a config names a dataset by its root alone.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from video_lstm.data.datasets import DatasetSpec

log = logging.getLogger(__name__)

# Words that make a class change meaning under a horizontal flip (pan_left -> pan_right).
_DIRECTION_WORDS = {"left", "right", "cw", "ccw", "clockwise", "counterclockwise", "anticlockwise"}


def direction_classes(class_names: list[str]) -> list[str]:
    """Classes whose name says a left/right or rotation direction (a flip mirrors them)."""
    return [c for c in class_names if _DIRECTION_WORDS & set(re.split(r"[^a-z]+", c.lower()))]


class FlipSwapDataset(Dataset):
    """Horizontal flip of a training clip with the label swapped to its mirror class.

    Args:
        base: A training dataset whose items carry ``"clip"`` ``(V, T, C, H, W)``.
        prob: Flip probability.
        swap: Label index of each class after a flip (identity for symmetric classes).
        seed: Base seed (the decision is drawn from ``seed``, the epoch and the index).
    """

    def __init__(self, base: Dataset, prob: float, swap: list[int], seed: int = 0) -> None:
        self.base, self.prob, self.swap, self.seed, self.epoch = base, prob, swap, seed, 0

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name: str) -> Any:  # class_names, labels, samples, ...
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.base[i]
        rng = np.random.default_rng([self.seed, self.epoch, i, 7])
        if rng.random() < self.prob:
            item = {**item, "clip": torch.flip(item["clip"], dims=[-1])}
            item["label"] = self.swap[int(item["label"])]
        return item


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VideoDataModule(L.LightningDataModule):
    """Action-recognition data for :class:`~video_lstm.training.module.VideoLSTMModule`.

    Args:
        root: Dataset root (videos, and split files where the layout has them). For ``"folder"``
            and ``"list"``, ``{subset}`` in it is replaced by ``train`` / ``test_subset``
            (e.g. ``data/my_actions/{subset}`` with one folder per class below each).
        kind: A registered dataset kind (``video_lstm.data.datasets.list_dataset_kinds()``):
            ``"ucf101"``, ``"hmdb51"``, ``"kinetics"``, ``"folder"``, ``"list"``, the temporal
            ``"activitynet"``, ``"thumos14"``, ``"segments_csv"``, ``"results"``, or a plugin's.
        split: Official split number, for kinds with a ``split`` option (UCF101/HMDB51).
        test_subset: Name of the held-out subset (``"test"``; ``"val"`` for Kinetics CSVs).
        manifest_args: The kind's options: its loader's keyword arguments (``split_dir``,
            ``annotations``, ``missing``, ...); an option the kind does not have is refused with
            the list of those it has (``video-lstm evaluate --help`` lists every kind's).
        val_subset: Subset for calibrating the segment rules (untrimmed kinds, e.g. ``"val"``).
        features_dir: Train on cached features from this folder instead of decoding videos
            (needed for untrimmed kinds). The cache records which dataset it was built from
            and is refused for another one.
        clip_len: Frames per clip.
        frame_interval: Distance between clip frames in the source video.
        frame_size: Square model input size.
        decode_size: Short side the decoder resizes to (``None``: ``frame_size * 8 // 7``).
        num_clips: Views per video at validation/test (video-level score = mean over views).
        batch_size: Videos per batch.
        num_workers: DataLoader worker processes.
        scale: Area range of the training random resized crop.
        hflip_prob: Horizontal flip probability. Classes with a direction in their name
            (``left``/``right``/``cw``/``ccw``) must be paired in ``hflip_swap``, else a flip
            would teach pan_left frames as pan_left (refused with an error).
        hflip_swap: Mirror pairs, e.g. ``{"pan_left": "pan_right", "rotate_cw": "rotate_ccw"}``
            (symmetric: one direction is enough); flipped clips take the mirror label.
        time_reverse_swap: Untrimmed: classes that are each other played backwards
            (``{"grow": "shrink", "move_left": "move_right"}``, symmetric; unlisted classes such
            as ``background`` keep their label); training windows are reversed with
            probability 0.5 and take the partner's label (exact on cached features). ``None``:
            off.
        min_share: Untrimmed: share of a window its label must cover (see ``window_labels``).
        class_balanced: Untrimmed: draw training windows class-balanced.
        background_share: Untrimmed, class-balanced: share of training windows drawn from
            ``background`` (``None``: ``1 / K`` like every class).
        samples_per_epoch: Untrimmed: training windows per epoch (default: about one per
            ``clip_len // 4`` cached steps).
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
        val_subset: str | None = None,
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
        hflip_swap: dict[str, str] | None = None,
        jitter: float = 0.1,
        time_reverse_swap: dict[str, str] | None = None,
        min_share: float = 0.5,
        class_balanced: bool = True,
        background_share: float | None = None,
        samples_per_epoch: int | None = None,
        seed: int = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.root = root
        self.kind = kind
        self.split = split
        self.test_subset = test_subset
        self.val_subset = val_subset
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
        self.hflip_swap = dict(hflip_swap or {})
        self.jitter = jitter
        self.time_reverse_swap = dict(time_reverse_swap) if time_reverse_swap else None
        self.min_share = min_share
        self.class_balanced = class_balanced
        self.background_share = background_share
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.mean = list(mean) if mean is not None else None
        self.std = list(std) if std is not None else None
        # Which dataset, as plain values; checked against the kind's options here, so a wrong
        # option is named when the config is read, not when the first manifest is.
        self.spec = DatasetSpec.from_config(
            kind=kind,
            root=root,
            manifest_args=self.manifest_args,
            split=split,
            test_subset=test_subset,
            val_subset=val_subset,
        )
        self._class_names: list[str] | None = None
        self.datasets: dict[str, Dataset] = {}

    # ------------------------------------------------------------------ manifests / info
    @property
    def untrimmed(self) -> bool:
        """Untrimmed videos with temporal annotations (windows + a background class): the
        kind's ``temporal`` flag in the table."""
        return self.spec.temporal

    def subset_name(self, subset: str) -> str:
        """The dataset's own name of ``"train"``, ``"test"`` or ``"val"``."""
        if subset == "val" and not self.val_subset:
            raise ValueError("data.val_subset is not set: which videos should calibrate?")
        return self.spec.subset_name(subset)

    def manifest(self, subset: str):
        """The manifest of ``subset``: ``"train"``, ``"test"`` (the held-out subset) or ``"val"``.

        A ``Manifest``, or a ``TemporalManifest`` for temporal kinds (see :attr:`spec`).
        """
        self.subset_name(subset)  # refuses "val" without data.val_subset
        return self.spec.manifest(subset)

    def source(self, subset: str) -> dict[str, Any]:
        """What a feature cache of ``subset`` is built from (recorded and checked on use)."""
        return {
            "root": str(self.root),
            "kind": self.kind,
            "subset": self.subset_name(subset),
            "manifest_digest": self.manifest(subset).digest(),
        }

    @property
    def class_names(self) -> list[str]:
        """Label names (from the training manifest or the feature cache's index); untrimmed
        kinds: ``background`` first, then the actions."""
        if self._class_names is None:
            index = Path(self.features_dir or "") / "train" / "index.json"
            if self.features_dir and index.is_file():
                from video_lstm.data.features import load_index

                self._class_names = list(load_index(index.parent)["class_names"])
            else:  # no cache yet (e.g. while extracting it): the manifest decides
                self._class_names = self.manifest("train").training_classes
        return self._class_names

    @property
    def num_classes(self) -> int:
        """Model outputs: ``len(class_names)``, background included for temporal kinds (as the
        manifest's ``num_classes`` and the feature cache's index count it)."""
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
            "decode_size": self.decode_size,
            "mean": mean,
            "std": std,
            "dataset": {
                "root": str(self.root),
                "kind": self.kind,
                "split": self.split,
                "test_subset": self.test_subset,
                "val_subset": self.val_subset,
                "manifest_args": self.manifest_args,
                "features_dir": self.features_dir,
                "spec": self.spec.to_dict(),  # DatasetSpec.from_dict gives the dataset back
            },
        }

    # ---------------------------------------------------------------------------- datasets
    def build_dataset(self, subset: str, *, train: bool) -> Dataset:
        """The dataset of ``subset`` with training (random clip, augmentation) or eval views."""
        if self.features_dir:
            from video_lstm.data.features import (
                FeatureClipDataset,
                WindowFeatureDataset,
                check_source,
                load_index,
            )

            cache = Path(self.features_dir) / subset
            try:
                manifest = self.manifest(subset)
            except (FileNotFoundError, ValueError) as exc:  # only the cache is here
                log.info("not checking %s against the dataset (%s)", cache, exc)
            else:
                source = {"root": str(self.root), "kind": self.kind}
                source["manifest_digest"] = manifest.digest()
                paths = [str(p) for p in manifest.paths]
                check_source(load_index(cache), source, cache, paths=paths)
            if self.untrimmed:
                return WindowFeatureDataset(
                    cache,
                    clip_len=self.clip_len,
                    train=train,
                    min_share=self.min_share,
                    samples_per_epoch=self.samples_per_epoch,
                    class_balanced=self.class_balanced,
                    background_share=self.background_share,
                    reverse_swap=self._reverse_swap() if train else None,
                    seed=self.seed,
                )
            return FeatureClipDataset(
                cache,
                clip_len=self.clip_len,
                train=train,
                num_clips=1 if train else self.num_clips,
                seed=self.seed,
            )
        from video_lstm.data.clip_dataset import ClipDataset
        from video_lstm.data.transforms import eval_transform, train_transform

        if self.untrimmed:
            raise ValueError(
                f"{self.kind}: training on untrimmed videos reads windows from the feature cache; "
                "set data.features_dir and run `video-lstm extract-features` first"
            )
        mean, std = self._norm()
        if train:
            transform = train_transform(
                size=self.frame_size,
                mean=mean,
                std=std,
                scale=self.scale,
                hflip_prob=0.0,  # flipped below, with the label swap
                jitter=self.jitter,
                seed=self.seed,
            )
        else:
            transform = eval_transform(size=self.frame_size, mean=mean, std=std)
        manifest = self.manifest(subset)
        dataset = ClipDataset(
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
        if train and self.hflip_prob > 0:
            return FlipSwapDataset(
                dataset, self.hflip_prob, self.flip_swap(manifest.class_names), seed=self.seed
            )
        return dataset

    def _reverse_swap(self) -> list[int] | None:
        if not self.time_reverse_swap:
            return None
        pairs = {**self.time_reverse_swap, **{b: a for a, b in self.time_reverse_swap.items()}}
        names = self.class_names
        unknown = sorted(set(pairs) - set(names))
        if len(unknown) == len(pairs):
            raise ValueError(f"time_reverse_swap names classes {unknown} not in {names}")
        if unknown:
            # A subset of the classes the map was written for (a small dataset): a class whose
            # partner is missing is not reversed (-1), the other pairs still are.
            log.warning("time_reverse_swap: %s not in this dataset; their partners stay forward",
                        unknown)  # fmt: skip
        index = {c: i for i, c in enumerate(names)}
        return [index.get(pairs.get(c, c), -1) for c in names]

    def flip_swap(self, class_names: list[str]) -> list[int]:
        """Label index of each class after a horizontal flip (its mirror, or itself).

        Raises:
            ValueError: A direction-bearing class has no mirror in ``hflip_swap``, or a pair
                names an unknown class.
        """
        pairs = {**self.hflip_swap, **{b: a for a, b in self.hflip_swap.items()}}
        index = {c: i for i, c in enumerate(class_names)}
        unknown = sorted(set(pairs) - set(index))
        if unknown:
            raise ValueError(f"hflip_swap names classes {unknown} that are not in {class_names}")
        lost = [c for c in direction_classes(class_names) if c not in pairs]
        if lost:
            raise ValueError(
                f"hflip_prob={self.hflip_prob} would mirror direction-bearing classes {lost} "
                "without changing their label: pair them in data.hflip_swap "
                '(e.g. {"pan_left": "pan_right"}) or set data.hflip_prob 0'
            )
        return [index[pairs.get(c, c)] for c in class_names]

    def setup(self, stage: str) -> None:
        if stage == "fit" and "train" not in self.datasets:
            self.datasets["train"] = self.build_dataset("train", train=True)
        if stage == "fit" and self.features_dir and self.hflip_prob > 0:
            log.warning("data.hflip_prob is ignored on cached features (one cached view per frame)")
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
