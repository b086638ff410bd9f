"""Sequential and Residual: chained forward/backward against torch, list behaviour, configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, PlaitError, ShapeError, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers import GELU, Dropout, Identity, Linear, ReLU, Residual, Sequential, Tanh


def _mlp():
    return Sequential(Linear(4, 8), ReLU(), Linear(8, 8), Tanh(), Linear(8, 3))


def _copy_into(ours, ref):
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sequential_matches_torch(dtype):
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
                              torch.nn.Linear(8, 3)).to(tdtype)
    ours = _mlp().astype(dtype)
    _copy_into(ours, ref)
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())
    ours = on_test_device(ours)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(dtype)
    dy = rng.standard_normal((5, 3)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    ref(xt).backward(torch.tensor(dy))
    y = ours(x)
    dx = ours.backward(dy)
    tol = dict(rtol=1e-6, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(y, ref(xt).detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    grads = ours.grads()
    assert sorted(grads) == sorted(name for name, _ in ours.named_parameters())
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref.get_parameter(name).grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_residual_matches_torch(dtype):
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    lin = torch.nn.Linear(6, 6).to(tdtype)
    block = Residual(Sequential(Linear(6, 6), GELU()))
    block.astype(dtype)
    block.load_state_dict({"module.0.weight": lin.weight.detach().numpy(), "module.0.bias": lin.bias.detach().numpy()})
    block = on_test_device(block)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    out = xt + torch.nn.functional.gelu(lin(xt))
    out.backward(torch.tensor(dy))
    tol = dict(rtol=1e-6, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(block(x), out.detach().numpy(), **tol)
    np.testing.assert_allclose(block.backward(dy), xt.grad.numpy(), **tol)
    np.testing.assert_allclose(block.grads()["module.0.weight"], lin.weight.grad.numpy(), **tol)


def test_gradcheck():
    gradcheck(_mlp().astype(np.float64), np.random.default_rng(2).standard_normal((3, 4)))
    gradcheck(Residual(Sequential(Linear(3, 3), Tanh())).astype(np.float64), np.random.default_rng(3).standard_normal((2, 3)))


def test_list_behaviour():
    seq = Sequential(Linear(2, 3))
    seq.append(ReLU()).extend([Linear(3, 1)])
    assert len(seq) == 3 and isinstance(seq[-1], Linear) and isinstance(seq[1], ReLU)
    assert [type(m) for m in seq] == [Linear, ReLU, Linear]
    head = seq[:2]
    assert isinstance(head, Sequential) and len(head) == 2 and head[0] is seq[0]
    assert sorted(seq.state_dict()) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert Sequential(layers=[Identity()])(np.ones(2)).tolist() == [1.0, 1.0]
    empty = Sequential()
    x = np.ones((2, 2))
    assert empty(x) is x and empty.backward(x) is x
    with pytest.raises(IndexError, match="Sequential"):
        seq[5]


def test_sequential_weight_sharing_backward_order():
    """The same layer twice in a chain: both uses' gradients add up."""
    lin = Linear(3, 3).astype(np.float64)
    seq = Sequential(lin, Tanh(), lin)
    gradcheck(seq, np.random.default_rng(4).standard_normal((2, 3)))


def test_config_round_trip_nested():
    model = Sequential(Linear(4, 8, bias=False), Residual(Sequential(Linear(8, 8), ReLU())), Dropout(0.1))
    model.append(Linear(8, 2))
    cfg = model.config()
    assert cfg["type"] == "sequential" and len(cfg["layers"]) == 4
    assert cfg["layers"][1] == {"type": "residual", "module": {"type": "sequential", "layers": [
        {"type": "linear", "in_features": 8, "out_features": 8, "bias": True, "dtype": "float32"}, {"type": "relu"}]}}
    rebuilt = registry.build(cfg)
    assert rebuilt.config() == cfg
    assert sorted(rebuilt.state_dict()) == sorted(model.state_dict())
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt(x), model(x))


def test_errors():
    with pytest.raises(ConfigError, match="Sequential"):
        Sequential(Linear(2, 2), "relu")
    with pytest.raises(ConfigError, match="Residual"):
        Residual(lambda x: x)
    with pytest.raises(ShapeError, match=r"Residual.*Linear.*\(2, 3\) -> \(2, 4\)"):
        Residual(Linear(3, 4))(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ShapeError, match="Linear"):
        _mlp()(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(PlaitError, match="without a matching forward"):
        _mlp().backward(np.zeros((2, 3)))
    with pytest.raises(PlaitError, match="without a matching forward"):
        Residual(ReLU()).backward(np.zeros((2, 3)))
