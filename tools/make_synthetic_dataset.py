"""Write a synthetic action dataset in the UCF101 layout (and demo videos of action sequences).

    python tools/make_synthetic_dataset.py --out data/synthetic --videos_per_class 40 --sequences 3

Then ``load_manifest("ucf101", "data/synthetic", subset="train")`` reads it.
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["make-dataset", *sys.argv[1:]]))
