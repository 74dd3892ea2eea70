"""Video-level evaluation of a checkpoint: top-1/top-5 over N clips, per-class CSV, confusion PNG.

    python tools/evaluate.py runs/video_lstm/version_0/checkpoints/last.ckpt runs/eval \\
        --root data/synthetic --kind ucf101 --num_clips 3

Every option is a keyword of ``video_lstm.training.evaluate.evaluate_checkpoint`` (see --help).
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
