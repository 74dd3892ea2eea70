"""Cache per-frame backbone features for a training config (resumable). See --help.

python tools/extract_features.py --config configs/data/synthetic.yaml --config configs/compare/lstm.yaml
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["extract-features", *sys.argv[1:]]))
