"""Cache per-frame backbone features for a training config (resumable). See --help.

python tools/extract_features.py --config configs/data/synthetic.yaml --config configs/compare/lstm.yaml
"""

from video_lstm.training.extract import main

if __name__ == "__main__":
    main()
