"""Plugins: code outside the package that registers writers, dataset kinds, temporal models or
decoder backends before a command runs.

A plugin is a Python file or an importable module whose import calls the public ``register_*``
functions (``video_lstm.inference.writers.register_writer``, ...). Three ways in, all loaded
by :func:`load_plugins`:

- ``video-lstm --plugin FILE.py|module.name COMMAND ...`` (repeatable, before the command);
- the environment variable ``VIDEO_LSTM_PLUGINS`` (``os.pathsep``-separated files or modules).
  :func:`load_plugins` adds the plugins it is given to it, so worker processes (spawned, Ray
  actors on this host) import the same plugins;
- the entry-point group ``video_lstm.plugins`` of installed packages
  (``[project.entry-points."video_lstm.plugins"] mine = "my_package.video_lstm_plugin"``); an
  entry point naming a callable is called once after import.

Every table's lookup calls :func:`load_plugins` first (once per process, then a no-op), so a
process that never saw the command line (a worker) still finds what the plugins registered.
A plugin that cannot be found or fails to import raises :class:`PluginError` naming it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from video_lstm.errors import UsageError

__all__ = ["ENTRY_POINT_GROUP", "ENV_VAR", "PluginError", "load_plugins"]

ENV_VAR = "VIDEO_LSTM_PLUGINS"
ENTRY_POINT_GROUP = "video_lstm.plugins"

_loaded: dict[str, ModuleType] = {}  # spec as resolved (absolute file or module name) -> module
_entry_points_loaded = False
_loading = False  # a plugin being imported may look a table up: do not recurse


class PluginError(UsageError):
    """A plugin cannot be found or its import failed (the message names it)."""


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or (os.altsep or os.sep) in spec


def _resolve(spec: str) -> str:
    """A file as its absolute path (workers may run elsewhere), a module name as given."""
    return str(Path(spec).expanduser().resolve()) if _is_file(spec) else spec


def _import_file(path: str) -> ModuleType:
    """Import a plugin file under a name fixed by its path, so every process that loads it
    gives its classes and functions the same qualified names (what pickle looks up)."""
    if not Path(path).is_file():
        raise PluginError(f"plugin {path}: no such file")
    stem = re.sub(r"\W", "_", Path(path).stem)
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:8]
    name = f"video_lstm_plugin_{stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise PluginError(f"plugin {path}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # before running it: dataclasses and pickle look it up
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _load_one(spec: str) -> ModuleType:
    key = _resolve(spec)
    if key in _loaded:
        return _loaded[key]
    try:
        module = _import_file(key) if _is_file(spec) else importlib.import_module(key)
    except PluginError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name == key:
            raise PluginError(
                f"plugin {spec}: no module named {key!r} (a file needs its .py suffix)"
            ) from exc
        raise PluginError(f"plugin {spec}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise PluginError(f"plugin {spec}: {type(exc).__name__}: {exc}") from exc
    _loaded[key] = module
    return module


def _env_specs() -> list[str]:
    return [s for s in os.environ.get(ENV_VAR, "").split(os.pathsep) if s.strip()]


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points  # 50 ms: only when a table is read

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, ModuleType):
                obj()
        except Exception as exc:
            dist = getattr(ep.dist, "name", "?")
            raise PluginError(
                f"plugin {ep.name} = {ep.value} (entry point of {dist}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def load_plugins(specs: Sequence[str] = (), *, export: bool = True) -> list[ModuleType]:
    """Import the plugins of ``VIDEO_LSTM_PLUGINS``, the installed entry points and ``specs``.

    Each plugin is imported once per process; calling again is cheap. Tables call this before
    a lookup, so ``load_plugins()`` with no argument is what a worker process needs.

    Args:
        specs: Plugin files (``path/to/plugin.py``) or module names (``my_package.plugin``).
        export: Add ``specs`` (files as absolute paths) to ``VIDEO_LSTM_PLUGINS`` so that
            processes started from now on load them too.

    Returns:
        The modules of ``specs``, in order.

    Raises:
        PluginError: A plugin is not found or its import raised (the message names it).
    """
    global _loading
    if _loading:
        return []
    _loading = True
    try:
        for spec in _env_specs():
            _load_one(spec)
        _load_entry_points()
        modules = [_load_one(spec) for spec in specs]
    finally:
        _loading = False
    if export and specs:
        current = _env_specs()
        os.environ[ENV_VAR] = os.pathsep.join(dict.fromkeys([*current, *map(_resolve, specs)]))
    return modules
