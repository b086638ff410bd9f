"""Module bookkeeping: registration, state dicts, modes, dtype/device, config, weight sharing."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import (
    ConfigError,
    Module,
    ModuleDict,
    ModuleList,
    Param,
    PlaitError,
    ShapeError,
    check_array,
    no_grad,
)


class Affine(Module):
    """y = x W^T + b — a minimal layer written against the core API."""

    def __init__(self, n_in: int, n_out: int, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weight = Param(rng.standard_normal((n_out, n_in)))
        self.bias = Param(rng.standard_normal(n_out))
        self.register_buffer("calls", np.zeros(1, dtype=np.int64))

    def forward(self, x):
        x = check_array(x, "Affine", last_dim=self.weight.shape[1])
        self.save_for_backward(x)
        self.calls += 1
        return x @ self.weight.data.T + self.bias.data

    def backward(self, dy):
        x = self.saved()
        self.weight.accumulate(dy.T @ x)
        self.bias.accumulate(dy.sum(axis=0))
        return dy @ self.weight.data


class Tanh(Module):
    def forward(self, x):
        y = np.tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, dy):
        return dy * (1 - self.saved() ** 2)


class Net(Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = ModuleList([Affine(4, 3, seed=1), Tanh()])
        self.heads = ModuleDict({"a": Affine(3, 2, seed=2), "b": Affine(3, 1, seed=3)})
        self.scale = Param(np.ones(1))


def test_nested_registration_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "encoder.0.weight", "encoder.0.bias", "heads.a.weight", "heads.a.bias",
                     "heads.b.weight", "heads.b.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "encoder", "encoder.0", "encoder.1", "heads", "heads.a", "heads.b"]
    assert net.num_parameters() == 1 + 12 + 3 + 6 + 2 + 3 + 1
    assert "encoder.0.calls" in net.state_dict()


def test_reassigning_attribute_replaces_registration():
    net = Net()
    net.scale = 3.0  # a plain value replaces the Param
    assert "scale" not in dict(net.named_parameters())
    net.heads = Affine(3, 3)
    assert "heads.a.weight" not in dict(net.named_parameters())


def test_state_dict_round_trip_is_exact():
    a, b = Net(), Net()
    for p in b.parameters():
        p.data[...] = np.random.default_rng(7).standard_normal(p.shape)
    a.load_state_dict(b.state_dict())
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and np.array_equal(pa.data, pb.data)


def test_load_state_dict_strict_reports_every_problem():
    net = Net()
    sd = dict(net.state_dict())
    del sd["scale"]
    sd["extra.weight"] = np.zeros(2)
    with pytest.raises(ConfigError) as err:
        net.load_state_dict(sd)
    assert "missing keys: scale" in str(err.value) and "unexpected keys: extra.weight" in str(err.value)
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["scale"] and result.unexpected_keys == ["extra.weight"]


def test_load_state_dict_shape_mismatch_is_always_an_error():
    net = Net()
    sd = dict(net.state_dict())
    sd["heads.a.weight"] = np.zeros((5, 5))
    with pytest.raises(ShapeError, match=r"heads.a.weight: expected \(2, 3\), got \(5, 5\)"):
        net.load_state_dict(sd, strict=False)


def test_train_eval_propagate():
    net = Net().eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_astype_casts_floats_and_keeps_int_buffers():
    net = Net().astype(np.float32)
    assert all(p.dtype == np.float32 for p in net.parameters())
    assert net.encoder[0].calls.dtype == np.int64


def test_to_cpu_is_identity_and_unknown_device_errors():
    net = Net().to("cpu")
    assert isinstance(net.scale.data, np.ndarray)
    with pytest.raises(PlaitError, match="unknown device"):
        net.to("tpu")


def test_repr_is_nested_and_readable():
    text = repr(Net())
    assert "(encoder): ModuleList(" in text and "(0): Affine(n_in=4, n_out=3, seed=1)" in text


def test_config_requires_registration():
    with pytest.raises(ConfigError, match="not registered"):
        Affine(2, 2).config()


def test_backward_without_forward_is_a_clear_error():
    with pytest.raises(PlaitError, match=r"Affine.backward\(\) called without a matching forward"):
        Affine(2, 2).backward(np.ones((1, 2)))


def test_no_grad_caches_nothing():
    layer = Affine(2, 2)
    with no_grad():
        layer(np.ones((1, 2)))
    assert layer.__dict__["_saved_stack"] == []


def test_shared_param_listed_once():
    a = Affine(3, 3)
    b = Affine(3, 3)
    b.weight = a.weight  # tied
    holder = ModuleList([a, b])
    assert len(list(holder.parameters())) == 3
    assert "1.weight" not in holder.state_dict()


def test_siamese_weight_sharing_matches_torch():
    torch = pytest.importorskip("torch")
    enc = Affine(4, 3, seed=5)
    act = Tanh()
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))

    # Plait: the same encoder applied twice, backward in reverse order of the calls.
    h1 = act(enc(x1))
    h2 = act(enc(x2))
    diff = h1 - h2
    loss = float((diff**2).sum())
    dh1, dh2 = 2 * diff, -2 * diff
    dx2 = enc.backward(act.backward(dh2))
    dx1 = enc.backward(act.backward(dh1))

    w = torch.tensor(enc.weight.data, requires_grad=True)
    b = torch.tensor(enc.bias.data, requires_grad=True)
    t1, t2 = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    tl = ((torch.tanh(t1 @ w.T + b) - torch.tanh(t2 @ w.T + b)) ** 2).sum()
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12)
    np.testing.assert_allclose(enc.weight.grad, w.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(enc.bias.grad, b.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dx1, t1.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dx2, t2.grad.numpy(), rtol=1e-10)


def test_zero_grad_keeps_or_drops_buffers():
    layer = Affine(2, 2)
    layer(np.ones((1, 2)))
    layer.backward(np.ones((1, 2)))
    g = layer.weight.grad
    layer.zero_grad()
    assert layer.weight.grad is g and not g.any()
    layer.zero_grad(set_to_none=True)
    assert layer.weight.grad is None


def test_bad_input_names_the_layer():
    with pytest.raises(ShapeError, match="Affine: expected input with last dimension 4"):
        Affine(4, 2)(np.ones((3, 5)))
    with pytest.raises(TypeError, match="Affine: expected input as a floating-point array"):
        Affine(4, 2)(np.ones((3, 4), dtype=np.int64))


# -- the leaf-layer contract: a maths pair, bookkeeping in Module -----------------------------------
def scale_shift_forward(x, weight, bias, *, power=1.0):
    """y = x^power * w + b (power an option, to check that options reach the pair)."""
    return x**power * weight + (0.0 if bias is None else bias), x


def scale_shift_backward(dy, x, weight, bias, need_dx=True):
    dweight = (dy * x).reshape(-1, weight.shape[0]).sum(axis=0)
    dbias = None if bias is None else dy.reshape(-1, weight.shape[0]).sum(axis=0)
    return (dy * weight if need_dx else None), dweight, dbias


class ScaleShift(Module):
    maths = (scale_shift_forward, scale_shift_backward)
    maths_params = ("weight", "bias")

    def __init__(self, features: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = Param(np.arange(1.0, features + 1.0))
        self.bias = Param(np.zeros(features)) if bias else None


class ScaleShiftSub(ScaleShift):
    """No __init__ of its own: the constructor arguments are still recorded."""


def test_contract_layer_forward_backward_and_accumulation():
    layer = ScaleShift(3)
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = layer(x)
    np.testing.assert_array_equal(y, x * [1.0, 2.0, 3.0])
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(dx, np.ones_like(x) * [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(layer.weight.grad, [5.0, 7.0, 9.0])
    np.testing.assert_array_equal(layer.bias.grad, [2.0, 2.0, 2.0])
    layer(x)
    layer.backward(np.ones_like(y))  # gradients add up
    np.testing.assert_array_equal(layer.weight.grad, [10.0, 14.0, 18.0])


def add_bias_forward(x, bias):
    """y = x + b, for x shaped like b: db is dy itself."""
    return x + bias, None


def add_bias_backward(dy, ctx, bias, need_dx=True):
    return dy, dy


class AddBias(Module):
    maths = (add_bias_forward, add_bias_backward)
    maths_params = ("bias",)

    def __init__(self, features: int) -> None:
        super().__init__()
        self.bias = Param(np.zeros(features))


def test_contract_a_parameter_gradient_that_is_dy_is_copied_not_kept():
    """Module.backward hands fresh parameter gradients over without a copy; one that is dy
    (here db = dy) stays the caller's: the Param copies it, so writing into grad (clipping,
    an all-reduce) leaves dy and dx alone."""
    layer = AddBias(3)
    for _ in range(2):
        layer.zero_grad()
        layer(np.ones(3))
        dy = np.array([1.0, 2.0, 3.0])
        dx = layer.backward(dy)
        assert not np.shares_memory(layer.bias.grad, dy)
        layer.bias.grad *= 0.5
        np.testing.assert_array_equal(dy, [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(dx, [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(layer.bias.grad, [0.5, 1.0, 1.5])


def two_biases_forward(x, bias_a, bias_b):
    return x + bias_a + bias_b, None


def two_biases_backward(dy, ctx, bias_a, bias_b, need_dx=True):
    db = dy.sum(axis=0)
    return dy, db, db  # one array for both parameters


class TwoBiases(Module):
    maths = (two_biases_forward, two_biases_backward)
    maths_params = ("bias_a", "bias_b")

    def __init__(self, features: int) -> None:
        super().__init__()
        self.bias_a = Param(np.zeros(features))
        self.bias_b = Param(np.zeros(features))


def test_contract_one_array_given_for_two_parameters_is_not_shared():
    layer = TwoBiases(2)
    layer(np.ones((3, 2)))
    layer.backward(np.ones((3, 2)))
    assert not np.shares_memory(layer.bias_a.grad, layer.bias_b.grad)
    layer.bias_a.grad *= 0.5  # clipping one gradient leaves the other alone
    np.testing.assert_array_equal(layer.bias_a.grad, [1.5, 1.5])
    np.testing.assert_array_equal(layer.bias_b.grad, [3.0, 3.0])


def test_contract_fresh_parameter_gradients_are_kept_without_a_copy():
    layer = ScaleShift(3)
    layer(np.ones((2, 3)))
    layer.backward(np.ones((2, 3)))
    first = layer.weight.grad
    layer.zero_grad()
    layer(np.ones((2, 3)))
    layer.backward(np.ones((2, 3)))
    assert layer.weight.grad is not first  # the new step's array itself, as torch steals a fresh grad
    np.testing.assert_array_equal(layer.weight.grad, [2.0, 2.0, 2.0])


def test_contract_checks_dy_shape_and_casts_dtype():
    layer = ScaleShift(3)
    layer(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"ScaleShift.backward: expected output gradient of shape \(2, 3\), got \(3,\)"):
        layer.backward(np.ones(3))  # broadcastable, still refused
    layer(np.ones((2, 3)))
    dx = layer.backward(np.ones((2, 3), dtype=np.float32))
    assert dx.dtype == np.float64  # dy cast to the output's dtype


def test_contract_skips_dx_and_none_params():
    layer = ScaleShift(2, bias=False).requires_input_grad(False)
    layer(np.ones((1, 2)))
    assert layer.backward(np.ones((1, 2))) is None
    assert layer.weight.grad is not None and layer.bias is None


def test_contract_options_reach_the_pair():
    class Square(ScaleShift):
        def options(self, x):
            return {"power": 2.0}

    np.testing.assert_array_equal(Square(1)(np.array([[3.0]])), [[9.0]])


def test_contract_no_grad_keeps_nothing():
    layer = ScaleShift(2)
    with no_grad():
        layer(np.ones((1, 2)))
    assert layer.__dict__["_saved_stack"] == []
    with pytest.raises(PlaitError, match="without a matching forward"):
        layer.backward(np.ones((1, 2)))


def test_layer_without_own_init_records_config_and_saves(tmp_path):
    from plait.core import load_safetensors, registry, save_safetensors
    from plait.core.testing import isolated_plugins

    class Plugin:
        @staticmethod
        def register_layers(register):
            register("scale_shift_sub", ScaleShiftSub)

    from plait.core import hookimpl

    Plugin.register_layers = staticmethod(hookimpl(Plugin.register_layers))
    with isolated_plugins():
        from plait.core.plugins import register_plugin

        register_plugin(Plugin, "scale-shift-test")
        layer = ScaleShiftSub(4, bias=False)
        assert layer.config() == {"type": "scale_shift_sub", "features": 4, "bias": False}
        layer.weight.data *= 3.0
        save_safetensors(tmp_path / "w.safetensors", layer.state_dict())
        again = registry.build(layer.config())
        again.load_state_dict(load_safetensors(tmp_path / "w.safetensors"))
        assert type(again) is ScaleShiftSub and again.bias is None
        np.testing.assert_array_equal(again.weight.data, layer.weight.data)


def test_old_style_layer_keeps_working_next_to_contract_layers():
    """forward + backward written by hand (save_for_backward / saved) mixes with contract layers."""
    old, new = Affine(3, 3, seed=4), ScaleShift(3)
    x = np.random.default_rng(0).standard_normal((2, 3))
    y = new(old(x))
    dx = old.backward(new.backward(np.ones_like(y)))
    np.testing.assert_allclose(dx, np.ones((2, 3)) * [1.0, 2.0, 3.0] @ old.weight.data)
    assert old.weight.grad is not None and new.weight.grad is not None


def test_constructor_arguments_survive_copy():
    import copy

    layer = ScaleShift(2, bias=False)
    assert copy.deepcopy(layer).__dict__["_init_args"] == {"features": 2, "bias": False}


# -- bounded inference memory -------------------------------------------------------------------------
def test_eval_mode_keeps_no_cache_unless_enable_grad():
    from plait.core import enable_grad

    layer, old = ScaleShift(2).eval(), Affine(2, 2).eval()
    layer(np.ones((1, 2)))
    old(np.ones((1, 2)))
    assert layer.__dict__["_saved_stack"] == [] and old.__dict__["_saved_stack"] == []
    with enable_grad():
        layer(np.ones((1, 2)))
        with no_grad():  # the innermost context wins
            layer(np.ones((1, 2)))
    assert len(layer.__dict__["_saved_stack"]) == 1
    layer.backward(np.ones((1, 2)))
    assert layer.weight.grad is not None


def test_a_forgotten_no_grad_cannot_grow_the_stack_forever():
    import warnings

    layer = ScaleShift(2)
    layer.max_saved = 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            layer(np.ones((1, 2)))
    assert len(layer.__dict__["_saved_stack"]) == 3
    assert any("no_grad()" in str(w.message) for w in caught)
    for _ in range(3):  # the newest three still backpropagate, in reverse order
        layer.backward(np.ones((1, 2)))
    with pytest.raises(PlaitError, match="without a matching forward"):
        layer.backward(np.ones((1, 2)))


def test_readme_plugin_example_runs_as_written():
    """The "Writing a plugin" layer in the README: exec'd as written, then checked by gradcheck."""
    import re
    from pathlib import Path

    from plait.core.testing import gradcheck

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(# my_package/plait_plugin\.py\n.*?)```", readme, re.S).group(1)
    namespace: dict = {"__name__": "readme_plugin"}
    exec(compile(code, "README.md", "exec"), namespace)
    layer = namespace["Scale"](3).astype(np.float64)
    layer.weight.data[:] = [0.5, -2.0, 3.0]
    gradcheck(layer, np.random.default_rng(0).standard_normal((2, 4, 3)))
    with pytest.raises(ShapeError, match="Scale"):
        layer(np.ones((2, 4)))


# -- torch-like conveniences --------------------------------------------------------------------------
def test_to_dtype_double_float_half_and_buffers():
    net = Net()
    assert net.to(np.float32) is net and all(p.dtype == np.float32 for p in net.parameters())
    net.to("cpu", "float64")
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.float().scale.dtype == np.float32 and net.half().scale.dtype == np.float16
    assert net.double().scale.dtype == np.float64
    net.to(device="cpu", dtype=np.float32)
    assert net.scale.dtype == np.float32 and net.encoder[0].calls.dtype == np.int64  # int buffers stay
    assert [n for n, _ in net.named_buffers()] == ["encoder.0.calls", "heads.a.calls", "heads.b.calls"]
    assert len(list(net.buffers())) == 3


@pytest.mark.parametrize("bad", ["tpu", np.int32, 3])
def test_to_error_lists_what_it_accepts(bad):
    from plait.core import DeviceError

    with pytest.raises(DeviceError, match=r"cpu.*cuda.*float16, float32, float64"):
        Net().to(bad)


def test_modules_in_a_plain_list_warn_once():
    class Holder(Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = [Affine(2, 2), Affine(2, 2)]
            self.sizes = [2, 2]  # plain values: no warning

    with pytest.warns(UserWarning, match=r"Holder.blocks is a plain list holding modules.*ModuleList"):
        Holder()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Holder()  # once per class and attribute
    with pytest.warns(UserWarning, match="ModuleDict"):
        Holder().table = {"a": Affine(2, 2)}
