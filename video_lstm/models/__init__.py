"""Models: frame encoders, ConvLSTM/ConvGRU and LSTM/GRU temporal models, the classifier, presets."""

from video_lstm.models.backbone import (
    BACKBONES,
    EfficientNetLite0,
    FrameEncoder,
    PretrainedWeightsError,
    build_backbone,
    list_backbones,
)
from video_lstm.models.classifier import TEMPORAL_MODELS, ClassifierConfig, VideoClassifier
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
    RecurrentTemporal,
    TimePool,
)

__all__ = [
    "BACKBONES",
    "DEFAULT_MODEL",
    "TEMPORAL_MODELS",
    "ClassifierConfig",
    "ConvGRU",
    "ConvGRUCell",
    "ConvLSTM",
    "ConvLSTMCell",
    "ConvRecurrentTemporal",
    "EfficientNetLite0",
    "FrameEncoder",
    "MeanPoolTemporal",
    "PretrainedWeightsError",
    "RecurrentTemporal",
    "TimePool",
    "VideoClassifier",
    "build_backbone",
    "create_model",
    "list_backbones",
    "list_models",
    "model_config",
    "register_model",
]
