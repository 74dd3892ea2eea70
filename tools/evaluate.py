"""Video-level evaluation of a checkpoint: top-1/top-5 over N clips, per-class CSV, confusion PNG.

    python tools/evaluate.py runs/video_lstm/version_0/checkpoints/last.ckpt runs/eval \\
        --root data/synthetic --kind ucf101 --num_clips 3

Every option is a keyword of ``video_lstm.training.evaluate.evaluate_checkpoint`` (see --help).
"""

from jsonargparse import CLI

from video_lstm.training.evaluate import evaluate_checkpoint


def main(argv: list[str] | None = None) -> None:
    metrics = CLI(evaluate_checkpoint, args=argv, as_positional=True)
    print(
        f"top-1 {metrics['top1']:.4f}  top-5 {metrics['top5']:.4f}  ({metrics['num_videos']} videos)"
    )


if __name__ == "__main__":
    main()
