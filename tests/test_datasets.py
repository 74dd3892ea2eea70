"""Manifests from folder-per-class, UCF101, HMDB51, Kinetics CSV and plain lists.

Parsing tests use small placeholder files (the manifest checks that a file exists, is non-empty
and readable, never its contents); one test reads a real video back through a manifest.
"""

from __future__ import annotations

import logging

import av
import numpy as np
import pytest

from video_lstm.data.datasets import (
    Manifest,
    from_folders,
    from_hmdb51,
    from_kinetics,
    from_list,
    from_ucf101,
    load_manifest,
)
from video_lstm.io.video import VideoWriter


def touch(path, data: bytes = b"\x00video") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# ---------------------------------------------------------------------------------------------
# Folder per class
# ---------------------------------------------------------------------------------------------


def test_folders_classes_sorted_and_extensions_filtered(tmp_path):
    touch(tmp_path / "walk" / "b.mp4")
    touch(tmp_path / "walk" / "a.AVI")
    touch(tmp_path / "walk" / "notes.txt")
    touch(tmp_path / "walk" / ".hidden.mp4")
    touch(tmp_path / "jump" / "x.mkv")
    touch(tmp_path / "jump" / "deep" / "y.mp4")
    m = from_folders(tmp_path)
    assert m.class_names == ["jump", "walk"]
    assert [(p.relative_to(tmp_path).as_posix(), y) for p, y in m.samples] == [
        ("jump/x.mkv", 0),
        ("walk/a.AVI", 1),
        ("walk/b.mp4", 1),
    ]
    assert len(from_folders(tmp_path, recursive=True)) == 4
    assert len(from_folders(tmp_path, extensions=["mp4"], recursive=True)) == 2
    with pytest.raises(ValueError, match="no videos: jump"):
        from_folders(tmp_path, extensions=["mp4"])


def test_folders_empty_class_and_missing_root(tmp_path):
    touch(tmp_path / "walk" / "a.mp4")
    (tmp_path / "run").mkdir()
    with pytest.raises(ValueError, match=r"1 class\(es\) have no videos: run"):
        from_folders(tmp_path)
    assert from_folders(tmp_path, allow_empty_classes=True).class_counts() == {"run": 0, "walk": 1}
    with pytest.raises(FileNotFoundError, match="nope"):
        from_folders(tmp_path / "nope")


def test_unreadable_files_reported_once_then_skipped_or_refused(tmp_path, caplog):
    touch(tmp_path / "walk" / "ok.mp4")
    for i in range(4):
        touch(tmp_path / "walk" / f"empty{i}.mp4", b"")
    with caplog.at_level(logging.WARNING, logger="video_lstm.data.datasets"):
        m = from_folders(tmp_path)
    assert m.paths == [tmp_path / "walk" / "ok.mp4"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "4 of 5 videos" in warnings[0] and "empty0.mp4" in warnings[0]
    with pytest.raises(FileNotFoundError, match="4 of 5 videos"):
        from_folders(tmp_path, missing="error")
    assert len(from_folders(tmp_path, missing="ignore")) == 5
    with pytest.raises(ValueError, match="missing must be"):
        from_folders(tmp_path, missing="maybe")


# ---------------------------------------------------------------------------------------------
# UCF101
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def ucf(tmp_path):
    videos, splits = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 Archery\r\n\r\n")
    rels = {
        (c, g): f"{c}/v_{c}_g{g:02d}_c01.avi" for c in ("ApplyEyeMakeup", "Archery") for g in (1, 8)
    }
    for rel in rels.values():
        touch(videos / rel)
    (splits / "trainlist01.txt").write_text(
        f"{rels['ApplyEyeMakeup', 8]} 1\n{rels['Archery', 8]} 2\n"
    )
    (splits / "testlist01.txt").write_text(f"{rels['ApplyEyeMakeup', 1]}\n{rels['Archery', 1]}\n")
    (splits / "trainlist02.txt").write_text(
        f"{rels['ApplyEyeMakeup', 1]} 1\n{rels['Archery', 1]} 2\n"
    )
    return videos, splits


def test_ucf101_train_test_and_split(ucf):
    videos, splits = ucf
    train = from_ucf101(videos, split_dir=splits, subset="train")
    test = load_manifest("ucf101", videos, split_dir=splits, subset="test")
    assert train.class_names == ["ApplyEyeMakeup", "Archery"]
    assert [(p.name, y) for p, y in train.samples] == [
        ("v_ApplyEyeMakeup_g08_c01.avi", 0),
        ("v_Archery_g08_c01.avi", 1),
    ]
    assert [y for _, y in test.samples] == [0, 1]
    assert all(p.is_file() for p in test.paths)
    # The default split folder is found next to the video folder.
    split2 = from_ucf101(videos, split=2)
    assert [p.name for p in split2.paths] == [p.name for p in test.paths]


def test_ucf101_errors_name_file_and_line(ucf):
    videos, splits = ucf
    (splits / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c01.avi 1\n"
    )
    with pytest.raises(ValueError, match=r"trainlist01.txt:2: index '1' does not match class"):
        from_ucf101(videos, split_dir=splits)
    (splits / "testlist01.txt").write_text("Bowling/v_Bowling_g01_c01.avi\n")
    with pytest.raises(ValueError, match=r"testlist01.txt:1: unknown class 'Bowling'"):
        from_ucf101(videos, split_dir=splits, subset="test")
    with pytest.raises(FileNotFoundError, match="testlist03.txt"):
        from_ucf101(videos, split_dir=splits, split=3, subset="test")
    with pytest.raises(ValueError, match="subset"):
        from_ucf101(videos, split_dir=splits, subset="val")
    (splits / "classInd.txt").write_text("1 A\n3 B\n")
    with pytest.raises(ValueError, match="classInd.txt: class indices"):
        from_ucf101(videos, split_dir=splits)


def test_ucf101_missing_videos(ucf, caplog):
    videos, splits = ucf
    (videos / "Archery" / "v_Archery_g08_c01.avi").unlink()
    with pytest.raises(ValueError, match="have no videos: Archery"):
        from_ucf101(videos, split_dir=splits)
    (splits / "trainlist01.txt").write_text(
        "Archery/v_Archery_g01_c01.avi 2\n"
        "Archery/v_Archery_g08_c01.avi 2\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
    )
    with caplog.at_level(logging.WARNING):
        m = from_ucf101(videos, split_dir=splits)
    assert len(m) == 2 and "1 of 3 videos" in caplog.text
    assert "v_Archery_g08_c01.avi" in caplog.text


# ---------------------------------------------------------------------------------------------
# HMDB51
# ---------------------------------------------------------------------------------------------


def test_hmdb51_split_files(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    for cls in ("brush_hair", "cartwheel"):
        for i in range(3):
            touch(tmp_path / "hmdb51" / cls / f"{cls}_{i}.avi")
        (splits / f"{cls}_test_split1.txt").write_text(
            f"{cls}_0.avi 1 \n{cls}_1.avi 2 \n{cls}_2.avi 0 \n"
        )
        (splits / f"{cls}_test_split2.txt").write_text(f"{cls}_0.avi 2\n{cls}_1.avi 1\n")
    root = tmp_path / "hmdb51"
    train = from_hmdb51(root, split_dir=splits, split=1, subset="train")
    test = load_manifest("hmdb51", root, split_dir=splits, split=1, subset="test")
    assert train.class_names == ["brush_hair", "cartwheel"]
    assert [(p.name, y) for p, y in train.samples] == [
        ("brush_hair_0.avi", 0),
        ("cartwheel_0.avi", 1),
    ]
    assert [p.name for p in test.paths] == ["brush_hair_1.avi", "cartwheel_1.avi"]
    assert [p.name for p in from_hmdb51(root, split_dir=splits, split=2).paths] == [
        "brush_hair_1.avi",
        "cartwheel_1.avi",
    ]
    with pytest.raises(ValueError, match="no '\\*_test_split3.txt'"):
        from_hmdb51(root, split_dir=splits, split=3)
    (splits / "cartwheel_test_split1.txt").write_text("cartwheel_0.avi 1\ncartwheel_1.avi 7\n")
    with pytest.raises(ValueError, match=r"cartwheel_test_split1.txt:2: expected"):
        from_hmdb51(root, split_dir=splits)


# ---------------------------------------------------------------------------------------------
# Kinetics CSV
# ---------------------------------------------------------------------------------------------


def test_kinetics_csv_to_local_files(tmp_path, caplog):
    csv_path = tmp_path / "kinetics400" / "validate.csv"
    csv_path.parent.mkdir()
    csv_path.write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        '"abseiling",--33Lscn6sk,4,14,val,0\n'
        "air drumming,--nQbRBEz2s,104,114,val,0\n"
        "air drumming,gone_video_,7,17,val,0\n"
        "abseiling,trainonly__,0,10,train,0\n"
    )
    root = tmp_path / "videos"
    touch(root / "val" / "abseiling" / "--33Lscn6sk_000004_000014.mp4")
    touch(root / "val" / "air drumming" / "--nQbRBEz2s_000104_000114.mp4")
    with caplog.at_level(logging.WARNING):
        m = from_kinetics(root, annotations=csv_path, subset="val")
    assert m.class_names == ["abseiling", "air drumming"]
    assert [(p.name, y) for p, y in m.samples] == [
        ("--33Lscn6sk_000004_000014.mp4", 0),
        ("--nQbRBEz2s_000104_000114.mp4", 1),
    ]
    assert "1 of 3 videos" in caplog.text and "gone_video_" in caplog.text

    flat = tmp_path / "flat"
    touch(flat / "air_drumming" / "--nQbRBEz2s.mp4")
    touch(flat / "air_drumming" / "gone_video_.mp4")
    touch(flat / "abseiling" / "--33Lscn6sk.mp4")
    m2 = load_manifest(
        "kinetics",
        flat,
        annotations=csv_path,
        subset="val",
        pattern="{label_}/{youtube_id}.mp4",
        missing="error",
    )
    assert len(m2) == 3
    with pytest.raises(ValueError, match=r"validate.csv:3: unknown label 'air drumming'"):
        from_kinetics(root, annotations=csv_path, class_names=["abseiling"], missing="ignore")
    with pytest.raises(ValueError, match="unknown field"):
        from_kinetics(root, annotations=csv_path, pattern="{video}.mp4")


def test_kinetics_csv_without_labels(tmp_path):
    csv_path = tmp_path / "test.csv"
    csv_path.write_text("youtube_id,time_start,time_end,split\nabc,0,10,test\n")
    with pytest.raises(ValueError, match="test.csv: CSV needs columns.*without labels"):
        from_kinetics(tmp_path, annotations=csv_path)


# ---------------------------------------------------------------------------------------------
# Plain lists
# ---------------------------------------------------------------------------------------------


def test_plain_list_names_indices_and_csv(tmp_path):
    touch(tmp_path / "clips" / "my clip.mp4")
    touch(tmp_path / "clips" / "b.mp4")
    names = tmp_path / "names.txt"
    names.write_text("# comment\nclips/my clip.mp4 wave\n\nclips/b.mp4 clap\n")
    m = from_list(names)
    assert m.class_names == ["clap", "wave"]
    assert m.samples == [(tmp_path / "clips" / "my clip.mp4", 1), (tmp_path / "clips" / "b.mp4", 0)]

    indices = tmp_path / "indices.txt"
    indices.write_text("clips/b.mp4 1\nclips/my clip.mp4 0\n")
    assert from_list(indices).class_names == ["0", "1"]
    named = load_manifest("list", indices, class_names=["clap", "wave"])
    assert named.labels == [1, 0] and named.class_names == ["clap", "wave"]

    table = tmp_path / "sub" / "list.csv"
    table.parent.mkdir()
    table.write_text('path,label\n"clips/my clip.mp4",wave\nclips/b.mp4,clap\n')
    assert from_list(table, root=tmp_path).samples == m.samples


def test_plain_list_errors(tmp_path):
    touch(tmp_path / "a.mp4")
    bad = tmp_path / "bad.txt"
    bad.write_text("a.mp4 wave\njustonefield\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected 'path label'"):
        from_list(bad)
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("a.mp4 wave\na.mp4 dance\n")
    with pytest.raises(ValueError, match=r"unknown.txt:2: unknown label 'dance'"):
        from_list(unknown, class_names=["wave"])
    gap = tmp_path / "gap.txt"
    gap.write_text("a.mp4 0\na.mp4 2\n")
    with pytest.raises(ValueError, match="have no videos: 1"):
        from_list(gap)
    with pytest.raises(ValueError, match=r"gap.txt:2: label 2 >= number of classes 2"):
        from_list(gap, class_names=["a", "b"])
    with pytest.raises(ValueError, match="unknown dataset kind 'imagenet'"):
        load_manifest("imagenet", tmp_path)


def test_manifest_validates_labels_and_reads_real_video(tmp_path):
    with pytest.raises(ValueError, match="label 3 outside"):
        Manifest(samples=[(tmp_path / "a.mp4", 3)], class_names=["x"])
    with pytest.raises(ValueError, match="not unique"):
        Manifest(samples=[], class_names=["x", "x"])
    frames = np.random.default_rng(0).integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    with VideoWriter(tmp_path / "wave" / "v.mp4", fps=10, width=16, height=16) as w:
        w.write(frames)
    m = from_folders(tmp_path, missing="error")
    with av.open(str(m.paths[0])) as c:
        assert sum(1 for _ in c.decode(video=0)) == 5
