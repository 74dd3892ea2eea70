"""Train, validate, test or predict with LightningCLI (see ``video_lstm.training.cli``).

python tools/train.py fit --config configs/synthetic_demo.yaml
python tools/train.py --help
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
