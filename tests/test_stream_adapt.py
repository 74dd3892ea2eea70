"""``adapt-stream``'s truncated BPTT (state carried across chunks) and its look-ahead delay,
applied the same way in training and in ``watch --state carry`` (``OnlineScorer``).

The data is real: a tiny untrimmed dataset written as videos, decoded, its per-step features
computed by the checkpoint's backbone (``stream_adapt._step_features``, the trainer's cache).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(checkpoint path, model, meta, [(features, labels)] of 2 training videos, test video)."""
    from video_lstm.data.datasets import DatasetSpec
    from video_lstm.data.synthetic import write_untrimmed_dataset
    from video_lstm.inference.predictor import Predictor
    from video_lstm.models import create_model
    from video_lstm.models.checkpoint import ModelMeta, save_checkpoint
    from video_lstm.threads import apply_threads
    from video_lstm.training.stream_adapt import _step_features

    apply_threads(1)
    tmp = tmp_path_factory.mktemp("adapt")
    root = write_untrimmed_dataset(tmp / "u", videos={"train": 2, "test": 1}, scene="objects",
                                   classes=["grow", "shrink"], actions_per_video=2,
                                   frames_per_action=(12, 14), gap_frames=(6, 8), size=48,
                                   workers=1)  # fmt: skip
    torch.manual_seed(0)
    model = create_model("lstm_efficientnet_lite0", num_classes=3, frame_size=48)
    meta = ModelMeta.for_model(model, ["background", "grow", "shrink"], clip_len=4,
                               frame_interval=2, segment_rules={"background": "background"})  # fmt: skip
    ck = save_checkpoint(tmp / "m.pt", model, meta)
    manifest = DatasetSpec(kind="segments_csv", root=str(root),
                           options={"annotations": "annotations.csv"}).manifest("train")  # fmt: skip
    predictor = Predictor(model, meta, device="cpu")
    data = [_step_features(model, predictor, v, meta, list(meta.class_names))
            for v in manifest.videos]  # fmt: skip
    test_video = next((root / "videos" / "test").glob("*.mp4"))
    return str(ck), root, model.eval(), meta, data, test_video


class _Recording(torch.nn.Module):
    """The real classifier, recording the state each step starts from."""

    def __init__(self, model):
        super().__init__()
        self.model, self.states = model, []
        self.backbone = model.backbone

    def init_state(self, batch, like):
        return self.model.init_state(batch, like)

    def step_features(self, x, state):
        self.states.append(tuple(s.detach().clone() for s in state))
        out, new = self.model.step_features(x, state)
        self.states[-1] = (self.states[-1], tuple(s.detach().clone() for s in new))
        return out, new


@pytest.mark.parametrize("reset_prob", [0.0, 1.0])
def test_tbptt_carries_the_state_across_chunks(tiny, reset_prob) -> None:
    """Each chunk starts from the state the previous chunk of the same stream ended in
    (detached), or from a zero state when the stream restarts; the streams play the videos
    one after the other with the targets ``delay_steps`` behind."""
    import copy

    from video_lstm.training.stream_adapt import _fit_tbptt, _Stream

    _, _, model, _, data, _ = tiny
    rec = _Recording(copy.deepcopy(model))
    chunk = 3
    _fit_tbptt(rec, data, epochs=1, batch_size=2, lr=0.0, rng=np.random.default_rng(0),
               tbptt_steps=chunk, reset_prob=reset_prob, delay_steps=1, progress=False,
               t0=0.0)  # fmt: skip
    n_chunks = len(rec.states) // chunk
    assert n_chunks >= 2
    for c in range(1, n_chunks):
        start, _ = rec.states[c * chunk]
        _, end_before = rec.states[c * chunk - 1]
        for s, e in zip(start, end_before, strict=True):
            if reset_prob == 0.0:
                torch.testing.assert_close(s, e)  # carried
            else:
                assert torch.count_nonzero(s) == 0 and torch.count_nonzero(e) > 0  # restarted

    # A stream: the videos end to end, targets one step behind (none before its start).
    stream = _Stream(data, np.random.default_rng(1), delay=1)
    feats, labels = zip(*(stream.take(5) for _ in range(6)), strict=True)
    feats, labels = torch.cat(feats), torch.cat(labels)
    first = data[int(np.random.default_rng(1).integers(len(data)))]
    n = min(len(first[0]), 30)
    torch.testing.assert_close(feats[:n], first[0][:n])
    assert labels[0] == -100 and torch.equal(labels[1:n], first[1][: n - 1].long())


def test_delay_is_applied_the_same_in_training_and_in_watch(tiny, tmp_path) -> None:
    """A checkpoint adapted with ``delay_steps`` D records it; ``OnlineScorer`` (``watch
    --state carry``) then gives step t the output of step t + D, the tail the last output,
    and every step exactly once."""
    from video_lstm.inference.online import OnlineScorer, carry_delay
    from video_lstm.inference.predictor import Predictor
    from video_lstm.models.checkpoint import load_checkpoint
    from video_lstm.training.stream_adapt import _delayed, adapt_for_streaming

    ck, root, model, _, data, _ = tiny
    y = torch.tensor([[1, 2, 0, 1, 2]])
    assert _delayed(y, 2).tolist() == [[-100, -100, 1, 2, 0]]
    out = adapt_for_streaming(ck, str(tmp_path / "a.pt"), root=str(root),
                              manifest_args={"annotations": "annotations.csv"}, epochs=1,
                              batch_size=2, tbptt_steps=4, reset_prob=0.1, delay_steps=2,
                              threads=1, progress=False)  # fmt: skip
    adapted, ameta = load_checkpoint(out)
    assert ameta.extra["stream_adapted"]["tbptt_steps"] == 4 and carry_delay(ameta) == 2
    before, after = model.state_dict(), adapted.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("head."))

    adapted.eval()
    feats = data[0][0][:9]
    scorer = OnlineScorer(Predictor(adapted, ameta, device="cpu"), mode="carry")
    got = [p for f in feats for p in scorer.push(f)] + scorer.finish()
    assert [j for j, _ in got] == list(range(len(feats)))
    with torch.inference_mode():
        state, outs = adapted.init_state(1, feats[:1]), []
        for f in feats:
            logits, state = adapted.step_features(f[None], state)
            outs.append(logits.softmax(-1)[0].numpy())
    for j, probs in got:
        np.testing.assert_allclose(probs, outs[min(j + 2, len(feats) - 1)], atol=1e-5)
    assert scorer.temporal_steps == len(feats)
