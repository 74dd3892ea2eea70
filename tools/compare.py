"""Train several configs on the same data; write a table (CSV + markdown) and a plot.

    python tools/compare.py --out runs/compare \\
        --base configs/data/synthetic.yaml configs/trainer/cpu.yaml \\
        --configs configs/compare/convlstm.yaml configs/compare/convgru.yaml \\
                  configs/compare/lstm.yaml configs/compare/gru.yaml configs/compare/meanpool.yaml \\
        -- --trainer.max_epochs=15

Arguments after ``--`` go to every training run (LightningCLI syntax).
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
