"""Transforms: shapes, one random draw per clip, exact centring and normalisation."""

import numpy as np
import pytest
import torch

from video_lstm.data.transforms import (
    center_crop,
    eval_transform,
    normalize,
    resize_short_side,
    to_float_clip,
    train_transform,
)

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def _clip(t=4, h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_to_float_and_normalize_match_manual_computation():
    clip = _clip()
    x = to_float_clip(clip)
    assert x.shape == (4, 3, 48, 64) and x.dtype == torch.float32
    manual = (clip.astype(np.float32) / 255.0 - np.array(MEAN)) / np.array(STD)
    got = normalize(x, MEAN, STD).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, manual, rtol=1e-5, atol=1e-5)


def test_resize_short_side_keeps_aspect():
    x = to_float_clip(_clip(h=48, w=64))
    assert resize_short_side(x, 24).shape == (4, 3, 24, 32)
    assert resize_short_side(x, 48) is x or resize_short_side(x, 48).shape == x.shape


def test_eval_transform_is_centred():
    clip = np.zeros((2, 60, 100, 3), np.uint8)
    clip[:, 20:40, 40:60] = 255  # a 20x20 white square in the centre
    out = eval_transform(size=60, mean=(0, 0, 0), std=(1, 1, 1))(clip)
    assert out.shape == (2, 3, 60, 60)
    mask = out[0, 0] > 0.5
    rows, cols = torch.nonzero(mask, as_tuple=True)
    assert (rows.min().item(), rows.max().item()) == (20, 39)
    assert (cols.min().item(), cols.max().item()) == (20, 39)


def test_train_transform_same_crop_for_every_frame_and_seeded():
    frame = _clip(t=1)[0]
    clip = np.stack([frame] * 5)
    tf = train_transform(size=32, mean=MEAN, std=STD, jitter=0.3, seed=0)
    out = tf(clip)
    assert out.shape == (5, 3, 32, 32)
    for t in range(1, 5):
        torch.testing.assert_close(out[t], out[0])
    a = train_transform(size=32, mean=MEAN, std=STD, seed=7)(clip)
    b = train_transform(size=32, mean=MEAN, std=STD, seed=7)(clip)
    torch.testing.assert_close(a, b)
    c = tf(clip, np.random.default_rng(1))
    d = tf(clip, np.random.default_rng(1))
    torch.testing.assert_close(c, d)
    assert not torch.equal(tf(clip), tf(clip))  # a new draw each call


def test_hflip_probability_one_mirrors():
    clip = np.zeros((1, 32, 32, 3), np.uint8)
    clip[:, :, :8] = 255  # bright left edge
    tf = train_transform(
        size=32, mean=(0, 0, 0), std=(1, 1, 1), scale=(1.0, 1.0), jitter=0.0, hflip_prob=1.0, seed=0
    )
    out = tf(clip)
    assert out[0, 0, :, -4:].mean() > 0.9 and out[0, 0, :, :4].mean() < 0.1


def test_batched_equals_per_clip():
    clips = np.stack([_clip(seed=s) for s in range(3)])  # (B, T, H, W, C)
    tf = eval_transform(size=40, mean=MEAN, std=STD)
    batched = tf(clips)
    assert batched.shape == (3, 4, 3, 40, 40)
    for b in range(3):
        torch.testing.assert_close(batched[b], tf(clips[b]))


def test_bad_shapes_are_clear():
    with pytest.raises(ValueError, match="H, W, 3"):
        to_float_clip(np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="resize first"):
        center_crop(torch.zeros(1, 3, 8, 8), 16)
    with pytest.raises(ValueError, match="hflip_prob"):
        train_transform(size=8, mean=MEAN, std=STD, hflip_prob=2.0)
