"""NAdam / RAdam / Adamax and the new schedulers: registry, config() and state_dict round trips,
validation; zero_grad(set_to_none=True) with every registered optimizer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from plait.core import ConfigError, Param, registry
from plait.optim import (
    SGD,
    Adam,
    Adamax,
    ChainedScheduler,
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LinearWarmup,
    MultiStepLR,
    NAdam,
    PolynomialLR,
    RAdam,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
    build_scheduler,
    clip_grad_norm_,
    merge_state_dict,
    scheduler_config,
    split_state_dict,
)

SHAPES = [(4, 3), (5,)]
FIRST_PARTY = [n for n in registry.optimizers.names() if registry.optimizers.origin(n) == "plait-optim"]


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [Param(rng.standard_normal(s)) for s in SHAPES]


def _grads(step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(s) for s in SHAPES]


def _run(opt, params, steps, start=0):
    for i in range(start, start + steps):
        for p, g in zip(params, _grads(i)):
            p.grad = g
        opt.step()
    return [p.data.copy() for p in params]


NEW = [
    ("nadam", NAdam, {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "momentum_decay": 0.01}),
    ("radam", RAdam, {"lr": 0.01, "weight_decay": 0.1}),
    ("adamax", Adamax, {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.05}),
]


@pytest.mark.parametrize("name, cls, kwargs", NEW, ids=[n for n, _, _ in NEW])
def test_new_optimizers_registered_and_config_round_trips(name, cls, kwargs):
    assert registry.optimizers.get(name) is cls and registry.optimizers.origin(name) == "plait-optim"
    opt = cls(_params(), **kwargs)
    cfg = json.loads(json.dumps(opt.config()))
    assert cfg["type"] == name
    again = registry.build({**cfg, "params": _params()}, kind="optimizers")
    assert type(again) is cls and again.defaults == opt.defaults and again.config() == opt.config()


@pytest.mark.parametrize("name", FIRST_PARTY)
def test_every_registered_optimizer_has_a_config(name):
    opt = registry.build({"type": name, "params": _params(), "lr": 0.01}, kind="optimizers")
    cfg = opt.config()
    assert cfg["type"] == name and cfg["lr"] == 0.01
    assert registry.build({**json.loads(json.dumps(cfg)), "params": _params()}, kind="optimizers").defaults == opt.defaults


@pytest.mark.parametrize("name, cls, kwargs", NEW, ids=[n for n, _, _ in NEW])
def test_new_optimizers_resume_exactly_from_a_json_state_dict(name, cls, kwargs):
    params = _params()
    full = _run(cls(params, **kwargs), params, 20)

    params = _params()
    opt = cls(params, **kwargs)
    _run(opt, params, 8)
    meta, arrays = split_state_dict(opt.state_dict())
    meta = json.loads(json.dumps(meta))
    saved = [p.data.copy() for p in params]

    params2 = [Param(x) for x in saved]
    opt2 = cls(params2, **kwargs)
    opt2.load_state_dict(merge_state_dict(meta, arrays))
    resumed = _run(opt2, params2, 12, start=8)
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", FIRST_PARTY)
def test_set_to_none_works_with_every_registered_optimizer(name):
    """zero_grad(set_to_none=True) between steps gives the same result as zeroing in place,
    and a parameter left without a gradient is not touched, as in torch."""
    results = []
    for set_to_none in (False, True):
        params = _params()
        frozen = Param(np.ones(3))
        opt = registry.build({"type": name, "params": [*params, frozen], "lr": 0.01}, kind="optimizers")
        for i in range(6):
            for p, g in zip(params, _grads(i)):
                p.accumulate(g)
            clip_grad_norm_([*params, frozen], 10.0)
            opt.step()
            opt.zero_grad(set_to_none=set_to_none)
            assert all((p.grad is None) == set_to_none for p in params)
        np.testing.assert_array_equal(frozen.data, np.ones(3))
        assert frozen not in opt.state
        results.append([p.data.copy() for p in params])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: NAdam(p, momentum_decay=-1.0), "NAdam: momentum_decay must be a finite number >= 0"),
        (lambda p: NAdam(p, decoupled_weight_decay=1), "decoupled_weight_decay must be True or False"),
        (lambda p: RAdam(p, betas=(0.9, 1.0)), r"betas\[1\] must be in \[0, 1\)"),
        (lambda p: Adamax(p, eps=-1e-8), "Adamax: eps must be a finite number >= 0"),
        (lambda p: Adamax(p, lr=float("nan")), "Adamax: lr"),
    ],
)
def test_new_optimizers_refuse_bad_arguments(make, match):
    with pytest.raises(ConfigError, match=match):
        make(_params())


# -- schedulers -----------------------------------------------------------------------------------
def _opt():
    a, b = _params()
    return SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.03}], momentum=0.9)


SCHEDULES = {
    "linear_lr": lambda o: LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=12),
    "constant_lr": lambda o: ConstantLR(o, factor=0.25, total_iters=7),
    "polynomial_lr": lambda o: PolynomialLR(o, total_iters=20, power=0.5),
    "cosine_annealing_warm_restarts": lambda o: CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2, eta_min=0.001),
    "cyclic_lr": lambda o: CyclicLR(o, base_lr=[0.01, 0.001], max_lr=0.2, step_size_up=3, step_size_down=5, mode="triangular2"),
    "sequential_lr": lambda o: SequentialLR(  # (a nested SequentialLR can only come first, as in torch)
        o, [SequentialLR(o, [ConstantLR(o, 0.5, 3), LinearLR(o, 0.2, 1.0, 4)], [6]), PolynomialLR(o, 10, 2.0)], [9]
    ),
    "chained_scheduler": lambda o: ChainedScheduler([ConstantLR(o, 0.5, 6), PolynomialLR(o, 20, 1.0)]),
}


def _lrs(opt, sched, steps):
    out = []
    for _ in range(steps):
        sched.step()
        out.append(sched.get_last_lr() + [g["momentum"] for g in opt.param_groups])
    return out


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_scheduler_config_round_trips(name):
    opt = _opt()
    sched = SCHEDULES[name](opt)
    assert registry.schedulers.get(name) is type(sched)
    cfg = json.loads(json.dumps(sched.config()))
    assert cfg["type"] == name
    opt2 = _opt()
    again = build_scheduler(cfg, opt2)
    assert type(again) is type(sched) and again.config() == sched.config()
    assert _lrs(opt2, again, 30) == _lrs(opt, sched, 30)


OLDER = {
    "step_lr": lambda o: StepLR(o, 3, 0.5),
    "multi_step_lr": lambda o: MultiStepLR(o, [4, 2, 9], 0.3),
    "exponential_lr": lambda o: ExponentialLR(o, 0.9),
    "cosine_annealing_lr": lambda o: CosineAnnealingLR(o, T_max=12, eta_min=0.001),
    "linear_warmup": lambda o: LinearWarmup(o, 4, after=CosineAnnealingLR(o, T_max=20), start_factor=0.1),
    "warmup_then_cosine": lambda o: SequentialLR(o, [LinearLR(o, 0.01, total_iters=5), CosineAnnealingLR(o, T_max=25)], [5]),
}


@pytest.mark.parametrize("name", sorted(OLDER))
def test_older_schedulers_have_a_config_through_scheduler_config(name):
    opt = _opt()
    sched = OLDER[name](opt)
    cfg = json.loads(json.dumps(scheduler_config(sched)))
    opt2 = _opt()
    again = build_scheduler(cfg, opt2)
    assert type(again) is type(sched) and scheduler_config(again) == scheduler_config(sched)
    assert _lrs(opt2, again, 30) == _lrs(opt, sched, 30)


def test_scheduler_without_json_form_says_so():
    opt = _opt()
    with pytest.raises(ConfigError, match="LambdaLR: this scheduler has no config"):
        ChainedScheduler([LambdaLR(opt, lambda e: 1.0)]).config()
    with pytest.raises(ConfigError, match="custom scale_fn has no JSON form"):
        CyclicLR(opt, 0.01, 0.1, scale_fn=lambda x: 1.0).config()


def test_warm_restarts_fractional_epochs_like_torch():
    torch = pytest.importorskip("torch")
    opt = _opt()
    t = torch.optim.SGD([torch.ones(2, requires_grad=True)], lr=0.1)
    ours = CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2)
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(t, T_0=3, T_mult=2)
    for epoch in np.arange(0, 20, 0.25):
        ours.step(float(epoch))
        theirs.step(float(epoch))
        assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0], rel=1e-12, abs=0)
    with pytest.raises(ConfigError, match="finite epoch >= 0"):
        ours.step(-1)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda o: LinearLR(o, start_factor=0.0), r"start_factor must be a finite number in \(0, 1\]"),
        (lambda o: LinearLR(o, end_factor=1.5), "end_factor"),
        (lambda o: LinearLR(o, total_iters=0), "total_iters must be an integer >= 1"),
        (lambda o: ConstantLR(o, factor=2.0), "factor"),
        (lambda o: PolynomialLR(o, power=-1.0), "power"),
        (lambda o: CosineAnnealingWarmRestarts(o, T_0=0), "T_0 must be an integer >= 1"),
        (lambda o: CosineAnnealingWarmRestarts(o, T_0=3, T_mult=1.5), "T_mult must be an integer"),
        (lambda o: CyclicLR(o, 0.01, 0.1, mode="sine"), "mode must be one of"),
        (lambda o: CyclicLR(o, 0.01, [0.1], step_size_up=3), "max_lr has 1 values, but the optimizer has 2"),
        (lambda o: CyclicLR(Adagrad_like(o), 0.01, 0.1), "cycle_momentum=True needs an optimizer with momentum or betas"),
        (lambda o: SequentialLR(o, [], []), "at least one scheduler"),
        (lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(o, 3)], [4, 8]), "one milestone fewer than schedulers"),
        (lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(_opt(), 3)], [4]), r"schedulers\[1\] \(StepLR\) schedules another"),
        (lambda o: SequentialLR(o, [StepLR(o, 2), ReduceLROnPlateau(o)], [4]), "not ReduceLROnPlateau"),
        (lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(o, 2), StepLR(o, 2)], [8, 4]), "increasing order"),
        (lambda o: ChainedScheduler([StepLR(o, 2), StepLR(_opt(), 2)]), "schedules another optimizer"),
    ],
)
def test_bad_scheduler_arguments(make, match):
    with pytest.raises(ConfigError, match=match):
        make(_opt())


def Adagrad_like(opt):  # noqa: N802 - reads like a constructor in the table above
    """An optimizer without momentum or betas."""
    return registry.build({"type": "adagrad", "params": [Param(np.ones(2)), Param(np.ones(2))], "lr": 0.1}, kind="optimizers")


def test_composite_state_dicts_resume_and_refuse_damage():
    opt = _opt()
    sched = SCHEDULES["sequential_lr"](opt)
    _lrs(opt, sched, 7)
    state = json.loads(json.dumps(sched.state_dict()))
    rest = _lrs(opt, sched, 10)
    opt2 = _opt()
    again = SCHEDULES["sequential_lr"](opt2)
    opt2.load_state_dict(json.loads(json.dumps(opt.state_dict())))  # restores lrs/initial_lr
    again.load_state_dict(state)
    for group, lr in zip(opt2.param_groups, state["_last_lr"]):
        group["lr"] = lr
    assert _lrs(opt2, again, 10) == rest
    from plait.core import SerializationError

    with pytest.raises(SerializationError, match="one state per scheduler"):
        again.load_state_dict({**state, "_schedulers": state["_schedulers"][:1]})
    with pytest.raises(SerializationError, match=r"unknown state dict keys \['bogus'\]"):
        again.load_state_dict({**state, "bogus": 1})


def test_adam_family_betas_cycle_with_cyclic_lr():
    opt = Adam(_params(), lr=0.1)
    CyclicLR(opt, 0.01, 0.1, step_size_up=2).step()
    assert opt.param_groups[0]["betas"][0] != 0.9 and opt.param_groups[0]["betas"][1] == 0.999


@pytest.mark.parametrize("name, cls, kwargs", NEW + [("radam-decoupled", RAdam, {"weight_decay": 0.1, "decoupled_weight_decay": True,
                                                                           "l1": 0.01})], ids=lambda v: v if isinstance(v, str) else "")  # fmt: skip
def test_new_optimizers_step_allocates_no_parameter_sized_arrays(name, cls, kwargs):
    import tracemalloc

    n = 20_000  # 160 kB per float64 array
    params = [Param(np.random.default_rng(0).standard_normal(n)), Param(np.ones((100, n // 100)))]
    for p in params:
        p.accumulate(np.random.default_rng(1).standard_normal(p.shape))
    opt = cls(params, **kwargs)
    for _ in range(8):  # RAdam switches branch once rho_t > 5; both are warmed up
        opt.step()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(3):
            opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < params[0].data.nbytes // 4, f"a step allocated {peak - before} bytes"
