"""LightningCLI for training: ``fit``, ``validate``, ``test``, ``predict`` from YAML configs.

Examples::

    python tools/train.py fit --config configs/synthetic_demo.yaml
    python tools/train.py fit --config configs/synthetic_demo.yaml --trainer.max_epochs 5
    python tools/train.py fit --config configs/synthetic_demo.yaml --ckpt_path runs/.../last.ckpt
    python tools/train.py test --config configs/synthetic_demo.yaml --ckpt_path best.ckpt

Configs compose: ``--config configs/model/X.yaml --config configs/data/Y.yaml``. The data
module's class names are linked into the model, precision is picked for the device when not
given (fp32 on CPU, bf16/fp16 mixed on GPU), checkpoints keep the best and the last epoch and
carry the inference metadata, CSV + TensorBoard logs and the resolved ``config.yaml`` go to
``runs/<name>/version_N/`` (``--trainer.default_root_dir DIR``: ``DIR/<name>/version_N/``).
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger

from video_lstm.training.data import VideoDataModule
from video_lstm.training.module import LastEpochCheckpoint, VideoLSTMModule, pick_precision

_DEFAULT_LOGGERS = {f"lightning.pytorch.loggers.{n}" for n in ("CSVLogger", "TensorBoardLogger")}


def trainer_defaults(root_dir: str = "runs", name: str = "video_lstm") -> dict[str, Any]:
    """Trainer defaults: CSV + TensorBoard logs under ``root_dir/name/version_N``, LR monitor.

    ``root_dir`` is also the default of ``--trainer.default_root_dir``; a different
    ``default_root_dir`` given on the command line or in a config moves the default loggers
    (hence the checkpoints and ``config.yaml``) there (:meth:`VideoLSTMCLI.before_instantiate_classes`).
    The loggers are ``class_path`` dicts, which jsonargparse instantiates and can write to the
    saved ``config.yaml`` (an instance there gives "Unable to serialize instance").
    ``--trainer.logger`` / ``--trainer.callbacks`` in a config replace them; the callbacks stay
    instances because LightningCLI appends trainer-default callbacks as they are.
    """
    # Same version folder for both loggers, so metrics.csv, events and config.yaml sit together.
    version = CSVLogger(save_dir=root_dir, name=name).version  # the next free version_N
    where = {"save_dir": root_dir, "name": name, "version": version}
    return {
        "default_root_dir": root_dir,
        "max_epochs": 20,
        "log_every_n_steps": 10,
        "logger": [
            {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": where},
            {
                "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                "init_args": {**where, "default_hp_metric": False},
            },
        ],
        "callbacks": [LearningRateMonitor()],
    }


class _DropTips(logging.Filter):
    """Lightning's advertisements for its cloud services ("💡 Tip: ... litlogger / litmodels")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_lightning() -> None:
    """Silence what Lightning prints that a user of this project cannot act on.

    - the cloud-logging / model-registry advertisements (info lines on every fit);
    - torch's ``LeafSpec`` deprecation, raised inside Lightning's own pytree helper
      (lightning 2.6 with torch >= 2.10; nothing in this project calls it).
    Idempotent; called by every entry point that builds a Trainer.
    """
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropTips) for f in rank_zero.filters):
        rank_zero.addFilter(_DropTips())
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
    )


class VideoLSTMCLI(LightningCLI):
    """LightningCLI with class-name linking, device precision, checkpointing and early stopping."""

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        # Our entry points always pass the arguments explicitly (the console script's argv minus
        # the subcommand); Lightning's base method warns whenever sys.argv is non-empty too.
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(args)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.add_argument(
            "--threads",
            type=int | None,
            default=None,
            help="CPU threads of torch (default: the idle cores, at most the physical ones; "
            "see video_lstm.threads)",
        )
        # Always-on callbacks, configurable as --checkpoint.* and --early_stopping.*
        parser.add_lightning_class_args(LastEpochCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults(
            {
                "early_stopping.monitor": "val/acc",
                "early_stopping.mode": "max",
                "early_stopping.patience": 10,
            }
        )

    def before_instantiate_classes(self) -> None:
        from video_lstm.threads import apply_threads

        cfg = self.config[self.subcommand] if self.subcommand else self.config
        apply_threads(cfg.get("threads"))
        self._follow_default_root_dir(cfg.trainer)
        if cfg.trainer.get("precision") is None:
            cfg.trainer.precision = pick_precision(str(cfg.trainer.get("accelerator") or "auto"))

    def _follow_default_root_dir(self, trainer: Namespace) -> None:
        """Point the default loggers at ``trainer.default_root_dir`` when it was changed.

        Lightning puts logs, checkpoints and ``config.yaml`` under ``default_root_dir`` only
        for loggers it makes itself; ours carry their own ``save_dir``, which silently won.
        A logger given in a config (another class or ``save_dir``) is left as it is.
        """
        default = self.trainer_defaults.get("default_root_dir")
        root = trainer.get("default_root_dir")
        loggers = trainer.get("logger")
        if root is None or default is None or str(root) == str(default):
            return
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            mine = isinstance(logger, Namespace) and logger.get("class_path") in _DEFAULT_LOGGERS
            where = logger.init_args if mine else {}
            if mine and str(where.get("save_dir")) == str(default):
                # both loggers share the next free version_N under the new root
                where.save_dir = str(root)
                where.version = CSVLogger(save_dir=str(root), name=where.name).version


class _NoTrainer(VideoLSTMCLI):
    def instantiate_trainer(self, **kwargs: Any) -> None:  # model and data only
        return None


class _ParseOnly(VideoLSTMCLI):
    def instantiate_classes(self) -> None:  # build the parser, instantiate nothing
        pass


@functools.cache
def _parser() -> LightningArgumentParser:
    cli = _ParseOnly(
        VideoLSTMModule,
        VideoDataModule,
        args=[],
        run=False,
        trainer_defaults=trainer_defaults(),
        seed_everything_default=0,
        parser_kwargs={"default_env": False},
    )
    return cli.parser


def parse_config(args: list[str]) -> Any:
    """Parse and type-check training CLI arguments (``--config ...``) without instantiating.

    Returns:
        The resolved jsonargparse namespace (``.model``, ``.data``, ``.trainer``, ...), with the
        precision filled in as :class:`VideoLSTMCLI` would.
    """
    cfg = _parser().parse_args(list(args))
    if cfg.trainer.get("precision") is None:
        cfg.trainer.precision = pick_precision(str(cfg.trainer.get("accelerator") or "auto"))
    return cfg


def main(
    args: list[str] | None = None,
    *,
    run: bool = True,
    root_dir: str = "runs",
    name: str = "video_lstm",
    trainer: bool = True,
) -> VideoLSTMCLI:
    """Run the training CLI (``fit`` / ``validate`` / ``test`` / ``predict``).

    This is what ``tools/train.py`` and ``video-lstm train`` call.

    Args:
        args: Command-line arguments (``None``: ``sys.argv[1:]``).
        run: ``False`` parses and instantiates only (no subcommand in ``args`` then).
        root_dir: Default folder of the logs, checkpoints and resolved config.
        name: Experiment name (sub-folder of ``root_dir``).
        trainer: ``False`` builds the model and data module only (``.trainer`` is ``None``;
            with ``run=False``), e.g. for feature caching, which needs no Trainer.

    Returns:
        The CLI object (``.trainer``, ``.model``, ``.datamodule``).
    """
    import sys

    from video_lstm.data.datasets import describe_dataset_kinds
    from video_lstm.training.evaluate import epilog_as_written

    quiet_lightning()
    if not trainer and run:
        raise ValueError("trainer=False builds no Trainer to run: pass run=False too")
    # Each subcommand's --help ends with the dataset kinds and their options, a plugin's too
    # (the table is read now, after --plugin / VIDEO_LSTM_PLUGINS loaded). The formatter goes on
    # the main parser: jsonargparse gives every subcommand parser its parent's.
    epilog = describe_dataset_kinds(prefix="data.")
    parser_kwargs = {
        k: {**v, "epilog": epilog} if k in _SUBCOMMANDS else v for k, v in _PARSER_KWARGS.items()
    }
    parser_kwargs["formatter_class"] = epilog_as_written()
    return (VideoLSTMCLI if trainer else _NoTrainer)(
        VideoLSTMModule,
        VideoDataModule,
        args=sys.argv[1:] if args is None else list(args),
        run=run,
        trainer_defaults=trainer_defaults(root_dir, name),
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        parser_kwargs=parser_kwargs,
    )


# Errors raise (the console script prints them as one line pointing to the subcommand's --help)
# instead of printing the whole usage.
_SUBCOMMANDS = ("fit", "validate", "test", "predict")
_PARSER_KWARGS: dict[str, Any] = {
    "default_env": False,
    "prog": "video-lstm train",
    "exit_on_error": False,
    **{sub: {"prog": f"video-lstm train {sub}", "exit_on_error": False} for sub in _SUBCOMMANDS},
}


__all__ = ["VideoLSTMCLI", "main", "parse_config", "quiet_lightning", "trainer_defaults"]
