"""Learning-rate schedulers against torch.optim.lr_scheduler: the lr sequence over 100 steps, and resuming."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from plait.core import Param, registry
from plait.core.errors import ConfigError
from plait.optim import (
    SGD,
    Adam,
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
    OneCycleLR,
    PolynomialLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

torch = pytest.importorskip("torch")
tsched = torch.optim.lr_scheduler

STEPS = 100
LRS = (0.1, 0.03)


def _optimizers(kind="sgd"):
    """The same two-group optimizer in plait and in torch."""
    ours = [Param(np.ones(2)), Param(np.ones(3))]
    theirs = [torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)]
    if kind == "sgd":
        return (
            SGD([{"params": ours[:1], "lr": LRS[0]}, {"params": ours[1:], "lr": LRS[1]}], momentum=0.9),
            torch.optim.SGD([{"params": theirs[:1], "lr": LRS[0]}, {"params": theirs[1:], "lr": LRS[1]}], momentum=0.9),
        )
    return (
        Adam([{"params": ours[:1], "lr": LRS[0]}, {"params": ours[1:], "lr": LRS[1]}]),
        torch.optim.Adam([{"params": theirs[:1], "lr": LRS[0]}, {"params": theirs[1:], "lr": LRS[1]}]),
    )


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def _sequence(opt, sched, steps=STEPS, metrics=None):
    """The lr (and momentum) of every group after construction and after each step."""
    lrs, momenta = [sched.get_last_lr()], [_momenta(opt)]
    for i in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        lrs.append(sched.get_last_lr())
        momenta.append(_momenta(opt))
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    return np.array(lrs), np.array(momenta)


def _assert_equal_sequences(ours, theirs):
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12, atol=0)


CASES = {
    "step": (lambda o: StepLR(o, step_size=7, gamma=0.5), lambda t: tsched.StepLR(t, step_size=7, gamma=0.5)),
    "multistep": (
        lambda o: MultiStepLR(o, milestones=[50, 10, 30, 30], gamma=0.3),
        lambda t: tsched.MultiStepLR(t, milestones=[50, 10, 30, 30], gamma=0.3),
    ),
    "exponential": (lambda o: ExponentialLR(o, gamma=0.97), lambda t: tsched.ExponentialLR(t, gamma=0.97)),
    "cosine": (lambda o: CosineAnnealingLR(o, T_max=100), lambda t: tsched.CosineAnnealingLR(t, T_max=100)),
    "cosine-restart-region": (
        lambda o: CosineAnnealingLR(o, T_max=30, eta_min=0.001),
        lambda t: tsched.CosineAnnealingLR(t, T_max=30, eta_min=0.001),
    ),
    "lambda": (lambda o: LambdaLR(o, lambda e: 0.95**e), lambda t: tsched.LambdaLR(t, lambda e: 0.95**e)),
    "lambda-per-group": (
        lambda o: LambdaLR(o, [lambda e: 1 / (1 + e), lambda e: 0.99**e]),
        lambda t: tsched.LambdaLR(t, [lambda e: 1 / (1 + e), lambda e: 0.99**e]),
    ),
    "warmup-cosine": (
        lambda o: LinearWarmup(o, 10, after=CosineAnnealingLR(o, T_max=90), start_factor=0.01),
        lambda t: tsched.SequentialLR(
            t, [tsched.LinearLR(t, start_factor=0.01, total_iters=10), tsched.CosineAnnealingLR(t, T_max=90)], milestones=[10]
        ),
    ),
    "warmup-step": (
        lambda o: LinearWarmup(o, 25, after=StepLR(o, step_size=10, gamma=0.5), start_factor=0.2),
        lambda t: tsched.SequentialLR(
            t, [tsched.LinearLR(t, start_factor=0.2, total_iters=25), tsched.StepLR(t, step_size=10, gamma=0.5)], milestones=[25]
        ),
    ),
    "warmup-only": (
        lambda o: LinearWarmup(o, 20, start_factor=0.1),
        lambda t: tsched.LinearLR(t, start_factor=0.1, end_factor=1.0, total_iters=20),
    ),
    "one-cycle": (
        lambda o: OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=100),
        lambda t: tsched.OneCycleLR(t, max_lr=[1.0, 0.5], total_steps=100),
    ),
    "one-cycle-linear-three-phase": (
        lambda o: OneCycleLR(o, max_lr=0.3, epochs=10, steps_per_epoch=10, pct_start=0.25, anneal_strategy="linear", three_phase=True),
        lambda t: tsched.OneCycleLR(t, max_lr=0.3, epochs=10, steps_per_epoch=10, pct_start=0.25, anneal_strategy="linear", three_phase=True),
    ),
    # torch's other schedules, decays and compositions
    "linear-warmup": (lambda o: LinearLR(o), lambda t: tsched.LinearLR(t)),
    "linear-decay": (
        lambda o: LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=60),
        lambda t: tsched.LinearLR(t, start_factor=1.0, end_factor=0.05, total_iters=60),
    ),
    "linear-to-zero": (
        lambda o: LinearLR(o, start_factor=0.5, end_factor=0.0, total_iters=30),
        lambda t: tsched.LinearLR(t, start_factor=0.5, end_factor=0.0, total_iters=30),
    ),
    "constant": (lambda o: ConstantLR(o), lambda t: tsched.ConstantLR(t)),
    "constant-long": (lambda o: ConstantLR(o, factor=0.1, total_iters=40), lambda t: tsched.ConstantLR(t, factor=0.1, total_iters=40)),
    "polynomial": (lambda o: PolynomialLR(o, total_iters=80, power=2.0), lambda t: tsched.PolynomialLR(t, total_iters=80, power=2.0)),
    "polynomial-default": (lambda o: PolynomialLR(o), lambda t: tsched.PolynomialLR(t)),
    "warm-restarts": (
        lambda o: CosineAnnealingWarmRestarts(o, T_0=10, eta_min=0.001),
        lambda t: tsched.CosineAnnealingWarmRestarts(t, T_0=10, eta_min=0.001),
    ),
    "warm-restarts-mult": (
        lambda o: CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2),
        lambda t: tsched.CosineAnnealingWarmRestarts(t, T_0=5, T_mult=2),
    ),
    "cyclic-triangular": (
        lambda o: CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.05], step_size_up=7),
        lambda t: tsched.CyclicLR(t, base_lr=0.01, max_lr=[0.1, 0.05], step_size_up=7),
    ),
    "cyclic-triangular2": (
        lambda o: CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5, step_size_down=10, mode="triangular2",
                           base_momentum=0.7, max_momentum=0.95),
        lambda t: tsched.CyclicLR(t, base_lr=0.01, max_lr=0.1, step_size_up=5, step_size_down=10, mode="triangular2",
                                  base_momentum=0.7, max_momentum=0.95),
    ),  # fmt: skip
    "cyclic-exp-range": (
        lambda o: CyclicLR(o, base_lr=0.001, max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.98, cycle_momentum=False),
        lambda t: tsched.CyclicLR(t, base_lr=0.001, max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.98, cycle_momentum=False),
    ),
    "sequential-three": (
        lambda o: SequentialLR(o, [LinearLR(o, 0.1, total_iters=10), ConstantLR(o, 0.5, 15), CosineAnnealingLR(o, T_max=50)],
                               milestones=[10, 40]),
        lambda t: tsched.SequentialLR(t, [tsched.LinearLR(t, 0.1, total_iters=10), tsched.ConstantLR(t, 0.5, 15),
                                          tsched.CosineAnnealingLR(t, T_max=50)], milestones=[10, 40]),
    ),  # fmt: skip
    "sequential-exp-step": (
        lambda o: SequentialLR(o, [ExponentialLR(o, 0.9), StepLR(o, 5, 0.5)], milestones=[20]),
        lambda t: tsched.SequentialLR(t, [tsched.ExponentialLR(t, 0.9), tsched.StepLR(t, 5, 0.5)], milestones=[20]),
    ),
    "chained": (
        lambda o: ChainedScheduler([ConstantLR(o, 0.1, 20), ExponentialLR(o, 0.97)]),
        lambda t: tsched.ChainedScheduler([tsched.ConstantLR(t, 0.1, 20), tsched.ExponentialLR(t, 0.97)]),
    ),
    "sequential-in-chained": (  # (torch cannot put a ChainedScheduler inside a SequentialLR)
        lambda o: ChainedScheduler([SequentialLR(o, [LinearLR(o, 0.2, total_iters=10), PolynomialLR(o, 60, 1.0)], [10]),
                                    MultiStepLR(o, [20, 50], 0.5)]),
        lambda t: tsched.ChainedScheduler([tsched.SequentialLR(t, [tsched.LinearLR(t, 0.2, total_iters=10),
                                                                   tsched.PolynomialLR(t, 60, 1.0)], [10]),
                                           tsched.MultiStepLR(t, [20, 50], 0.5)]),
    ),
    "sequential-in-sequential": (
        lambda o: SequentialLR(o, [SequentialLR(o, [ConstantLR(o, 0.5, 5), LinearLR(o, 0.3, total_iters=10)], [8]),
                                   ExponentialLR(o, 0.95)], [30]),
        lambda t: tsched.SequentialLR(t, [tsched.SequentialLR(t, [tsched.ConstantLR(t, 0.5, 5),
                                                                  tsched.LinearLR(t, 0.3, total_iters=10)], [8]),
                                          tsched.ExponentialLR(t, 0.95)], [30]),
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_lr_sequence_matches_torch(name):
    make_ours, make_theirs = CASES[name]
    opt, topt = _optimizers()
    ours = _sequence(opt, make_ours(opt))
    theirs = _sequence(topt, make_theirs(topt))
    _assert_equal_sequences(ours, theirs)
    if name.startswith("constant"):
        assert len(set(ours[0][:, 0])) == 2  # factor * base, then base
    else:
        assert len(set(ours[0][:, 0])) > 2  # the rate did change


def test_one_cycle_cycles_adam_beta1_like_torch():
    opt, topt = _optimizers("adam")
    ours = _sequence(opt, OneCycleLR(opt, max_lr=0.01, total_steps=100, base_momentum=0.8, max_momentum=0.9))
    theirs = _sequence(topt, tsched.OneCycleLR(topt, max_lr=0.01, total_steps=100, base_momentum=0.8, max_momentum=0.9))
    _assert_equal_sequences(ours, theirs)
    assert opt.param_groups[0]["betas"][1] == 0.999


def _metrics(seed=0):
    """Falls, then plateaus, then noise: triggers patience, cooldown and min_lr."""
    rng = np.random.default_rng(seed)
    falling = np.linspace(5.0, 1.0, 20)
    flat = np.full(30, 1.0)
    noisy = 1.0 + 0.01 * rng.standard_normal(50)
    return [float(v) for v in np.concatenate([falling, flat, noisy])]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"patience": 3, "factor": 0.5},
        {"mode": "max", "patience": 2, "factor": 0.5, "threshold": 0.01, "threshold_mode": "abs"},
        {"patience": 2, "cooldown": 4, "factor": 0.3, "min_lr": [0.01, 0.005]},
        {"patience": 0, "factor": 0.5, "min_lr": 0.02, "threshold_mode": "abs", "threshold": 0.001},
    ],
    ids=str,
)
def test_reduce_on_plateau_matches_torch(kwargs):
    metrics = _metrics()
    if kwargs.get("mode") == "max":
        metrics = [-m for m in metrics]
    opt, topt = _optimizers()
    ours = _sequence(opt, ReduceLROnPlateau(opt, **kwargs), metrics=metrics)
    theirs = _sequence(topt, tsched.ReduceLROnPlateau(topt, **kwargs), metrics=metrics)
    _assert_equal_sequences(ours, theirs)
    assert ours[0][-1, 0] < LRS[0]


# -- resume ---------------------------------------------------------------------------------------
RESUMABLE = {
    **{name: CASES[name][0] for name in ("step", "multistep", "cosine", "lambda", "warmup-cosine", "one-cycle")},
    **{name: CASES[name][0] for name in ("linear-decay", "constant", "polynomial", "warm-restarts-mult", "cyclic-triangular2",
                                         "sequential-three", "chained", "sequential-in-chained")},
    "plateau": lambda o: ReduceLROnPlateau(o, patience=2, factor=0.5, cooldown=1),
}


@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_resume_from_state_dicts_equals_uninterrupted(name):
    make = RESUMABLE[name]
    metrics = _metrics(1) if name == "plateau" else None

    def advance(opt, sched, steps, offset=0):
        out = []
        for i in range(steps):
            if metrics is None:
                sched.step()
            else:
                sched.step(metrics[offset + i])
            out.append(sched.get_last_lr() + _momenta(opt))
        return out

    opt = _optimizers()[0]
    full = advance(opt, make(opt), STEPS)

    opt = _optimizers()[0]
    sched = make(opt)
    head = advance(opt, sched, 40)
    opt_state = json.loads(json.dumps(opt.state_dict()))  # no arrays: nothing stepped the parameters
    sched_state = json.loads(json.dumps(sched.state_dict()))

    opt2 = _optimizers()[0]
    sched2 = make(opt2)  # build the scheduler first, then load the optimizer, then the scheduler
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    tail = advance(opt2, sched2, STEPS - 40, offset=40)
    np.testing.assert_array_equal(np.array(head + tail), np.array(full))


def test_last_epoch_resume_needs_initial_lr():
    opt = _optimizers()[0]
    with pytest.raises(ConfigError, match="initial_lr"):
        StepLR(opt, step_size=3, last_epoch=5)
    sched = StepLR(opt, step_size=3)
    for _ in range(5):
        sched.step()
    again = StepLR(opt, step_size=3, last_epoch=sched.last_epoch)  # initial_lr is there now
    assert again.last_epoch == 6 and again.base_lrs == list(LRS)


def test_step_with_epoch_uses_closed_form():
    opt = _optimizers()[0]
    sched = CosineAnnealingLR(opt, T_max=10, eta_min=0.01)
    sched.step(5)
    assert sched.get_last_lr()[0] == pytest.approx(0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi / 2)) / 2)


def test_lambda_state_dict_skips_functions_but_saves_callable_objects():
    class Decay:
        def __init__(self) -> None:
            self.rate = 0.9

        def __call__(self, epoch: int) -> float:
            return self.rate**epoch

    opt = _optimizers()[0]
    obj = Decay()
    sched = LambdaLR(opt, [lambda e: 1.0, obj])
    obj.rate = 0.5
    state = json.loads(json.dumps(sched.state_dict()))
    assert state["lr_lambdas"] == [None, {"rate": 0.5}]
    other = Decay()
    LambdaLR(_optimizers()[0], [lambda e: 1.0, other]).load_state_dict(state)
    assert other.rate == 0.5


# -- registry and errors ----------------------------------------------------------------------------
def test_every_scheduler_builds_from_a_config():
    opt = _optimizers()[0]
    configs = {
        "step_lr": {"step_size": 3},
        "multi_step_lr": {"milestones": [2, 4]},
        "exponential_lr": {"gamma": 0.9},
        "cosine_annealing_lr": {"T_max": 10},
        "linear_warmup": {"warmup_steps": 5, "after": {"type": "cosine_annealing_lr", "optimizer": opt, "T_max": 10}},
        "one_cycle_lr": {"max_lr": 0.1, "total_steps": 10},
        "reduce_lr_on_plateau": {"patience": 1},
        "lambda_lr": {"lr_lambda": lambda e: 1.0},
        "linear_lr": {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 5},
        "constant_lr": {"factor": 0.5},
        "polynomial_lr": {"total_iters": 10, "power": 2.0},
        "cosine_annealing_warm_restarts": {"T_0": 5},
        "cyclic_lr": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3},
        "sequential_lr": {"schedulers": [{"type": "constant_lr", "optimizer": opt}, {"type": "step_lr", "optimizer": opt,
                                                                                     "step_size": 2}], "milestones": [3]},
        "chained_scheduler": {"schedulers": [{"type": "constant_lr", "optimizer": opt}]},
    }
    assert sorted(configs) == registry.schedulers.names("*_*")
    for name, kwargs in configs.items():
        extra = {} if name == "chained_scheduler" else {"optimizer": opt}
        sched = registry.build({"type": name, **extra, **kwargs}, kind="schedulers")
        assert registry.schedulers.origin(name) == "plait-optim"
        sched.step(1.0) if name == "reduce_lr_on_plateau" else sched.step()
        assert len(sched.get_last_lr()) == 2


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda o: StepLR(o, step_size=0), "StepLR: step_size must be an integer >= 1, got 0"),
        (lambda o: StepLR(object(), step_size=2), "StepLR: expected an optimizer"),
        (lambda o: MultiStepLR(o, milestones=[3, -1]), "MultiStepLR: each milestone must be an integer >= 0"),
        (lambda o: ExponentialLR(o, gamma="fast"), "ExponentialLR: gamma must be a finite number"),
        (lambda o: CosineAnnealingLR(o, T_max=10, eta_min=-1.0), "eta_min"),
        (lambda o: LambdaLR(o, [lambda e: 1.0]), "got 1 lr_lambdas, but the optimizer has 2 parameter groups"),
        (lambda o: LambdaLR(o, 0.5), "lr_lambda must be callable"),
        (lambda o: LinearWarmup(o, 0), "warmup_steps must be an integer >= 1"),
        (lambda o: LinearWarmup(o, 5, start_factor=0.0), r"start_factor must be a finite number in \(0, 1\]"),
        (lambda o: LinearWarmup(o, 5, after=ReduceLROnPlateau(o)), "after must be an epoch-based LRScheduler"),
        (lambda o: LinearWarmup(o, 5, after=StepLR(_optimizers()[0], 2)), "must schedule the same optimizer"),
        (lambda o: OneCycleLR(o, max_lr=0.1), "give total_steps, or both epochs and steps_per_epoch"),
        (lambda o: OneCycleLR(o, max_lr=[0.1], total_steps=10), "max_lr has 1 values, but the optimizer has 2"),
        (lambda o: OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="cosine"), "anneal_strategy"),
        (lambda o: OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.5), "pct_start"),
        (lambda o: ReduceLROnPlateau(o, factor=1.0), "factor must be < 1"),
        (lambda o: ReduceLROnPlateau(o, mode="up"), "mode must be 'min' or 'max'"),
        (lambda o: ReduceLROnPlateau(o, threshold_mode="x"), "threshold_mode"),
        (lambda o: ReduceLROnPlateau(o, min_lr=[0.1]), "min_lr has 1 values"),
    ],
)
def test_bad_scheduler_arguments(make, match):
    with pytest.raises(ConfigError, match=match):
        make(_optimizers()[0])


def test_one_cycle_refuses_to_step_past_the_end():
    opt = _optimizers()[0]
    sched = OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ConfigError, match="stepped 4 times, but total_steps is 3"):
        sched.step()


def test_one_cycle_needs_momentum_to_cycle():
    class Plain(SGD):
        pass

    opt = Plain([Param(np.ones(2))], lr=0.1)
    del opt.defaults["momentum"]
    with pytest.raises(ConfigError, match="cycle_momentum=True needs an optimizer with momentum or betas"):
        OneCycleLR(opt, max_lr=0.1, total_steps=10)
    OneCycleLR(opt, max_lr=0.1, total_steps=10, cycle_momentum=False)
