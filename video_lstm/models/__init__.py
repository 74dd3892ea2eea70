"""Models: frame encoders, the temporal model table (ConvLSTM/ConvGRU, LSTM/GRU, ...), the classifier,
presets."""

from video_lstm.models.backbone import (
    BACKBONES,
    EfficientNetLite0,
    FrameEncoder,
    PretrainedWeightsError,
    build_backbone,
    list_backbones,
)
from video_lstm.models.classifier import ClassifierConfig, VideoClassifier
from video_lstm.models.convlstm import ConvGRU, ConvGRUCell, ConvLSTM, ConvLSTMCell
from video_lstm.models.registry import (
    DEFAULT_MODEL,
    create_model,
    list_models,
    model_config,
    register_model,
)
from video_lstm.models.temporal import (
    ConvRecurrentTemporal,
    MeanPoolTemporal,
    PooledRecurrentTemporal,
    RecurrentTemporal,
    TimePool,
)
from video_lstm.models.temporal_table import (
    TemporalModel,
    list_temporal_models,
    register_temporal_model,
    temporal_model,
)

__all__ = [
    "BACKBONES",
    "DEFAULT_MODEL",
    "ClassifierConfig",
    "ConvGRU",
    "ConvGRUCell",
    "ConvLSTM",
    "ConvLSTMCell",
    "ConvRecurrentTemporal",
    "EfficientNetLite0",
    "FrameEncoder",
    "MeanPoolTemporal",
    "PooledRecurrentTemporal",
    "PretrainedWeightsError",
    "RecurrentTemporal",
    "TemporalModel",
    "TimePool",
    "VideoClassifier",
    "build_backbone",
    "create_model",
    "list_backbones",
    "list_models",
    "list_temporal_models",
    "model_config",
    "register_model",
    "register_temporal_model",
    "temporal_model",
]
