"""The table of dataset kinds and ``DatasetSpec``: registration, typed options, the temporal
flag read by every consumer, one ``num_classes``, and ``evaluate`` taking its kind from
``--config``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_untrimmed import touch  # placeholder video files

from video_lstm.data.datasets import (
    BACKGROUND,
    DatasetSpec,
    Manifest,
    describe_dataset_kinds,
    finish_manifest,
    get_dataset_kind,
    list_dataset_kinds,
    load_manifest,
    register_dataset_kind,
    unregister_dataset_kind,
)


def untrimmed(root: Path) -> Path:
    """A segments_csv dataset of placeholder files (manifests check files, not contents)."""
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        touch(root / name)
    (root / "annotations.csv").write_text(
        "video,start_s,end_s,label,subset\n"
        "a.mp4,1.0,2.0,jump,train\n"
        "b.mp4,0.5,1.5,run,train\n"
        "c.mp4,0.0,1.0,jump,test\n"
    )
    return root


def untrimmed_with_predictions(tmp_path: Path) -> tuple[Path, Path]:
    """:func:`untrimmed` and a result JSON for its test video, to score without a model."""
    root = untrimmed(tmp_path / "data")
    predictions = tmp_path / "pred"
    predictions.mkdir()
    result = {
        "video": {"path": str(root / "c.mp4"), "num_frames": 30, "fps": 10.0},
        "segments": [{"start_s": 0.0, "end_s": 1.0, "label": "jump", "score": 0.9}],
    }
    (predictions / "c.json").write_text(json.dumps(result))
    return root, predictions


@pytest.fixture
def plugin_kind():
    """A kind registered the way a plugin file registers one, removed afterwards."""

    def load(root: str | Path, *, subset: str = "train", repeat: int = 1) -> Manifest:
        """Clips listed in ``root/<subset>.txt``."""
        root = Path(root)
        lines = (root / f"{subset}.txt").read_text().split()
        samples = [(root / name, 0) for name in lines for _ in range(repeat)]
        return finish_manifest(samples, ["thing"], source=root, missing="skip")

    kind = register_dataset_kind("test-plugin", load, temporal=False)
    yield kind
    unregister_dataset_kind("test-plugin")


def test_builtin_table():
    temporal = {"activitynet", "results", "segments_csv", "thumos14"}
    trimmed = {"folder", "hmdb51", "kinetics", "list", "ucf101"}
    assert temporal <= set(list_dataset_kinds(temporal=True))  # other slices add their own
    assert trimmed <= set(list_dataset_kinds(temporal=False))
    assert not temporal & set(list_dataset_kinds(temporal=False))
    ucf = get_dataset_kind("ucf101")
    assert ucf.has_subsets and set(ucf.config_options) == {
        "split",
        "split_dir",
        "video_dir",
        "missing",
    }
    assert not get_dataset_kind("folder").has_subsets  # a root per subset: data/x/{subset}
    text = describe_dataset_kinds()
    assert "segments_csv (temporal)" in text and "split_dir: str | Path" in text


def test_registration_contract(plugin_kind):
    with pytest.raises(ValueError, match="'test-plugin' is already registered"):
        register_dataset_kind("test-plugin", plugin_kind.loader, temporal=False)

    def positional_option(root, subset="train"):
        return None

    with pytest.raises(ValueError, match="'subset' must be keyword-only"):
        register_dataset_kind("bad", positional_option, temporal=False)
    with pytest.raises(ValueError, match=r"path_options \['nope'\]"):
        register_dataset_kind("bad", plugin_kind.loader, temporal=False, path_options=("nope",))
    assert "bad" not in list_dataset_kinds()


def test_options_are_checked_by_name_and_type(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"dataset kind 'ucf101' has no option 'anotations'; its options: split: int = 1, split_dir",
    ):
        DatasetSpec(kind="ucf101", root=str(tmp_path), options={"anotations": "x.csv"})
    with pytest.raises(ValueError, match=r"dataset kind 'hmdb51' needs option 'split_dir'"):
        DatasetSpec(kind="hmdb51", root=str(tmp_path))
    with pytest.raises(ValueError, match=r"dataset kind 'ucf101': .*split"):
        DatasetSpec(kind="ucf101", root=str(tmp_path), options={"split": "first"})
    with pytest.raises(
        ValueError, match="unknown dataset kind 'imagenet'; registered: activitynet"
    ):
        DatasetSpec(kind="imagenet", root=str(tmp_path))
    # load_manifest reads the same table.
    with pytest.raises(ValueError, match="'folder' has no option 'subset'"):
        load_manifest("folder", tmp_path, subset="train")


def test_spec_round_trips_and_resolves_paths_against_root(tmp_path, monkeypatch):
    root = untrimmed(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    spec = DatasetSpec.from_config(
        kind="segments_csv", root="data", manifest_args={"annotations": "annotations.csv"},
        split=3, val_subset="test",
    )  # fmt: skip
    assert spec.options == {"annotations": "annotations.csv"}  # no split option: not passed on
    assert spec.subsets == {"train": "train", "test": "test", "val": "test"}
    again = DatasetSpec.from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict())))
    assert again == spec and again.temporal
    train = again.manifest("train")
    assert [p.name for p in train.paths] == ["a.mp4", "b.mp4"]
    assert all(Path(p).is_file() for p in train.paths)
    assert [p.name for p in again.manifest("val").paths] == ["c.mp4"]
    _, options = spec.loader_args("val")
    assert options == {"annotations": str(root.absolute() / "annotations.csv"), "subset": "test"}


def test_num_classes_counts_background_wherever_a_model_has_it(tmp_path):
    from video_lstm.training.data import VideoDataModule

    root = untrimmed(tmp_path / "u")
    temporal = load_manifest("segments_csv", root, annotations=root / "annotations.csv")
    assert temporal.class_names == ["jump", "run"]
    assert temporal.training_classes == [BACKGROUND, "jump", "run"]
    assert temporal.num_classes == len(temporal.training_classes) == 3
    dm = VideoDataModule(root=str(root), kind="segments_csv",
                         manifest_args={"annotations": "annotations.csv"})  # fmt: skip
    assert dm.untrimmed and dm.class_names == temporal.training_classes
    assert dm.num_classes == temporal.num_classes == 3

    for cls in ("x", "y"):
        touch(tmp_path / "f" / cls / "1.mp4")
    trimmed = load_manifest("folder", tmp_path / "f")
    assert trimmed.training_classes == trimmed.class_names == ["x", "y"]
    assert trimmed.num_classes == 2
    dm = VideoDataModule(root=str(tmp_path / "f"), kind="folder")
    assert not dm.untrimmed and dm.num_classes == trimmed.num_classes == 2


def test_plugin_kind_feeds_the_datamodule(tmp_path, plugin_kind):
    from video_lstm.training.data import VideoDataModule

    for subset, names in (("train", "a.mp4 b.mp4"), ("test", "c.mp4")):
        (tmp_path / f"{subset}.txt").write_text(names)
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        touch(tmp_path / name)
    dm = VideoDataModule(root=str(tmp_path), kind="test-plugin", manifest_args={"repeat": 2})
    assert not dm.untrimmed and dm.class_names == ["thing"]
    assert [p.name for p in dm.manifest("train").paths] == ["a.mp4", "a.mp4", "b.mp4", "b.mp4"]
    assert len(dm.manifest("test")) == 2
    with pytest.raises(
        ValueError, match=r"'test-plugin' has no option 'repeats'; its options: repeat: int = 1"
    ):
        VideoDataModule(root=str(tmp_path), kind="test-plugin", manifest_args={"repeats": 2})


def test_evaluate_takes_the_kind_from_config(tmp_path, capsys):
    """A temporal kind given in --config (not --kind) is scored as segments: the command used to
    look for --kind on the command line only and scored such a dataset as trimmed clips."""
    from pipelines.cli import main

    root, predictions = untrimmed_with_predictions(tmp_path)
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({
        "root": str(root), "kind": "segments_csv",
        "manifest_args": {"annotations": "annotations.csv"},
        "subset": "test", "predictions": str(predictions),
    }))  # fmt: skip
    report = tmp_path / "report"
    assert main(["evaluate", "unused.ckpt", str(report), "--config", str(config)]) == 0
    assert "| jump |" in capsys.readouterr().out
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["frame_accuracy"] == 1.0 and metrics["num_videos"] == 1
    assert metrics["class_names"] == [BACKGROUND, "jump", "run"]


def test_a_plugin_kind_is_listed_with_its_typed_options(tmp_path, capsys):
    from pipelines.cli import main

    plugin = tmp_path / "kind_for_help.py"
    plugin.write_text(
        "from pathlib import Path\n"
        "from video_lstm.data import register_dataset_kind\n\n"
        "def load(root: Path, *, subset: str = 'train', fps: float = 25.0, strict: bool = False):\n"
        '    """Clips of a made-up layout."""\n\n'
        "register_dataset_kind('help-plugin', load, temporal=True)\n"
    )
    try:
        with pytest.raises(SystemExit) as exit_:
            main(["--plugin", str(plugin), "calibrate", "--help"])
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        assert "help-plugin (temporal): Clips of a made-up layout." in out
        assert "options: fps: float = 25.0, strict: bool = False" in out
    finally:
        unregister_dataset_kind("help-plugin")


def test_train_and_extract_features_help_list_a_plugin_kind(plugin_kind, capsys):
    """``train fit --help`` and ``extract-features --help`` end with the table of kinds, as
    ``evaluate --help`` does: a plugin's kind and its options, lines kept as written."""
    from pipelines.cli import main

    for argv in (["train", "fit", "--help"], ["extract-features", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        text = capsys.readouterr().out
        assert "Dataset kinds (--data.kind; their options go in --data.manifest_args):" in text
        assert "\n  test-plugin (trimmed): Clips listed in ``root/<subset>.txt``.\n" in text
        assert "\n      options: repeat: int = 1\n" in text


def test_evaluate_takes_a_training_config(tmp_path, capsys):
    """``evaluate --config`` with a training config (its ``data:``, as ``train fit --config``
    and a run's ``config.yaml`` hold it) names the dataset; options after it still win, and
    the model/trainer fields are left to training. It used to fail on the unknown keys."""
    from pipelines.cli import main
    from video_lstm.training.evaluate import training_config_args

    root, predictions = untrimmed_with_predictions(tmp_path)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"model_args": {"frame_size": 64}}, "trainer": {"max_epochs": 1},
        "checkpoint": {"save_last": True},
        "data": {"kind": "segments_csv", "root": str(root), "clip_len": 4,
                 "manifest_args": {"annotations": "annotations.csv"}},
    }))  # fmt: skip
    args = training_config_args(["--config", str(config), "--root", "x"])
    assert args == ["--root", str(root), "--kind", "segments_csv",
                    "--manifest_args", '{"annotations": "annotations.csv"}', "--root", "x"]  # fmt: skip
    report = tmp_path / "report"
    argv = ["evaluate", "unused.ckpt", str(report), "--config", str(config),
            "--predictions", str(predictions)]  # fmt: skip
    assert main(argv) == 0
    assert "| jump |" in capsys.readouterr().out
    assert json.loads((report / "metrics.json").read_text())["num_videos"] == 1
    own = tmp_path / "eval.yaml"  # evaluate's own fields pass through untouched
    own.write_text("kind: ucf101\n")
    assert training_config_args([f"--config={own}"]) == ["--config", str(own)]
