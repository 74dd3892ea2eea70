"""Camera motion over real photos: a virtual camera pans, tilts, zooms and rolls across an image.

Eight classes in four pairs; within a pair the motion is the same run the other way, so only
temporal order tells them apart (and a time-reversed clip is its partner, exactly). Each class is
named for what the camera does: ``pan_left`` turns the camera left, so the picture slides right;
``tilt_up`` moves the view up; ``zoom_in`` narrows the view (the picture grows); ``rotate_cw``
rolls the camera clockwise, so the picture turns counter-clockwise.

Idle stretches ("no action") are a still camera or a hand-held camera holding still (a smooth
jitter of a few pixels and a fraction of a degree, no drift); in both, distractor objects may
move across the picture (motion that is not camera motion). Between segments a video may cut
hard to another photo or viewpoint, as edited footage does.

Photos come from :func:`bundled_photos` (real photographs shipped inside scikit-image and
matplotlib, a dependency: no download) or from any folder of images
(:func:`load_photos`). :func:`~video_lstm.data.synthetic.write_untrimmed_dataset` with
``scene="camera"`` gives each subset its own photos, so test videos show photos training never
saw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from video_lstm.data.synthetic.common import check_sequence, draw_count, size_hw
from video_lstm.data.synthetic.objects import Distractors, make_sprite, paste_sprite
from video_lstm.types import Segment

CAMERA_ACTIONS: tuple[str, ...] = (
    "pan_left",
    "pan_right",
    "tilt_up",
    "tilt_down",
    "zoom_in",
    "zoom_out",
    "rotate_cw",
    "rotate_ccw",
)

# The partner of each action: the same motion played backwards.
CAMERA_REVERSED: dict[str, str] = {
    "pan_left": "pan_right",
    "pan_right": "pan_left",
    "tilt_up": "tilt_down",
    "tilt_down": "tilt_up",
    "zoom_in": "zoom_out",
    "zoom_out": "zoom_in",
    "rotate_cw": "rotate_ccw",
    "rotate_ccw": "rotate_cw",
}

CAMERA_GAPS: tuple[str, ...] = ("still", "handheld")

# Speeds per frame. Pans and tilts in fractions of the frame's width/height; zoom as the change
# of the view's size; roll in degrees. A whole-frame pan in 1-3 s at 25 fps.
_PAN = (0.01, 0.03)
_ZOOM = (0.008, 0.02)
_ROLL = (1.0, 3.0)
_RAMP = 3  # frames to reach full speed and to stop: cameras do not jump to speed
_VIEW = (0.3, 0.65)  # height of the view as a fraction of the photo's short side

# scikit-image's bundled photographs (name -> loader attribute) and matplotlib's Grace Hopper.
# Split by photo: the test photos are never trained on; val picks the segment rules.
_SKIMAGE = (
    "astronaut", "brick", "camera", "cell", "chelsea", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text",
    "motorcycle",
)  # fmt: skip
BUNDLED_SPLIT: dict[str, tuple[str, ...]] = {
    "val": ("chelsea", "coins", "grass"),
    "test": ("coffee", "rocket", "grace_hopper", "gravel"),
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (image * (255.0 if image.max() <= 1.0 else 1.0)).clip(0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


@lru_cache(maxsize=1)
def bundled_photos() -> dict[str, np.ndarray]:
    """The real photographs shipped inside scikit-image and matplotlib, RGB uint8, by name.

    Raises:
        ImportError: scikit-image (a dependency) is missing; or use a folder of your photos.
    """
    try:
        from skimage import data
    except ImportError as e:
        raise ImportError(
            "the bundled photos come with scikit-image: pip install scikit-image "
            "(or pass a folder of your own photos as images=...)"
        ) from e
    import matplotlib.cbook

    photos = {}
    for name in _SKIMAGE:
        image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
        photos[name] = _rgb(image)
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photos["grace_hopper"] = cv2.cvtColor(
            cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
        )
    return photos


def load_photos(folder: str | Path) -> dict[str, np.ndarray]:
    """Every image in ``folder`` (by file name, sorted), RGB uint8.

    Raises:
        FileNotFoundError: The folder does not exist or has no readable image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of photos")
    photos = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: not a readable image")
        photos[path.name] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if not photos:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return photos


def photo_pool(folder: str | Path | None = None) -> dict[str, np.ndarray]:
    """The photos to film, by name: :func:`bundled_photos` (``folder`` ``None``) or
    :func:`load_photos` of ``folder``, read once per process."""
    return bundled_photos() if folder is None else _cached_folder(str(Path(folder).resolve()))


@lru_cache(maxsize=2)
def _cached_folder(folder: str) -> dict[str, np.ndarray]:
    return load_photos(folder)


def split_photos(names: Sequence[str], subsets: Sequence[str]) -> dict[str, list[str]]:
    """Give each subset its own photos: the bundled split when the names are the bundled ones,
    else ``val`` and ``test`` take about 15% each (at least one photo), ``train`` the rest.

    A subset other than ``train``/``val``/``test`` shares the training photos.

    Raises:
        ValueError: Too few photos to give every evaluation subset one of its own.
    """
    names = sorted(names)
    held = [s for s in ("val", "test") if s in subsets]
    if set(names) == set(_SKIMAGE) | {"grace_hopper"}:
        split = {s: list(BUNDLED_SPLIT[s]) for s in held}
    else:
        k = max(1, round(0.15 * len(names)))
        if len(names) < k * len(held) + 1:
            raise ValueError(
                f"{len(names)} photos cannot give {', '.join(held)} photos of their own "
                "and leave some for training"
            )
        order = np.random.default_rng(0).permutation(names).tolist()
        split = {s: sorted(order[i * k : (i + 1) * k]) for i, s in enumerate(held)}
    taken = {n for v in split.values() for n in v}
    train = [n for n in names if n not in taken]
    return {s: split.get(s, train) for s in subsets}


@dataclass(frozen=True)
class _View:
    """The camera: centre (photo px), view height (photo px), roll (degrees, clockwise)."""

    x: float
    y: float
    height: float
    roll: float


def _corners(v: _View, aspect: float) -> np.ndarray:
    """The view's four corners in photo pixels, ``(4, 2)``."""
    hh, hw = v.height / 2, v.height * aspect / 2
    a = math.radians(v.roll)
    c, s = math.cos(a), math.sin(a)
    local = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
    return np.array([v.x, v.y]) + local @ np.array([[c, s], [-s, c]])


def _fits(views: Sequence[_View], shape: tuple[int, int], aspect: float) -> bool:
    h, w = shape
    pts = np.concatenate([_corners(v, aspect) for v in views])
    return bool((pts >= 0).all() and (pts[:, 0] <= w - 1).all() and (pts[:, 1] <= h - 1).all())


def _speed_profile(n: int) -> np.ndarray:
    """Cumulative progress (0 -> 1) over ``n`` frames at constant speed with short ramps."""
    k = np.arange(n, dtype=np.float64)
    speed = np.minimum(1.0, np.minimum(k + 1, n - k) / _RAMP)
    pos = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    return pos / max(pos[-1], 1e-9)


def _path(action: str, start: _View, n: int, out_hw: tuple[int, int], rng) -> list[_View]:
    """The camera's views over the ``n`` frames of ``action``, starting at ``start``."""
    h, w = out_hw
    p = _speed_profile(n)
    frames = n - 1 - _RAMP  # full-speed frames' worth of motion
    if action in ("pan_left", "pan_right", "tilt_up", "tilt_down"):
        horizontal = action.startswith("pan")
        sign = 1.0 if action in ("pan_right", "tilt_down") else -1.0
        # Output px per frame -> photo px: the view spans start.height photo px over h output px.
        step = rng.uniform(*_PAN) * (w if horizontal else h) * start.height / h
        travel = sign * step * frames
        a = math.radians(start.roll)
        axis = (
            np.array([math.cos(a), math.sin(a)])
            if horizontal
            else np.array([-math.sin(a), math.cos(a)])
        )
        return [replace(start, x=start.x + travel * t * axis[0], y=start.y + travel * t * axis[1])
                for t in p]  # fmt: skip
    if action in ("zoom_in", "zoom_out"):
        ratio = (1 + rng.uniform(*_ZOOM)) ** frames
        ratio = 1 / ratio if action == "zoom_in" else ratio
        return [replace(start, height=start.height * ratio**t) for t in p]
    if action in ("rotate_cw", "rotate_ccw"):
        turn = rng.uniform(*_ROLL) * frames * (1.0 if action == "rotate_cw" else -1.0)
        return [replace(start, roll=start.roll + turn * t) for t in p]
    raise ValueError(f"unknown camera action {action!r}; expected one of {CAMERA_ACTIONS}")


def _textured(photo: np.ndarray, v: _View, aspect: float) -> bool:
    """Whether the view shows enough structure for its motion to be visible (not sky, not the
    black of space)."""
    corners = _corners(v, aspect)
    (x0, y0), (x1, y1) = corners.min(0).astype(int), corners.max(0).astype(int)
    crop = cv2.cvtColor(photo[max(0, y0) : y1 + 1, max(0, x0) : x1 + 1], cv2.COLOR_RGB2GRAY)
    if crop.size < 16:
        return False
    small = cv2.resize(crop, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    return float(np.abs(np.diff(small, axis=1)).mean() + np.abs(np.diff(small, axis=0)).mean()) > 6


def _fresh_path(
    action: str, photo: np.ndarray, n: int, out_hw: tuple[int, int], rng
) -> list[_View] | None:
    """A path for ``action`` from a random viewpoint where it fits the photo and shows texture."""
    ph, pw = photo.shape[:2]
    aspect = out_hw[1] / out_hw[0]
    short = min(ph, pw / aspect)
    for attempt in range(60):
        # Narrower views after failed tries: a long pan needs room on a small photo.
        height = rng.uniform(*_VIEW) * short * 0.97**attempt
        if action == "zoom_out":
            height *= 0.6
        start = _View(
            x=rng.uniform(0, pw), y=rng.uniform(0, ph), height=height, roll=rng.normal(0, 4)
        )
        views = _path(action, start, n, out_hw, rng)
        if _usable(photo, views, aspect):
            return views
    return None


def _usable(photo: np.ndarray, views: Sequence[_View], aspect: float) -> bool:
    """The motion stays on the photo and shows texture at its start, middle and end: a pan onto
    a blank wall or into the black of space shows no motion (to any method), so it would teach a
    wrong label."""
    return _fits(views, photo.shape[:2], aspect) and all(
        _textured(photo, views[i], aspect) for i in (0, len(views) // 2, -1)
    )


def _handheld(n: int, amplitude: float, rng) -> np.ndarray:
    """``(n, 3)`` smooth zero-mean jitter (dx, dy in output px; roll in degrees): a person holding
    a camera still."""
    t = np.arange(n, dtype=np.float64)[:, None]
    freq = rng.uniform(0.04, 0.3, (1, 3))
    walk = np.stack(
        [
            np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (1, 3))).mean(1)
            for _ in range(3)
        ],
        axis=1,
    )
    walk /= max(float(np.abs(walk).max()), 1e-6)
    return walk * np.array([amplitude, amplitude, amplitude * 0.25])


def _render(photo: np.ndarray, v: _View, jitter, out_hw: tuple[int, int]) -> np.ndarray:
    h, w = out_hw
    s = v.height / h  # photo px per output px
    a = math.radians(v.roll + jitter[2])
    c, si = math.cos(a), math.sin(a)
    x, y = v.x + s * (c * jitter[0] - si * jitter[1]), v.y + s * (si * jitter[0] + c * jitter[1])
    mat = np.array(
        [
            [s * c, -s * si, x - s * c * w / 2 + s * si * h / 2],
            [s * si, s * c, y - s * si * w / 2 - s * c * h / 2],
        ]
    )
    return cv2.warpAffine(
        photo, mat, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT101,
    )  # fmt: skip


def _prepare(photo: np.ndarray, out_hw: tuple[int, int], rng) -> np.ndarray:
    """One video's copy of a photo, randomly mirrored, turned and re-lit; a large photo is first
    shrunk to what the narrowest view needs (2.5 photo pixels per output pixel)."""
    target = 2.5 * max(out_hw) / _VIEW[0]
    scale = min(1.0, target / min(photo.shape[:2]))
    if scale < 1.0:
        size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        photo = photo[:, ::-1]
    photo = np.rot90(photo, int(rng.integers(4)))
    gain, bias = rng.uniform(0.75, 1.2), rng.uniform(-20, 20)
    return np.ascontiguousarray((photo * gain + bias).clip(0, 255).astype(np.uint8))


def make_camera_sequence(
    actions: Sequence[str],
    photos: Sequence[np.ndarray],
    *,
    frames_per_action: int | tuple[int, int] = 48,
    gap_frames: int | tuple[int, int] = 0,
    gap: str | Sequence[str] = CAMERA_GAPS,
    size: int | tuple[int, int] = 112,
    fps: float = 25.0,
    rng: np.random.Generator | int | None = None,
    cut_prob: float = 0.3,
    distractors: int | tuple[int, int] = (0, 1),
    noise_std: float = 2.0,
    handheld_px: float | None = None,
    handheld_prob: float = 0.5,
) -> tuple[np.ndarray, list[Segment]]:
    """One untrimmed video of camera motions over photos, with idle stretches between them.

    The camera continues from where the previous motion left it when the next one fits the
    photo; otherwise (and with probability ``cut_prob`` anyway) the video cuts to a fresh
    viewpoint on one of ``photos``. Idle stretches (``gap_frames`` before, between and after the
    actions; 0: none) hold the camera still or hand-held (jitter of up to ``handheld_px``).

    Args:
        actions: Labels from :data:`CAMERA_ACTIONS`, in order.
        photos: RGB uint8 photos to film (each at least 64 px on its short side).
        frames_per_action: Length of each action, or an inclusive ``(low, high)`` range.
        gap_frames: Length of each idle stretch, or an inclusive range.
        gap: Idle kind(s) from :data:`CAMERA_GAPS`, drawn at random per stretch.
        size: Frame size, ``int`` or ``(height, width)``.
        fps: Frame rate (for the segments' seconds).
        rng: Generator or seed.
        cut_prob: Chance of a hard cut to a fresh viewpoint before each action.
        distractors: Objects moving across the picture (number or inclusive range).
        noise_std: Per-frame sensor noise.
        handheld_px: Largest hand-held jitter in output pixels (default 2.5% of the short side).
        handheld_prob: Chance that the whole video is hand-held: its actions and still
            stretches jitter too, at 30% of ``handheld_px``.

    Returns:
        ``(frames, segments)``: uint8 ``(T, H, W, 3)`` and one :class:`Segment` per action.
    """
    kinds = check_sequence(actions, CAMERA_ACTIONS, gap, CAMERA_GAPS, fps, noun="camera action")
    if not photos or any(min(p.shape[:2]) < 64 for p in photos):
        raise ValueError("photos must be a non-empty list of images at least 64 px on a side")
    h, w = size_hw(size)
    rng = np.random.default_rng(rng)
    amplitude = 0.025 * min(h, w) if handheld_px is None else handheld_px
    aspect = w / h

    shots: list[tuple[np.ndarray, list[_View], np.ndarray]] = []  # (photo, views, jitter)
    segments: list[Segment] = []
    handheld = rng.random() < handheld_prob  # the whole video hand-held (actions jitter a little)

    def new_photo() -> np.ndarray:
        return _prepare(photos[int(rng.integers(len(photos)))], (h, w), rng)

    def jitter(n: int, scale: float) -> np.ndarray:
        return _handheld(n, amplitude * scale, rng) if scale > 0 else np.zeros((n, 3))

    def add_gap(photo: np.ndarray, view: _View) -> None:
        n = draw_count(gap_frames, rng)
        if n:
            shake = 1.0 if kinds[int(rng.integers(len(kinds)))] == "handheld" else 0.0
            shots.append((photo, [view] * n, jitter(n, shake or (0.3 if handheld else 0.0))))

    photo, view, num = new_photo(), None, 0
    for action in actions:
        n = max(2 * _RAMP + 2, draw_count(frames_per_action, rng))
        views = None
        if view is not None and rng.random() >= cut_prob:
            views = _path(action, view, n, (h, w), rng)
            views = views if _usable(photo, views, aspect) else None
        if views is None:  # a cut to a fresh viewpoint (on another photo after the first shot)
            for attempt in range(10):
                photo = new_photo() if view is not None or attempt else photo
                views = _fresh_path(action, photo, n, (h, w), rng)
                if views is not None:
                    break
            else:
                raise ValueError(f"no viewpoint on the photos fits a {action} of {n} frames")
        add_gap(photo, views[0])
        num = sum(len(s[1]) for s in shots)
        shots.append((photo, views, jitter(n, 0.3 if handheld else 0.0)))
        segments.append(
            Segment(
                start_frame=num, end_frame=num + n, label=action, score=1.0,
                start_s=num / fps, end_s=(num + n) / fps,
            )
        )  # fmt: skip
        view = views[-1]
    if view is not None:
        add_gap(photo, view)

    total = sum(len(s[1]) for s in shots)
    sprites = [make_sprite(rng, side=64) for _ in range(draw_count(distractors, rng))]
    movers = Distractors(sprites, h, w, rng)
    out = np.empty((total, h, w, 3), np.uint8)
    k = 0
    for photo_k, views, jit in shots:
        for v, j in zip(views, jit, strict=True):
            frame = _render(photo_k, v, j, (h, w)).astype(np.float32)
            for sprite, state in zip(movers.sprites, movers.step(), strict=True):
                paste_sprite(frame, sprite, state)
            if noise_std > 0:
                frame += rng.standard_normal(frame.shape, dtype=np.float32) * noise_std
            out[k] = frame.clip(0, 255).round()
            k += 1
    return out, segments


__all__ = [
    "BUNDLED_SPLIT",
    "CAMERA_ACTIONS",
    "CAMERA_GAPS",
    "CAMERA_REVERSED",
    "bundled_photos",
    "load_photos",
    "make_camera_sequence",
    "photo_pool",
    "split_photos",
]
