"""Dataset kinds: manifests (which video has which label) from the layouts people already have.

The loaders live in :mod:`video_lstm.data.datasets.base` while the package is being split.
"""

from video_lstm.data.datasets.base import *  # noqa: F403
from video_lstm.data.datasets.base import __all__  # noqa: F401
