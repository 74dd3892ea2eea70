"""Online scoring of a live stream: one sampled step's features in, final per-step class
probabilities out, with bounded state.

Two modes (``video-lstm watch --state``):

- ``"windows"``: the offline scorer, step by step. The last ``clip_len`` steps' features are
  kept; every ``stride`` steps the window that just completed is scored (temporal model + head
  from a zero state, as ``annotate``), and a step's probabilities are the mean of the windows
  covering it, final once no later window can cover it (``clip_len - 1`` steps later at most).
  At the stream's end the tail window ``annotate`` adds is scored too, so the per-step
  probabilities equal ``annotate``'s per-frame ones (``inference.scoring`` +
  ``segments.window_to_frame_probs``) up to float rounding.
- ``"carry"``: recurrent models only. The temporal model's state (LSTM/GRU hidden and cell
  state, ConvLSTM/ConvGRU maps) is carried from one step to the next through the stateful step
  API of the models (``VideoClassifier.init_state`` / ``step_features``), and each step's
  output goes through the head at once: one step of the recurrence per sampled frame
  instead of ``clip_len / stride`` (the windowed cost), and no look-ahead. ``reset_steps``
  restarts the state every N steps (0: never). A checkpoint adapted with a delay
  (``training.stream_adapt``, ``delay_steps`` D, recorded in ``meta.extra``) learnt to give
  the label of D steps back: step ``t``'s probabilities are then the output of step ``t + D``
  (a look-ahead of D steps, still one recurrence step per sampled frame; at the end the last
  output serves the last D steps). See the README ("Live streams") for how carried
  state relates to the training windows and what was measured.

Either way a stream costs one CNN pass per sampled frame (``Predictor.features``, batched
across streams by the caller). Both runtimes (``inference.runtime``) serve: torch tensors or
numpy arrays in, and with ONNX Runtime ``carry`` steps the export's step graph; torch is
imported only for the torch runtime.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from video_lstm.inference.scoring import stack_features, to_numpy

__all__ = ["OnlineScorer", "carry_delay", "supports_carry"]


def carry_delay(meta: Any) -> int:
    """The look-ahead (steps) a checkpoint was adapted to carry with (0: none recorded)."""
    adapted = (getattr(meta, "extra", None) or {}).get("stream_adapted") or {}
    return int(adapted.get("delay_steps", 0) or 0)


def supports_carry(model: Any) -> bool:
    """Whether ``model``'s temporal model carries a state worth keeping from step to step
    (recurrent and one-directional: ``VideoClassifier.stateful``). A predictor is accepted:
    the torch one's model is asked, an ONNX one has a step graph or not (``stateful``)."""
    return bool(getattr(getattr(model, "model", model), "stateful", False))


class OnlineScorer:
    """Per-step probabilities of one stream (see the module docstring).

    Args:
        predictor: The loaded model (``inference.predictor.Predictor``).
        mode: ``"windows"`` or ``"carry"``.
        stride: Window stride in steps (``"windows"``; default ``clip_len // 4``, at least 1).
        reset_steps: ``"carry"``: restart the state every this many steps (0: never).
        delay_steps: ``"carry"``: look-ahead in steps (``None``: the checkpoint's adaptation's
            ``delay_steps``, 0 if none; see the module docstring).
    """

    def __init__(
        self,
        predictor,
        *,
        mode: str = "windows",
        stride: int | None = None,
        reset_steps: int = 0,
        delay_steps: int | None = None,
    ) -> None:
        if mode not in ("windows", "carry"):
            raise ValueError(f"state must be 'windows' or 'carry', got {mode!r}")
        if mode == "carry" and not supports_carry(predictor):
            raise ValueError(
                "state 'carry' needs a recurrent temporal model with the stateful step API "
                "(lstm, gru, convlstm, convgru; not meanpool or a bidirectional one): use "
                "--state windows"
            )
        if reset_steps < 0:
            raise ValueError(f"reset_steps must be >= 0, got {reset_steps}")
        self.predictor, self.mode = predictor, mode
        self.clip_len = predictor.meta.clip_len
        self.stride = stride or max(1, self.clip_len // 4)
        self.reset_steps = reset_steps
        if delay_steps is None:
            delay_steps = carry_delay(predictor.meta)
        self.delay_steps = delay_steps if mode == "carry" else 0
        self.temporal_steps = 0  # recurrence steps run (the temporal model's cost)
        self.reset()

    def reset(self) -> None:
        """Start over (a new connection, or a hole after dropped frames): nothing carried."""
        self.seen = 0  # steps pushed since the reset
        self.emitted = 0  # steps whose probabilities were returned
        self._feats: deque[Any] = deque(maxlen=self.clip_len)  # tensors or arrays
        self._acc: dict[int, np.ndarray] = {}  # step -> sum of the windows covering it
        self._cnt: dict[int, int] = {}
        self._last_start = -1
        self._state: tuple[Any, ...] | None = None
        self._last: np.ndarray | None = None  # carry: the latest output (the tail's)

    # ------------------------------------------------------------------ windows

    def _add_window(self, start: int, feats: list[Any]) -> None:
        window = stack_features(feats)[None]  # (1, L, ...)
        probs = to_numpy(self.predictor.score_windows(window)[0]).astype(np.float64)
        self.temporal_steps += len(feats)
        for j in range(start, start + len(feats)):
            self._acc[j] = self._acc.get(j, 0.0) + probs
            self._cnt[j] = self._cnt.get(j, 0) + 1
        self._last_start = start

    def _emit(self, upto: int) -> list[tuple[int, np.ndarray]]:
        out = []
        for j in range(self.emitted, upto):
            out.append((j, self._acc.pop(j) / self._cnt.pop(j)))
        self.emitted = max(self.emitted, upto)
        return out

    # ------------------------------------------------------------------ carry

    def _carry(self, feat: Any) -> np.ndarray:
        x = feat[None]  # (1, ...) one step
        fresh = self._state is None or (self.reset_steps and self.seen % self.reset_steps == 0)
        self.temporal_steps += 1
        if not hasattr(self.predictor, "model"):  # ONNX Runtime: the export's step graph
            if fresh:
                self._state = self.predictor.init_state()
            probs, self._state = self.predictor.step(x, self._state)  # (1, K)
            return probs[0].astype(np.float64)
        import torch

        model = self.predictor.model
        with torch.inference_mode():
            if fresh:
                self._state = model.init_state(1, x)
            with self.predictor.plan.autocast():
                logits, self._state = model.step_features(x, self._state)  # (1, K)
        return logits.float().softmax(-1)[0].cpu().numpy().astype(np.float64)

    # ------------------------------------------------------------------ API

    def push(self, feat: Any) -> list[tuple[int, np.ndarray]]:
        """One step's features (``(D,)`` or ``(C, h, w)``); returns ``(step, probs (K,))`` for
        the steps that became final (steps count from the last :meth:`reset`)."""
        if self.mode == "carry":
            self._last = self._carry(feat)
            self.seen += 1
            step = self.seen - 1 - self.delay_steps  # the step this output was trained on
            if step < 0:
                return []
            self.emitted = step + 1
            return [(step, self._last)]
        self._feats.append(feat)
        self.seen += 1
        start = self.seen - self.clip_len
        if start >= 0 and start % self.stride == 0:
            self._add_window(start, list(self._feats))
            # Later regular windows start at start + stride: earlier steps are final.
            return self._emit(start + self.stride)
        return []

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The stream ended (or will restart): the remaining steps, with ``annotate``'s tail
        rule (a padded window for fewer than ``clip_len`` steps, else one window ending at the
        last step when the regular ones miss it)."""
        if self.seen == 0:
            return []
        if self.mode == "carry":
            out = [(j, self._last) for j in range(self.emitted, self.seen)]
            self.emitted = self.seen
            return out
        m, L = self.seen, self.clip_len
        feats = list(self._feats)
        if m < L:
            pad = feats + [feats[-1]] * (L - m)
            window = stack_features(pad)[None]
            probs = to_numpy(self.predictor.score_windows(window)[0]).astype(np.float64)
            self.temporal_steps += L
            for j in range(m):
                self._acc[j], self._cnt[j] = probs.copy(), 1
        elif self._last_start + L < m:
            self._add_window(m - L, feats)
        return self._emit(m)
