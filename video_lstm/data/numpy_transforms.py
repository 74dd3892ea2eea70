"""The eval preset in numpy: what the torch-free (ONNX Runtime) inference path feeds its model.

:class:`NumpyEvalTransform` does what :class:`~video_lstm.data.transforms.EvalTransform` does,
without torch: resize the short side (antialiased bilinear), centre-crop, normalise, uint8
``(T, H, W, 3)`` -> float32 ``(T, 3, S, S)``. The two agree within one grey level before
normalisation when shrinking, two when enlarging (``tests/test_onnx.py``): torch's uint8 resize
uses fixed-point weights, this one float weights. At inference the decoder usually delivers frames whose
short side is already the model's (``open_video(size=...)``), so only the crop and the
normalisation run, and those are exact up to float rounding.

Mean and std come from the model's metadata (``ModelMeta.mean``/``std``), never retyped.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = ["NumpyEvalTransform", "resize_weights"]


@lru_cache(maxsize=32)
def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` float32 weights of an antialiased bilinear resize along one axis.

    The triangle filter widened by the scale when shrinking (PIL's and torch's ``antialias=True``
    bilinear), each row normalised to sum 1.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)  # the triangle's half-width in input pixels
    centers = (np.arange(n_out) + 0.5) * scale  # (n_out,)
    src = np.arange(n_in) + 0.5  # (n_in,)
    w = np.clip(1.0 - np.abs(src[None, :] - centers[:, None]) / support, 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    return w.astype(np.float32)


def _resize_short_side(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(T, H, W, 3)`` with its short side resized to ``size`` (uint8, rounded)."""
    h, w = frames.shape[1:3]
    scale = size / min(h, w)
    oh, ow = max(size, round(h * scale)), max(size, round(w * scale))
    if (oh, ow) == (h, w):
        return frames
    # Width first, rounded to uint8 between the passes, as torch's uint8 kernel does: then 1-3%
    # of the values differ from torch's by one grey level (its fixed-point weights), against
    # 20% rounding once or height first.
    x = frames.astype(np.float32)
    if ow != w:
        x = np.einsum("qw,thwc->thqc", resize_weights(w, ow), x)  # (T, H, ow, 3)
        x = np.clip(np.rint(x), 0, 255)
    if oh != h:
        x = np.einsum("ph,thwc->tpwc", resize_weights(h, oh), x)  # (T, oh, ow, 3)
        x = np.clip(np.rint(x), 0, 255)
    return x.astype(np.uint8)


class NumpyEvalTransform:
    """Resize the short side, centre-crop ``size``, normalise: uint8 THWC -> float32 TCHW.

    Args:
        size: Output side in pixels.
        mean: Per-channel mean (the model's, for inputs scaled to 0..1).
        std: Per-channel std.
        resize: Short side before the crop (default ``size``), as in ``EvalTransform``.
    """

    def __init__(
        self, *, size: int, mean: Sequence[float], std: Sequence[float], resize: int | None = None
    ) -> None:
        if size < 1 or len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"need size >= 1, 3 means and 3 stds > 0; got {size}, {mean}, {std}")
        if resize is not None and resize < size:
            raise ValueError(f"resize ({resize}) must be >= size ({size})")
        self.size, self.resize = size, resize or size
        # (x / 255 - mean) / std as one multiply-add per value.
        std_ = np.asarray(std, dtype=np.float32)
        self._scale = (1.0 / (255.0 * std_)).astype(np.float32)
        self._bias = (-np.asarray(mean, dtype=np.float32) / std_).astype(np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``(T, H, W, 3)`` -> float32 ``(T, 3, size, size)``, C-contiguous."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames (T, H, W, 3), got shape {frames.shape}")
        x = _resize_short_side(frames, self.resize)
        h, w = x.shape[1:3]
        s = self.size
        if h < s or w < s:
            raise ValueError(f"cannot crop {s}x{s} from {h}x{w}; resize first")
        top, left = (h - s) // 2, (w - s) // 2
        x = x[:, top : top + s, left : left + s]  # (T, s, s, 3) view
        out = np.empty((len(x), 3, s, s), dtype=np.float32)
        for c in range(3):  # channel planes: the CNN's NCHW input
            np.multiply(x[..., c], self._scale[c], out=out[:, c], casting="unsafe")
            out[:, c] += self._bias[c]
        return out
