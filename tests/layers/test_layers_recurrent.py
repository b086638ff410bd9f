"""RNN, LSTM, GRU: finite differences, parity with torch.nn, config round trip, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import DTypeError, Module, PlaitError, ShapeError, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers.recurrent import GRU, LSTM, RNN

KINDS = {
    "rnn_tanh": (RNN, torch.nn.RNN, {}),
    "rnn_relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, torch.nn.LSTM, {}),
    "gru": (GRU, torch.nn.GRU, {}),
}
F, H, T, B = 3, 4, 5, 2


def _pair(kind, dtype, **kw):
    """Our layer with torch's weights, on the test device (NumPy in and out), and torch's."""
    ours_cls, torch_cls, extra = KINDS[kind]
    ref = torch_cls(F, H, **extra, **kw)
    ref = ref.double() if dtype == "float64" else ref.float()
    ours = ours_cls(F, H, **extra, **kw, dtype=dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    return on_test_device(ours), ref


def _close(ours, theirs, dtype, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    tol = dict(rtol=1e-6, atol=1e-9) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    assert ours.dtype == np.dtype(dtype), what
    np.testing.assert_allclose(ours, theirs, **tol, err_msg=what)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_parity_with_torch_float64(kind, num_layers, bidirectional, batch_first, with_state):
    _parity(kind, "float64", num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
            with_state=with_state)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bias", [True, False])
def test_parity_with_torch_float32(kind, bias):
    _parity(kind, "float32", num_layers=2, bidirectional=True, batch_first=True, with_state=True, bias=bias)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_parity_unbatched_input(kind):
    _parity(kind, "float64", num_layers=2, bidirectional=True, batch_first=False, with_state=True, batched=False)


def _parity(kind, dtype, *, num_layers, bidirectional, batch_first, with_state, bias=True, batched=True):
    torch.manual_seed(0)
    ours, ref = _pair(kind, dtype, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
                      bias=bias)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    D = 2 if bidirectional else 1
    x_shape = ((B, T, F) if batch_first else (T, B, F)) if batched else (T, F)
    s_shape = (num_layers * D, B, H) if batched else (num_layers * D, H)
    x = torch.randn(x_shape, dtype=tdtype, requires_grad=True)
    lstm = kind == "lstm"
    states = [torch.randn(s_shape, dtype=tdtype, requires_grad=True) for _ in range(2 if lstm else 1)]
    t_hx = (tuple(states) if lstm else states[0]) if with_state else None
    out, final = ref(x, t_hx)
    finals = list(final) if lstm else [final]
    dout = torch.randn_like(out)
    dfinals = [torch.randn_like(f) for f in finals]
    (sum((a * b).sum() for a, b in zip(finals, dfinals)) + (out * dout).sum()).backward()

    np_states = [s.detach().numpy() for s in states]
    hx = (tuple(np_states) if lstm else np_states[0]) if with_state else None
    y, got = ours(x.detach().numpy(), hx)
    got = list(got) if lstm else [got]
    _close(y, out, dtype, "output")
    for a, b in zip(got, finals):
        _close(a, b, dtype, "final state")
    dfin = [d.numpy() for d in dfinals]
    grads = ours.backward(dout.numpy(), tuple(dfin) if lstm else dfin[0])
    if with_state:
        dx, dinit = grads
        dinit = list(dinit) if lstm else [dinit]
        for a, s in zip(dinit, states):
            _close(a, s.grad, dtype, "initial-state gradient")
    else:
        dx = grads
    _close(dx, x.grad, dtype, "input gradient")
    grads = ours.grads()
    for name, p in ref.named_parameters():
        _close(grads[name], p.grad, dtype, name)


def test_final_state_gradients_are_optional():
    torch.manual_seed(1)
    ours, ref = _pair("lstm", "float64", num_layers=2)
    x = torch.randn(T, B, F, dtype=torch.float64, requires_grad=True)
    _, (h, _) = ref(x)
    dh = torch.randn_like(h)
    (h * dh).sum().backward()
    ours(x.detach().numpy())
    dx = ours.backward(None, (dh.numpy(), None))  # only h_n is used: no output gradient, no c_n gradient
    _close(dx, x.grad, "float64", "input gradient from h_n only")


class _WithState(Module):
    """Exposes the LSTM's (h0, c0) as separate inputs so gradcheck checks their gradients too."""

    def __init__(self, lstm: LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x, h0, c0):
        out, (h, c) = self.lstm(x, (h0, c0))
        return out, h, c

    def backward(self, dout, dh, dc):
        dx, (dh0, dc0) = self.lstm.backward(dout, (dh, dc))
        return dx, dh0, dc0


@pytest.mark.parametrize("kind", list(KINDS))
def test_gradcheck_all_inputs_states_and_parameters(kind):
    ours_cls, _, extra = KINDS[kind]
    m = ours_cls(F, 3, num_layers=2, bidirectional=True, batch_first=True, **extra, dtype="float64")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, F))
    h0 = rng.standard_normal((4, 2, 3))
    if kind == "lstm":
        gradcheck(_WithState(m), x, h0, rng.standard_normal((4, 2, 3)), max_checks=10)
    else:
        gradcheck(m, x, h0, max_checks=10)  # the output is (out, h_n): h_n's gradient is checked too


def test_dropout_between_layers_matches_stacked_torch_layers():
    """2-layer LSTM with dropout = layer 1, mask, layer 2 (torch, single layers); mask injected."""
    torch.manual_seed(2)
    ours = LSTM(F, H, num_layers=2, dropout=0.5, dtype="float64")
    l1, l2 = torch.nn.LSTM(F, H).double(), torch.nn.LSTM(H, H).double()
    sd = {k: v.detach().numpy() for k, v in l1.state_dict().items()}
    sd.update({k.replace("_l0", "_l1"): v.detach().numpy() for k, v in l2.state_dict().items()})
    ours.load_state_dict(sd)
    mask = (np.random.default_rng(3).random((T, B, H)) < 0.5) / 0.5
    ours._dropout_mask = lambda shape, xp, dtype: xp.asarray(mask)  # on the layer's device
    ours = on_test_device(ours)
    x = torch.randn(T, B, F, dtype=torch.float64, requires_grad=True)
    mid, _ = l1(x)
    out, _ = l2(mid * torch.from_numpy(mask))
    dout = torch.randn_like(out)
    (out * dout).sum().backward()
    y, _ = ours(x.detach().numpy())
    _close(y, out, "float64", "output with dropout")
    _close(ours.backward(dout.numpy()), x.grad, "float64", "input gradient with dropout")
    _close(ours.grads()["weight_ih_l1"], l2.weight_ih_l0.grad, "float64", "second-layer weight gradient")
    ours.eval()
    y_eval, _ = ours(x.detach().numpy())
    assert not np.allclose(y_eval, y)  # no dropout in eval mode


@pytest.mark.parametrize("kind", list(KINDS))
def test_config_round_trip(kind):
    ours_cls, _, extra = KINDS[kind]
    m = ours_cls(F, H, num_layers=2, bidirectional=True, batch_first=True, dropout=0.25, **extra)
    cfg = m.config()
    assert cfg["type"] == ours_cls.__name__.lower()
    rebuilt = registry.build(cfg)
    assert type(rebuilt) is ours_cls and rebuilt.config() == cfg
    assert sorted(rebuilt.state_dict()) == sorted(m.state_dict())
    assert registry.layers.get(cfg["type"]) is ours_cls


def test_torch_parameter_names_and_shapes():
    ref = torch.nn.GRU(F, H, num_layers=2, bidirectional=True)
    ours = GRU(F, H, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for k, v in ref.state_dict().items():
        assert ours.state_dict()[k].shape == tuple(v.shape)
        assert ours.state_dict()[k].dtype == np.float32
        assert np.abs(ours.state_dict()[k]).max() <= 1 / np.sqrt(H)


@pytest.mark.parametrize("bad, error, words", [
    (np.zeros((2, 3, 4, F), np.float32), ShapeError, "LSTM"),
    (np.zeros((T, B, F + 1), np.float32), ShapeError, "last dimension"),
    (np.zeros((T, B, F), np.int64), DTypeError, "int64"),
])
def test_bad_input_raises_naming_the_layer(bad, error, words):
    with pytest.raises(error, match=words):
        LSTM(F, H)(bad)


def test_bad_state_and_gradient_shapes():
    m = GRU(F, H, num_layers=2)
    x = np.zeros((T, B, F), np.float32)
    with pytest.raises(ShapeError, match=r"GRU.*\(2, 2, 4\)"):
        m(x, np.zeros((1, B, H), np.float32))
    with pytest.raises(ShapeError, match="pair"):
        LSTM(F, H)(x, np.zeros((1, B, H), np.float32))
    m(x)
    with pytest.raises(ShapeError, match="GRU.backward"):
        m.backward(np.zeros((T, B, H + 1), np.float32))


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(PlaitError, match="LSTM.backward.*without a matching forward"):
        LSTM(F, H).backward(np.zeros((T, B, H), np.float32))


def test_float32_stays_float32():
    m = LSTM(F, H, num_layers=2, bidirectional=True)
    y, (h, c) = m(np.ones((T, B, F), np.float64))
    assert y.dtype == h.dtype == c.dtype == np.float32
    assert m.backward(np.ones_like(y)).dtype == np.float32


@pytest.mark.gpu
def test_device_path_matches_cpu():
    """Device-path test: on a machine with CuPy and a GPU it compares the GPU with NumPy (numeric
    parity); everywhere else it runs on the strict CuPy stand-in of tests/_device, whose maths is
    NumPy's on both sides, so it proves the device code path (no host arrays, no implicit host
    syncs), not the numbers. Named ``test_device_path_*`` to be counted apart from the numeric
    parity tests.
    """
    from plait.core.backend import cupy_available, to_numpy

    if not cupy_available():
        pytest.skip("needs CuPy (a GPU, or the stand-in conftest installs)")
    import cupy

    for cls in (LSTM, GRU, RNN):
        m = cls(F, H, num_layers=2, bidirectional=True, dtype="float64")
        x = np.random.default_rng(7).standard_normal((T, B, F))
        y_cpu, _ = m(x)
        dx_cpu = m.backward(np.ones_like(y_cpu))
        m.to("cuda")
        y, _ = m(cupy.asarray(x))
        dx = m.backward(cupy.ones(y.shape))
        np.testing.assert_allclose(to_numpy(y), y_cpu, rtol=1e-10)
        np.testing.assert_allclose(to_numpy(dx), dx_cpu, rtol=1e-10)


def test_modifying_the_output_in_place_does_not_corrupt_backward():
    m = GRU(F, H, dtype="float64")
    x = np.random.default_rng(8).standard_normal((T, B, F))
    y, _ = m(x)
    expected = m.backward(np.ones_like(y))
    y, _ = m(x)
    y += 100.0  # e.g. a residual added in place by the caller
    np.testing.assert_array_equal(m.backward(np.ones_like(y)), expected)
