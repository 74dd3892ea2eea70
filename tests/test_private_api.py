"""No private Lightning or decord API in the package (issue 19): no name or module with a leading
underscore imported or reached from ``lightning``/``torchmetrics``/``decord`` (``decord._ffi``
was called once), and no subclass of a Lightning class that reads or writes its base's private
attributes (``LastEpochCheckpoint`` used to set
``self._last_global_step_saved`` to make ``ModelCheckpoint`` write ``last.ckpt``)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THIRD_PARTY = ("lightning", "torchmetrics", "decord")


def _private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def private_uses(source: str) -> list[str]:
    """What ``source`` uses of the third-party packages' private API, one line each."""
    tree = ast.parse(source)
    found, imported = [], {}  # local name -> (module, name)
    modules: set[str] = set()  # local names of imported third-party modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in THIRD_PARTY:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
                if _private(f"{node.module}.{alias.name}"):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in THIRD_PARTY:
                    modules.add(a.asname or a.name.split(".")[0])
                    if _private(a.name):
                        found.append(f"line {node.lineno}: import {a.name}")
    for node in ast.walk(tree):  # decord._ffi.base: a private attribute of a module
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and _private(node.attr)
                and not node.attr.startswith("__")):  # fmt: skip
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        bases = [getattr(importlib.import_module(imported[b.id][0]), imported[b.id][1])
                 for b in cls.bases if isinstance(b, ast.Name) and b.id in imported]  # fmt: skip
        theirs = [k for base in bases for k in inspect.getmro(base)
                  if k.__module__.split(".")[0] in THIRD_PARTY]  # fmt: skip
        texts = [inspect.getsource(k) for k in theirs]
        for node in cls.body:  # overriding a private method relies on when the base calls it
            if (isinstance(node, ast.FunctionDef) and node.name.startswith("_")
                    and not node.name.startswith("__") and any(hasattr(k, node.name) for k in theirs)):  # fmt: skip
                found.append(f"line {node.lineno}: {cls.name} overrides {node.name}")
        for node in ast.walk(cls):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "self" and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and any(f"self.{node.attr}" in t for t in texts)):  # fmt: skip
                found.append(f"line {node.lineno}: {cls.name} uses its base's self.{node.attr}")
    return found


def test_the_check_finds_the_old_last_checkpoint_hack():
    old = (
        "from lightning.pytorch.callbacks import ModelCheckpoint\n"
        "from lightning.pytorch.utilities.rank_zero import _get_rank\n"
        "import decord\n"
        "class LastEpochCheckpoint(ModelCheckpoint):\n"
        "    def _save_topk_checkpoint(self, trainer, monitor_candidates):\n"
        "        super()._save_topk_checkpoint(trainer, monitor_candidates)\n"
        "        self._mine = 1\n"
        "        self._last_global_step_saved = trainer.global_step\n"
        "lib = decord._ffi.base._LIB\n"
    )
    assert private_uses(old) == [
        "line 2: from lightning.pytorch.utilities.rank_zero import _get_rank",
        "line 9: decord._ffi",
        "line 5: LastEpochCheckpoint overrides _save_topk_checkpoint",
        "line 8: LastEpochCheckpoint uses its base's self._last_global_step_saved",
    ]


def test_no_private_lightning_or_decord_api_in_the_package():
    found = [f"{path.relative_to(ROOT)} {use}"
             for package in ("video_lstm", "pipelines") for path in sorted((ROOT / package).rglob("*.py"))
             for use in private_uses(path.read_text())]  # fmt: skip
    assert not found, "\n".join(found)
