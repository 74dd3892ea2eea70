"""``DatasetSpec``: which dataset (kind, root, options, subsets) as plain values, and its manifests.

    spec = DatasetSpec(kind="segments_csv", root="data/synthetic_untrimmed",
                       options={"annotations": "annotations.csv"}, subsets={"val": "val"})
    spec.manifest("val")   # a TemporalManifest (the kind is temporal)

A spec round-trips through YAML (:meth:`DatasetSpec.to_dict`) and checks its options against the
kind's loader signature when it is made, so a wrong option is named before anything is read.
The training DataModule, ``evaluate`` and ``calibrate`` all build their manifests through one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from video_lstm.data.datasets.base import Manifest, TemporalManifest
from video_lstm.data.datasets.kinds import DatasetKind, get_dataset_kind

DEFAULT_SUBSETS = {"train": "train", "test": "test"}


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: a registered ``kind``, its ``root``, the kind's ``options`` and the subsets.

    Args:
        kind: A registered dataset kind (``list_dataset_kinds()``).
        root: The loader's first argument (dataset folder, or list file); ``{subset}`` in it is
            replaced by the subset's name (one folder per subset, for kinds without a
            ``subset`` option). Relative paths are relative to the working directory.
        options: The kind's options (its loader's keyword arguments, but ``subset``). Relative
            paths among its ``path_options`` are relative to ``root``.
        subsets: Role -> the dataset's own subset name: ``train``, ``test`` (held out), ``val``
            (calibration), e.g. ``{"train": "training", "test": "validation"}``. A role not
            listed is taken as the dataset's own name.
    """

    kind: str
    root: str
    options: dict[str, Any] = field(default_factory=dict)
    subsets: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SUBSETS))

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", str(self.root))
        object.__setattr__(self, "options", dict(self.options or {}))
        object.__setattr__(self, "subsets", {**DEFAULT_SUBSETS, **(self.subsets or {})})
        self.kind_entry.check_options(self.options)

    @classmethod
    def from_config(
        cls,
        *,
        kind: str,
        root: str | Path,
        manifest_args: dict[str, Any] | None = None,
        split: int | None = None,
        test_subset: str = "test",
        val_subset: str | None = None,
    ) -> DatasetSpec:
        """The spec of a training config's ``data:`` fields (``configs/data/*.yaml``).

        ``split`` goes to kinds that have a ``split`` option (UCF101, HMDB51) unless
        ``manifest_args`` sets it; other kinds ignore it.
        """
        options = dict(manifest_args or {})
        if split is not None and "split" in get_dataset_kind(kind).options:
            options.setdefault("split", split)
        subsets = {"train": "train", "test": test_subset}
        if val_subset:
            subsets["val"] = val_subset
        return cls(kind=kind, root=str(root), options=options, subsets=subsets)

    @property
    def kind_entry(self) -> DatasetKind:
        """The registered kind (raises ``ValueError`` naming the registered ones)."""
        return get_dataset_kind(self.kind)

    @property
    def temporal(self) -> bool:
        """Untrimmed videos with segments (a ``TemporalManifest``, a background class)."""
        return self.kind_entry.temporal

    def subset_name(self, subset: str) -> str:
        """The dataset's own name of the role ``subset`` (``train`` / ``test`` / ``val``)."""
        return self.subsets.get(subset, subset)

    def loader_args(self, subset: str) -> tuple[str, dict[str, Any]]:
        """``(root, options)`` the loader is called with for ``subset``.

        Relative path options are made absolute under the root, so that a loader which itself
        resolves against the root does not join it a second time.
        """
        kind, name = self.kind_entry, self.subset_name(subset)
        root = self.root.replace("{subset}", name)
        options = dict(self.options)
        base = Path(root).absolute()
        for key in kind.path_options:
            value = options.get(key)
            if value is not None and not Path(str(value)).is_absolute():
                options[key] = str(base / str(value).replace("{subset}", name))
        if kind.has_subsets:
            options["subset"] = name
        return root, options

    def manifest(self, subset: str = "train") -> Manifest | TemporalManifest:
        """The manifest of ``subset`` (a role in :attr:`subsets`, or the dataset's own name)."""
        kind = self.kind_entry
        root, options = self.loader_args(subset)
        subset_option = {"subset": options.pop("subset")} if kind.has_subsets else {}
        manifest = kind.loader(root, **kind.check_options(options), **subset_option)
        expected = TemporalManifest if kind.temporal else Manifest
        if not isinstance(manifest, expected):
            raise TypeError(
                f"dataset kind {self.kind!r} is registered with temporal={kind.temporal} but its "
                f"loader returned a {type(manifest).__name__}, not a {expected.__name__}"
            )
        return manifest

    def to_dict(self) -> dict[str, Any]:
        """Plain values (YAML / JSON / a checkpoint's ``meta``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetSpec:
        """The inverse of :meth:`to_dict`."""
        return cls(**data)
