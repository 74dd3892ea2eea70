"""Configs that ship inside the package (package data), found through ``importlib.resources``.

Only what the library itself reads lives here: ``untrimmed_demo.yaml``, the recipe's training
config, used by ``video-lstm demo`` and :func:`video_lstm.training.recipe.train_untrimmed`.
The repository's ``configs/untrimmed_demo.yaml`` is a link to it, so the README's
``--config configs/...`` commands and the installed wheel read the same file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def config_file(name: str) -> Path:
    """The path of a packaged config, e.g. ``config_file("untrimmed_demo.yaml")``.

    The package is installed as plain files (setuptools wheels are not zip-safe here), so the
    resource is a real path that LightningCLI's ``--config`` can read.

    Raises:
        FileNotFoundError: No such config in the package.
    """
    path = Path(str(files(__name__) / name))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no packaged config {name!r} (broken install?)")
    return path
