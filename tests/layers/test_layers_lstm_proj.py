"""LSTM ``proj_size``: torch's keys and shapes (strict load), outputs, final states and every
gradient against torch.nn.LSTM; the projecting cell pair against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, ShapeError, registry
from plait.core.testing import gradcheck, numerical_gradient, on_test_device
from plait.layers import LSTM
from plait.layers._lstm_maths import lstm_backward, lstm_forward

F, H, P, T, B = 3, 5, 2, 4, 2


def _close(ours, theirs, dtype, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    tol = dict(rtol=1e-6, atol=1e-9) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    assert np.asarray(ours).dtype == np.dtype(dtype), what
    np.testing.assert_allclose(ours, theirs, **tol, err_msg=what)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("num_layers, bidirectional, batch_first, with_state, bias, batched", [
    (1, False, False, False, True, True),
    (2, False, True, True, True, True),
    (1, True, False, True, False, True),
    (2, True, True, True, True, True),
    (2, True, False, True, True, False),  # unbatched
    (3, True, False, False, True, True),
])
def test_lstm_proj_matches_torch(num_layers, bidirectional, batch_first, with_state, bias, batched, dtype):
    torch.manual_seed(0)
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias, proj_size=P)
    ref = torch.nn.LSTM(F, H, **kw)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    ref = ref.to(tdtype)
    ours = LSTM(F, H, **kw, dtype=dtype)
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert ours_shapes == {k: tuple(v.shape) for k, v in ref.state_dict().items()}  # keys, order-free, and shapes
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()}, strict=True)
    ours = on_test_device(ours)
    D = 2 if bidirectional else 1
    x_shape = ((B, T, F) if batch_first else (T, B, F)) if batched else (T, F)
    lead = (num_layers * D, B) if batched else (num_layers * D,)
    x = torch.randn(x_shape, dtype=tdtype, requires_grad=True)
    h0 = torch.randn((*lead, P), dtype=tdtype, requires_grad=True)
    c0 = torch.randn((*lead, H), dtype=tdtype, requires_grad=True)
    out, (h_n, c_n) = ref(x, (h0, c0) if with_state else None)
    assert out.shape[-1] == D * P and h_n.shape[-1] == P and c_n.shape[-1] == H
    dout, dh, dc = torch.randn_like(out), torch.randn_like(h_n), torch.randn_like(c_n)
    ((out * dout).sum() + (h_n * dh).sum() + (c_n * dc).sum()).backward()

    hx = (h0.detach().numpy(), c0.detach().numpy()) if with_state else None
    y, (got_h, got_c) = ours(x.detach().numpy(), hx)
    _close(y, out, dtype, "output")
    _close(got_h, h_n, dtype, "h_n")
    _close(got_c, c_n, dtype, "c_n")
    grads = ours.backward(dout.numpy(), (dh.numpy(), dc.numpy()))
    if with_state:
        dx, (dh0, dc0) = grads
        _close(dh0, h0.grad, dtype, "dh0")
        _close(dc0, c0.grad, dtype, "dc0")
    else:
        dx = grads
    _close(dx, x.grad, dtype, "dx")
    ours_grads = ours.grads()
    assert sorted(ours_grads) == sorted(n for n, _ in ref.named_parameters())
    for name, p in ref.named_parameters():
        _close(ours_grads[name], p.grad, dtype, name)


@pytest.mark.parametrize("reverse", [False, True])
def test_projecting_lstm_cell_pair_against_finite_differences(reverse):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, B, F))
    params = [rng.standard_normal(s) * 0.7 for s in ((4 * H, F), (4 * H, P), (4 * H,), (4 * H,), (P, H))]
    state = (rng.standard_normal((B, P)), rng.standard_normal((B, H)))
    rh, rf = rng.standard_normal((T, B, P)), (rng.standard_normal((B, P)), rng.standard_normal((B, H)))

    def f() -> float:
        (hs, finals), _ = lstm_forward(x, *params, state=state, reverse=reverse)
        return float((hs * rh).sum() + sum((a * b).sum() for a, b in zip(finals, rf)))

    _, ctx = lstm_forward(x, *params, state=state, reverse=reverse)
    (dx, dstate), *dparams = lstm_backward((rh, rf), ctx, *params)
    assert len(dparams) == len(params)
    for what, array, analytic in [("dx", x, dx), *[(f"dstate{i}", s, d) for i, (s, d) in enumerate(zip(state, dstate))],
                                  *[(f"dparam{i}", p, d) for i, (p, d) in enumerate(zip(params, dparams))]]:
        numeric = numerical_gradient(f, array, list(np.ndindex(array.shape)), 1e-6)
        np.testing.assert_allclose(np.asarray(analytic).reshape(-1), numeric, rtol=1e-5, atol=1e-6, err_msg=what)


def test_lstm_proj_gradcheck_config_and_errors():
    layer = LSTM(F, H, num_layers=2, proj_size=P, bidirectional=True, dtype="float64")
    gradcheck(layer, np.random.default_rng(0).standard_normal((T, B, F)))
    rebuilt = registry.build(layer.config())
    assert rebuilt.proj_size == P and rebuilt.config() == layer.config()
    assert "proj_size=2" in repr(layer)
    with pytest.raises(ConfigError, match="LSTM.*proj_size.*smaller than hidden_size"):
        LSTM(F, H, proj_size=H)
    with pytest.raises(ConfigError, match="LSTM.*proj_size"):
        LSTM(F, H, proj_size=-1)
    with pytest.raises(ShapeError, match=r"LSTM.*initial hidden state.*\(4, 2, 2\)"):
        layer(np.zeros((T, B, F)), (np.zeros((4, B, H)), np.zeros((4, B, H))))
