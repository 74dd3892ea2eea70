"""Untrimmed videos: temporal annotation kinds, the untrimmed generator, window labels, the
windowed feature dataset with its background class, cache provenance, flip with label swap,
and the localisation metrics against hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from video_lstm.data.datasets import (
    BACKGROUND,
    TemporalManifest,
    TemporalSegment,
    UntrimmedVideo,
    load_manifest,
    segment_frame_labels,
    window_labels,
)
from video_lstm.data.synthetic import make_action_sequence, write_untrimmed_dataset
from video_lstm.inference.metrics import (
    average_precision,
    boundary_errors,
    detection_map,
    interpolated_ap,
    segment_iou,
)
from video_lstm.training.evaluate import evaluate_segments, format_segment_table


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00video")
    return path


# ---------------------------------------------------------------------------------------------
# Annotation kinds
# ---------------------------------------------------------------------------------------------


def test_activitynet_json(tmp_path):
    touch(tmp_path / "v" / "v_abc.mp4")
    touch(tmp_path / "v" / "xyz.mkv")
    (tmp_path / "anet.json").write_text(
        json.dumps(
            {
                "version": "VERSION 1.3",
                "database": {
                    "abc": {
                        "subset": "training",
                        "duration": 30.0,
                        "annotations": [
                            {"segment": [12.0, 20.5], "label": "Jump"},
                            {"segment": [1.0, 4.0], "label": "Run"},
                        ],
                    },
                    "xyz": {"subset": "validation", "duration": 9.0, "annotations": []},
                },
            }
        )
    )
    m = load_manifest("activitynet", tmp_path / "v", annotations="../anet.json", subset="train")
    assert m.class_names == ["Jump", "Run"]
    assert m.training_classes == [BACKGROUND, "Jump", "Run"]
    (video,) = m.videos
    assert video.path == tmp_path / "v" / "v_abc.mp4" and video.duration_s == 30.0
    assert [(g.start_s, g.end_s, g.label) for g in video.segments] == [
        (1.0, 4.0, "Run"),
        (12.0, 20.5, "Jump"),
    ]
    val = load_manifest("activitynet", tmp_path / "v", annotations=tmp_path / "anet.json",
                        subset="validation", class_names=["Jump", "Run"])  # fmt: skip
    assert val.paths == [tmp_path / "v" / "xyz.mkv"] and val.videos[0].segments == ()
    (tmp_path / "bad.json").write_text('{"nothing": 1}')
    with pytest.raises(ValueError, match="bad.json: not an ActivityNet JSON"):
        load_manifest("activitynet", tmp_path / "v", annotations="../bad.json")


def test_thumos14_lists(tmp_path):
    touch(tmp_path / "videos" / "video_validation_0001.mp4")
    touch(tmp_path / "videos" / "video_validation_0002.mp4")
    ann = tmp_path / "videos" / "annotation"
    ann.mkdir()
    (ann / "BaseballPitch_val.txt").write_text(
        "video_validation_0001 3.2 5.0\nvideo_validation_0002 0.5 1.5\n"
    )
    (ann / "HighJump_val.txt").write_text("video_validation_0001  10.0  12.5 \n")
    (ann / "Ambiguous_val.txt").write_text("video_validation_0001 6.0 7.0\n")
    (ann / "HighJump_test.txt").write_text("video_test_0009 1 2\n")
    m = load_manifest("thumos14", tmp_path / "videos", annotations="annotation", subset="val")
    assert m.class_names == ["BaseballPitch", "HighJump"]
    first = m.videos[0]
    assert [(g.label, g.start_s) for g in first.segments] == [
        ("BaseballPitch", 3.2),
        ("HighJump", 10.0),
    ]
    assert m.class_counts() == {"BaseballPitch": 2, "HighJump": 1}
    (ann / "Broken_val.txt").write_text("video_validation_0001 3.2\n")
    with pytest.raises(ValueError, match=r"Broken_val.txt:1: expected 'video start end'"):
        load_manifest("thumos14", tmp_path / "videos", annotations="annotation", subset="val")


def test_segments_csv_with_subsets_and_background_only_video(tmp_path):
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        touch(tmp_path / name)
    (tmp_path / "ann.csv").write_text(
        "video,start_s,end_s,label,subset\n"
        "a.mp4,1.0,2.5,wave,train\n"
        "a.mp4,0.2,0.8,clap,train\n"
        "b.mp4,,,,train\n"
        "c.mp4,3,4,wave,test\n"
        "missing.mp4,3,4,wave,train\n"
    )
    m = load_manifest("segments_csv", tmp_path, annotations="ann.csv", subset="train")
    assert m.paths == [tmp_path / "a.mp4", tmp_path / "b.mp4"]  # missing.mp4 skipped
    assert [g.label for g in m.videos[0].segments] == ["clap", "wave"]
    assert m.videos[1].segments == ()
    # Every subset of one CSV has the same classes (label indices), also where it lacks some.
    test = load_manifest("segments_csv", tmp_path, annotations="ann.csv", subset="test")
    assert test.class_names == m.class_names == ["clap", "wave"]
    with pytest.raises(FileNotFoundError, match="1 of 3 videos"):
        load_manifest("segments_csv", tmp_path, annotations="ann.csv", subset="train",
                      missing="error")  # fmt: skip
    (tmp_path / "bad.csv").write_text("video,start_s,end_s,label\na.mp4,5,2,wave\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: segment \[5.0, 2.0\]"):
        load_manifest("segments_csv", tmp_path, annotations="bad.csv")
    (tmp_path / "bg.csv").write_text("video,start_s,end_s,label\na.mp4,1,2,background\n")
    with pytest.raises(ValueError, match="automatic no-action class"):
        load_manifest("segments_csv", tmp_path, annotations="bg.csv")
    assert m.digest() != load_manifest("segments_csv", tmp_path, annotations="ann.csv",
                                       subset="test").digest()  # fmt: skip


def test_result_json_becomes_training_data(tmp_path):
    video = touch(tmp_path / "clips" / "x.mp4")
    doc = {
        "video": {"path": str(video), "num_frames": 250, "fps": 25.0},
        "model": {"class_names": [BACKGROUND, "grow", "shrink"]},
        "segments": [
            {
                "start_frame": 25,
                "end_frame": 50,
                "label": "grow",
                "score": 0.9,
                "start_s": 1.0,
                "end_s": 2.0,
            },
        ],  # fmt: skip
    }
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.json").write_text(json.dumps(doc))
    (tmp_path / "out" / "manifest.json").write_text(json.dumps({"videos": []}))
    m = load_manifest("results", tmp_path / "out")
    assert m.class_names == ["grow", "shrink"] and m.paths == [video]
    assert m.videos[0].duration_s == 10.0
    assert m.videos[0].segments == (TemporalSegment(1.0, 2.0, "grow"),)


# ---------------------------------------------------------------------------------------------
# Window labels
# ---------------------------------------------------------------------------------------------


def test_frame_and_window_labels():
    names = [BACKGROUND, "a", "b"]
    frames = segment_frame_labels([(0.4, 0.8, "a"), (0.8, 1.0, "b")], 12, 10.0, names)
    assert frames.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 0]
    spans = np.array([[0, 4], [2, 6], [3, 7], [4, 8], [6, 10], [7, 11], [8, 12]])
    # [2,6): 2 bg + 2 a, a tie -> no label; [7,11): b 2 of 4, a 1, bg 1 -> b
    assert window_labels(frames, spans, 3).tolist() == [0, -1, 1, 1, -1, 2, -1]
    assert window_labels(frames, spans, 3, min_share=0.75).tolist() == [0, -1, 1, 1, -1, -1, -1]


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------


def test_idle_kinds_still_camera_and_shake():
    kw = dict(frames_per_action=10, gap_frames=12, size=48, distractors=0, noise_std=0.0)
    still, segs = make_action_sequence(["grow"], gap="static", rng=1, **kw)
    shaky, segs2 = make_action_sequence(["grow"], gap="shake", rng=1, **kw)
    assert segs == segs2 and (segs[0].start_frame, segs[0].end_frame) == (12, 22)
    gap_still, gap_shaky = still[22:].astype(int), shaky[22:].astype(int)
    assert np.abs(np.diff(gap_still, axis=0)).max() == 0  # still camera: nothing moves
    assert np.abs(np.diff(gap_shaky, axis=0)).mean() > 1.0  # hand shake: the whole frame jitters
    with pytest.raises(ValueError, match="gap must be"):
        make_action_sequence(["grow"], gap="wobble", rng=1, **kw)


def test_write_untrimmed_dataset_both_annotation_files_agree(tmp_path):
    root = write_untrimmed_dataset(
        tmp_path / "u",
        videos={"train": 2, "test": 1},
        scene="objects",
        classes=["grow", "shrink"],
        actions_per_video=2,
        frames_per_action=8,
        gap_frames=(4, 6),
        size=48,
        workers=1,
    )
    csv_m = load_manifest("segments_csv", root, annotations="annotations.csv", subset="train")
    for subset in ("train", "test"):
        a = load_manifest("segments_csv", root, annotations="annotations.csv", subset=subset)
        b = load_manifest("activitynet", root / "videos" / subset,
                          annotations=root / "activitynet.json", subset=subset)  # fmt: skip
        assert a.videos == b.videos
    assert len(csv_m) == 2 and all(len(v.segments) == 2 for v in csv_m.videos)
    import av

    with av.open(str(csv_m.paths[0])) as c:
        n = sum(1 for _ in c.decode(video=0))
    seg = csv_m.videos[0].segments
    assert 4 <= round(seg[0].start_s * 25) <= 6 and n >= round(seg[-1].end_s * 25) + 4
    with pytest.raises(FileExistsError):
        write_untrimmed_dataset(tmp_path / "u", videos={"train": 1})


# ---------------------------------------------------------------------------------------------
# Metrics, hand-computed
# ---------------------------------------------------------------------------------------------


def test_segment_iou_and_interpolated_ap():
    assert segment_iou((0, 10), np.array([[0, 10], [5, 15], [10, 20], [2, 4]])).tolist() == [
        1.0,
        pytest.approx(5 / 15),
        0.0,
        0.2,
    ]
    # precision [1, .5, 2/3] at recall [.5, .5, 1]: interpolated .5 * 1 + .5 * 2/3
    assert interpolated_ap(np.array([1, 0.5, 2 / 3]), np.array([0.5, 0.5, 1])) == pytest.approx(
        5 / 6
    )


def test_average_precision_greedy_one_prediction_per_truth():
    truth = {"v1": np.array([[0.0, 10.0], [20.0, 30.0]]), "v2": np.zeros((0, 2))}
    preds = [
        ("v1", 20.0, 24.0, 0.7),  # tIoU 0.4 with [20, 30]
        ("v1", 0.0, 10.0, 0.9),  # exact
        ("v1", 1.0, 11.0, 0.8),  # 0.82 with [0, 10], already taken -> false positive
        ("v2", 0.0, 5.0, 0.95),  # a video without truth of the class: false positive first
    ]
    ap = average_precision(truth, preds, (0.3, 0.5, 0.7))
    # by score: FP, TP, FP, TP@0.3 -> precision [0, .5, 1/3, .5], recall [0, .5, .5, 1]
    # @0.3: .5 * .5 + .5 * .5 = .5 ; @0.5/0.7: recall .5 at precision .5 -> .25
    assert ap.tolist() == pytest.approx([0.5, 0.25, 0.25])
    assert average_precision(truth, [], (0.5,)).tolist() == [0.0]
    assert np.isnan(average_precision({"v": np.zeros((0, 2))}, preds, (0.5,))).all()


def test_detection_map_and_boundaries():
    truth = {"v1": [(0.0, 10.0, "a"), (20.0, 30.0, "a")], "v2": [(5.0, 15.0, "b")]}
    preds = {"v1": [(0.0, 10.0, "a", 0.9), (1.0, 11.0, "a", 0.8), (20.0, 24.0, "a", 0.7),
                    (40.0, 50.0, "c", 0.5)]}  # fmt: skip
    out = detection_map(truth, preds, ["a", "b", "c"])
    # a: @0.3 5/6 (see interpolated_ap), @0.5/0.7 .5; b: no prediction -> 0; c: no truth, left out
    assert out["per_class"]["a"] == pytest.approx({"0.3": 5 / 6, "0.5": 0.5, "0.7": 0.5})
    assert out["per_class"]["b"] == {"0.3": 0.0, "0.5": 0.0, "0.7": 0.0}
    assert out["per_class"]["c"] == {"0.3": None, "0.5": None, "0.7": None}
    assert out["mAP"] == pytest.approx({"0.3": 5 / 12, "0.5": 0.25, "0.7": 0.25})
    b = boundary_errors(truth, preds)
    # [0,10] <- (0,10): 0, 0 ; [20,30] <- (20,24): 0, 6 ; b missed
    assert sorted(b["errors_s"]) == [0.0, 0.0, 0.0, 6.0] and (b["matched"], b["missed"]) == (2, 1)


def _result(path: Path, video: Path, segments, num_frames=100, fps=10.0) -> None:
    doc = {
        "video": {"path": str(video), "num_frames": num_frames, "fps": fps},
        "segments": [
            {
                "start_s": s,
                "end_s": e,
                "label": lab,
                "score": sc,
                "start_frame": round(s * fps),
                "end_frame": round(e * fps),
            }
            for s, e, lab, sc in segments
        ],  # fmt: skip
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def test_evaluate_segments_frame_accuracy_map_and_report(tmp_path):
    v1, v2 = touch(tmp_path / "v1.mp4"), touch(tmp_path / "v2.mp4")
    truth = TemporalManifest(
        videos=[
            UntrimmedVideo(v1, (TemporalSegment(1.0, 3.0, "a"), TemporalSegment(5.0, 7.0, "b"))),
            UntrimmedVideo(v2, (TemporalSegment(2.0, 4.0, "a"),)),
            UntrimmedVideo(touch(tmp_path / "v3.mp4"), ()),
        ],
        class_names=["a", "b"],
    )
    res = tmp_path / "results"
    # v1: a exact; b predicted as a at [5.5, 7] -> 20 frames b lost + 5 frames of gap? no:
    # frames 50-54 truth b, predicted background; 55-69 truth b, predicted a.
    _result(res / "v1.json", v1, [(1.0, 3.0, "a", 0.9), (5.5, 7.0, "a", 0.6)])
    # v2: a at [2.5, 4.5]: frames 20-24 missed (background), 40-44 wrongly a.
    _result(res / "v2.json", v2, [(2.5, 4.5, "a", 0.8)], num_frames=50)
    m = evaluate_segments(truth, res, tmp_path / "report")
    # v1: 100 frames, 20 wrong (b frames 50-69); v2: 50 frames, 10 wrong -> 120 / 150
    assert m["frame_accuracy"] == pytest.approx(120 / 150)
    assert m["num_frames"] == 150 and m["missing"] == [str(tmp_path / "v3.mp4")]
    # background: v1 60 truth-idle frames all right; v2 30 idle, 5 wrong -> 85 / 90
    assert m["background_recall"] == pytest.approx(85 / 90)
    # class a: preds 0.9 exact (TP), 0.8 tIoU 1.5/2.5=0.6 (TP at .3/.5), 0.6 (v1 no 2nd a: FP)
    # AP@0.3/0.5 = 1 ; @0.7: TP, FP, FP -> recall .5 -> .5 ; class b: 0
    assert m["mAP"] == pytest.approx({"0.3": 0.5, "0.5": 0.5, "0.7": 0.25})
    assert (tmp_path / "report" / "timeline.png").stat().st_size > 1000
    rows = (tmp_path / "report" / "per_class.csv").read_text().splitlines()
    assert rows[0].startswith("class,truth_segments") and rows[1].startswith("background,0,0")
    table = format_segment_table(m)
    assert "frame accuracy 0.800" in table and "| a | 2 | 3 |" in table


# ---------------------------------------------------------------------------------------------
# Windows from the feature cache, background class, provenance, flip swap
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrimmed_cache(tmp_path_factory) -> tuple[Path, Path]:
    from video_lstm.data.features import extract_features
    from video_lstm.models import create_model

    root = write_untrimmed_dataset(
        tmp_path_factory.mktemp("untrimmed"),
        videos={"train": 2, "test": 1},
        scene="objects",
        classes=["grow", "shrink"],
        actions_per_video=2,
        frames_per_action=(16, 20),
        gap_frames=(10, 12),
        size=64,
        workers=1,
    )
    torch.manual_seed(0)
    model = create_model(
        "video_lstm_compact", num_classes=3, frame_size=64, temporal_args={"hidden_sizes": [8]}
    )
    cache = root / "features"
    for subset in ("train", "test"):
        m = load_manifest("segments_csv", root, annotations="annotations.csv", subset=subset)
        extract_features(
            model.eval(),
            [(str(p), -1) for p in m.paths],
            m.training_classes,
            cache / subset,
            frame_size=64,
            frame_interval=2,
            progress=False,
            segments=[[(g.start_s, g.end_s, g.label) for g in v.segments] for v in m.videos],
            source={"root": str(root), "kind": "segments_csv", "manifest_digest": m.digest()},
        )
    return root, cache


def test_window_dataset_balances_classes_with_background(untrimmed_cache):
    from video_lstm.data.features import WindowFeatureDataset

    _, cache = untrimmed_cache
    train = WindowFeatureDataset(cache / "train", clip_len=4, train=True, samples_per_epoch=30)
    assert train.class_names == [BACKGROUND, "grow", "shrink"]
    counts = train.class_counts()
    assert counts[BACKGROUND] > 0 and counts["grow"] > 0 and counts["shrink"] > 0
    labels = [train[i]["label"] for i in range(30)]
    assert np.bincount(labels, minlength=3).tolist() == [10, 10, 10]  # class-balanced
    item = train[1]
    assert item["features"].shape[:2] == (1, 4) and item["features"].dtype == torch.float32
    # every drawn window really is covered by its label for at least half of its frames
    index = train.index
    for i in range(30):
        vi, start, label = train.windows[train[i]["index"]]
        v = index["videos"][vi]
        frames = segment_frame_labels(v["segments"], v["num_frames"], v["fps"], train.class_names)
        window = frames[start * 2 : (start + 4) * 2]
        assert (window == label).mean() >= 0.5
    test = WindowFeatureDataset(cache / "test", clip_len=4, train=False)
    assert len(test) == len(test.windows) and {test[i]["label"] for i in range(len(test))} >= {0}


def test_background_share_sets_the_share_of_background_windows(untrimmed_cache):
    from video_lstm.data.features import WindowFeatureDataset

    _, cache = untrimmed_cache
    kw = dict(clip_len=4, train=True, samples_per_epoch=600)
    for share in (0.0, 0.5):
        train = WindowFeatureDataset(cache / "train", background_share=share, **kw)
        counts = np.bincount([train[i]["label"] for i in range(600)], minlength=3)
        assert abs(counts[0] / 600 - share) < 0.06, counts  # background as asked
        assert abs(int(counts[1]) - int(counts[2])) < 60, counts  # actions share the rest
    with pytest.raises(ValueError, match="background_share"):
        WindowFeatureDataset(cache / "train", background_share=1.0, **kw)


def test_time_reversed_windows_take_the_partner_label(untrimmed_cache):
    from video_lstm.data.features import WindowFeatureDataset

    _, cache = untrimmed_cache
    kw = dict(clip_len=4, train=True, samples_per_epoch=12)
    plain = WindowFeatureDataset(cache / "train", **kw)
    back = WindowFeatureDataset(cache / "train", reverse_swap=[0, 2, 1], reverse_prob=1.0, **kw)
    for i in range(12):
        a, b = plain[i], back[i]
        assert a["index"] == b["index"]  # the same window, played backwards
        assert torch.equal(b["features"], a["features"].flip(1))
        assert b["label"] == [0, 2, 1][a["label"]]  # grow <-> shrink, background stays
    # A pair whose partner is missing from the dataset (-1): that class stays forward.
    half = WindowFeatureDataset(cache / "train", reverse_swap=[0, -1, 1], reverse_prob=1.0, **kw)
    for i in range(12):
        a, c = plain[i], half[i]
        forward = a["label"] == 1
        assert c["label"] == (1 if forward else [0, -1, 1][a["label"]])
        assert torch.equal(c["features"], a["features"] if forward else a["features"].flip(1))


def test_time_reverse_swap_on_a_subset_of_its_classes(untrimmed_cache):
    """The demo's map names classes a small dataset may lack: those pairs are left out (the
    tiny first-ten-minutes demo failed); a map naming no class of the dataset is an error."""
    from video_lstm.training.data import VideoDataModule

    root, cache = untrimmed_cache
    kw = dict(root=str(root), kind="segments_csv", features_dir=str(cache),
              manifest_args={"annotations": "annotations.csv"})  # fmt: skip
    dm = VideoDataModule(time_reverse_swap={"grow": "shrink", "move_up": "move_down"}, **kw)
    assert dm.class_names == [BACKGROUND, "grow", "shrink"]
    assert dm._reverse_swap() == [0, 2, 1]
    dm = VideoDataModule(time_reverse_swap={"grow": "rotate_cw"}, **kw)
    assert dm._reverse_swap() == [0, -1, 2]
    with pytest.raises(ValueError, match="not in"):
        VideoDataModule(time_reverse_swap={"move_up": "move_down"}, **kw)._reverse_swap()


def test_data_module_untrimmed_and_cache_provenance(untrimmed_cache, tmp_path):
    from video_lstm.training.data import VideoDataModule

    root, cache = untrimmed_cache
    dm = VideoDataModule(
        root=str(root),
        kind="segments_csv",
        manifest_args={"annotations": "annotations.csv"},  # relative to root
        features_dir=str(cache),
        clip_len=4,
        frame_interval=2,
        frame_size=64,
    )
    assert dm.untrimmed and dm.class_names == [BACKGROUND, "grow", "shrink"]
    assert len(dm.build_dataset("train", train=True)) > 0
    assert dm.meta_info()["decode_size"] == 73
    # Another dataset pointing at this cache is refused, naming both.
    other = write_untrimmed_dataset(
        tmp_path / "other", videos={"train": 1, "test": 1}, scene="objects", classes=["grow", "shrink"],
        actions_per_video=1, frames_per_action=8, gap_frames=4, size=48, workers=1, seed=5,
    )  # fmt: skip
    dm2 = VideoDataModule(root=str(other), kind="segments_csv",
                          manifest_args={"annotations": "annotations.csv"},
                          features_dir=str(cache), clip_len=4, frame_interval=2)  # fmt: skip
    with pytest.raises(ValueError, match=r"feature cache was built from .*set data.features_dir"):
        dm2.build_dataset("train", train=True)
    with pytest.raises(ValueError, match="reads windows from the feature cache"):
        VideoDataModule(root=str(root), kind="segments_csv",
                        manifest_args={"annotations": "annotations.csv"}).build_dataset(
            "train", train=True)  # fmt: skip


def test_flip_swap_map_and_direction_guard(tmp_path):
    from video_lstm.training.data import FlipSwapDataset, VideoDataModule, direction_classes

    names = ["pan_left", "pan_right", "rotate_cw", "rotate_ccw", "zoom_in", "wave"]
    assert direction_classes(names) == names[:4]
    dm = VideoDataModule(hflip_prob=0.5, hflip_swap={"pan_left": "pan_right"})
    with pytest.raises(ValueError, match=r"\['rotate_cw', 'rotate_ccw'\].*hflip_swap"):
        dm.flip_swap(names)
    dm.hflip_swap["rotate_ccw"] = "rotate_cw"
    assert dm.flip_swap(names) == [1, 0, 3, 2, 4, 5]

    class Clips(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            clip = torch.arange(4.0).expand(1, 2, 3, 4, 4)  # (V, T, C, H, W), x = column
            return {"clip": clip, "label": 0, "index": i}

    ds = FlipSwapDataset(Clips(), 0.5, [1, 0, 3, 2, 4, 5], seed=0)
    items = [ds[i] for i in range(64)]
    flipped = [it for it in items if it["clip"][0, 0, 0, 0, 0] == 3]
    assert 16 < len(flipped) < 48
    assert all(it["label"] == 1 for it in flipped)  # pan_left mirrored is pan_right
    assert all(it["label"] == 0 for it in items if it["clip"][0, 0, 0, 0, 0] == 0)


@pytest.mark.slow
def test_last_ckpt_is_the_last_epoch(tmp_path):
    """Lightning 2.6 rewrote last.ckpt only when the epoch was also the best one."""
    import yaml
    from test_clip_dataset import make_tiny_dataset

    from video_lstm.data.features import extract_features
    from video_lstm.models import create_model
    from video_lstm.training.cli import main

    tiny = make_tiny_dataset(tmp_path / "tiny")
    model = create_model(
        "video_lstm_compact", num_classes=2, frame_size=64, temporal_args={"hidden_sizes": [16]}
    )
    for subset in ("train", "test"):
        m = load_manifest("ucf101", tiny, subset=subset)
        extract_features(model.eval(), [(str(p), y) for p, y in m.samples], m.class_names,
                         tmp_path / "f" / subset, frame_size=64, frame_interval=2,
                         progress=False)  # fmt: skip
    cfg = {
        "model": {"model_name": "video_lstm_compact",
                  "model_args": {"frame_size": 64, "temporal_args": {"hidden_sizes": [16]}}, "lr": 0.05},
        "data": {"root": str(tiny), "kind": "ucf101", "features_dir": str(tmp_path / "f"),
                 "clip_len": 6, "frame_interval": 2, "frame_size": 64, "batch_size": 4,
                 "num_clips": 2},
        "trainer": {"accelerator": "cpu", "max_epochs": 4, "enable_progress_bar": False},
    }  # fmt: skip
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cli = main(["fit", "--config", str(tmp_path / "cfg.yaml")], root_dir=str(tmp_path / "runs"),
               name="t")  # fmt: skip
    ckpts = Path(cli.trainer.log_dir) / "checkpoints"
    last = torch.load(ckpts / "last.ckpt", weights_only=True, map_location="cpu")
    assert last["epoch"] == 3 and last["global_step"] == cli.trainer.global_step
    weights = cli.model.model.state_dict()
    assert all(torch.equal(last["state_dict"][f"model.{k}"], v) for k, v in weights.items())


# ---------------------------------------------------------------------------------------------
# Calibration: chosen on validation scores, stored in the checkpoint, used by annotate
# ---------------------------------------------------------------------------------------------


def _noisy_scores(truth, num_frames, fps, names, rng, *, flicker=0.0):
    """Window scores that follow the truth (window = 4 frames, stride 2), with noise."""
    labels = segment_frame_labels(truth, num_frames, fps, names)
    starts = np.arange(0, num_frames - 3, 2)
    spans = np.stack([starts, starts + 4], 1)
    probs = np.full((len(starts), len(names)), 0.25)
    for w, (a, b) in enumerate(spans):
        probs[w, np.bincount(labels[a:b], minlength=len(names)).argmax()] = 0.45
    if flicker:  # a few windows wrongly confident in another action
        bad = rng.random(len(starts)) < flicker
        probs[bad] = 0.25
        probs[bad, 2] = 0.45
    probs += rng.random(probs.shape) * 0.05
    return probs / probs.sum(1, keepdims=True), spans


def test_calibrate_rules_finds_rules_that_recover_the_truth():
    from video_lstm.inference.segments import calibrate_rules

    names = [BACKGROUND, "a", "b"]
    rng = np.random.default_rng(0)
    videos = []
    for _ in range(3):
        truth = [(2.0, 5.0, "a"), (7.0, 10.0, "b")]
        probs, spans = _noisy_scores(truth, 120, 10.0, names, rng, flicker=0.08)
        videos.append({"probs": probs, "spans": spans, "num_frames": 120, "fps": 10.0,
                       "truth": truth})  # fmt: skip
    best, table = calibrate_rules(videos, names, background=BACKGROUND)
    assert len(table) == 6 * 4 * 4 * 4
    assert best["frame_accuracy"] >= 0.95 and best["mAP"] == 1.0
    assert best["objective"] == max(r["objective"] for r in table)
    # the built-in defaults (threshold 0.5) lose everything on these low-confidence scores
    default = next(
        r for r in table
        if (r["threshold"], r["smoothing_s"], r["min_duration_s"], r["merge_gap_s"])
        == (0.5, 0.5, 0.5, 0.25)
    )  # fmt: skip
    assert default["mAP"] == 0.0 and best["threshold"] < 0.5


def test_annotate_uses_calibrated_rules_and_explicit_values_win(tmp_path):
    from test_annotate import write_video

    from video_lstm.inference.annotate import annotate_video
    from video_lstm.inference.settings import AnnotateSettings, SegmentRules
    from video_lstm.models import create_model
    from video_lstm.models.checkpoint import (
        ModelMeta,
        load_checkpoint,
        save_checkpoint,
        store_segment_rules,
    )

    torch.manual_seed(0)
    model = create_model(
        "video_lstm_compact", num_classes=3, frame_size=64, temporal_args={"hidden_sizes": [8]}
    )
    meta = ModelMeta.for_model(model, [BACKGROUND, "a", "b"], clip_len=4, frame_interval=2,
                               decode_size=80)  # fmt: skip
    ckpt = save_checkpoint(tmp_path / "m.pt", model, meta)
    rules = {"threshold": 0.0, "smoothing_s": 0.25, "min_duration_s": 0.0, "merge_gap_s": 1.0,
             "background": BACKGROUND}  # fmt: skip
    store_segment_rules(ckpt, rules, report={"frame_accuracy": 0.9, "subset": "val"})
    _, loaded = load_checkpoint(ckpt)
    assert loaded.segment_rules == rules and loaded.extra["calibration"]["subset"] == "val"
    assert loaded.decode_size == 80
    video = write_video(tmp_path / "v.mp4", 40)
    out = annotate_video(str(video), str(ckpt), str(tmp_path / "o"),
                         AnnotateSettings(outputs=["json"]), progress=False)  # fmt: skip
    doc = json.loads((tmp_path / "o" / "v.json").read_text())
    assert doc["settings"]["segments"] == rules  # the checkpoint's calibrated rules
    assert doc["settings"]["windows"]["decode_size"] == 80  # the checkpoint's decode size
    assert all(s.label != BACKGROUND for s in out.segments)  # gaps are no segment
    explicit = AnnotateSettings(outputs=["json"], segments=SegmentRules(threshold=0.7))
    annotate_video(str(video), str(ckpt), str(tmp_path / "p"), explicit, progress=False)
    doc = json.loads((tmp_path / "p" / "v.json").read_text())
    assert doc["settings"]["segments"] == {**rules, "threshold": 0.7}  # an explicit value wins


@pytest.mark.slow
def test_untrimmed_end_to_end_cli(tmp_path, capsys):
    """make-untrimmed -> extract-features -> train fit -> calibrate -> evaluate, by the CLI."""
    import yaml

    from pipelines.cli import main as cli

    data = tmp_path / "data"
    assert cli(["make-untrimmed", "--out", str(data), "--train", "6", "--val", "2", "--test", "2",
                "--classes", "[zoom_in,zoom_out]", "--actions", "[1,2]", "--frames", "[16,20]",
                "--gap_frames", "[8,12]", "--size", "64", "--workers", "1"]) == 0  # fmt: skip
    cfg = {
        "model": {"model_name": "video_lstm_compact",
                  "model_args": {"frame_size": 64, "temporal_args": {"hidden_sizes": [8]}}, "lr": 0.01},
        "data": {"root": str(data), "kind": "segments_csv",
                 "manifest_args": {"annotations": "annotations.csv"}, "val_subset": "val",
                 "features_dir": str(tmp_path / "features"), "clip_len": 4, "frame_interval": 2,
                 "frame_size": 64, "decode_size": 64, "num_clips": 1, "batch_size": 8,
                 "samples_per_epoch": 24},
        "trainer": {"accelerator": "cpu", "max_epochs": 2, "enable_progress_bar": False},
    }  # fmt: skip
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert (
        cli(["extract-features", "--config", str(tmp_path / "cfg.yaml"), "--progress", "false"])
        == 0
    )
    assert {p.name for p in (tmp_path / "features").iterdir()} == {"train", "test", "val"}
    from video_lstm.training.cli import main as train_main

    run = train_main(["fit", "--config", str(tmp_path / "cfg.yaml")],
                     root_dir=str(tmp_path / "runs"), name="u")  # fmt: skip
    ckpt = Path(run.trainer.checkpoint_callback.last_model_path)
    from video_lstm.models.checkpoint import load_checkpoint

    _, meta = load_checkpoint(ckpt)
    assert meta.class_names == [BACKGROUND, "zoom_in", "zoom_out"] and meta.decode_size == 64
    assert meta.segment_rules == {"background": BACKGROUND}
    ann = "{annotations: annotations.csv}"
    assert cli(["calibrate", str(ckpt), "--root", str(data), "--kind", "segments_csv",
                "--manifest_args", ann, "--subset", "val", "--device", "cpu"]) == 0  # fmt: skip
    assert "stored segment rules: threshold" in capsys.readouterr().out
    _, meta = load_checkpoint(ckpt)
    assert set(meta.segment_rules) == {"threshold", "smoothing_s", "min_duration_s",
                                       "merge_gap_s", "background"}  # fmt: skip
    assert meta.extra["calibration"]["num_videos"] == 2
    assert ckpt.with_suffix(".calibration.csv").is_file()
    report = tmp_path / "report"
    assert cli(["evaluate", str(ckpt), str(report), "--root", str(data), "--kind",
                "segments_csv", "--manifest_args", ann, "--subset", "test"]) == 0  # fmt: skip
    assert "| background |" in capsys.readouterr().out
    metrics = json.loads((report / "metrics.json").read_text())
    assert 0 <= metrics["frame_accuracy"] <= 1 and set(metrics["mAP"]) == {"0.3", "0.5", "0.7"}
    assert len(list((report / "predictions").glob("*.json"))) == 2 and not metrics["missing"]
    assert (report / "timeline.png").is_file() and (report / "table.md").is_file()


def test_relative_dataset_root_resolves_annotations_once(untrimmed_cache, monkeypatch):
    """A relative root joined its annotation file twice (``root/root/annotations.csv``)."""
    from video_lstm.training.data import VideoDataModule

    root, _ = untrimmed_cache
    monkeypatch.chdir(root.parent)
    dm = VideoDataModule(
        root=root.name, kind="segments_csv", manifest_args={"annotations": "annotations.csv"}
    )
    manifest = dm.manifest("train")
    assert manifest.videos and all(Path(v.path).is_file() for v in manifest.videos)


def test_demo_config_time_reverse_pairs_are_the_generators_reversals():
    """The recipe trains with ``time_reverse_swap``: each pair must really be the other played
    backwards in the generator (a wrong pair would teach wrong labels). The camera generator's
    pairs are checked on rendered frames in ``test_camera.py``."""
    import yaml

    from video_lstm.data.synthetic.camera import CAMERA_REVERSED
    from video_lstm.training.recipe import CONFIG

    swap = yaml.safe_load(CONFIG.read_text())["data"]["time_reverse_swap"]
    assert {**swap, **{b: a for a, b in swap.items()}} == CAMERA_REVERSED
