"""Train several configs on the same data and tabulate accuracy, size, time and convergence.

Each entry is a YAML (typically a model config such as ``configs/model/lstm_lite0.yaml``) layered
over shared base configs (data + trainer), trained with the training CLI in this process. The
table (``compare.csv``, ``compare.md``) and a plot (``compare.png``) go to ``out``; each run's
logs, checkpoints and resolved config go to ``out/<name>/version_N``.

A parameter grid (``--grid model.lr=0.001,0.003``) multiplies the entries; with
``--grid seed_everything=0,1,2`` the runs of each entry are also summarised over the seeds (mean,
min, max) in ``compare_seeds.md``. ``engine="local"``
trains the trials one after another; ``engine="ray"`` runs them as parallel Ray Tune trials on a
local Ray or a cluster (Tune's own state in ``out/tune``), all reading the same feature cache,
and writes the same table and plot.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from video_lstm.io.files import atomic_path

log = logging.getLogger(__name__)

COLUMNS = (
    "name",
    "temporal",
    "video_top1",
    "best_top1",
    "video_top5",
    "params_total",
    "params_trained",
    "train_time_s",
    "epochs",
    "epochs_to_90pct",
)


def read_val_curve(metrics_csv: str | Path, key: str = "val/acc") -> list[float]:
    """Per-epoch values of ``key`` from a Lightning ``metrics.csv`` (rows without it skipped)."""
    values: dict[int, float] = {}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            if row.get(key) not in (None, ""):
                values[int(row["epoch"])] = float(row[key])
    return [values[e] for e in sorted(values)]


def epochs_to_fraction(curve: Sequence[float], fraction: float = 0.9) -> int | None:
    """First epoch (1-based) whose value reaches ``fraction`` of the final value."""
    if not curve:
        return None
    target = fraction * curve[-1]
    return next(i + 1 for i, v in enumerate(curve) if v >= target)


def _split_values(text: str) -> list[str]:
    """``"[16],[32, 32],0.1"`` -> ``["[16]", "[32, 32]", "0.1"]``: commas inside brackets stay."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "[{") - (ch in "]}")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def expand_grid(
    configs: Sequence[str | Path],
    names: Sequence[str] | None = None,
    grid: Sequence[str] = (),
) -> list[tuple[str, str, list[str]]]:
    """The trials of a comparison: every config times every combination of the grid.

    Args:
        configs: One YAML per entry.
        names: Row names (default: the config file stems).
        grid: ``KEY=V1,V2,...`` items in the training CLI's dotted keys
            (``model.lr=0.001,0.003``,
            ``model.temporal_args.hidden_sizes=[32],[32, 32]``: commas inside
            brackets belong to the value); each combination becomes ``--KEY=V`` arguments.

    Returns:
        ``(row name, config, extra CLI arguments)`` per trial, configs outermost, in order.
        With a grid, the row name gets ``_<last key part>=<value>`` per key.
    """
    names = list(names) if names else [Path(c).stem for c in configs]
    if len(names) != len(configs):
        raise ValueError(f"{len(names)} names for {len(configs)} configs")
    axes: list[tuple[str, list[str]]] = []
    for item in grid:
        key, sep, values = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key or not values.strip():
            raise ValueError(f"grid item {item!r}: expected KEY=V1,V2 (e.g. model.lr=0.001,0.003)")
        axes.append((key, [v.strip() for v in _split_values(values) if v.strip()]))
    trials = []
    for name, config in zip(names, configs, strict=True):
        for combo in itertools.product(*(values for _, values in axes)):
            extra = [f"--{key}={v}" for (key, _), v in zip(axes, combo, strict=True)]
            suffix = "".join(
                f"_{key.rsplit('.', 1)[-1]}={v}" for (key, _), v in zip(axes, combo, strict=True)
            )
            trials.append((name + suffix, str(config), extra))
    return trials


def train_one(name: str, args: Sequence[str], out_dir: str | Path) -> dict[str, Any]:
    """Train one entry with the training CLI (``fit`` + ``args``) and return its table row."""
    from video_lstm.training.cli import main

    log.info("training %s: %s", name, " ".join(args))
    t0 = time.perf_counter()
    cli = main(["fit", *args], root_dir=str(out_dir), name=name)
    train_time = time.perf_counter() - t0
    trainer, module = cli.trainer, cli.model
    curve = read_val_curve(Path(trainer.loggers[0].log_dir) / "metrics.csv")
    curve5 = read_val_curve(Path(trainer.loggers[0].log_dir) / "metrics.csv", "val/acc5")
    model = module.model
    params_trained = sum(
        p.numel()
        for n, p in model.named_parameters()
        if p.requires_grad and not (module.on_features and n.startswith("backbone."))
    )
    return {
        "name": name,
        "temporal": model.config.temporal,
        "video_top1": curve[-1] if curve else math.nan,
        "best_top1": max(curve) if curve else math.nan,
        "video_top5": curve5[-1] if curve5 else math.nan,
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_trained": params_trained,
        "train_time_s": round(train_time, 1),
        "epochs": len(curve),
        "epochs_to_90pct": epochs_to_fraction(curve),
        "curve": curve,
        "checkpoint": trainer.checkpoint_callback.best_model_path
        if trainer.checkpoint_callback
        else "",
    }


def compare(
    configs: Sequence[str | Path],
    out: str | Path = "runs/compare",
    *,
    base: Sequence[str | Path] = (),
    extra: Sequence[str] = (),
    names: Sequence[str] | None = None,
    grid: Sequence[str] = (),
    engine: Literal["local", "ray"] = "local",
    address: str | None = None,
    cpus_per_trial: int = 1,
    gpus_per_trial: float = 0.0,
) -> list[dict[str, Any]]:
    """Train each config (times each grid combination) on the same data; write table and plot.

    Args:
        configs: One YAML per entry (a model config), layered after ``base``.
        out: Folder of the table, plot and per-run logs.
        base: Shared YAMLs (data, trainer) given before each entry.
        extra: Extra training CLI arguments for every run (e.g. ``--trainer.max_epochs=8``;
            on the command line: after ``--``).
        names: Row names (default: the config file stems).
        grid: Parameter grid, ``KEY=V1,V2`` items (see :func:`expand_grid`).
        engine: ``local`` trains the trials one after another in this process; ``ray`` runs
            them as parallel Ray Tune trials (every trial reads the same feature cache).
        address: Ray cluster to join (``ray`` engine; default: a local Ray sized to the machine).
        cpus_per_trial: CPUs (and torch threads) per Ray trial.
        gpus_per_trial: GPUs per Ray trial (fractions share a GPU).

    Returns:
        One row per trial (the columns of :data:`COLUMNS`, plus ``curve`` and ``checkpoint``),
        in the order of ``configs`` then the grid.
    """
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    out = Path(out).resolve()
    trials = []
    for name, config, grid_args in expand_grid(configs, names, grid):
        args: list[str] = []
        for c in [*base, config]:
            args += ["--config", str(Path(c).resolve())]
        trials.append((name, [*args, *extra, *grid_args]))
    if engine == "ray":
        rows = _train_on_ray(trials, out, address=address, cpus=cpus_per_trial, gpus=gpus_per_trial)
        write_table(rows, out)
    else:
        rows = []
        for name, args in trials:
            rows.append(train_one(name, args, out))
            write_table(rows, out)
    if any(_SEED.search(r["name"]) for r in rows):
        write_seed_table(rows, out)
    plot_comparison(rows, out / "compare.png")
    return rows


def _tune_trial(config: dict[str, Any]) -> None:
    """One Ray Tune trial: train one entry in the caller's working directory, report its row."""
    import torch
    from ray import tune

    config = config["trial"]
    os.chdir(config["cwd"])  # Tune starts trials in their own folder; configs are relative
    torch.set_num_threads(config["threads"])
    tune.report(train_one(config["name"], config["args"], config["out"]))


def _train_on_ray(
    trials: Sequence[tuple[str, list[str]]],
    out: Path,
    *,
    address: str | None,
    cpus: int,
    gpus: float,
) -> list[dict[str, Any]]:
    """Every trial as a Ray Tune trial (as many at once as the cluster has resources for)."""
    from video_lstm.cluster import ray_session

    if cpus < 1 or gpus < 0:
        raise ValueError(f"cpus_per_trial must be >= 1 and gpus_per_trial >= 0 ({cpus}, {gpus})")
    with ray_session(address):
        from ray import tune

        specs = [
            {"index": i, "name": name, "args": args, "out": str(out), "cwd": os.getcwd(),
             "threads": cpus}
            for i, (name, args) in enumerate(trials)
        ]  # fmt: skip
        tuner = tune.Tuner(
            tune.with_resources(_tune_trial, {"cpu": cpus, "gpu": gpus}),
            param_space={"trial": tune.grid_search(specs)},
            tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: t.config["trial"]["name"]),
            run_config=tune.RunConfig(name="tune", storage_path=str(out), verbose=0),
        )
        grid = tuner.fit()
        rows: list[dict[str, Any] | None] = [None] * len(trials)
        failed = []
        for result in grid:
            spec = result.config["trial"]
            if result.error is not None or not result.metrics:
                last = str(result.error).strip().splitlines() or ["no result"]
                failed.append(f"{spec['name']}: {last[-1]}")
                continue
            rows[spec["index"]] = {k: result.metrics[k] for k in (*COLUMNS, "curve", "checkpoint")}
    done = [r for r in rows if r is not None]
    if failed:
        if done:
            write_table(done, out)
        raise RuntimeError(f"{len(failed)} of {len(trials)} trials failed: " + "; ".join(failed))
    return done


def write_table(rows: Sequence[dict[str, Any]], out_dir: str | Path) -> None:
    """``compare.csv`` and ``compare.md`` (accuracies are video-level on the held-out split)."""
    out = Path(out_dir)
    with atomic_path(out / "compare.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*COLUMNS, "checkpoint"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        cells = [
            f"{r[c]:.3f}" if isinstance(r[c], float) and c.endswith(("top1", "top5")) else str(r[c])
            for c in COLUMNS
        ]
        lines.append("| " + " | ".join(cells) + " |")
    with atomic_path(out / "compare.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


_SEED = re.compile(r"_seed(?:_everything)?=\d+")


def summarize_seeds(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows that differ only by seed (``--grid seed_everything=0,1,2``), as one row each: the
    mean, minimum and maximum of the final and best top-1 over the seeds, and the mean time.

    Returns:
        One row per entry, in first-seen order: ``name``, ``temporal``, ``seeds``,
        ``top1_mean``, ``top1_min``, ``top1_max``, ``best_mean``, ``train_time_s``.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(_SEED.sub("", r["name"]), []).append(r)
    out = []
    for name, rs in groups.items():
        top1 = [float(r["video_top1"]) for r in rs]
        out.append(
            {
                "name": name,
                "temporal": rs[0]["temporal"],
                "seeds": len(rs),
                "top1_mean": sum(top1) / len(top1),
                "top1_min": min(top1),
                "top1_max": max(top1),
                "best_mean": sum(float(r["best_top1"]) for r in rs) / len(rs),
                "train_time_s": round(sum(float(r["train_time_s"]) for r in rs) / len(rs), 1),
            }
        )
    return out


def write_seed_table(rows: Sequence[dict[str, Any]], out_dir: str | Path) -> None:
    """``compare_seeds.md``: :func:`summarize_seeds` as mean (min-max) per entry."""
    lines = [
        "| entry | temporal | seeds | final top-1, mean (min-max) | best top-1, mean | time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in summarize_seeds(rows):
        lines.append(
            f"| {r['name']} | {r['temporal']} | {r['seeds']} | {r['top1_mean']:.3f} "
            f"({r['top1_min']:.3f}-{r['top1_max']:.3f}) | {r['best_mean']:.3f} "
            f"| {r['train_time_s']} |"
        )
    with atomic_path(Path(out_dir) / "compare_seeds.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def plot_comparison(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Validation accuracy per epoch for each run, and final accuracy against training time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for r in rows:
        ax1.plot(range(1, len(r["curve"]) + 1), r["curve"], marker="o", ms=3, label=r["name"])
        ax2.scatter(r["train_time_s"], r["video_top1"], s=30)
        ax2.annotate(r["name"], (r["train_time_s"], r["video_top1"]), fontsize=8)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("video-level top-1 (held-out)")
    ax1.set_ylim(0, 1.02)
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.set_xlabel("training time (s)")
    ax2.set_ylabel("final top-1")
    ax2.set_ylim(0, 1.02)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
