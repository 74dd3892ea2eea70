"""Write a synthetic action dataset in the UCF101 layout (and demo videos of action sequences).

    python tools/make_synthetic_dataset.py --out data/synthetic --videos-per-class 40 --sequences 3

Then ``load_manifest("ucf101", "data/synthetic", subset="train")`` reads it.
"""

from video_lstm.data.synthetic import main

if __name__ == "__main__":
    main()
