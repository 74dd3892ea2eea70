"""The ``"objects"`` scene: a textured object moves, grows or turns over a procedural background.

Eight classes in four mirrored pairs: ``move_left``/``move_right``, ``move_up``/``move_down``,
``grow``/``shrink``, ``rotate_cw``/``rotate_ccw``. Within a pair the object's track is the same
distribution run the other way (same position, size and angle ranges, same speeds), so the *set*
of frames of a ``move_left`` clip is distributed exactly like that of a ``move_right`` clip: a
single frame, or any frame-order-agnostic pooling, cannot tell a pair apart; only temporal order
can. Nuisance factors are random: background (noise, gradient, stripes, checker), object shape,
texture, colour, size, speed and start, distractor objects moving at similar speeds, sensor noise.

Every object carries a contrasting marker dot off its centre, so even a circle shows its rotation
and no shape gives away a rotation class.

Frames are RGB uint8 ``(T, H, W, 3)``, drawn with numpy/OpenCV (under 1 ms a frame at 112px).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from video_lstm.data.synthetic.common import check_sequence, draw_count, size_hw
from video_lstm.types import Segment

ACTIONS: tuple[str, ...] = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "grow",
    "shrink",
    "rotate_cw",
    "rotate_ccw",
)

# The partner each action cannot be told apart from without temporal order.
MIRRORED: dict[str, str] = {
    "move_left": "move_right",
    "move_right": "move_left",
    "move_up": "move_down",
    "move_down": "move_up",
    "grow": "shrink",
    "shrink": "grow",
    "rotate_cw": "rotate_ccw",
    "rotate_ccw": "rotate_cw",
}

SHAPES: tuple[str, ...] = (
    "circle",
    "ellipse",
    "square",
    "rect",
    "triangle",
    "pentagon",
    "star",
    "ell",
)
BACKGROUNDS: tuple[str, ...] = ("noise", "gradient", "stripes", "checker")
TEXTURES: tuple[str, ...] = ("solid", "stripes", "checker", "noise", "radial")

# Object size as a fraction of the short side of the frame.
_MOVE_SIZE = (0.18, 0.30)
_SCALE_RANGE = (0.10, 0.50)  # grow/shrink stay inside this range
_SCALE_RATIO = (1.8, 2.8)  # size ratio between start and end of grow/shrink
_TRAVEL = (0.30, 0.55)  # travel of a move as a fraction of the axis length
_SPIN = (3.0, 8.0)  # degrees per frame for rotate_*; far below any aliasing


def _random_color(rng: np.random.Generator, *, avoid: np.ndarray | None = None) -> np.ndarray:
    """A saturated-ish RGB colour (float32 0-255), far from ``avoid`` when given."""
    for _ in range(20):
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(120, 256), rng.integers(110, 256)]]])
        color = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
        if avoid is None or np.abs(color - avoid).sum() > 150:
            return color
    return color


def _pattern(h: int, w: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A [0, 1] float32 pattern ``(h, w)`` used for backgrounds and object textures."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    proj = xx * np.cos(theta) + yy * np.sin(theta)
    if kind == "solid":
        return np.zeros((h, w), np.float32)
    if kind == "gradient":
        return (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    if kind == "stripes":
        period = rng.uniform(0.12, 0.3) * min(h, w)
        return (0.5 + 0.5 * np.sin(2 * np.pi * proj / period)).astype(np.float32)
    if kind == "checker":
        cell = max(2, int(rng.uniform(0.08, 0.2) * min(h, w)))
        return (((xx // cell) + (yy // cell)) % 2).astype(np.float32)
    if kind == "noise":
        coarse = rng.random((max(2, h // 8), max(2, w // 8))).astype(np.float32)
        return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    if kind == "radial":
        r = np.hypot(xx - w / 2, yy - h / 2)
        return (r / max(float(r.max()), 1e-6)).astype(np.float32)
    raise ValueError(f"unknown pattern {kind!r}")


def make_background(size: int | tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random static background: noise, gradient, stripes or checker in two muted colours.

    Args:
        size: Frame size, ``int`` for square or ``(height, width)``.
        rng: Random generator.

    Returns:
        uint8 ``(H, W, 3)`` RGB.
    """
    h, w = size_hw(size)
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    p = _pattern(h, w, kind, rng)[..., None]
    # Muted colours with limited contrast, so the object is the salient thing in the frame.
    c0 = rng.uniform(20, 200, 3).astype(np.float32)
    c1 = (c0 + rng.uniform(-60, 60, 3)).clip(0, 255).astype(np.float32)
    return (c0 * (1 - p) + c1 * p).round().astype(np.uint8)


def _shape_polygon(shape: str, rng: np.random.Generator) -> np.ndarray | None:
    """Unit-square polygon (points in [-1, 1]) for ``shape``; ``None`` for circle/ellipse."""
    if shape in ("circle", "ellipse"):
        return None
    if shape == "square":
        pts = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    elif shape == "rect":
        a = rng.uniform(0.45, 0.75)
        pts = [(-1, -a), (1, -a), (1, a), (-1, a)]
    elif shape == "triangle":
        pts = [(0, -1), (0.95, 0.8), (-0.95, 0.8)]
    elif shape == "pentagon":
        pts = [(math.sin(2 * math.pi * k / 5), -math.cos(2 * math.pi * k / 5)) for k in range(5)]
    elif shape == "star":
        pts = [
            (r * math.sin(math.pi * k / 5), -r * math.cos(math.pi * k / 5))
            for k in range(10)
            for r in [1.0 if k % 2 == 0 else 0.45]
        ]
    elif shape == "ell":
        pts = [(-1, -1), (-0.2, -1), (-0.2, 0.3), (1, 0.3), (1, 1), (-1, 1)]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(pts, np.float32)


def make_sprite(
    rng: np.random.Generator, *, side: int = 64, avoid_color: np.ndarray | None = None
) -> np.ndarray:
    """A random textured object with a marker dot, premultiplied RGBA float32 ``(side, side, 4)``.

    The object fills the sprite (its diameter is ``side``), centred; the marker dot sits off
    centre so that rotation is visible whatever the shape.
    """
    shape = SHAPES[rng.integers(len(SHAPES))]
    mask = np.zeros((side, side), np.uint8)
    half = (side - 2) / 2
    center = (side / 2, side / 2)
    poly = _shape_polygon(shape, rng)
    if poly is None:
        ry = half if shape == "circle" else half * rng.uniform(0.5, 0.75)
        # cv2 draws with integer coordinates; shift=4 keeps sub-pixel precision.
        cv2.ellipse(
            mask,
            (int(center[0] * 16), int(center[1] * 16)),
            (int(half * 16), int(ry * 16)),
            0,
            0,
            360,
            255,
            -1,
            cv2.LINE_AA,
            4,
        )
    else:
        pts = (poly * half + np.float32(center)) * 16
        cv2.fillPoly(mask, [pts.round().astype(np.int32)], 255, cv2.LINE_AA, 4)
    alpha = mask.astype(np.float32) / 255.0

    c0 = _random_color(rng, avoid=avoid_color)
    c1 = _random_color(rng, avoid=c0)
    texture = TEXTURES[rng.integers(len(TEXTURES))]
    p = _pattern(side, side, texture, rng)[..., None]
    rgb = c0 * (1 - p) + c1 * p

    # Marker: a dot in a contrasting colour between centre and rim, inside the shape.
    ys, xs = np.nonzero(mask > 200)
    d = np.hypot(xs - center[0], ys - center[1])
    ok = (d > 0.3 * half) & (d < 0.7 * half)
    if ok.any():
        k = rng.choice(np.flatnonzero(ok))
        mark = np.zeros_like(mask)
        cv2.circle(mark, (int(xs[k]), int(ys[k])), max(2, side // 10), 255, -1, cv2.LINE_AA)
        m = (mark.astype(np.float32) / 255.0)[..., None] * alpha[..., None]
        dot = np.float32(255) - c0 if texture == "solid" else np.full(3, 255 * (c0.mean() < 128))
        rgb = rgb * (1 - m) + dot * m
    return np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1).astype(np.float32)


@dataclass(frozen=True)
class Appearance:
    """What stays fixed over a clip or a sequence: background, object and distractor sprites."""

    background: np.ndarray  # uint8 (H, W, 3)
    sprite: np.ndarray  # premultiplied RGBA float32 (S, S, 4)
    distractors: tuple[np.ndarray, ...]  # sprites of the distractor objects


def sample_appearance(
    size: int | tuple[int, int],
    rng: np.random.Generator,
    *,
    distractors: int | tuple[int, int] = (0, 2),
    background: np.ndarray | None = None,
) -> Appearance:
    """Draw a background, an object and ``distractors`` distractor objects.

    Args:
        size: Frame size, ``int`` or ``(height, width)``.
        rng: Random generator.
        distractors: Number of distractor objects, or an inclusive ``(low, high)`` range.
        background: Use this uint8 ``(H, W, 3)`` background instead of drawing one.

    Returns:
        The appearance.
    """
    h, w = size_hw(size)
    if background is None:
        background = make_background((h, w), rng)
    elif background.shape != (h, w, 3):
        raise ValueError(f"background must be ({h}, {w}, 3), got {background.shape}")
    # Sprites are drawn at (at least) the largest size they are shown at, so they stay sharp.
    side = max(64, int(math.ceil(_SCALE_RANGE[1] * min(h, w) / 2)) * 2)
    sprite = make_sprite(rng, side=side)
    lo, hi = (distractors, distractors) if isinstance(distractors, int) else distractors
    n = int(rng.integers(lo, hi + 1))
    color = sprite[..., :3].sum((0, 1)) / max(float(sprite[..., 3].sum()), 1.0)
    others = tuple(make_sprite(rng, side=side // 2, avoid_color=color) for _ in range(n))
    return Appearance(background=background, sprite=sprite, distractors=others)


@dataclass
class _State:
    """Pose of the object: centre (px), diameter (px), angle (degrees, counter-clockwise)."""

    x: float
    y: float
    scale: float
    angle: float


def _fresh_state(action: str, h: int, w: int, rng: np.random.Generator) -> _State:
    """A start pose for a clip of ``action`` drawn from the pair-symmetric distribution."""
    short = min(h, w)
    scale = rng.uniform(*_MOVE_SIZE) * short
    m = scale / 2 + 1
    return _State(
        x=rng.uniform(m, w - m), y=rng.uniform(m, h - m), scale=scale, angle=rng.uniform(0, 360)
    )


def _track(
    action: str, num_frames: int, h: int, w: int, rng: np.random.Generator, start: _State | None
) -> list[_State]:
    """Poses for ``num_frames`` frames of ``action``, continuing from ``start`` when given.

    Mirrored actions use one code path with a direction sign and draw their ranges the same way,
    so the set of poses of a clip has the same distribution for both members of a pair.
    """
    t = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    short = min(h, w)
    if action in ("move_left", "move_right", "move_up", "move_down"):
        horizontal = action in ("move_left", "move_right")
        sign = 1.0 if action in ("move_right", "move_down") else -1.0
        length = w if horizontal else h
        s = start or _fresh_state(action, h, w, rng)
        if start is None or not _MOVE_SIZE[0] * short * 0.8 <= s.scale <= _MOVE_SIZE[1] * short:
            s = _State(s.x, s.y, rng.uniform(*_MOVE_SIZE) * short, s.angle)
        m = s.scale / 2 + 1
        travel = rng.uniform(*_TRAVEL) * length
        pos = s.x if horizontal else s.y
        room = (length - m - pos) if sign > 0 else (pos - m)
        if start is None or room < _TRAVEL[0] * length * 0.7:
            # Fresh start: the low end of the path is uniform over where the path fits.
            lo = rng.uniform(m, max(m, length - m - travel))
            pos = lo if sign > 0 else lo + travel
        else:
            travel = min(travel, room)
        other = s.y if horizontal else s.x
        other_len = h if horizontal else w
        other = float(np.clip(other, m, other_len - m))
        # Small symmetric wobble across the direction of travel: real motion is never a rail.
        wobble = rng.uniform(0, 0.02 * short) * np.sin(
            2 * np.pi * (rng.uniform(0.5, 2) * t + rng.uniform())
        )
        main = pos + sign * travel * t
        return [
            _State(
                x=float(a if horizontal else other + b),
                y=float(other + b if horizontal else a),
                scale=s.scale,
                angle=s.angle,
            )
            for a, b in zip(main, wobble, strict=True)
        ]
    if action in ("grow", "shrink"):
        ratio = rng.uniform(*_SCALE_RATIO)
        smin, smax = _SCALE_RANGE[0] * short, _SCALE_RANGE[1] * short
        s = start or _fresh_state(action, h, w, rng)
        lo = None
        if start is not None:
            cur = s.scale
            lo = cur if action == "grow" else cur / ratio
            if lo < smin or lo * ratio > smax:
                lo = None  # cannot continue from here: start at a size that fits
        if lo is None:
            lo = rng.uniform(smin, smax / ratio)
        hi = lo * ratio
        # Geometric in time: equal relative change per frame, like an object approaching.
        scales = lo * ratio**t if action == "grow" else hi * ratio ** (-t)
        m = hi / 2 + 1
        x1, y1 = float(np.clip(s.x, m, w - m)), float(np.clip(s.y, m, h - m))
        if start is None:
            x0, y0 = x1, y1
        else:
            x0, y0 = s.x, s.y  # drift into the frame if the grown object would not fit
        return [
            _State(x=x0 + (x1 - x0) * a, y=y0 + (y1 - y0) * a, scale=float(sc), angle=s.angle)
            for a, sc in zip(t, scales, strict=True)
        ]
    if action in ("rotate_cw", "rotate_ccw"):
        s = start or _fresh_state(action, h, w, rng)
        # Angles are counter-clockwise as seen on screen (OpenCV convention, y axis down).
        spin = rng.uniform(*_SPIN) * (-1.0 if action == "rotate_cw" else 1.0)
        return [
            _State(x=s.x, y=s.y, scale=s.scale, angle=s.angle + spin * k) for k in range(num_frames)
        ]
    raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")


class Distractors:
    """Distractor objects: random walks with bounces at similar speeds to the main object."""

    def __init__(self, sprites: Sequence[np.ndarray], h: int, w: int, rng: np.random.Generator):
        self.sprites = list(sprites)
        self.h, self.w, self.rng = h, w, rng
        short = min(h, w)
        n = len(self.sprites)
        self.scale = rng.uniform(0.08, 0.16, n) * short
        self.pos = np.stack([rng.uniform(0, w, n), rng.uniform(0, h, n)], axis=1)
        direction = rng.uniform(0, 2 * np.pi, n)
        speed = rng.uniform(0.3, 1.5, n) * short / 112
        self.vel = np.stack([np.cos(direction), np.sin(direction)], axis=1) * speed[:, None]
        self.angle = rng.uniform(0, 360, n)
        self.spin = rng.uniform(-3, 3, n)

    def step(self) -> list[_State]:
        states = [
            _State(float(x), float(y), float(s), float(a))
            for (x, y), s, a in zip(self.pos, self.scale, self.angle, strict=True)
        ]
        self.vel += self.rng.normal(0, 0.05, self.vel.shape) * min(self.h, self.w) / 112
        self.pos += self.vel
        for axis, limit in ((0, self.w), (1, self.h)):
            out = (self.pos[:, axis] < 0) | (self.pos[:, axis] > limit)
            self.vel[out, axis] *= -1
            self.pos[:, axis] = self.pos[:, axis].clip(0, limit)
        self.angle += self.spin
        return states


def paste_sprite(canvas: np.ndarray, sprite: np.ndarray, state: _State) -> None:
    """Composite a premultiplied RGBA sprite onto a float32 canvas, in place."""
    h, w = canvas.shape[:2]
    side = sprite.shape[0]
    mat = cv2.getRotationMatrix2D((side / 2, side / 2), state.angle, state.scale / side)
    # Warp only into the object's bounding box: most of the frame is untouched.
    r = state.scale * 0.75 + 2  # > half the diagonal of the sprite's square at any angle
    x0, y0 = max(0, int(state.x - r)), max(0, int(state.y - r))
    x1, y1 = min(w, int(state.x + r) + 1), min(h, int(state.y + r) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    mat[0, 2] += state.x - side / 2 - x0
    mat[1, 2] += state.y - side / 2 - y0
    warped = cv2.warpAffine(
        sprite,
        mat,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    roi = canvas[y0:y1, x0:x1]
    roi *= 1 - warped[..., 3:4]
    roi += warped[..., :3]


def _render(
    appearance: Appearance,
    poses: Sequence[_State | None],
    distractors: Distractors,
    rng: np.random.Generator,
    noise_std: float,
) -> np.ndarray:
    """Frames for the object poses (``None``: object absent), with distractors and sensor noise."""
    bg = appearance.background.astype(np.float32)
    out = np.empty((len(poses), *bg.shape), np.uint8)
    for i, pose in enumerate(poses):
        canvas = bg.copy()
        # Distractors behind the object: the object is the one thing always fully visible.
        for sprite, state in zip(distractors.sprites, distractors.step(), strict=True):
            paste_sprite(canvas, sprite, state)
        if pose is not None:
            paste_sprite(canvas, appearance.sprite, pose)
        if noise_std > 0:
            canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * noise_std
        np.clip(canvas, 0, 255, out=canvas)
        out[i] = canvas.round()
    return out


def render_action(
    action: str,
    *,
    num_frames: int = 40,
    size: int | tuple[int, int] = 112,
    rng: np.random.Generator | int | None = None,
    appearance: Appearance | None = None,
    distractors: int | tuple[int, int] = (0, 2),
    noise_std: float = 2.0,
) -> np.ndarray:
    """Render one clip of ``action``.

    Args:
        action: One of :data:`ACTIONS`.
        num_frames: Clip length.
        size: Frame size, ``int`` for square or ``(height, width)``.
        rng: Generator or seed; the clip is a pure function of it.
        appearance: Background and sprites to use (e.g. shared by a group of clips); drawn from
            ``rng`` when ``None``.
        distractors: Number (or inclusive range) of distractor objects when drawing an appearance.
        noise_std: Standard deviation of per-frame sensor noise, in 0-255 units.

    Returns:
        uint8 RGB frames ``(num_frames, H, W, 3)``.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    h, w = size_hw(size)
    rng = np.random.default_rng(rng)
    if appearance is None:
        appearance = sample_appearance((h, w), rng, distractors=distractors)
    elif appearance.background.shape[:2] != (h, w):
        raise ValueError(f"appearance is {appearance.background.shape[:2]}, size is {(h, w)}")
    poses = _track(action, num_frames, h, w, rng, None)
    dis = Distractors(appearance.distractors, h, w, rng)
    return _render(appearance, poses, dis, rng, noise_std)


GAPS: tuple[str, ...] = ("absent", "static", "shake")


def _shake(frames: np.ndarray, idx: Sequence[int], amplitude: float, rng: np.random.Generator):
    """Hand-held camera shake on ``frames[idx]``, in place: a smooth random walk of sub-pixel to
    ``amplitude``-pixel translations and small rolls (edges reflected, like a crop of a larger
    view)."""
    if not len(idx) or amplitude <= 0:
        return
    h, w = frames.shape[1:3]
    n = len(idx)
    # Sum of a few sines with random phases: smooth, zero-mean, no drift (a person holding still).
    t = np.arange(n, dtype=np.float64)[:, None]
    freq = rng.uniform(0.05, 0.35, (1, 3))
    phase = rng.uniform(0, 2 * np.pi, (3, 3))
    walk = np.stack([np.sin(2 * np.pi * freq * t + phase[k]).mean(axis=1) for k in range(3)], 1)
    walk *= amplitude / max(float(np.abs(walk).max()), 1e-6)
    for k, (dx, dy, roll) in zip(idx, walk, strict=True):
        mat = cv2.getRotationMatrix2D((w / 2, h / 2), float(roll) * 0.5, 1.0)
        mat[:, 2] += (dx, dy)
        frames[k] = cv2.warpAffine(frames[k], mat, (w, h), borderMode=cv2.BORDER_REFLECT)


def make_action_sequence(
    actions: Sequence[str],
    *,
    frames_per_action: int | tuple[int, int] = 40,
    gap_frames: int | tuple[int, int] = 0,
    gap: str | Sequence[str] = "absent",
    size: int | tuple[int, int] = 112,
    fps: float = 25.0,
    rng: np.random.Generator | int | None = None,
    distractors: int | tuple[int, int] = (0, 2),
    noise_std: float = 2.0,
    shake_px: float | None = None,
) -> tuple[np.ndarray, list[Segment]]:
    """One untrimmed video: several actions separated by idle stretches, with the ground truth.

    The same background, object and distractors are kept over the whole video, and the object
    continues from where the previous action left it when it can (it jumps when, say, there is no
    room left for another ``move_right``). When ``gap_frames`` is non-zero, an idle ("no action")
    stretch is put before, between and after the actions, of a kind drawn from ``gap``:
    ``"absent"`` hides the object (it reappears at a fresh place), ``"static"`` keeps it still
    (still camera), ``"shake"`` keeps it still under a hand-held camera shake (the whole frame
    jitters by up to ``shake_px``). Distractors keep moving in every gap: motion that is not an
    action.

    Args:
        actions: Labels from :data:`ACTIONS`, in order.
        frames_per_action: Length of each action, or an inclusive ``(low, high)`` range.
        gap_frames: Length of each gap, or an inclusive range; 0 means actions follow directly.
        gap: A gap kind from :data:`GAPS`, or several to draw from at random per gap.
        size: Frame size, ``int`` or ``(height, width)``.
        fps: Frame rate, used for the segments' seconds.
        rng: Generator or seed.
        distractors: Number (or inclusive range) of distractor objects.
        noise_std: Per-frame sensor noise standard deviation.
        shake_px: Largest shake translation in pixels (default 2.5% of the short side).

    Returns:
        ``(frames, segments)``: uint8 ``(T, H, W, 3)`` frames and one :class:`Segment` per action
        (``end_frame`` exclusive, score 1.0); frames not covered by a segment are idle.
    """
    kinds = check_sequence(actions, ACTIONS, gap, GAPS, fps)
    h, w = size_hw(size)
    rng = np.random.default_rng(rng)
    appearance = sample_appearance((h, w), rng, distractors=distractors)
    poses: list[_State | None] = []
    segments: list[Segment] = []
    shaky: list[int] = []
    state: _State | None = None

    def add_gap() -> None:
        nonlocal state
        n = draw_count(gap_frames, rng)
        if n == 0:
            return
        kind = kinds[int(rng.integers(len(kinds)))] if len(kinds) > 1 else kinds[0]
        if kind == "absent" or state is None:
            poses.extend([None] * n)
            state = None
        else:
            poses.extend([_State(state.x, state.y, state.scale, state.angle)] * n)
        if kind == "shake":
            shaky.append(list(range(len(poses) - n, len(poses))))

    for action in actions:
        add_gap()
        n = max(2, draw_count(frames_per_action, rng))
        track = _track(action, n, h, w, rng, state)
        start = len(poses)
        poses.extend(track)
        segments.append(
            Segment(
                start_frame=start,
                end_frame=start + n,
                label=action,
                score=1.0,
                start_s=start / fps,
                end_s=(start + n) / fps,
            )
        )
        state = track[-1]
    add_gap()
    dis = Distractors(appearance.distractors, h, w, rng)
    frames = _render(appearance, poses, dis, rng, noise_std)
    amplitude = 0.025 * min(h, w) if shake_px is None else shake_px
    for idx in shaky:
        _shake(frames, idx, amplitude, rng)
    return frames, segments


__all__ = [
    "ACTIONS",
    "BACKGROUNDS",
    "GAPS",
    "MIRRORED",
    "SHAPES",
    "TEXTURES",
    "Appearance",
    "Distractors",
    "make_action_sequence",
    "make_background",
    "make_sprite",
    "paste_sprite",
    "render_action",
    "sample_appearance",
]
