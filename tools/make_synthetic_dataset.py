"""Write a synthetic action dataset in the UCF101 layout (and demo videos of action sequences).

    python tools/make_synthetic_dataset.py --out data/synthetic --videos-per-class 40 --sequences 3

Then ``load_manifest("ucf101", "data/synthetic", subset="train")`` reads it.
"""

from __future__ import annotations

import argparse
import time

from video_lstm.data.synthetic import ACTIONS, write_dataset


def _range(text: str) -> int | tuple[int, int]:
    """``"40"`` -> 40, ``"32-48"`` -> (32, 48)."""
    lo, _, hi = text.partition("-")
    return (int(lo), int(hi)) if hi else int(lo)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--classes", nargs="+", default=list(ACTIONS), choices=ACTIONS)
    p.add_argument("--videos-per-class", type=int, default=40)
    p.add_argument("--frames", type=_range, default=40, help="frames per clip: N or LOW-HIGH")
    p.add_argument("--size", type=int, default=112, help="square frame side (even)")
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-fraction", type=float, default=0.25, help="of each class's groups")
    p.add_argument("--clips-per-group", type=int, default=4)
    p.add_argument("--splits", type=int, default=1, help="number of train/test splits")
    p.add_argument("--sequences", type=int, default=0, help="demo videos written to OUT/demo")
    p.add_argument("--actions-per-sequence", type=int, default=6)
    p.add_argument("--gap-frames", type=_range, default=(0, 24), help="N or LOW-HIGH")
    p.add_argument("--distractors", type=_range, default=(0, 2), help="N or LOW-HIGH")
    p.add_argument("--noise-std", type=float, default=2.0)
    p.add_argument("--crf", type=int, default=23)
    p.add_argument("--workers", type=int, default=None, help="processes (default: up to 2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    root = write_dataset(
        a.out,
        videos_per_class=a.videos_per_class,
        classes=a.classes,
        num_frames=a.frames,
        size=a.size,
        fps=a.fps,
        seed=a.seed,
        test_fraction=a.test_fraction,
        clips_per_group=a.clips_per_group,
        splits=a.splits,
        sequences=a.sequences,
        actions_per_sequence=a.actions_per_sequence,
        gap_frames=a.gap_frames,
        distractors=a.distractors,
        noise_std=a.noise_std,
        crf=a.crf,
        workers=a.workers,
        overwrite=a.overwrite,
    )
    n = len(a.classes) * a.videos_per_class
    print(
        f"wrote {n} clips and {a.sequences} sequences to {root} in {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    main()
