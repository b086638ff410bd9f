"""The LSTM loop's two layouts of its recurrent GEMM (h W_hh^T, or (W_hh h^T)^T for small
batches) give the same numbers, and the fast one matches torch at a size that selects it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.layers import _recurrent_maths
from plait.layers.recurrent import LSTM


def _run(monkeypatch, transposed, **kw):
    monkeypatch.setattr(_recurrent_maths, "transposed_recurrence", lambda batch, gates: transposed)
    rng = np.random.default_rng(0)
    layer = LSTM(3, 4, dtype="float64", **kw)
    layer.load_state_dict({k: rng.standard_normal(v.shape) for k, v in layer.state_dict().items()})
    x = rng.standard_normal((5, 2, 3))
    y, (h_n, c_n) = layer(x)
    dx = layer.backward(rng.standard_normal(y.shape), (rng.standard_normal(h_n.shape), rng.standard_normal(c_n.shape)))
    grads = {name: p.grad.copy() for name, p in layer.named_parameters()}
    return y, h_n, c_n, dx, grads


@pytest.mark.parametrize("kw", [{}, {"bidirectional": True, "num_layers": 2}, {"proj_size": 2}])
def test_both_layouts_agree(monkeypatch, kw):
    plain, fast = _run(monkeypatch, False, **kw), _run(monkeypatch, True, **kw)
    for a, b in zip(plain[:3], fast[:3]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast[3], plain[3], rtol=1e-12, atol=1e-12)
    assert plain[4].keys() == fast[4].keys()
    for name in plain[4]:
        np.testing.assert_allclose(fast[4][name], plain[4][name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_fast_layout_matches_torch_at_a_size_that_selects_it():
    T, B, F, H = 3, 4, 16, 256
    assert _recurrent_maths.transposed_recurrence(B, 4 * H)
    torch.manual_seed(0)
    ref = torch.nn.LSTM(F, H)
    ours = LSTM(F, H)
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
    np.testing.assert_allclose(ours.weight_hh_l0.grad, ref.weight_hh_l0.grad.numpy(), rtol=1e-4, atol=1e-4)
