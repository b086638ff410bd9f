"""Generation: KV-cached decoding equals recomputation; sampling filters; seq2seq greedy decoding."""

from __future__ import annotations

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import ConfigError, ShapeError, manual_seed, no_grad
from plait.zoo.generation import generate, greedy_decode
from plait.zoo.sampling import filter_logits, sample_next


def _tiny_gpt(**kw):
    manual_seed(0)
    args = dict(vocab_size=13, context_length=24, d_model=16, num_layers=2, num_heads=4, num_kv_heads=2, ffn_dim=32)
    return zoo.create("gpt", **{**args, **kw})


@pytest.mark.parametrize(
    "make",
    [
        _tiny_gpt,
        lambda: _tiny_gpt(positional="learned", num_kv_heads=None),
        lambda: zoo.create("rnn_lm", vocab_size=13, embed_dim=8, hidden_size=12, num_layers=2, cell="lstm"),
        lambda: zoo.create("rnn_lm", vocab_size=13, embed_dim=8, hidden_size=12, cell="gru"),
    ],
    ids=["gpt-rope-gqa", "gpt-learned", "lstm", "gru"],
)
def test_cached_decoding_gives_the_logits_of_the_full_sequence(make):
    model = make().eval()
    ids = np.random.default_rng(0).integers(0, 13, (3, 11))
    with no_grad():
        full = model(ids)
        cache = model.new_cache(3)
        pieces = [model(ids[:, :4], cache=cache)] + [model(ids[:, t : t + 1], cache=cache) for t in range(4, 11)]
    assert cache.length == 11
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"top_k": 4}, {"top_p": 0.8, "temperature": 0.7}, {"temperature": 0}])
def test_generate_with_and_without_cache_agree(kwargs):
    model = _tiny_gpt().astype(np.float64)
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    a = generate(model, prompt, 12, seed=3, use_cache=True, **kwargs)
    b = generate(model, prompt, 12, seed=3, use_cache=False, **kwargs)
    assert a.shape == (2, 15)
    np.testing.assert_array_equal(a[:, :3], prompt)
    np.testing.assert_array_equal(a, b)


def test_greedy_is_the_argmax_and_restores_training_mode():
    model = _tiny_gpt()
    model.train()
    out = generate(model, np.array([1, 2]), 5, temperature=0)
    assert out.shape == (7,) and out.dtype == np.int64
    assert model.training
    with no_grad():
        model.eval()
        seq = np.array([[1, 2]])
        for _ in range(5):
            seq = np.concatenate([seq, model(seq)[:, -1].argmax(-1)[:, None]], axis=1)
    np.testing.assert_array_equal(out, seq[0])
    np.testing.assert_array_equal(generate(model, np.array([1, 2]), 5, top_k=1, seed=0), out)


def test_generation_past_the_context_crops_the_window():
    model = _tiny_gpt(context_length=8, positional="learned")
    out = generate(model, np.array([[1, 2, 3]]), 20, seed=0)
    assert out.shape == (1, 23)
    np.testing.assert_array_equal(out, generate(model, np.array([[1, 2, 3]]), 20, seed=0, use_cache=False))
    with pytest.raises(ShapeError, match="exceed context_length 8"):
        model(np.zeros((1, 9), dtype=np.int64))


def test_eos_stops_rows_and_pads_them():
    model = _tiny_gpt()
    with no_grad():
        first = int(model.eval()(np.array([[1, 2]]))[0, -1].argmax())
    out = generate(model, np.array([[1, 2], [1, 2]]), 10, temperature=0, eos_id=first)
    assert out.shape == (2, 3)  # every row ended at once
    np.testing.assert_array_equal(out[:, 2], [first, first])


def test_seeded_sampling_is_reproducible_and_seeds_differ():
    model = _tiny_gpt()
    a = generate(model, np.array([1]), 30, seed=1)
    np.testing.assert_array_equal(a, generate(model, np.array([1]), 30, seed=1))
    assert not np.array_equal(a, generate(model, np.array([1]), 30, seed=2))


def test_filter_logits_top_k_and_top_p():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]]))
    kept = np.isfinite(filter_logits(logits, top_k=2))
    np.testing.assert_array_equal(kept, [[1, 1, 0, 0], [0, 0, 1, 1]])
    kept = np.isfinite(filter_logits(logits, top_p=0.75))  # 0.5 + 0.3 reaches 0.75
    np.testing.assert_array_equal(kept, [[1, 1, 0, 0], [0, 0, 1, 1]])
    kept = np.isfinite(filter_logits(logits, top_p=0.4))  # the top token alone
    np.testing.assert_array_equal(kept, [[1, 0, 0, 0], [0, 0, 0, 1]])


def test_sampling_follows_the_distribution():
    probs = np.array([0.6, 0.3, 0.1, 0.0])
    logits = np.tile(np.log(probs + 1e-300), (20000, 1))
    picks = sample_next(logits, np.random.default_rng(0))
    freq = np.bincount(picks, minlength=4) / picks.size
    np.testing.assert_allclose(freq, probs, atol=0.015)
    assert freq[3] == 0
    hot = sample_next(logits, np.random.default_rng(0), temperature=0.25)
    assert (hot == 0).mean() > 0.9


def test_bad_generation_arguments_fail_clearly():
    model = _tiny_gpt()
    with pytest.raises(ConfigError, match="temperature must be >= 0"):
        generate(model, np.array([1]), 2, temperature=-1)
    with pytest.raises(ConfigError, match="top_p must lie in"):
        generate(model, np.array([1]), 2, top_p=1.5)
    with pytest.raises(ConfigError, match="top_k must be >= 1"):
        generate(model, np.array([1]), 2, top_k=0)
    with pytest.raises(ShapeError, match=r"gpt: token ids values must lie in \[0, 13\)"):
        generate(model, np.array([99]), 2)


def test_greedy_decode_for_the_encoder_decoder():
    manual_seed(0)
    model = zoo.create("transformer", src_vocab_size=11, d_model=16, num_heads=2, num_encoder_layers=1,
                       num_decoder_layers=1, ffn_dim=32, max_len=16)
    src = np.array([[3, 4, 5, 0], [6, 7, 0, 0]])
    out = greedy_decode(model, src, max_len=6, bos_id=1)
    assert out.shape == (2, 7) and (out[:, 0] == 1).all()
    with no_grad():  # step by step equals the model's own argmax on the decoded prefix
        logits = model.eval()(src, out[:, :-1])
    np.testing.assert_array_equal(logits.argmax(-1), out[:, 1:])
    eos = int(out[0, 1])
    stopped = greedy_decode(model, src[:1], max_len=6, bos_id=1, eos_id=eos)
    np.testing.assert_array_equal(stopped, [[1, eos]])


@pytest.mark.parametrize("positional", ["rope", "learned", "sinusoidal"])
def test_cached_seq2seq_decoding_equals_the_full_decoder(positional):
    manual_seed(0)
    model = zoo.create("transformer", src_vocab_size=11, d_model=16, num_heads=4, num_kv_heads=2,
                       num_encoder_layers=1, num_decoder_layers=2, ffn_dim=32, max_len=16,
                       positional=positional).eval()
    src = np.array([[3, 4, 5, 0], [6, 7, 8, 9]])
    tgt = np.random.default_rng(0).integers(1, 11, (2, 7))
    with no_grad():
        memory, mask = model.encode(src)
        full = model.decode(tgt, memory, mask)
        cache = model.new_cache(2)
        steps = [model.decode(tgt[:, :2], memory, mask, cache=cache)]
        steps += [model.decode(tgt[:, t : t + 1], memory, mask, cache=cache) for t in range(2, 7)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(greedy_decode(model, src, 9, bos_id=1),
                                  greedy_decode(model, src, 9, bos_id=1, use_cache=False))
