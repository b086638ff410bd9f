"""Every optimizer and option combination against torch.optim: 25 steps, float64, 1e-6 relative.

The Plait side runs on ``PLAIT_DEVICE`` (the CPU when unset); the references run on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import Param, default_device, to_device, to_numpy
from plait.optim import SGD, Adagrad, Adam, Adamax, AdamW, Lion, NAdam, RAdam, RMSprop

torch = pytest.importorskip("torch")

SHAPES = [(4, 3), (5,), (2, 3, 2)]
STEPS = 25
RTOL, ATOL = 1e-6, 1e-12


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    return init, grads


def _dev(a):
    """A copy of the NumPy array ``a`` on the device the tests run on."""
    return to_device(a.copy(), default_device())


def _run_plait(cls, kwargs, init, grads, groups=None):
    params = [Param(_dev(x)) for x in init]
    opt = cls(groups(params) if groups else params, **kwargs)
    history = []
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = _dev(g)
        opt.step()
        history.append([to_numpy(p.data).copy() for p in params])
    return history


def _run_torch(cls, kwargs, init, grads, groups=None, grad_fn=None):
    params = [torch.tensor(x.copy(), requires_grad=True) for x in init]
    opt = cls(groups(params) if groups else params, **kwargs)
    history = []
    for gs in grads:
        for p, g in zip(params, gs):
            extra = grad_fn(p.detach().numpy()) if grad_fn else 0.0
            p.grad = torch.tensor(g + extra)
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history


def _assert_same(ours, theirs):
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL, err_msg=f"step {step + 1}")


def _cases(torch_name, combos):
    return [pytest.param(torch_name, kw, id=f"{torch_name}-" + ",".join(f"{k}={v}" for k, v in kw.items())) for kw in combos]


SGD_CASES = [
    {"lr": 0.1},
    {"lr": 0.1, "momentum": 0.9},
    {"lr": 0.1, "momentum": 0.9, "dampening": 0.3},
    {"lr": 0.1, "momentum": 0.9, "nesterov": True},
    {"lr": 0.05, "weight_decay": 0.1},
    {"lr": 0.05, "momentum": 0.8, "dampening": 0.1, "weight_decay": 0.1, "maximize": True},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01, "maximize": True},
    {"lr": 0.1, "maximize": True},
]
ADAM_CASES = [
    {"lr": 0.01},
    {"lr": 0.01, "amsgrad": True},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "amsgrad": True, "weight_decay": 0.1},
    {"lr": 0.02, "maximize": True},
    {"lr": 0.02, "amsgrad": True, "weight_decay": 0.05, "maximize": True},
    {"lr": 0.01, "betas": (0.0, 0.5)},
]
RMSPROP_CASES = [
    {"lr": 0.01},
    {"lr": 0.01, "centered": True},
    {"lr": 0.01, "momentum": 0.9},
    {"lr": 0.01, "momentum": 0.9, "centered": True},
    {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1},
    {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1, "maximize": True},
]
ADAGRAD_CASES = [
    {"lr": 0.1},
    {"lr": 0.1, "lr_decay": 0.05},
    {"lr": 0.1, "weight_decay": 0.1},
    {"lr": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6},
    {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.1, "maximize": True},
]

PAIRS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop, "Adagrad": Adagrad}


@pytest.mark.parametrize(
    "name, kwargs",
    _cases("SGD", SGD_CASES)
    + _cases("Adam", ADAM_CASES)
    + _cases("AdamW", ADAM_CASES)
    + _cases("RMSprop", RMSPROP_CASES)
    + _cases("Adagrad", ADAGRAD_CASES),
)
def test_matches_torch(name, kwargs):
    init, grads = _problem()
    ours = _run_plait(PAIRS[name], kwargs, init, grads)
    theirs = _run_torch(getattr(torch.optim, name), {**kwargs, "foreach": False}, init, grads)
    _assert_same(ours, theirs)
    assert not np.allclose(ours[-1][0], init[0])  # the parameters did move


def test_adamw_default_weight_decay_matches_torch():
    init, grads = _problem(1)
    _assert_same(_run_plait(AdamW, {}, init, grads), _run_torch(torch.optim.AdamW, {}, init, grads))


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_multiple_param_groups_match_torch(name):
    init, grads = _problem(2)
    extra = {"SGD": {"momentum": 0.9}, "Adam": {"amsgrad": True}, "RMSprop": {"centered": True}, "Adagrad": {"lr_decay": 0.1}}[name]

    def groups(params):
        return [
            {"params": params[:1], "lr": 0.05, "weight_decay": 0.1},
            {"params": params[1:2], **extra},
            {"params": params[2:], "lr": 0.001, "maximize": True},
        ]

    kwargs = {"lr": 0.02}
    ours = _run_plait(PAIRS[name], kwargs, init, grads, groups)
    theirs = _run_torch(getattr(torch.optim, name), kwargs, init, grads, groups)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_l1_l2_match_torch_with_penalty_gradients(name):
    """``l1``/``l2`` are the gradients of ``l1*|p|_1 + l2/2*|p|^2``, added before the rule (also for AdamW)."""
    init, grads = _problem(3)
    l1, l2 = 0.03, 0.2
    kwargs = {"lr": 0.01, "weight_decay": 0.05} if name != "SGD" else {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.05}
    ours = _run_plait(PAIRS[name], {**kwargs, "l1": l1, "l2": l2}, init, grads)
    theirs = _run_torch(getattr(torch.optim, name), kwargs, init, grads, grad_fn=lambda p: l1 * np.sign(p) + l2 * p)
    _assert_same(ours, theirs)


def test_l2_is_coupled_weight_decay():
    init, grads = _problem(4)
    ours = _run_plait(AdamW, {"lr": 0.01, "weight_decay": 0.0, "l2": 0.1}, init, grads)
    theirs = _run_torch(torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1}, init, grads)
    _assert_same(ours, theirs)


# -- Lion: not in torch; checked against the update rule of Chen et al. (2023), written out here
def _lion_reference(init, grads, lr, betas, weight_decay, maximize=False):
    beta1, beta2 = betas
    params = [x.copy() for x in init]
    moments = [np.zeros_like(x) for x in init]
    history = []
    for gs in grads:
        for p, m, g in zip(params, moments, gs):
            g = -g if maximize else g
            update = np.sign(beta1 * m + (1 - beta1) * g)
            p -= lr * (update + weight_decay * p)  # = p * (1 - lr*wd) - lr * update
            m[...] = beta2 * m + (1 - beta2) * g
        history.append([p.copy() for p in params])
    return history


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.0},
        {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.5},
        {"lr": 3e-3, "betas": (0.5, 0.9), "weight_decay": 0.1, "maximize": True},
        {"lr": 3e-3, "betas": (0.0, 0.0), "weight_decay": 0.0},
    ],
    ids=str,
)
def test_lion_matches_paper_rule(kwargs):
    init, grads = _problem(5)
    _assert_same(_run_plait(Lion, kwargs, init, grads), _lion_reference(init, grads, **kwargs))


def test_lion_defaults():
    init, grads = _problem(6)
    _assert_same(_run_plait(Lion, {}, init, grads), _lion_reference(init, grads, 1e-4, (0.9, 0.99), 0.0))


def test_params_without_grad_are_skipped_like_torch():
    init, grads = _problem(7)
    params = [Param(_dev(x)) for x in init]
    opt = Adam(params, lr=0.1)
    params[0].grad = _dev(grads[0][0])
    opt.step()
    np.testing.assert_array_equal(to_numpy(params[1].data), init[1])
    assert params[1] not in opt.state and params[0] in opt.state


def test_step_leaves_grad_untouched_and_returns_closure_value():
    init, grads = _problem(8)
    params = [Param(_dev(x)) for x in init]
    opt = SGD(params, lr=0.1, momentum=0.9, weight_decay=0.1, maximize=True, l1=0.1)
    for p, g in zip(params, grads[0]):
        p.grad = _dev(g)
    assert opt.step(lambda: 3.5) == 3.5
    for p, g in zip(params, grads[0]):
        np.testing.assert_array_equal(to_numpy(p.grad), g)


def test_float32_parameters_match_torch_float32():
    init, grads = _problem(9)
    init32 = [x.astype(np.float32) for x in init]
    grads32 = [[g.astype(np.float32) for g in gs] for gs in grads]
    ours = _run_plait(Adam, {"lr": 0.01, "weight_decay": 0.1}, init32, grads32)
    theirs = _run_torch(torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1}, init32, grads32)
    assert ours[-1][0].dtype == np.float32
    for x, y in zip(ours[-1], theirs[-1]):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


# -- NAdam, RAdam, Adamax: torch's arguments, defaults and rules, over many steps -------------------
NADAM_CASES = [
    {},
    {"lr": 0.01},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
    {"lr": 0.02, "betas": (0.8, 0.95), "eps": 1e-6, "momentum_decay": 0.01, "maximize": True},
    {"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True, "maximize": True},
]
RADAM_CASES = [
    {},
    {"lr": 0.01},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
    {"lr": 0.02, "betas": (0.8, 0.9), "eps": 1e-6, "maximize": True},  # rho_t > 5 from the 5th step
    {"lr": 0.01, "betas": (0.9, 0.5)},  # rho_inf = 3: never rectified, SGD with momentum throughout
]
ADAMAX_CASES = [
    {},
    {"lr": 0.01},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.02, "betas": (0.8, 0.9), "eps": 1e-4, "maximize": True},
    {"lr": 0.01, "weight_decay": 0.05, "maximize": True, "betas": (0.0, 0.5)},
]
NEW_PAIRS = {"NAdam": NAdam, "RAdam": RAdam, "Adamax": Adamax}


@pytest.fixture
def torch_float64_scalars():
    """torch keeps NAdam's mu_product in its default dtype; float64 makes it Plait's Python float."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize(
    "name, kwargs", _cases("NAdam", NADAM_CASES) + _cases("RAdam", RADAM_CASES) + _cases("Adamax", ADAMAX_CASES)
)
def test_new_optimizers_match_torch_over_many_steps(name, kwargs, torch_float64_scalars):
    rng = np.random.default_rng(11)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(150)]
    ours = _run_plait(NEW_PAIRS[name], kwargs, init, grads)
    theirs = _run_torch(getattr(torch.optim, name), {**kwargs, "foreach": False}, init, grads)
    _assert_same(ours, theirs)
    assert not np.allclose(ours[-1][0], init[0])


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adamax"])
def test_new_optimizers_defaults_are_torchs(name):
    import inspect

    ours = inspect.signature(NEW_PAIRS[name]).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    for key, param in theirs.items():
        if key in ("params", "foreach", "capturable", "differentiable"):
            continue
        assert key in ours, key
        assert ours[key].default == param.default, key


def test_nadam_float32_torch_scalars_stay_close():
    """With torch's float32 default dtype only mu_product's rounding differs."""
    init, grads = _problem(12)
    ours = _run_plait(NAdam, {"lr": 0.01}, init, grads)
    theirs = _run_torch(torch.optim.NAdam, {"lr": 0.01, "foreach": False}, init, grads)
    for x, y in zip(ours[-1], theirs[-1]):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-8)
