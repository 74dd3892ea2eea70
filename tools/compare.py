"""Train several configs on the same data; write a table (CSV + markdown) and a plot.

    python tools/compare.py --out runs/compare \\
        --base configs/data/synthetic.yaml configs/trainer/cpu.yaml \\
        --configs configs/compare/convlstm.yaml configs/compare/convgru.yaml \\
                  configs/compare/lstm.yaml configs/compare/gru.yaml configs/compare/meanpool.yaml \\
        -- --trainer.max_epochs=15

Arguments after ``--`` go to every training run (LightningCLI syntax).
"""

import argparse
import logging
from pathlib import Path

from video_lstm.training.compare import compare


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
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


if __name__ == "__main__":
    main()
