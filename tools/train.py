"""Train, validate, test or predict with LightningCLI (see ``video_lstm.training.cli``).

python tools/train.py fit --config configs/synthetic_demo.yaml
python tools/train.py --help
"""

from video_lstm.training.cli import main

if __name__ == "__main__":
    main()
