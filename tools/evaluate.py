"""Video-level evaluation of a checkpoint: top-1/top-5 over N clips, per-class CSV, confusion PNG.

    python tools/evaluate.py runs/video_lstm/version_0/checkpoints/last.ckpt runs/eval \\
        --root data/synthetic --kind ucf101 --num_clips 3

Every option is a keyword of ``video_lstm.training.evaluate.evaluate`` (see --help): a trimmed
kind is scored by ``evaluate_checkpoint``, a temporal one by ``evaluate_untrimmed``.
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
