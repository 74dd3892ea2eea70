"""Data: dataset kinds and manifests, sampling, transforms, clip datasets, the feature cache.

``register_dataset_kind`` and ``DatasetSpec`` (from :mod:`video_lstm.data.datasets`) are
exposed here, loaded on first use so that importing ``video_lstm.data.sampling`` stays light.
"""

from __future__ import annotations

from typing import Any

_DATASET_API = ("DatasetSpec", "register_dataset_kind", "list_dataset_kinds", "get_dataset_kind")


def __getattr__(name: str) -> Any:
    if name in _DATASET_API:
        from video_lstm.data import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'video_lstm.data' has no attribute {name!r}")


__all__ = list(_DATASET_API)
