"""Training: a short fit on a tiny generated dataset, checkpoints through load_checkpoint, CLI,
evaluation reports and the comparison table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from test_clip_dataset import make_tiny_dataset

from video_lstm.data.datasets import load_manifest
from video_lstm.data.features import extract_features
from video_lstm.models import create_model
from video_lstm.models.checkpoint import load_checkpoint
from video_lstm.training.compare import epochs_to_fraction, read_val_curve
from video_lstm.training.data import VideoDataModule
from video_lstm.training.module import VideoLSTMModule, pick_precision, warmup_cosine

SIZE = 64
# The default CPU model (frozen pretrained EfficientNet-Lite0, offline weights), made small.
MODEL_NAME = "video_lstm_compact"
MODEL_ARGS = dict(frame_size=SIZE, temporal_args={"hidden_sizes": [16]})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny_train"))


@pytest.fixture(scope="module")
def features(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both subsets cached with the (pretrained, hence identical) backbone of every module."""
    out = tmp_path_factory.mktemp("features")
    torch.manual_seed(0)
    model = create_model(MODEL_NAME, num_classes=2, **MODEL_ARGS).eval()
    for subset in ("train", "test"):
        m = load_manifest("ucf101", tiny, subset=subset)
        extract_features(
            model,
            [(str(p), y) for p, y in m.samples],
            m.class_names,
            out / subset,
            frame_size=SIZE,
            frame_interval=2,
            progress=False,
        )
    return out


def _module(class_names, **kw) -> VideoLSTMModule:
    torch.manual_seed(0)
    kw = {"lr": 1e-2, "warmup_epochs": 0.0, "label_smoothing": 0.0, "weight_decay": 0.0, **kw}
    return VideoLSTMModule(MODEL_NAME, dict(MODEL_ARGS), class_names=class_names, **kw)


def _trainer(tmp: Path, **kw) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        precision=pick_precision("cpu"),
        logger=CSVLogger(tmp, name="run"),
        callbacks=[ModelCheckpoint(dirpath=tmp / "ckpt", save_last=True)],
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        **kw,
    )


def test_precision_and_schedule():
    assert pick_precision("cpu") == "32-true"
    f = [warmup_cosine(s, warmup_steps=2, total_steps=10, min_ratio=0.1) for s in range(11)]
    assert f[0] == 0.5 and f[1] == 1.0 and f[2] == 1.0
    assert all(a >= b for a, b in zip(f[2:], f[3:], strict=False))
    assert f[10] == pytest.approx(0.1)


def test_short_fit_on_features_learns_and_checkpoint_reloads(tiny, features, tmp_path):
    dm = VideoDataModule(
        root=str(tiny), features_dir=str(features), clip_len=6, frame_interval=2,
        frame_size=SIZE, batch_size=4, num_clips=2,
    )  # fmt: skip
    module = _module(dm.class_names)
    trainer = _trainer(tmp_path, max_epochs=6)
    trainer.fit(module, datamodule=dm)

    losses = read_val_curve(Path(trainer.logger.log_dir) / "metrics.csv", "train/loss_epoch")
    assert len(losses) == 6 and losses[-1] < 0.9 * losses[0], losses

    model, meta = load_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert meta.class_names == ["move_left", "move_right"]
    assert (meta.clip_len, meta.frame_interval, meta.frame_size) == (6, 2, SIZE)
    assert meta.mean == pytest.approx(list(module.model.mean))
    assert meta.extra["dataset"]["features_dir"] == str(features)
    # The reloaded classifier predicts what the trained one predicts, on decoded video...
    dm_video = VideoDataModule(root=str(tiny), clip_len=6, frame_interval=2, frame_size=SIZE)
    item = dm_video.build_dataset("test", train=False)[0]
    module.model.eval()
    with torch.inference_mode():
        torch.testing.assert_close(model(item["clip"]), module.model(item["clip"]))
        # ...and on the cached features, through the same module code.
        batch = next(iter(dm.val_dataloader()))
        torch.testing.assert_close(module(batch), _head(model, batch))


def _head(model, batch):
    x = batch["features"]
    return model.forward_head(x.flatten(0, 1)).view(*x.shape[:2], -1).mean(1)


def test_fit_on_decoded_clips_fills_meta_from_the_model(tiny, tmp_path):
    dm = VideoDataModule(
        root=str(tiny), clip_len=4, frame_interval=2, frame_size=SIZE, batch_size=2, num_clips=1
    )
    module = _module(dm.class_names)
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=1)
    trainer.fit(module, datamodule=dm)
    model, meta = load_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert meta.std == pytest.approx(list(module.model.std))
    assert meta.extra["dataset"]["kind"] == "ucf101" and meta.clip_len == 4


def _write_config(tmp: Path, tiny: Path, **data) -> Path:
    cfg = {
        "model": {"model_name": MODEL_NAME, "model_args": MODEL_ARGS, "lr": 0.01},
        "data": {
            "root": str(tiny), "clip_len": 6, "frame_interval": 2, "frame_size": SIZE,
            "batch_size": 4, "num_clips": 2, **data,
        },
        "trainer": {"accelerator": "cpu", "max_epochs": 2, "enable_progress_bar": False},
    }  # fmt: skip
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_cli_fit_then_validate_and_evaluate(tiny, features, tmp_path, capsys):
    from video_lstm.data.datasets import DatasetSpec
    from video_lstm.training.cli import main
    from video_lstm.training.evaluate import evaluate_checkpoint

    cfg = _write_config(tmp_path, tiny, features_dir=str(features))
    cli = main(["fit", "--config", str(cfg)], root_dir=str(tmp_path / "runs"), name="t")
    log_dir = Path(cli.trainer.log_dir)
    resolved = yaml.safe_load((log_dir / "config.yaml").read_text())
    assert resolved["data"]["features_dir"] == str(features)
    assert resolved["trainer"]["precision"] == "32-true"
    assert (log_dir / "metrics.csv").is_file() and list(log_dir.glob("events.out.tfevents*"))
    last = log_dir / "checkpoints" / "last.ckpt"
    assert len(read_val_curve(log_dir / "metrics.csv")) == 2
    # resume: a third epoch from the last checkpoint
    cli = main(
        ["fit", "--config", str(cfg), "--trainer.max_epochs=3", f"--ckpt_path={last}"],
        root_dir=str(tmp_path / "runs"),
        name="t",
    )
    assert cli.trainer.current_epoch == 3
    cli = main(["validate", "--config", str(cfg), f"--ckpt_path={last}"],
               root_dir=str(tmp_path / "runs"), name="v")  # fmt: skip
    assert "val/acc" in cli.trainer.callback_metrics

    out = tmp_path / "eval"
    spec = DatasetSpec(kind="ucf101", root=str(tiny))
    capsys.readouterr()
    metrics = evaluate_checkpoint(last, out, data=spec, num_clips=2, batch_size=2, progress=False)
    assert "evaluating" not in capsys.readouterr().err  # --progress false: no bar
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == metrics["num_videos"] == 4
    assert metrics["top1"] == pytest.approx(np.mean([r["true"] == r["predicted"] for r in rows]))
    assert metrics["top5"] == 1.0  # 2 classes: top-k with k = 2
    with open(out / "per_class.csv") as f:
        assert [r["class"] for r in csv.DictReader(f)] == ["move_left", "move_right"]
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array(json.loads((out / "metrics.json").read_text())["confusion"]).sum() == 4


@pytest.mark.slow
def test_compare_writes_table_and_plot(tiny, features, tmp_path):
    from video_lstm.training.compare import compare

    base = _write_config(tmp_path, tiny, features_dir=str(features))
    entry = tmp_path / "gru.yaml"
    entry.write_text(
        yaml.safe_dump({"model": {"model_args": {**MODEL_ARGS, "temporal": "convgru"}}})
    )
    rows = compare([base, entry], tmp_path / "cmp", base=[base], names=["convlstm", "convgru"])
    assert [r["temporal"] for r in rows] == ["convlstm", "convgru"]
    assert all(r["epochs"] == 2 and 0 <= r["video_top1"] <= 1 for r in rows)
    assert rows[0]["params_total"] > rows[0]["params_trained"] > 0
    text = (tmp_path / "cmp" / "compare.md").read_text()
    assert "convgru" in text and (tmp_path / "cmp" / "compare.png").is_file()


def test_compare_grid_values_and_seed_summary(tmp_path):
    from video_lstm.training.compare import expand_grid, summarize_seeds, write_seed_table

    trials = expand_grid(
        ["c/convlstm.yaml"],
        grid=["model.temporal_args.hidden_sizes=[32],[32, 32]", "seed_everything=0,1"],
    )
    assert [t[2] for t in trials] == [
        ["--model.temporal_args.hidden_sizes=[32]", "--seed_everything=0"],
        ["--model.temporal_args.hidden_sizes=[32]", "--seed_everything=1"],
        ["--model.temporal_args.hidden_sizes=[32, 32]", "--seed_everything=0"],
        ["--model.temporal_args.hidden_sizes=[32, 32]", "--seed_everything=1"],
    ]
    rows = [
        {"name": name, "temporal": "convlstm", "video_top1": top1, "best_top1": top1 + 0.01,
         "train_time_s": 10.0 * (i + 1)}
        for i, ((name, _, _), top1) in enumerate(zip(trials, [0.90, 0.94, 0.50, 0.70], strict=True))
    ]  # fmt: skip
    summary = summarize_seeds(rows)
    assert [(r["name"], r["seeds"]) for r in summary] == [
        ("convlstm_hidden_sizes=[32]", 2),
        ("convlstm_hidden_sizes=[32, 32]", 2),
    ]
    assert summary[0]["top1_mean"] == pytest.approx(0.92)
    assert (summary[0]["top1_min"], summary[0]["top1_max"]) == (0.90, 0.94)
    assert summary[1]["train_time_s"] == 35.0
    write_seed_table(rows, tmp_path)
    assert (
        "| convlstm_hidden_sizes=[32] | convlstm | 2 | 0.920 (0.900-0.940) |"
        in (tmp_path / "compare_seeds.md").read_text()
    )


def test_epochs_to_fraction():
    assert epochs_to_fraction([0.1, 0.5, 0.85, 0.9, 1.0]) == 4
    assert epochs_to_fraction([]) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_precision_and_short_fit_reloads_on_cpu(tiny, tmp_path):
    precision = pick_precision("gpu")
    assert precision == ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed")
    assert pick_precision("auto") == precision
    dm = VideoDataModule(
        root=str(tiny), clip_len=4, frame_interval=2, frame_size=SIZE, batch_size=2, num_clips=1
    )
    module = _module(dm.class_names)
    trainer = L.Trainer(
        accelerator="gpu",
        devices=1,
        precision=precision,
        logger=CSVLogger(tmp_path, name="run"),
        callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)],
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        max_epochs=2,
    )
    trainer.fit(module, datamodule=dm)
    losses = read_val_curve(Path(trainer.logger.log_dir) / "metrics.csv", "train/loss_epoch")
    assert len(losses) == 2 and all(np.isfinite(losses)), losses
    # The checkpoint of a GPU run loads on the CPU and predicts what the trained model does.
    model, meta = load_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert next(model.parameters()).device.type == "cpu" and meta.clip_len == 4
    item = dm.build_dataset("test", train=False)[0]
    module.model.cpu().eval()
    with torch.inference_mode():
        torch.testing.assert_close(model(item["clip"]), module.model(item["clip"]))


class _Worsening(L.LightningModule):
    """One weight; ``val/acc`` is best in epoch 0 and falls after, so top-1 keeps epoch 0."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return ((self.w - 1.0) ** 2).sum() + 0 * batch[0].sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", 1.0 / (1 + self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)))

    val_dataloader = train_dataloader


def test_last_ckpt_is_the_last_epoch_while_top_k_keeps_the_best(tmp_path):
    from video_lstm.training.cli import quiet_lightning
    from video_lstm.training.module import LastEpochCheckpoint

    quiet_lightning()
    args = dict(dirpath=tmp_path, monitor="val/acc", mode="max", save_top_k=1,
                filename="best-epoch{epoch:03d}", auto_insert_metric_name=False)  # fmt: skip
    ckpt = LastEpochCheckpoint(**args)
    module = _Worsening()
    trainer = L.Trainer(accelerator="cpu", max_epochs=3, callbacks=[ckpt], logger=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(module)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-epoch000.ckpt", "last.ckpt"]
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == trainer.global_step == 6
    assert torch.equal(last["state_dict"]["w"], module.w.detach())
    assert ckpt.last_model_path == str(tmp_path / "last.ckpt")
    best = torch.load(tmp_path / "best-epoch000.ckpt", weights_only=True)
    assert best["epoch"] == 0 and not torch.equal(best["state_dict"]["w"], module.w.detach())
    # resuming from last.ckpt continues after the last epoch, not after the best one
    more = L.Trainer(accelerator="cpu", max_epochs=4, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, callbacks=[LastEpochCheckpoint(**args)])  # fmt: skip
    with pytest.warns(UserWarning, match="exists and is not empty"):  # the same run, resumed
        more.fit(_Worsening(), ckpt_path=tmp_path / "last.ckpt")
    assert more.global_step == 8 and torch.load(tmp_path / "last.ckpt")["epoch"] == 3


def test_default_root_dir_holds_logs_checkpoints_and_config(tiny, features, tmp_path, monkeypatch):
    """``--trainer.default_root_dir DIR`` is Lightning's convention; our default loggers carry
    their own ``save_dir`` and used to win, so everything went to ./runs instead."""
    from video_lstm.training.cli import main

    monkeypatch.chdir(tmp_path)
    cfg = _write_config(tmp_path, tiny, features_dir=str(features))
    root = tmp_path / "elsewhere"
    for _ in range(2):  # the second run takes the next version folder under DIR
        cli = main(["fit", "--config", str(cfg), "--trainer.max_epochs=1",
                    "--trainer.enable_model_summary=false", f"--trainer.default_root_dir={root}"],
                   name="t")  # fmt: skip
    log_dir = Path(cli.trainer.log_dir)
    assert log_dir == root / "t" / "version_1"
    assert {"metrics.csv", "config.yaml", "checkpoints"} <= {p.name for p in log_dir.iterdir()}
    assert list(log_dir.glob("events.out.tfevents*"))
    assert (
        Path(cli.trainer.checkpoint_callback.last_model_path)
        == log_dir / "checkpoints" / "last.ckpt"
    )
    assert (log_dir / "checkpoints" / "last.ckpt").is_file()
    saved = yaml.safe_load((log_dir / "config.yaml").read_text())
    assert saved["trainer"]["default_root_dir"] == str(root)
    assert all(lg["init_args"]["save_dir"] == str(root) for lg in saved["trainer"]["logger"])
    assert not (tmp_path / "runs").exists()


def _ddp_args(repo: Path) -> list[str]:
    return ["--config", str(repo / "configs" / "trainer" / "ddp.yaml"),
            "--trainer.accelerator", "cpu", "--trainer.devices", "2"]  # fmt: skip


def test_ddp_config_builds_a_two_process_cpu_trainer(tiny, tmp_path):
    """The fast half of the DDP check: the README's ddp.yaml on CPU builds a DDP Trainer
    of two processes around the thin DataModule (the run itself is the slow test below)."""
    from lightning.pytorch.strategies import DDPStrategy

    from video_lstm.training.cli import main

    cfg = _write_config(tmp_path, tiny)
    repo = Path(__file__).resolve().parents[1]
    cli = main(["--config", str(cfg), *_ddp_args(repo)], run=False, root_dir=str(tmp_path))
    strategy = cli.trainer.strategy
    assert isinstance(strategy, DDPStrategy) and strategy.root_device.type == "cpu"
    assert cli.trainer.num_devices == 2 and cli.trainer.world_size == 2
    assert cli.datamodule.class_names == ["move_left", "move_right"]


@pytest.mark.slow
@pytest.mark.ci
def test_ddp_fit_with_the_readme_config_on_two_cpu_processes(tiny, features, tmp_path):
    """``configs/trainer/ddp.yaml`` (the README's DDP config) with ``--trainer.accelerator cpu
    --trainer.devices 2``: two processes (gloo), one run folder, a checkpoint that reloads."""
    import subprocess
    import sys

    cfg = _write_config(tmp_path, tiny, features_dir=str(features))
    root = tmp_path / "ddp"
    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "pipelines.cli", "train", "fit", "--config", str(cfg),
           *_ddp_args(repo), "--trainer.max_epochs", "2",
           "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
           "--trainer.default_root_dir", str(root), "--threads", "1"]  # fmt: skip
    env = {**__import__("os").environ, "PYTHONPATH": str(repo)}
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "world_size: 2" in run.stderr or "Initializing distributed: GLOBAL_RANK: 1" in run.stderr
    (log_dir,) = (root / "video_lstm").iterdir()  # both ranks wrote to rank 0's folder
    saved = yaml.safe_load((log_dir / "config.yaml").read_text())
    assert (saved["trainer"]["strategy"], str(saved["trainer"]["devices"])) == ("ddp", "2")
    assert len(read_val_curve(log_dir / "metrics.csv")) == 2
    model, meta = load_checkpoint(log_dir / "checkpoints" / "last.ckpt")
    assert meta.class_names == ["move_left", "move_right"] and model.num_classes == 2
    assert not (tmp_path / "runs").exists()
