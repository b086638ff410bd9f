"""Optimizers, learning-rate schedules and gradient clipping, with torch.optim's semantics.

    from plait.optim import AdamW, CosineAnnealingLR, LinearWarmup, clip_grad_norm_, param_groups_no_decay

    opt = AdamW(param_groups_no_decay(model, 0.1), lr=3e-4)
    sched = LinearWarmup(opt, 100, after=CosineAnnealingLR(opt, T_max=900), start_factor=0.01)
    ...
    clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); sched.step(); opt.zero_grad()
"""

from __future__ import annotations

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adam_variants import Adamax, NAdam, RAdam
from .clip import NonFiniteNormError, clip_grad_norm_, clip_grad_value_
from .composite import ChainedScheduler, SequentialLR, build_scheduler
from .cyclic_schedules import CosineAnnealingWarmRestarts, CyclicLR
from .factor_schedules import ConstantLR, LinearLR, PolynomialLR, scheduler_config
from .groups import param_groups_no_decay
from .lion import Lion
from .lr_scheduler import LRScheduler
from .one_cycle import OneCycleLR
from .optimizer import Optimizer
from .plateau import ReduceLROnPlateau
from .rmsprop import RMSprop
from .schedules import CosineAnnealingLR, ExponentialLR, LambdaLR, MultiStepLR, StepLR
from .serialization import merge_state_dict, split_state_dict
from .sgd import SGD
from .warmup import LinearWarmup

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "lion": Lion,
    "nadam": NAdam,
    "radam": RAdam,
    "adamax": Adamax,
}

SCHEDULERS: dict[str, type] = {
    "step_lr": StepLR,
    "multi_step_lr": MultiStepLR,
    "exponential_lr": ExponentialLR,
    "cosine_annealing_lr": CosineAnnealingLR,
    "linear_warmup": LinearWarmup,
    "one_cycle_lr": OneCycleLR,
    "reduce_lr_on_plateau": ReduceLROnPlateau,
    "lambda_lr": LambdaLR,
    "linear_lr": LinearLR,
    "constant_lr": ConstantLR,
    "polynomial_lr": PolynomialLR,
    "cosine_annealing_warm_restarts": CosineAnnealingWarmRestarts,
    "cyclic_lr": CyclicLR,
    "sequential_lr": SequentialLR,
    "chained_scheduler": ChainedScheduler,
}

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "LinearWarmup",
    "Lion",
    "MultiStepLR",
    "NAdam",
    "NonFiniteNormError",
    "OneCycleLR",
    "Optimizer",
    "PolynomialLR",
    "RAdam",
    "RMSprop",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "build_scheduler",
    "clip_grad_norm_",
    "clip_grad_value_",
    "merge_state_dict",
    "scheduler_config",
    "param_groups_no_decay",
    "split_state_dict",
]
