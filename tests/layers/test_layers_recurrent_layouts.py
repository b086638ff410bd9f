"""The LSTM's loop (feature-major steps, gates reordered with the sigmoid rows halved, one
tanh pass) gives the textbook equations' numbers and matches torch at the benchmark's sizes;
batch-first layers read their output gradient through a view and leave it unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.layers.recurrent import GRU, LSTM, RNN


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _textbook_lstm(layer, x):
    """Per-step float64 LSTM straight from torch's documented equations, every layer and direction."""
    p = {k: v for k, v in layer.state_dict().items()}
    H, D = layer.hidden_size, layer.num_directions
    out, finals_h, finals_c = x, [], []
    for k in range(layer.num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            w_ih, w_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
            b = p["bias_ih" + sfx] + p["bias_hh" + sfx] if layer.bias else 0.0
            w_hr = p.get("weight_hr" + sfx)
            h = np.zeros((x.shape[1], w_hh.shape[1]))
            c = np.zeros((x.shape[1], H))
            hs = [None] * len(x)
            for t in (range(len(x) - 1, -1, -1) if d else range(len(x))):
                a = out[t] @ w_ih.T + h @ w_hh.T + b
                i, f, g, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
                c = f * c + i * g
                h = o * np.tanh(c)
                if w_hr is not None:
                    h = h @ w_hr.T
                hs[t] = h
            outs.append(np.stack(hs))
            finals_h.append(h)
            finals_c.append(c)
        out = np.concatenate(outs, axis=2)
    return out, np.stack(finals_h), np.stack(finals_c)


@pytest.mark.parametrize("batch", [2, 16])  # 16: one GEMM per step over [x; 1; h]; 2: the input GEMM first
@pytest.mark.parametrize("kw", [{}, {"bidirectional": True, "num_layers": 2}, {"proj_size": 2}, {"bias": False},
                                {"batch_first": True, "num_layers": 2}])
def test_lstm_equals_the_textbook_equations(kw, batch):
    rng = np.random.default_rng(0)
    layer = LSTM(3, 4, dtype="float64", **kw)
    layer.load_state_dict({k: rng.standard_normal(v.shape) for k, v in layer.state_dict().items()})
    x = rng.standard_normal((5, batch, 3))
    y, (h_n, c_n) = layer(x.transpose(1, 0, 2) if layer.batch_first else x)
    y = y.transpose(1, 0, 2) if layer.batch_first else y
    want_y, want_h, want_c = _textbook_lstm(layer, x)
    np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c_n, want_c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("bidirectional", "B"), [(False, 4), (True, 4), (False, 16), (True, 32)])
def test_lstm_matches_torch_at_the_benchmark_hidden_size(bidirectional, B):
    T, F, H = 3, 16, 256
    torch.manual_seed(0)
    ref = torch.nn.LSTM(F, H, bidirectional=bidirectional)
    ours = LSTM(F, H, bidirectional=bidirectional)
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((T, B, F)).astype(np.float32)
    y, (h_n, c_n) = ours(x)
    xt = torch.tensor(x, requires_grad=True)
    yt, (ht, ct) = ref(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(c_n, ct.detach().numpy(), rtol=1e-4, atol=1e-5)
    dy = np.ones_like(y)
    dx = ours.backward(dy)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    grads = {name: p.grad for name, p in ours.named_parameters()}
    assert sorted(grads) == sorted(name for name, _ in ref.named_parameters())
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_batch_first_backward_leaves_its_gradients_unchanged_and_output_contiguous(kind):
    cls = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[kind]
    rng = np.random.default_rng(1)
    layer = cls(3, 4, num_layers=2, batch_first=True, dtype="float64")
    x = rng.standard_normal((2, 5, 3))
    y, finals = layer(x)
    if kind == "lstm":
        assert y.flags.c_contiguous  # the cell laid its output out batch-major
    dout = rng.standard_normal(y.shape)
    dfinal = tuple(rng.standard_normal(f.shape) for f in finals) if kind == "lstm" else rng.standard_normal(finals.shape)
    kept = (dout.copy(), [d.copy() for d in dfinal] if kind == "lstm" else dfinal.copy())
    dx = layer.backward(dout, dfinal)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dout, kept[0])
    for a, b in zip(dfinal if kind == "lstm" else [dfinal], kept[1] if kind == "lstm" else [kept[1]]):
        np.testing.assert_array_equal(a, b)
