"""Transforms: shapes, one random draw per clip, exact centring and normalisation, batch = per clip."""

import pickle

import numpy as np
import pytest
import torch

from video_lstm.data.transforms import (
    center_crop,
    color_jitter,
    eval_transform,
    hflip,
    normalize,
    random_resized_crop,
    resize_short_side,
    to_float,
    to_tensor_clip,
    train_transform,
)

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def _clip(t=4, h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def _smooth_clip(t=4, h=96, w=128):
    """Gradients plus a moving square: content where resize rounding matters little."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(t):
        f = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (h + w)], -1)
        f[20 + i : 40 + i, 30:50] = 255
        frames.append(f)
    return np.stack(frames).astype(np.uint8)


def test_to_tensor_clip_is_a_channels_first_view():
    clip = torch.from_numpy(_clip())
    x = to_tensor_clip(clip)
    assert x.shape == (4, 3, 48, 64) and x.dtype == torch.uint8
    assert x.data_ptr() == clip.data_ptr()  # no copy
    torch.testing.assert_close(x[1, 2], clip[1, :, :, 2])
    y = to_float(x)
    assert y.dtype == torch.float32 and y.max() <= 1.0
    torch.testing.assert_close(y * 255, x.float())


def test_to_float_and_normalize_match_manual_computation():
    clip = _clip()
    x = to_float(to_tensor_clip(clip))
    manual = (clip.astype(np.float32) / 255.0 - np.array(MEAN)) / np.array(STD)
    got = normalize(x, MEAN, STD).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, manual, rtol=1e-5, atol=1e-5)


def test_resize_short_side_keeps_aspect_and_dtype():
    x = to_tensor_clip(_clip(h=48, w=64))
    small = resize_short_side(x, 24)
    assert small.shape == (4, 3, 24, 32) and small.dtype == torch.uint8
    assert resize_short_side(x, 48) is x
    tall = to_tensor_clip(_clip(h=80, w=40))
    assert resize_short_side(tall, 20).shape == (4, 3, 40, 20)


def test_uint8_resize_matches_float_resize():
    # The presets resize uint8 (fast on CPU); the float path is the reference.
    x = to_tensor_clip(_smooth_clip())
    via_uint8 = to_float(resize_short_side(x, 37))
    via_float = resize_short_side(to_float(x), 37)
    assert via_uint8.shape == via_float.shape == (4, 3, 37, 49)
    assert (via_uint8 - via_float).abs().max().item() <= 1.0 / 255 + 1e-6


def test_ops_on_a_batch_equal_ops_per_clip():
    batch = torch.stack([to_tensor_clip(_clip(seed=s)) for s in range(3)])  # (B, T, C, H, W)
    assert batch.shape == (3, 4, 3, 48, 64)
    ops = [
        lambda x: resize_short_side(x, 30),
        lambda x: center_crop(x, 40),
        lambda x: random_resized_crop(x, 24, rng=np.random.default_rng(2)),
        hflip,
        lambda x: color_jitter(
            to_float(x), brightness=0.3, contrast=0.3, saturation=0.3, rng=np.random.default_rng(4)
        ),
        lambda x: normalize(to_float(x), MEAN, STD),
    ]
    for op in ops:
        batched = op(batch)
        for b in range(3):
            torch.testing.assert_close(batched[b], op(batch[b]))


def test_eval_transform_is_centred():
    clip = np.zeros((2, 60, 100, 3), np.uint8)
    clip[:, 20:40, 40:60] = 255  # a 20x20 white square in the centre
    out = eval_transform(size=60, mean=(0, 0, 0), std=(1, 1, 1))(clip)
    assert out.shape == (2, 3, 60, 60) and out.dtype == torch.float32
    rows, cols = torch.nonzero(out[0, 0] > 0.5, as_tuple=True)
    assert (rows.min().item(), rows.max().item()) == (20, 39)
    assert (cols.min().item(), cols.max().item()) == (20, 39)


def test_eval_transform_resize_then_crop_is_centred():
    # 120x200 -> short side 60 (60x100) -> centre crop 40: the marker lands in the middle.
    clip = np.zeros((1, 120, 200, 3), np.uint8)
    clip[:, 40:80, 80:120] = 255
    out = eval_transform(size=40, mean=(0, 0, 0), std=(1, 1, 1), resize=60)(clip)
    assert out.shape == (1, 3, 40, 40)
    rows, cols = torch.nonzero(out[0, 1] > 0.5, as_tuple=True)
    assert (rows.min().item(), rows.max().item()) == (10, 29)
    assert (cols.min().item(), cols.max().item()) == (10, 29)


def test_train_transform_same_crop_for_every_frame_and_seeded():
    frame = _clip(t=1)[0]
    clip = np.stack([frame] * 5)
    tf = train_transform(size=32, mean=MEAN, std=STD, jitter=0.3, seed=0)
    out = tf(clip)
    assert out.shape == (5, 3, 32, 32) and out.dtype == torch.float32
    for t in range(1, 5):
        torch.testing.assert_close(out[t], out[0])
    a = train_transform(size=32, mean=MEAN, std=STD, seed=7)(clip)
    b = train_transform(size=32, mean=MEAN, std=STD, seed=7)(clip)
    torch.testing.assert_close(a, b)
    c = tf(clip, np.random.default_rng(1))
    d = tf(clip, np.random.default_rng(1))
    torch.testing.assert_close(c, d)
    assert not torch.equal(tf(clip), tf(clip))  # a new draw each call


def test_random_resized_crop_full_scale_square_is_a_plain_resize():
    x = to_tensor_clip(_smooth_clip(h=64, w=64))
    got = random_resized_crop(
        x, 32, scale=(1.0, 1.0), ratio=(1.0, 1.0), rng=np.random.default_rng()
    )
    torch.testing.assert_close(got, resize_short_side(x, 32))


def test_hflip_probability_one_mirrors():
    clip = np.zeros((1, 32, 32, 3), np.uint8)
    clip[:, :, :8] = 255  # bright left edge
    tf = train_transform(
        size=32, mean=(0, 0, 0), std=(1, 1, 1), scale=(1.0, 1.0), jitter=0.0, hflip_prob=1.0, seed=0
    )
    out = tf(clip)
    assert out[0, 0, :, -4:].mean() > 0.9 and out[0, 0, :, :4].mean() < 0.1


def test_batched_presets_equal_per_clip():
    clips = np.stack([_clip(seed=s) for s in range(3)])  # (B, T, H, W, C)
    tf = eval_transform(size=40, mean=MEAN, std=STD)
    batched = tf(clips)
    assert batched.shape == (3, 4, 3, 40, 40)
    for b in range(3):
        torch.testing.assert_close(batched[b], tf(clips[b]))
    tr = train_transform(size=24, mean=MEAN, std=STD, jitter=0.2)
    batched = tr(clips, np.random.default_rng(9))
    for b in range(3):  # one draw per call: the same augmentation for each clip of the batch
        torch.testing.assert_close(batched[b], tr(clips[b], np.random.default_rng(9)))


def test_presets_pickle_for_dataloader_workers():
    tf = train_transform(size=24, mean=MEAN, std=STD, seed=3)
    clone = pickle.loads(pickle.dumps(tf))
    torch.testing.assert_close(clone(_clip()), tf(_clip()))
    ev = pickle.loads(pickle.dumps(eval_transform(size=24, mean=MEAN, std=STD)))
    assert ev(_clip()).shape == (4, 3, 24, 24)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_batch_equals_cpu():
    clips = torch.from_numpy(np.stack([_smooth_clip() for _ in range(2)]))
    for tf in (
        eval_transform(size=48, mean=MEAN, std=STD, resize=56),
        train_transform(size=48, mean=MEAN, std=STD, jitter=0.2),
    ):
        cpu = tf(clips, np.random.default_rng(0))
        gpu = tf(clips.cuda(), np.random.default_rng(0))
        assert gpu.is_cuda
        # uint8 resizes in a uint8 kernel on CPU and in float on CUDA: within one level.
        torch.testing.assert_close(gpu.cpu(), cpu, atol=2 / 255 / min(STD), rtol=0)


def test_bad_inputs_are_clear():
    with pytest.raises(ValueError, match="H, W, 3"):
        to_tensor_clip(np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="resize first"):
        center_crop(torch.zeros(1, 3, 8, 8), 16)
    with pytest.raises(ValueError, match="hflip_prob"):
        train_transform(size=8, mean=MEAN, std=STD, hflip_prob=2.0)
    with pytest.raises(ValueError, match="jitter"):
        train_transform(size=8, mean=MEAN, std=STD, jitter=1.5)
    with pytest.raises(ValueError, match="std"):
        eval_transform(size=8, mean=MEAN, std=(0.2, 0.0, 0.3))
    with pytest.raises(ValueError, match="resize"):
        eval_transform(size=32, mean=MEAN, std=STD, resize=16)
