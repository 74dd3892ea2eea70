"""Train several configs on the same data and tabulate accuracy, size, time and convergence.

Each entry is a YAML (typically a model config such as ``configs/model/lstm_lite0.yaml``) layered
over shared base configs (data + trainer), trained with the training CLI in this process. The
table (``compare.csv``, ``compare.md``) and a plot (``compare.png``) go to ``out_dir``; each run's
logs, checkpoints and resolved config go to ``out_dir/<name>/version_N``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def compare(
    configs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    base_configs: Sequence[str | Path] = (),
    extra_args: Sequence[str] = (),
    names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Train each config on the same data and write the comparison table and plot.

    Args:
        configs: One YAML per entry, layered after ``base_configs``.
        out_dir: Folder of the table, plot and per-run logs.
        base_configs: Shared YAMLs (data, trainer) given before each entry.
        extra_args: Extra CLI arguments for every run (e.g. ``--trainer.max_epochs=8``).
        names: Row names (default: the config file stems).

    Returns:
        One row per config (the columns of :data:`COLUMNS`, plus ``curve`` and ``checkpoint``).
    """
    from video_lstm.training.cli import main

    out = Path(out_dir)
    names = list(names) if names else [Path(c).stem for c in configs]
    if len(names) != len(configs):
        raise ValueError(f"{len(names)} names for {len(configs)} configs")
    rows: list[dict[str, Any]] = []
    for name, config in zip(names, configs, strict=True):
        args = ["fit"]
        for c in [*base_configs, config]:
            args += ["--config", str(c)]
        args += list(extra_args)
        log.info("training %s: %s", name, " ".join(args))
        t0 = time.perf_counter()
        cli = main(args, root_dir=str(out), name=name)
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
        rows.append(
            {
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
        )
        write_table(rows, out)
    plot_comparison(rows, out / "compare.png")
    return rows


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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description="Train several configs on the same data; write a table (CSV + markdown) and a plot. Arguments after -- go to every training run."
    )
    p.add_argument("--configs", nargs="+", required=True, help="one YAML per compared model")
    p.add_argument("--base", nargs="*", default=[], help="shared YAMLs (data, trainer)")
    p.add_argument("--names", nargs="*", default=None, help="row names (default: file stems)")
    p.add_argument("--out", default="runs/compare")
    p.add_argument("extra", nargs="*", help="extra training CLI arguments (after --)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = compare(a.configs, a.out, base_configs=a.base, extra_args=a.extra, names=a.names)
    print((Path(a.out) / "compare.md").read_text())
    print(f"{len(rows)} runs; table and plot in {a.out}")
