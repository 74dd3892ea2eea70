"""The demo model on its held-out videos: torch, ONNX Runtime fp32, and int8 (static QDQ).

After ``make demo`` (or ``video-lstm demo --out_dir DIR``)::

    python tools/study_onnx_precision.py --demo demo_output --out onnx_precision

exports the demo checkpoint in fp32 and in int8 (``export --precision int8 --calibration``:
the frame encoder quantised with onnxruntime's static QDQ quantisation, calibrated on frames of
the demo's val videos; see ``video_lstm.inference.export``), annotates the held-out test videos with each (``video-lstm run``, 1 thread) and
scores them with ``evaluate`` (frame accuracy, segment mAP). A precision is offered by
``export`` only where its localisation metrics stay within 1 point of fp32: see the README
("Deploy") for what was measured. fp16 is not in the study: ONNX Runtime's CPU provider has
no fp16 kernels for most of these operators (it would run cast back to fp32), and no GPU was
at hand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.batch import run_folder  # noqa: E402
from video_lstm.data.datasets import DatasetSpec  # noqa: E402
from video_lstm.inference.export import export_onnx  # noqa: E402
from video_lstm.inference.settings import AnnotateSettings  # noqa: E402
from video_lstm.training.evaluate import evaluate_untrimmed  # noqa: E402


def segments(folder: Path) -> dict[str, list[dict]]:
    return {p.name: json.loads(p.read_text())["segments"] for p in sorted(folder.glob("*.json"))
            if p.name != "manifest.json"}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--demo", type=Path, default=Path("demo_output"), help="video-lstm demo's folder"
    )
    ap.add_argument("--out", type=Path, default=Path("onnx_precision"))
    args = ap.parse_args()
    ckpt, data = args.demo / "model.ckpt", args.demo / "data"
    fp32 = args.out / "fp32" / "model.onnx"
    print(export_onnx(ckpt, fp32).format())
    print(export_onnx(ckpt, args.out / "int8" / "model.onnx", precision="int8",
                      calibration=data / "videos/val").format())  # fmt: skip
    variants = {"torch": (ckpt, "torch"), "onnx fp32": (fp32, "onnx"),
                "onnx int8": (args.out / "int8" / "model.onnx", "onnx")}  # fmt: skip
    rows, found = {}, {}
    for name, (model, runtime) in variants.items():
        pred_dir = args.out / f"pred_{name.replace(' ', '_')}"
        shutil.rmtree(pred_dir, ignore_errors=True)
        settings = AnnotateSettings.from_flat(
            outputs=["json"], runtime=runtime, device="cpu", threads=1
        )
        t0 = time.perf_counter()
        run_folder(str(data / "videos/test"), str(model), str(pred_dir), settings, progress=False)
        wall = time.perf_counter() - t0
        m = evaluate_untrimmed(
            str(ckpt), str(args.out / f"eval_{name.replace(' ', '_')}"),
            data=DatasetSpec(kind="segments_csv", root=str(data), options={"annotations": "annotations.csv"}),
            subset="test", predictions=str(pred_dir), progress=False,
        )  # fmt: skip
        rows[name] = (m["frame_accuracy"], m["mAP"]["0.3"], m["mAP"]["0.5"], m["mAP"]["0.7"], wall)
        found[name] = segments(pred_dir)
    print(f"\n{'model':<12}{'frame acc':>10}{'mAP@0.3':>9}{'mAP@0.5':>9}{'mAP@0.7':>9}{'run s':>8}")
    for name, r in rows.items():
        print(f"{name:<12}{r[0]:>10.3f}{r[1]:>9.3f}{r[2]:>9.3f}{r[3]:>9.3f}{r[4]:>8.1f}")
    for name in ("onnx fp32", "onnx int8"):
        a, b = found["torch"], found[name]
        same = all([s["label"] for s in a[k]] == [s["label"] for s in b[k]] for k in a)
        shift = max((abs(x[e] - y[e]) for k in a if len(a[k]) == len(b[k])
                     for x, y in zip(a[k], b[k], strict=True) for e in ("start_frame", "end_frame")), default=0)  # fmt: skip
        print(f"{name} against torch: same labels {same}, largest boundary shift {shift} frames")


if __name__ == "__main__":
    main()
