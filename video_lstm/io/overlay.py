"""The annotation overlay: label + confidence box and a segment timeline with a playhead.

Drawn on RGB frames or directly on I420 (yuv420p) planes (BT.601 limited range maths here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from video_lstm.types import Segment

# BT.601 limited range RGB -> YUV (OpenCV's RGB2YUV_I420 and swscale's default), with offsets.
_YUV_M = np.array(
    [[0.256788, 0.504129, 0.097906], [-0.148223, -0.290993, 0.439216],
     [0.439216, -0.367788, -0.071427]], dtype=np.float32,
)  # fmt: skip
_YUV_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float32)
_UV_AFFINE = np.concatenate([_YUV_M[1:], _YUV_OFFSET[1:, None]], axis=1)  # (2, 4)


def rgb_to_i420(frame: np.ndarray) -> np.ndarray:
    """RGB ``(H, W, 3)`` uint8 (H, W even) -> I420 ``(H * 3 // 2, W)``, BT.601 limited range.

    Luma from OpenCV's ``RGB2YUV_I420``; chroma from the 2x2 mean of the RGB pixels, as swscale
    does (OpenCV takes the top-left pixel of each block, which fringes sharp colour edges).
    Within 4 levels of swscale at 1.6x its speed (0.6 vs 1 ms per 360p frame, measured).
    """
    h, w = frame.shape[:2]
    out = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
    small = cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    uv = cv2.transform(small, _UV_AFFINE)  # (H/2, W/2, 2) uint8, rounded and saturated
    flat, q = out.reshape(-1), h * w // 4
    flat[h * w : h * w + q] = uv[..., 0].reshape(-1)
    flat[h * w + q :] = uv[..., 1].reshape(-1)
    return out


# tab10 first (familiar, distinct), then golden-ratio hues: class i always gets colour i.
_TAB10 = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


def class_colors(num_classes: int) -> np.ndarray:
    """Stable RGB colour per class index, ``(K, 3)`` uint8; the same for every video."""
    colors = list(_TAB10[:num_classes])
    for i in range(len(colors), num_classes):
        hue = int(((i - len(_TAB10)) * 0.618033988749895 % 1.0) * 180)  # OpenCV hue is 0..179
        hsv = np.array([[[hue, 200, 230]]], dtype=np.uint8)
        colors.append(tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]))
    return np.array(colors, dtype=np.uint8).reshape(-1, 3)


@dataclass(frozen=True)
class AnnotationStyle:
    """How the overlay looks; sizes are fractions of the frame height so they scale with it.

    Args:
        text_height: Height of the label text (cap height) as a fraction of the frame height.
        bar_height: Height of the timeline bar as a fraction of the frame height (0 = no bar).
        margin: Gap between the label box and the frame edge, fraction of the frame height.
        box_alpha: Opacity of the dark box behind the label text.
        bar_alpha: Opacity of the timeline bar.
        no_action_text: Text shown when no action is detected; ``None`` shows nothing.
    """

    text_height: float = 0.06
    bar_height: float = 0.045
    margin: float = 0.02
    box_alpha: float = 0.6
    bar_alpha: float = 0.85
    no_action_text: str | None = None

    def __post_init__(self) -> None:
        for name in ("text_height", "bar_height", "margin", "box_alpha", "bar_alpha"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AnnotationStyle.{name} must be in [0, 1], got {value}")
        if self.text_height <= 0:
            raise ValueError("AnnotationStyle.text_height must be positive")


_FONT = cv2.FONT_HERSHEY_SIMPLEX
_NO_ACTION = -1


class Overlay:
    """Draws the current label and confidence, and a segment timeline, on RGB frames.

    Build it once per video (the timeline bar is rendered here), then call :meth:`draw` on each
    chunk of frames as it streams. Label boxes are rendered once per distinct
    ``(label, percent)`` and alpha-blended into all frames of the chunk that show it.

    Example:
        >>> overlay = Overlay(names, num_frames=reader.num_frames, width=w, height=h,
        ...                   segments=segments)
        >>> for start, frames in reader.iter_chunks(64):
        ...     n = len(frames)
        ...     writer.write(overlay.draw(frames, start, labels[start:start + n],
        ...                               scores[start:start + n]))

    Args:
        class_names: The model's class names (colour ``i`` belongs to class ``i``).
        num_frames: Length of the video; the timeline spans it.
        width: Frame width.
        height: Frame height.
        segments: Segments shown on the timeline.
        style: Sizes and opacities.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        *,
        num_frames: int,
        width: int,
        height: int,
        segments: Sequence[Segment] = (),
        style: AnnotationStyle | None = None,
    ) -> None:
        if num_frames <= 0 or width <= 0 or height <= 0:
            raise ValueError(
                f"Overlay needs num_frames, width, height > 0; got {num_frames}, {width}x{height}"
            )
        self.class_names = list(class_names)
        self.num_frames, self.width, self.height = num_frames, width, height
        self.style = style or AnnotationStyle()
        self.colors = class_colors(len(self.class_names))
        self._patches: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._patches_i420: dict[tuple[int, int], _I420Patch] = {}
        self._bar_i420: _I420Patch | None = None
        index = {name: i for i, name in enumerate(self.class_names)}

        self.bar_h = round(self.style.bar_height * height) if self.style.bar_height > 0 else 0
        self.bar_h = min(self.bar_h, height)
        # Pixel column x shows the frame at its centre: frame floor((x + 0.5) * N / W).
        col_frame = ((np.arange(width) + 0.5) * num_frames / width).astype(np.int64)
        frame_label = np.full(num_frames, _NO_ACTION, dtype=np.int64)
        for seg in segments:
            if seg.label not in index:
                raise ValueError(f"segment label {seg.label!r} is not one of {self.class_names}")
            frame_label[max(seg.start_frame, 0) : min(seg.end_frame, num_frames)] = index[seg.label]
        col_label = frame_label[col_frame]
        bar_row = np.where(
            (col_label >= 0)[:, None], self.colors[np.maximum(col_label, 0)], np.uint8(50)
        )  # (W, 3)
        self.timeline = np.broadcast_to(bar_row, (self.bar_h, width, 3)).copy()  # (bar_h, W, 3)
        self.playhead_width = max(2, width // 160)

    def playhead_x(self, frame_index: np.ndarray | int) -> np.ndarray:
        """Left pixel column of the playhead for the given frame index(es)."""
        x = np.asarray(frame_index) * self.width // self.num_frames
        return np.clip(x, 0, self.width - self.playhead_width)

    def _label_patch(self, label: int, percent: int) -> tuple[np.ndarray, np.ndarray]:
        """(premultiplied colour, 1 - alpha) float32 patches for one label box, cached."""
        key = (label, percent)
        if key in self._patches:
            return self._patches[key]
        if label == _NO_ACTION:
            text, swatch = self.style.no_action_text or "", None
        else:
            text, swatch = f"{self.class_names[label]} {percent}%", self.colors[label]
        (_, h1), _ = cv2.getTextSize("H", _FONT, 1.0, 1)
        scale = max(self.style.text_height * self.height / h1, 0.3)
        thick = max(1, round(scale * 1.6))
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
        pad = max(2, th // 3)
        sw = th if swatch is not None else 0
        ph = th + base + 2 * pad
        pw = pad + (sw + pad if sw else 0) + tw + pad
        text_mask = np.zeros((ph, pw), dtype=np.uint8)
        x_text = pad + (sw + pad if sw else 0)
        cv2.putText(text_mask, text, (x_text, pad + th), _FONT, scale, 255, thick, cv2.LINE_AA)
        m = text_mask.astype(np.float32)[..., None] / 255.0  # (ph, pw, 1)
        # Dark box at box_alpha, then white text over it with the anti-aliased mask as alpha.
        inv = (1.0 - self.style.box_alpha) * (1.0 - m)
        premult = 255.0 * m
        inv = np.repeat(inv, 3, axis=2)
        premult = np.repeat(premult, 3, axis=2)
        if swatch is not None:
            y0 = pad + max(0, (th + base - sw) // 2)
            inv[y0 : y0 + sw, pad : pad + sw] = 0.0
            premult[y0 : y0 + sw, pad : pad + sw] = swatch
        # Never larger than the frame area above the bar.
        margin = round(self.style.margin * self.height)
        max_h = max(0, self.height - self.bar_h - margin)
        max_w = max(0, self.width - margin)
        self._patches[key] = (premult[:max_h, :max_w], inv[:max_h, :max_w])
        return self._patches[key]

    def draw(
        self,
        frames: np.ndarray,
        start_index: int,
        labels: np.ndarray | Sequence[int],
        scores: np.ndarray | Sequence[float],
        *,
        copy: bool = True,
    ) -> np.ndarray:
        """Draw the overlay on a chunk of consecutive frames.

        Args:
            frames: ``(n, H, W, 3)`` uint8 RGB, frames ``start_index .. start_index + n - 1``.
            start_index: Video frame index of ``frames[0]`` (positions the playhead).
            labels: ``(n,)`` class index per frame, ``-1`` for no action.
            scores: ``(n,)`` confidence in ``[0, 1]`` per frame (shown as a percentage).
            copy: Draw on a copy (default) or in place.

        Returns:
            ``(n, H, W, 3)`` uint8 annotated frames.
        """
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(
                f"expected frames (n, {self.height}, {self.width}, 3), got {frames.shape}"
            )
        groups = self._label_groups(len(frames), labels, scores)
        out = frames.copy() if copy else frames
        n = len(out)
        if n == 0:
            return out

        if self.bar_h:
            a = self.style.bar_alpha
            region = out[:, self.height - self.bar_h :]  # (n, bar_h, W, 3) view
            blended = region * np.float32(1 - a) + self.timeline * np.float32(a)
            region[:] = blended.astype(np.uint8)
            xs = self.playhead_x(start_index + np.arange(n))
            for d in range(self.playhead_width):
                out[np.arange(n), self.height - self.bar_h :, xs + d] = 255

        margin = round(self.style.margin * self.height)
        for label, percent, sel in groups:
            premult, inv = self._label_patch(label, percent)
            ph, pw = premult.shape[:2]
            region = out[sel, margin : margin + ph, margin : margin + pw]  # (s, ph, pw, 3) copy
            out[sel, margin : margin + ph, margin : margin + pw] = (region * inv + premult).astype(
                np.uint8
            )
        return out

    def _label_groups(
        self, n: int, labels: np.ndarray | Sequence[int], scores: np.ndarray | Sequence[float]
    ) -> list[tuple[int, int, np.ndarray]]:
        """Validate per-frame labels/scores; ``(label, percent, frame positions)`` to draw."""
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(labels) != n or len(scores) != n:
            raise ValueError(f"{n} frames but {len(labels)} labels and {len(scores)} scores")
        if labels.size and (labels.min() < _NO_ACTION or labels.max() >= len(self.class_names)):
            raise ValueError(f"labels must be in [-1, {len(self.class_names)}), got {labels}")
        percents = np.clip(np.rint(scores * 100), 0, 100).astype(np.int64)
        percents[labels == _NO_ACTION] = 0
        keys = labels * 101 + percents
        groups = []
        for key in np.unique(keys):
            label, percent = divmod(int(key), 101) if key >= 0 else (_NO_ACTION, 0)
            if label == _NO_ACTION and not self.style.no_action_text:
                continue
            groups.append((label, percent, np.flatnonzero(keys == key)))
        return groups

    # ------------------------------------------------------------------ I420 (yuv420p) frames

    def draw_i420(
        self,
        planes: np.ndarray,
        start_index: int,
        labels: np.ndarray | Sequence[int],
        scores: np.ndarray | Sequence[float],
    ) -> np.ndarray:
        """:meth:`draw` on frames in I420 layout, in place, with no colour conversion.

        The same blends as :meth:`draw`, done on the Y, U and V planes: a blend
        ``x * inv + premult`` with one ``inv`` for all three RGB channels is affine in the
        colour, so in YUV it is ``yuv * inv + (offset * (1 - inv) + M @ premult)`` (BT.601
        limited range, OpenCV's and x264's default). Chroma uses the 2x2 means of both terms,
        which is exact for 4:2:0 input. The result matches ``RGB->I420(draw(frames))`` within a
        few levels, and pixels outside the overlay stay bit-identical (no RGB round trip).

        Args:
            planes: ``(n, H * 3 // 2, W)`` uint8 (Y, then U and V packed), H and W even; e.g.
                ``VideoFrame.to_ndarray(format="yuv420p")`` stacked. Modified in place.
            start_index: Video frame index of ``planes[0]``.
            labels: ``(n,)`` class index per frame, ``-1`` for no action.
            scores: ``(n,)`` confidence in ``[0, 1]`` per frame.

        Returns:
            ``planes``.
        """
        h, w = self.height, self.width
        if h % 2 or w % 2:
            raise ValueError(f"I420 frames need an even size, got {w}x{h}")
        if planes.ndim != 3 or planes.shape[1:] != (h * 3 // 2, w) or planes.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 I420 frames (n, {h * 3 // 2}, {w}), got {planes.shape} "
                f"{planes.dtype}"
            )
        groups = self._label_groups(len(planes), labels, scores)
        n = len(planes)
        if n == 0:
            return planes
        flat = planes.reshape(n, -1)  # a view: the planes must be C-contiguous
        if not np.shares_memory(flat, planes):
            raise ValueError("I420 frames must be C-contiguous (they are drawn on in place)")
        q = h * w // 4
        y = flat[:, : h * w].reshape(n, h, w)
        uv = (flat[:, h * w : h * w + q].reshape(n, h // 2, w // 2),
              flat[:, h * w + q :].reshape(n, h // 2, w // 2))  # fmt: skip

        if self.bar_h:
            if self._bar_i420 is None:
                a = np.float32(self.style.bar_alpha)
                inv = np.full((self.bar_h, w, 1), 1 - a, dtype=np.float32)
                self._bar_i420 = _I420Patch(h - self.bar_h, 0, inv, self.timeline * a)
            bar = self._bar_i420
            bar.apply(y, uv, np.arange(n))
            xs = self.playhead_x(start_index + np.arange(n))
            rows = np.arange(n)[:, None]
            pw = self.playhead_width
            for d in range(pw):
                y[rows, h - self.bar_h :, (xs + d)[:, None]] = 235  # white in limited range
            # Chroma: a 2x2 block half covered by the playhead goes half way to grey.
            for k in range(pw // 2 + 1):
                col = np.minimum(xs // 2 + k, w // 2 - 1)
                covered = np.minimum(2 * col + 1, xs + pw - 1) - np.maximum(2 * col, xs) + 1
                f = (np.clip(covered, 0, 2) / 2).astype(np.float32)[:, None, None]
                for c in uv:
                    region = c[rows, bar.cy0 :, col[:, None]]  # (n, 1, rows)
                    c[rows, bar.cy0 :, col[:, None]] = (region * (1 - f) + 128 * f + 0.5).astype(
                        np.uint8
                    )
        margin = round(self.style.margin * h)
        for label, percent, sel in groups:
            key = (label, percent)
            if key not in self._patches_i420:
                premult, inv = self._label_patch(label, percent)
                self._patches_i420[key] = _I420Patch(margin, margin, inv[..., :1], premult)
            self._patches_i420[key].apply(y, uv, sel)
        return planes


class _I420Patch:
    """An RGB blend ``x * inv + premult`` at ``(y0, x0)``, as multiply/add terms on I420 planes.

    The patch is widened to even coordinates (the extra pixels get ``inv = 1``, ``add = 0``, so
    they stay as they are) and the chroma terms are 2x2 means.
    """

    def __init__(self, y0: int, x0: int, inv: np.ndarray, premult: np.ndarray) -> None:
        ph, pw = premult.shape[:2]
        dy, dx = y0 % 2, x0 % 2
        eh, ew = ph + dy + (ph + dy) % 2, pw + dx + (pw + dx) % 2
        mul = np.ones((eh, ew), dtype=np.float32)
        add = np.zeros((eh, ew, 3), dtype=np.float32)
        mul[dy : dy + ph, dx : dx + pw] = inv[..., 0]
        # yuv_out = yuv * inv + offset * (1 - inv) + M @ premult
        add[dy : dy + ph, dx : dx + pw] = (1 - inv) * _YUV_OFFSET + premult @ _YUV_M.T
        self.y0, self.x0, self.cy0, self.cx0 = y0 - dy, x0 - dx, (y0 - dy) // 2, (x0 - dx) // 2
        self.y_mul, self.y_add = mul, add[..., 0] + np.float32(0.5)  # + 0.5: round, not floor
        self.c_mul = mul.reshape(eh // 2, 2, ew // 2, 2).mean(axis=(1, 3))
        c_add = add[..., 1:].reshape(eh // 2, 2, ew // 2, 2, 2).mean(axis=(1, 3))
        self.c_add = [c_add[..., 0] + np.float32(0.5), c_add[..., 1] + np.float32(0.5)]

    def apply(self, y: np.ndarray, uv: tuple[np.ndarray, np.ndarray], sel: np.ndarray) -> None:
        eh, ew = self.y_mul.shape
        ys, xs = slice(self.y0, self.y0 + eh), slice(self.x0, self.x0 + ew)
        y[sel, ys, xs] = np.clip(y[sel, ys, xs] * self.y_mul + self.y_add, 0, 255).astype(np.uint8)
        cys = slice(self.cy0, self.cy0 + eh // 2)
        cxs = slice(self.cx0, self.cx0 + ew // 2)
        for plane, add in zip(uv, self.c_add, strict=True):
            region = plane[sel, cys, cxs] * self.c_mul + add
            plane[sel, cys, cxs] = np.clip(region, 0, 255).astype(np.uint8)
