"""The table of dataset kinds: a name -> its loader, its typed options, whether it is temporal.

A kind is registered once (:func:`register_dataset_kind`) and every consumer reads the table:
:class:`~video_lstm.data.datasets.spec.DatasetSpec` checks a config's options against it, the
DataModule asks it whether a kind is temporal (windows from the feature cache, a background
class), ``evaluate`` and ``calibrate`` choose trimmed or untrimmed scoring from it, and
``--help`` lists it (:func:`describe_dataset_kinds`).

The loader's signature is the kind's contract::

    def load(root: str | Path, *, subset: str = "train", my_option: int = 3) -> Manifest: ...

- the first parameter, positional: the dataset root (a folder, or a file for ``list``);
- every other parameter keyword-only and typed: these are the kind's options, checked by type
  when a spec names them (no ``**kwargs``: an option that is not declared is refused);
- a ``subset`` keyword, when the dataset has named subsets: the spec passes the subset's name
  (``"train"``, ``"test"``, ``"val"``, or what ``test_subset`` / ``val_subset`` call them).
  A loader without one reads a root per subset instead (``data/x/{subset}``);
- it returns a :class:`~video_lstm.data.datasets.base.Manifest` (``temporal=False``) or a
  :class:`~video_lstm.data.datasets.base.TemporalManifest` (``temporal=True``).
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from video_lstm.data.datasets.base import Manifest, TemporalManifest
from video_lstm.plugins import load_plugins

# The options a spec fills itself (from its subsets), not the config.
SPEC_OPTIONS = ("subset",)


@dataclass(frozen=True)
class DatasetKind:
    """One registered kind (see :func:`register_dataset_kind`)."""

    name: str
    loader: Callable[..., Manifest | TemporalManifest]
    temporal: bool
    path_options: tuple[str, ...] = ()
    description: str = ""
    options: dict[str, inspect.Parameter] = field(default_factory=dict, repr=False)

    @property
    def has_subsets(self) -> bool:
        """The loader takes the subset's name (else a root per subset: ``{subset}`` in it)."""
        return "subset" in self.options

    @property
    def config_options(self) -> dict[str, inspect.Parameter]:
        """The options a config may set (all but those the spec fills)."""
        return {k: p for k, p in self.options.items() if k not in SPEC_OPTIONS}

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` checked against the loader's signature, values as the loader takes them.

        Raises:
            ValueError: An option the kind does not have, a required one left out, or a value
                of the wrong type; the message names the kind and its valid options.
        """
        valid = self.config_options
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ValueError(
                f"dataset kind {self.name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options: {self.format_options() or '(none)'}"
            )
        need = [k for k, p in valid.items() if p.default is inspect.Parameter.empty]
        lacking = [k for k in need if options.get(k) is None]
        if lacking:
            raise ValueError(
                f"dataset kind {self.name!r} needs option {', '.join(map(repr, lacking))} "
                f"(e.g. manifest_args: {{{lacking[0]}: ...}}); its options: {self.format_options()}"
            )
        return self._typed(options)

    def _typed(self, options: dict[str, Any]) -> dict[str, Any]:
        # jsonargparse reads the signature the way the CLI does, so a value the CLI would
        # refuse is refused here too, with its key.
        from jsonargparse import ArgumentParser

        parser = ArgumentParser(exit_on_error=False)
        parser.add_function_arguments(
            self.loader, skip={*SPEC_OPTIONS, *self._positional()}, as_positional=False
        )
        try:
            parsed = parser.parse_object(options)
        except Exception as exc:  # argparse.ArgumentError, with jsonargparse's wording
            detail = " ".join(str(exc).split())
            raise ValueError(f"dataset kind {self.name!r}: {detail}") from None
        return {k: parsed[k] for k in options}

    def _positional(self) -> list[str]:
        sig = inspect.signature(self.loader)
        return [p.name for p in sig.parameters.values() if p.kind is not p.KEYWORD_ONLY]

    def format_options(self) -> str:
        """``name: type = default`` of each option, comma-separated (for messages and help)."""
        return ", ".join(_format_parameter(p) for p in self.config_options.values())


_KINDS: dict[str, DatasetKind] = {}


def register_dataset_kind(
    name: str,
    loader: Callable[..., Manifest | TemporalManifest],
    *,
    temporal: bool,
    path_options: Sequence[str] = (),
    description: str | None = None,
    replace: bool = False,
) -> DatasetKind:
    """Add a dataset kind to the table, so that ``data.kind: NAME`` reads it everywhere.

    Args:
        name: The ``kind`` a config names.
        loader: ``loader(root, *, <options>) -> Manifest | TemporalManifest`` (see the module
            docstring for the contract); its keyword-only parameters are the kind's options.
        temporal: Untrimmed videos with segments (a ``TemporalManifest``; training draws windows
            from the feature cache and adds the ``background`` class).
        path_options: Options naming a file or folder; a relative one is taken relative to the
            dataset root (``{subset}`` in it becomes the subset's name).
        description: One line for ``--help`` (default: the first line of the loader's docstring).
        replace: Replace a kind of the same name instead of refusing it.

    Returns:
        The registered :class:`DatasetKind`.

    Raises:
        ValueError: The name is taken (and not ``replace``), or the loader's signature breaks
            the contract.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"a dataset kind needs a name, got {name!r}")
    if name in _KINDS and not replace:
        raise ValueError(f"dataset kind {name!r} is already registered ({_KINDS[name].loader})")
    params = list(inspect.signature(loader).parameters.values())
    where = f"dataset kind {name!r}: loader {getattr(loader, '__qualname__', loader)}"
    if not params or params[0].kind not in (
        params[0].POSITIONAL_ONLY,
        params[0].POSITIONAL_OR_KEYWORD,
    ):
        raise ValueError(f"{where} must take the dataset root as its first, positional argument")
    options = {}
    for p in params[1:]:
        if p.kind is not p.KEYWORD_ONLY:
            raise ValueError(
                f"{where}: {p.name!r} must be keyword-only (options come after a bare '*', "
                "so the table can check them by name)"
            )
        options[p.name] = p
    unknown = sorted(set(path_options) - set(options))
    if unknown:
        raise ValueError(f"{where}: path_options {unknown} are not options of the loader")
    if description is None:  # the docstring's first paragraph, on one line
        description = " ".join((inspect.getdoc(loader) or "").split("\n\n", 1)[0].split())
    kind = DatasetKind(
        name=name,
        loader=loader,
        temporal=bool(temporal),
        path_options=tuple(path_options),
        description=description,
        options=options,
    )
    _KINDS[name] = kind
    return kind


def unregister_dataset_kind(name: str) -> None:
    """Remove a kind (tests; a plugin that replaces one should pass ``replace=True`` instead)."""
    _KINDS.pop(name, None)


def get_dataset_kind(name: str) -> DatasetKind:
    """The registered kind ``name``.

    Raises:
        ValueError: No such kind; the message lists the registered ones.
    """
    load_plugins()  # a worker process finds what the command line's --plugin registered
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset kind {name!r}; registered: {', '.join(list_dataset_kinds())} "
            "(a kind of your own: register_dataset_kind in a --plugin file)"
        ) from None


def list_dataset_kinds(*, temporal: bool | None = None) -> list[str]:
    """Registered kind names, sorted; ``temporal=True`` / ``False`` keeps only those."""
    load_plugins()
    return sorted(n for n, k in _KINDS.items() if temporal is None or k.temporal == temporal)


def is_temporal(kind: str) -> bool:
    """Whether ``kind`` reads untrimmed videos with segments (see :func:`register_dataset_kind`)."""
    return get_dataset_kind(kind).temporal


def describe_dataset_kinds(width: int = 100, *, prefix: str = "") -> str:
    """The table as text for ``--help``: each kind, trimmed or temporal, and its options.

    Args:
        width: Line width.
        prefix: Of the options named in the heading: ``""`` (``evaluate``'s ``--kind``) or
            ``"data."`` (``train`` and ``extract-features``: ``--data.kind``).
    """
    lines = [f"Dataset kinds (--{prefix}kind; their options go in --{prefix}manifest_args):"]
    for name in list_dataset_kinds():
        kind = _KINDS[name]
        what = "temporal" if kind.temporal else "trimmed"
        lines += textwrap.wrap(
            f"{name} ({what}): {kind.description}", width, initial_indent="  ",
            subsequent_indent="      ",
        )  # fmt: skip
        if kind.config_options:
            # An option is not broken across lines: its spaces are held until after wrapping.
            items = [_format_parameter(p).replace(" ", "\0") for p in kind.config_options.values()]
            wrapped = textwrap.wrap(
                "options: " + ", ".join(items), width, initial_indent="      ",
                subsequent_indent="        ", break_long_words=False, break_on_hyphens=False,
            )  # fmt: skip
            lines += [line.replace("\0", " ") for line in wrapped]
    return "\n".join(lines)


def load_manifest(kind: str, root: str | Path, **options: Any) -> Manifest | TemporalManifest:
    """Build a manifest from a layout chosen by name (options checked against the kind).

    Args:
        kind: A registered kind: trimmed clips ``"folder"``, ``"ucf101"``, ``"hmdb51"``,
            ``"kinetics"``, ``"list"`` (a :class:`Manifest`); untrimmed videos with segments
            ``"activitynet"``, ``"thumos14"``, ``"segments_csv"``, ``"results"`` (a
            :class:`TemporalManifest`); or one a plugin registered.
        root: The loader's first argument: dataset folder, or the list file for ``"list"``.
        **options: The loader's keyword arguments (``split``, ``subset``, ``split_dir``,
            ``annotations``, ``missing``, ...), taken as given (relative paths are relative
            to the working directory here; :class:`DatasetSpec` resolves them against the root).

    Returns:
        The manifest.
    """
    entry = get_dataset_kind(kind)
    # A loader without a subset keyword refuses one as an unknown option.
    subset = {"subset": options.pop("subset")} if entry.has_subsets and "subset" in options else {}
    return entry.loader(root, **entry.check_options(options), **subset)


def _format_parameter(p: inspect.Parameter) -> str:
    text = p.name
    if p.annotation is not inspect.Parameter.empty:
        # A string under ``from __future__ import annotations``, else a type: ``int``, not
        # ``<class 'int'>``.
        ann = p.annotation
        text += f": {ann if isinstance(ann, str) else inspect.formatannotation(ann)}"
    if p.default is not inspect.Parameter.empty:
        many = isinstance(p.default, tuple | list) and len(p.default) > 4
        text += f" = ({len(p.default)} values)" if many else f" = {p.default!r}"
    return text
