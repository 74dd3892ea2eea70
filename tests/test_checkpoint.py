"""Checkpoints load without unpickling code: ours and Lightning's load, a crafted one is refused."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from video_lstm.models import DEFAULT_MODEL, create_model
from video_lstm.models.checkpoint import (
    ModelMeta,
    UnsafeCheckpointError,
    load_checkpoint,
    save_checkpoint,
)


class _RunsCode:
    """Unpickling this calls ``os.system``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _model_and_meta():
    torch.manual_seed(0)
    model = create_model(DEFAULT_MODEL, num_classes=2, frame_size=32)
    return model, ModelMeta.for_model(model, ["a", "b"], clip_len=4, frame_interval=2)


def test_own_checkpoint_roundtrips(tmp_path):
    model, meta = _model_and_meta()
    path = save_checkpoint(tmp_path / "m.pt", model, meta)
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded_meta == meta
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)


@pytest.mark.skipif(sys.platform == "win32", reason="uses touch")
def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    model, meta = _model_and_meta()
    marker = tmp_path / "code_ran"
    state = {k: v.detach() for k, v in model.state_dict().items()}
    evil = tmp_path / "evil.pt"
    # A valid-looking checkpoint with one extra object whose unpickling runs a shell command.
    torch.save({"video_lstm": meta.to_dict(), "state_dict": state, "x": _RunsCode(marker)}, evil)
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pt: refused to load.*system"):
        load_checkpoint(evil)
    assert not marker.exists(), "the checkpoint's code ran while loading"

    from video_lstm.inference.predictor import Predictor

    with pytest.raises(UnsafeCheckpointError):
        Predictor.from_checkpoint(evil, device="cpu")
    assert not marker.exists()


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n")
    with pytest.raises(ValueError, match=r"notes\.pt: not a readable checkpoint") as info:
        load_checkpoint(text)
    assert not isinstance(info.value, UnsafeCheckpointError)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="not a video_lstm checkpoint"):
        load_checkpoint(plain)
