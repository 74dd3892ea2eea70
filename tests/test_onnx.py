"""ONNX export and runtime: numpy preprocessing == torch's, export checked and self-describing,
``--runtime onnx`` == ``--runtime torch`` on real videos, and inference with torch unavailable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_annotate import CLASSES, colour_frames, train_colour_checkpoint, write_video

from video_lstm.data.numpy_transforms import NumpyEvalTransform
from video_lstm.data.transforms import EvalTransform
from video_lstm.errors import UsageError
from video_lstm.inference.annotate import annotate_video
from video_lstm.inference.export import (
    ExportError,
    cached_export,
    export_onnx,
    verification_frames,
)
from video_lstm.inference.runtime import load_predictor
from video_lstm.inference.runtime.ort import OnnxPredictor, read_export, sidecar_path
from video_lstm.inference.settings import AnnotateSettings
from video_lstm.models import DEFAULT_MODEL, create_model, list_models
from video_lstm.models.checkpoint import ModelMeta, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
INTERVAL = 2
# Segments straight from the window labels: any threshold crossing shows.
RULES = dict(threshold=0.0, smoothing_s=0.0, min_duration_s=0.0, merge_gap_s=0.0)
TRAIN_STACK = (
    "torch",
    "torchvision",
    "lightning",
    "pytorch_lightning",
    "torchmetrics",
    "tensorboard",
)

# Installed as sitecustomize in a subprocess: every import of the training stack fails there, in
# the process and in any worker it starts, as it would in a venv without torch.
BLOCKER = f"""
import sys
BLOCKED = {TRAIN_STACK!r}

class BlockTrainingStack:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, BlockTrainingStack())
"""


def confident_checkpoint(path: Path, video: Path) -> Path:
    """The default model, untrained, with a head made confident and content-dependent: random
    directions around the mean clip embedding of ``video``, scaled up (near-ties would make
    "same segments" a matter of float rounding, and one label throughout would test nothing)."""
    from video_lstm import open_video
    from video_lstm.data.sampling import sampled_frames

    torch.manual_seed(0)
    model = create_model(DEFAULT_MODEL, num_classes=len(CLASSES), frame_size=64).eval()
    meta = ModelMeta.for_model(model, CLASSES, clip_len=4, frame_interval=INTERVAL)
    with open_video(video, size=64) as reader:
        frames = reader.get_frames(sampled_frames(reader.num_frames, INTERVAL))
    clip = EvalTransform(size=64, mean=meta.mean, std=meta.std)(frames)[None]  # (1, T, 3, S, S)
    with torch.no_grad():
        feats = model.forward_features(clip)[0]  # (T, ...)
        windows = torch.stack([feats[s : s + 4] for s in range(len(feats) - 3)])
        emb = model.forward_head(windows, pre_logits=True)  # (W, D)
        emb = (emb - emb.mean(0)) / (emb.std(0) + 1e-6)
        model.head.weight.copy_(torch.randn_like(model.head.weight) * 30 / emb.shape[1] ** 0.5)
        model.head.weight.div_(emb.std(0, keepdim=True) + 1e-6)
        model.head.bias.copy_(
            -model.head.weight @ model.forward_head(windows, pre_logits=True).mean(0)
        )
    return save_checkpoint(path, model, meta)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    write_video(folder / "a.mp4", 121)
    write_video(folder / "b.mp4", 57, width=96, height=72)
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, videos) -> Path:
    return confident_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", videos / "a.mp4")


@pytest.fixture(scope="module")
def exported(checkpoint, videos, tmp_path_factory) -> Path:
    """Checked on a test video's frames (the default, photographs, in the other exports)."""
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    export_onnx(checkpoint, out, video=videos / "b.mp4")
    return out


def segments_of(path: Path) -> list[dict]:
    return json.loads(path.read_text())["segments"]


def assert_same_segments(got: list[dict], want: list[dict], tol_frames: int = INTERVAL) -> None:
    """Same labels in the same order, boundaries within one sampled frame."""
    assert [s["label"] for s in got] == [s["label"] for s in want]
    for g, w in zip(got, want, strict=True):
        assert abs(g["start_frame"] - w["start_frame"]) <= tol_frames, (g, w)
        assert abs(g["end_frame"] - w["end_frame"]) <= tol_frames, (g, w)


# ------------------------------------------------------------------ numpy preprocessing


@pytest.mark.parametrize(
    ("shape", "size", "resize", "levels"),
    [
        ((3, 64, 80), 64, None, 0),  # the usual case: the decoder gave the model's short side
        ((2, 90, 120), 64, None, 1),  # shrink
        ((2, 200, 150), 96, 112, 1),  # shrink, then a crop inside the resized frame
        ((2, 50, 40), 64, None, 2),  # enlarge
    ],
)
def test_numpy_eval_transform_matches_torch(shape, size, resize, levels):
    frames = verification_frames(max(shape[1:]), shape[0])[:, : shape[1], : shape[2]]
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    want = EvalTransform(size=size, mean=mean, std=std, resize=resize)(frames).numpy()
    got = NumpyEvalTransform(size=size, mean=mean, std=std, resize=resize)(frames)
    assert got.shape == want.shape == (shape[0], 3, size, size) and got.dtype == np.float32
    # In grey levels before normalisation: float rounding only, or the resize's rounding.
    diff = np.abs(got - want) * np.asarray(std)[None, :, None, None] * 255
    assert diff.max() <= levels + 1e-3


# ------------------------------------------------------------------ export


def test_export_writes_two_graphs_and_self_describing_metadata(checkpoint, exported):
    model = read_export(exported)
    assert model.head == exported.with_name("model.head.onnx") and model.head.is_file()
    assert model.meta.class_names == CLASSES and model.meta.clip_len == 4
    assert model.meta.frame_interval == INTERVAL and model.meta.frame_size == 64
    info = model.info
    assert info["opset"] == 17 and info["precision"] == "fp32"
    check = info["verification"]
    assert check["max_prob_diff"] <= check["tolerance"] == 1e-4
    assert check["source"].endswith("b.mp4")
    assert check["frames"] == 16 and check["windows"] >= 1  # 57 frames, every 2nd: 16 kept
    # The graph alone carries the same metadata (the sidecar gone, the .onnx still loads).
    import onnx

    props = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    assert json.loads(props["video_lstm"])["model_meta"]["class_names"] == CLASSES
    assert json.loads(sidecar_path(exported).read_text())["checkpoint_sha256"]


def test_onnx_predictor_matches_torch_on_frames_and_windows(checkpoint, exported):
    from video_lstm.inference.predictor import Predictor

    torch_pred = Predictor.from_checkpoint(checkpoint, device="cpu")
    onnx_pred = OnnxPredictor(exported, device="cpu", threads=1, frame_batch=5)
    frames = verification_frames(64, 11)
    want = torch_pred.features(frames).numpy()
    got = onnx_pred.features(frames)  # 5 + 5 + 1 frames: the dynamic frame batch
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    # More windows than the head graph's batch, and fewer: padded batches drop their padding.
    for n in (1, 7, 40):
        windows = np.stack([got[i % 8 : i % 8 + 4] for i in range(n)])
        p_onnx = onnx_pred.score_windows(windows)
        p_torch = torch_pred.score_windows(torch.from_numpy(windows)).numpy()
        assert p_onnx.shape == (n, len(CLASSES))
        np.testing.assert_allclose(p_onnx, p_torch, atol=1e-4)
    assert onnx_pred.plan.device.type == "cpu" and onnx_pred.plan.precision == "fp32"
    assert "CPUExecutionProvider" in onnx_pred.plan.providers


def test_step_graph_carries_the_state_of_a_recurrent_model(exported):
    pred = OnnxPredictor(exported, device="cpu", threads=1)
    assert pred.stateful and exported.with_name("model.step.onnx").is_file()
    feats = pred.features(verification_frames(64, 12))
    windows = np.stack([feats[s : s + 4] for s in range(0, 8, 2)])
    want = pred.score_windows(windows)
    for w, p in zip(windows, want, strict=True):
        state = pred.init_state()
        for feat in w:  # one stream, one step at a time, the state passed back in
            probs, state = pred.step(feat[None], state)
        np.testing.assert_allclose(probs[0], p, atol=1e-5)
    assert read_export(exported).info["verification"]["max_step_prob_diff"] <= 1e-4


def test_frame_graph_has_no_shape_arithmetic_and_its_pads_in_the_convs(exported):
    """Only the frame batch is dynamic; the TF-style "same" pads of the stride-2 convs are
    constants inside the convs, not a Shape/Gather/.../Pad chain run on every call (which kept
    ONNX Runtime from folding the Pad and cost its CPU provider 1.5x on one thread)."""
    import onnx

    graph = onnx.load(str(exported)).graph
    ops = {node.op_type for node in graph.node}
    assert ops <= {"Conv", "Clip", "Add"}, ops  # Lite0's stride-8 trunk: convs, ReLU6, skips
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["n", 3, 64, 64]
    pads = [
        list(attr.ints)
        for node in graph.node
        if node.op_type == "Conv"
        for attr in node.attribute
        if attr.name == "pads"
    ]
    assert [0, 0, 1, 1] in pads  # a stride-2 conv of an even map: TF pads below/right only


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_exports(name, tmp_path):
    """Each registered model at 96 px (pooled Lite0: a 3x3 map into a 2x2 adaptive pool, the
    uneven bins the exporter has no op for), checked against torch by the export itself."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, frame_size=96).eval()
    meta = ModelMeta.for_model(model, ["a", "b", "c"], clip_len=4, frame_interval=1)
    ckpt = save_checkpoint(tmp_path / "m.pt", model, meta)
    report = export_onnx(ckpt, tmp_path / "m.onnx")
    assert report.max_prob_diff <= 1e-4
    step = read_export(tmp_path / "m.onnx").info["step"]
    assert step is None or "file" in step, step  # recurrent models: a step graph too


def test_export_refuses_beyond_its_tolerance_and_writes_nothing(checkpoint, tmp_path):
    out = tmp_path / "strict.onnx"
    with pytest.raises(ExportError, match="nothing was written"):
        export_onnx(checkpoint, out, tolerance=1e-30)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_name_without_onnx_and_a_missing_checkpoint(checkpoint, tmp_path):
    with pytest.raises(UsageError, match=r"\.onnx"):
        export_onnx(checkpoint, tmp_path / "model.pt")
    with pytest.raises(UsageError, match="not found"):
        export_onnx(tmp_path / "nope.pt", tmp_path / "m.onnx")


# ------------------------------------------------------------------ int8


@pytest.fixture(scope="module")
def colour_videos(tmp_path_factory) -> Path:
    """``val/`` (calibration) and ``test/`` videos of the colour "actions" of test_annotate."""
    from video_lstm.io.video import VideoWriter

    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(3)
    plans = {
        "val/v0.mp4": [("red", 24), ("none", 12), ("blue", 24)],
        "val/v1.mp4": [("green", 24), ("none", 12), ("red", 20)],
        "test/t0.mp4": [("none", 10), ("red", 30), ("blue", 25), ("none", 15), ("green", 30)],
    }
    for name, plan in plans.items():
        (root / name).parent.mkdir(exist_ok=True)
        frames = np.concatenate([colour_frames(label, n, rng) for label, n in plan])
        with VideoWriter(root / name, fps=25, width=64, height=64, crf=12) as w:
            w.write(frames)
    (root / "val" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 cut short")
    return root


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> Path:
    return train_colour_checkpoint(tmp_path_factory.mktemp("trained") / "trained.pt")


@pytest.fixture(scope="module")
def exported_int8(trained_checkpoint, colour_videos, tmp_path_factory) -> Path:
    """A trained model's frame encoder in int8, calibrated on its val videos."""
    out = tmp_path_factory.mktemp("int8") / "model.onnx"
    export_onnx(trained_checkpoint, out, precision="int8", calibration=colour_videos / "val")
    return out


def test_int8_export_quantises_all_but_the_first_convs_and_says_how(exported_int8):
    import onnx

    from video_lstm.inference.export import INT8_FLOAT_CONVS, INT8_MIN_AGREEMENT

    info = read_export(exported_int8).info
    assert info["precision"] == "int8"
    q = info["quantisation"]
    assert q["calibration_videos"] == 2 and q["calibration_frames"] == 58  # every 2nd frame
    assert len(q["skipped_videos"]) == 1 and "broken.mp4" in q["skipped_videos"][0]
    assert q["top1_agreement"] >= INT8_MIN_AGREEMENT and q["check_windows"] == 57 + 53
    graph = onnx.load(str(exported_int8)).graph
    made = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    # A conv runs in int8 where its weights come through DequantizeLinear.
    int8 = [made.get(c.input[1]) is not None and made[c.input[1]].op_type == "DequantizeLinear"
            for c in convs]  # fmt: skip
    assert int8 == [False] * INT8_FLOAT_CONVS + [True] * (len(convs) - INT8_FLOAT_CONVS)
    assert [c.name for c in convs[:INT8_FLOAT_CONVS]] == q["float_convs"]
    # The head is not quantised.
    head_ops = {n.op_type for n in onnx.load(str(read_export(exported_int8).head)).graph.node}
    assert "DequantizeLinear" not in head_ops
    # The runtime runs it as int8 and says so; fp32 asked of an int8 export is refused.
    pred = OnnxPredictor(exported_int8, device="cpu", threads=1)
    assert pred.plan.precision == "int8" and pred.describe()["precision"] == "int8"
    with pytest.raises(UsageError, match="exported in int8"):
        OnnxPredictor(exported_int8, precision="fp32")


def test_int8_keeps_torchs_segments(trained_checkpoint, exported_int8, colour_videos, tmp_path):
    from video_lstm.inference.predictor import Predictor

    video = colour_videos / "test" / "t0.mp4"
    frames = colour_frames("red", 8, np.random.default_rng(5))
    want = Predictor.from_checkpoint(trained_checkpoint, device="cpu").features(frames).numpy()
    got = OnnxPredictor(exported_int8, device="cpu", threads=1).features(frames)
    rel = np.abs(got - want).mean() / np.abs(want).mean()
    assert 1e-4 < rel < 0.2, rel  # quantised (fp32 is within 1e-6), and close
    out = {}
    for name, model, runtime in (
        ("torch", trained_checkpoint, "torch"),
        ("int8", exported_int8, "onnx"),
    ):
        settings = AnnotateSettings.from_flat(
            stride=1, smoothing_s=0.2, min_duration_s=0.3, background="none", runtime=runtime,
            device="cpu", threads=1, outputs=["json"],
        )  # fmt: skip
        annotate_video(str(video), str(model), str(tmp_path / name), settings, progress=False)
        out[name] = segments_of(tmp_path / name / "t0.json")
    assert [s["label"] for s in out["torch"]] == ["red", "blue", "green"]
    assert_same_segments(out["int8"], out["torch"], tol_frames=1)


def test_int8_needs_calibration_videos_and_refuses_below_its_agreement(
    checkpoint, videos, tmp_path, monkeypatch
):
    # A checkpoint on --runtime onnx is exported in fp32: int8 is for `export` to make.
    monkeypatch.setenv("VIDEO_LSTM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UsageError, match="--precision int8 --calibration VIDEOS"):
        load_predictor(checkpoint, AnnotateSettings.from_flat(runtime="onnx", precision="int8"))
    with pytest.raises(UsageError, match="--calibration"):
        export_onnx(checkpoint, tmp_path / "a.onnx", precision="int8")
    with pytest.raises(UsageError, match="int8 only"):
        export_onnx(checkpoint, tmp_path / "a.onnx", calibration=videos)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no videos"):
        export_onnx(
            checkpoint, tmp_path / "a.onnx", precision="int8", calibration=tmp_path / "empty"
        )
    with pytest.raises(UsageError, match="not found"):
        export_onnx(
            checkpoint, tmp_path / "a.onnx", precision="int8", calibration=tmp_path / "x.mp4"
        )
    with pytest.raises(UsageError, match="precision must be"):
        export_onnx(checkpoint, tmp_path / "a.onnx", precision="fp16")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.mp4").write_bytes(b"not a video")
    with pytest.raises(UsageError, match=r"no calibration video could be read .*x\.mp4"):
        export_onnx(
            checkpoint, tmp_path / "a.onnx", precision="int8", calibration=tmp_path / "broken"
        )
    (tmp_path / "short").mkdir()
    write_video(tmp_path / "short" / "s.mp4", 5)  # 3 sampled frames: no window of 4
    with pytest.raises(UsageError, match="no calibration video has 4 sampled frames"):
        export_onnx(
            checkpoint, tmp_path / "a.onnx", precision="int8", calibration=tmp_path / "short"
        )
    # An untrained trunk under a head scaled to split near-identical windows: int8's rounding
    # moves the top class of about a fifth of them, and the export refuses.
    out = tmp_path / "out" / "model.onnx"
    with pytest.raises(ExportError, match=r"top class in .*Nothing was written"):
        export_onnx(checkpoint, out, precision="int8", calibration=videos / "a.mp4")
    assert list(out.parent.iterdir()) == []


# ------------------------------------------------------------------ runtimes, same results


def test_annotate_onnx_gives_the_torch_segments(checkpoint, exported, videos, tmp_path):
    for video in sorted(videos.glob("*.mp4")):
        out = {}
        for runtime, model in (("torch", checkpoint), ("onnx", exported)):
            settings = AnnotateSettings.from_flat(
                **RULES, runtime=runtime, device="cpu", threads=1, outputs=["json"]
            )
            res = annotate_video(str(video), str(model), str(tmp_path / runtime), settings,
                                 progress=False)  # fmt: skip
            assert res.settings["runtime"]["runtime"] == runtime
            out[runtime] = segments_of(tmp_path / runtime / f"{video.stem}.json")
        assert len({s["label"] for s in out["torch"]}) >= 2, "the test video needs label changes"
        assert_same_segments(out["onnx"], out["torch"])


def test_runtime_onnx_takes_a_checkpoint_exported_once_into_the_cache(
    checkpoint, tmp_path, monkeypatch
):
    monkeypatch.setenv("VIDEO_LSTM_CACHE", str(tmp_path / "cache"))
    settings = AnnotateSettings.from_flat(runtime="onnx", device="cpu", threads=1)
    first = load_predictor(checkpoint, settings)
    path = cached_export(checkpoint)
    assert Path(first.checkpoint) == path and path.is_relative_to(tmp_path / "cache")
    stamp = path.stat().st_mtime_ns
    assert Path(load_predictor(checkpoint, settings).checkpoint) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not exported again


def test_export_cli_prints_what_it_wrote_and_refuses_in_one_line(checkpoint, tmp_path, capsys):
    from pipelines.cli import main

    assert main(["export", str(checkpoint), str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("video-lstm export: error: ") and ".onnx" in err and "\n" not in err
    assert main(["export", str(tmp_path / "none.pt"), str(tmp_path / "m.onnx")]) == 2
    assert "not found" in capsys.readouterr().err


def test_runtime_mismatch_and_bad_models_are_one_line_errors(exported, tmp_path):
    with pytest.raises(ValueError, match="--runtime onnx"):
        load_predictor(exported, AnnotateSettings.from_flat(runtime="torch"))
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"\x08\x07garbage")
    with pytest.raises(UsageError, match="not an ONNX model"):
        OnnxPredictor(fake)
    with pytest.raises(UsageError, match="onnxruntime-gpu"):
        OnnxPredictor(exported, device="cuda") if "CUDAExecutionProvider" not in __import__(
            "onnxruntime"
        ).get_available_providers() else pytest.skip("CUDA provider present")
    with pytest.raises(ValueError, match="runtime must be"):
        AnnotateSettings.from_flat(runtime="tensorrt")


# ------------------------------------------------------------------ torch-free install


def _torch_free(args: list[str], cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """``video-lstm ARGS`` in a subprocess (and its workers) where the training stack cannot be
    imported."""
    site = tmp_path / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


def test_annotate_run_and_watch_without_torch_give_the_torch_segments(
    checkpoint, exported, videos, tmp_path
):
    rules = [f"--{k}={v}" for k, v in RULES.items()]
    common = ["--runtime", "onnx", "--threads", "1", "--progress", "false", *rules]
    video = videos / "a.mp4"
    proc = _torch_free(
        ["annotate", str(video), str(exported), str(tmp_path / "one"), *common,
         "--outputs", "[json,srt]"], tmp_path, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _torch_free(
        ["run", str(videos), str(exported), str(tmp_path / "all"), *common,
         "--outputs", "[json,csv]"], tmp_path, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # The same videos with torch, in this process.
    settings = AnnotateSettings.from_flat(**RULES, device="cpu", threads=1, outputs=["json"])
    for v in sorted(videos.glob("*.mp4")):
        annotate_video(str(v), str(checkpoint), str(tmp_path / "torch"), settings, progress=False)
        want = segments_of(tmp_path / "torch" / f"{v.stem}.json")
        assert_same_segments(segments_of(tmp_path / "all" / f"{v.name}.json"), want)
    assert_same_segments(segments_of(tmp_path / "one" / "a.json"), segments_of(
        tmp_path / "torch" / "a.json"))  # fmt: skip
    assert (tmp_path / "one" / "a.srt").is_file() and (tmp_path / "all" / "b.mp4.csv").is_file()
    # The live command too, its state carried through the step graph.
    proc = _torch_free(
        ["watch", str(video), str(exported), str(tmp_path / "live"), "--runtime", "onnx",
         "--state", "carry", "--reconnect_s", "0", "--device", "cpu", "--threads", "1",
         "--progress", "false"], tmp_path, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "live" / "a" / "events.jsonl").is_file()


def test_int8_annotate_without_torch_gives_the_torch_segments(
    trained_checkpoint, exported_int8, colour_videos, tmp_path
):
    video = colour_videos / "test" / "t0.mp4"
    rules = dict(stride=1, smoothing_s=0.2, min_duration_s=0.3, background="none")
    proc = _torch_free(
        ["annotate", str(video), str(exported_int8), str(tmp_path / "int8"), "--runtime", "onnx",
         "--threads", "1", "--progress", "false", "--outputs", "[json]",
         *[f"--{k}={v}" for k, v in rules.items()]], tmp_path, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "int8" / "t0.json").read_text())
    assert got["settings"]["runtime"]["precision"] == "int8"
    settings = AnnotateSettings.from_flat(**rules, device="cpu", threads=1, outputs=["json"])
    annotate_video(str(video), str(trained_checkpoint), str(tmp_path / "torch"), settings,
                   progress=False)  # fmt: skip
    want = segments_of(tmp_path / "torch" / "t0.json")
    assert [s["label"] for s in want] == ["red", "blue", "green"]
    assert_same_segments(got["segments"], want, tol_frames=1)


def test_training_without_torch_names_the_extra_to_install(tmp_path):
    proc = _torch_free(["train", "fit", "--help"], tmp_path, tmp_path)
    assert proc.returncode == 2
    assert "pip install 'video_lstm[train]'" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_onnx_extra_does_not_pull_the_training_stack():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs: list[str]) -> set[str]:
        return {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for r in reqs}

    core, extras = names(project["dependencies"]), project["optional-dependencies"]
    assert not core & set(TRAIN_STACK)
    assert not names(extras["onnx"]) & set(TRAIN_STACK)
    assert {"onnxruntime", "onnx"} <= names(extras["onnx"])
    assert {"torch", "torchvision", "lightning", "torchmetrics"} <= names(extras["train"])
    assert "video_lstm[train,onnx]" in extras["dev"]


@pytest.mark.slow
def test_onnx_gives_the_torch_segments_on_the_decode_corpus(checkpoint, exported, real_corpus,
                                                            tmp_path):  # fmt: skip
    """Every file of the real-world corpus (AVI B-frames, edit lists, rotation, 10-bit, damaged
    streams ...): the same segments from both runtimes, or the same error."""
    outcomes = {}
    for name, video in sorted(real_corpus.items()):
        got = {}
        for runtime, model in (("torch", checkpoint), ("onnx", exported)):
            settings = AnnotateSettings.from_flat(
                **RULES, runtime=runtime, device="cpu", threads=1, outputs=["json"]
            )
            try:
                annotate_video(str(video), str(model), str(tmp_path / runtime), settings,
                               name=name, progress=False)  # fmt: skip
                got[runtime] = segments_of(tmp_path / runtime / f"{name}.json")
            except Exception as exc:  # a file the decoder refuses: both must refuse it alike
                got[runtime] = type(exc).__name__
        outcomes[name] = got
        if isinstance(got["torch"], str):
            assert got["onnx"] == got["torch"], name
        else:
            assert_same_segments(got["onnx"], got["torch"])
    assert sum(not isinstance(g["torch"], str) for g in outcomes.values()) >= 10
