"""``param_groups_no_decay``: the usual split into decayed weights and undecayed biases/norms."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from plait.core import Param
from plait.core.errors import ConfigError

__all__ = ["param_groups_no_decay"]


def param_groups_no_decay(model_or_named_params: Any, weight_decay: float) -> list[dict[str, Any]]:
    """Two parameter groups: ``[{"params": decayed, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]``.

    ``rest`` holds every parameter with fewer than two dimensions (biases, the weights of
    LayerNorm/BatchNorm/RMSNorm, scalars) and any whose name ends in ``bias``; matrices,
    convolution kernels and embeddings are decayed. Pass a Module (anything with
    ``named_parameters()``) or an iterable of ``(name, Param)`` pairs::

        AdamW(param_groups_no_decay(model, 0.1), lr=3e-4)

    Both groups are always returned (one may be empty), so their order is fixed.

    Args:
        model_or_named_params: a Module, or an iterable of ``(name, Param)`` pairs.
        weight_decay: the decay of the first group, a finite number >= 0.

    Raises:
        ConfigError: a negative or non-finite ``weight_decay``, or items that are not
            ``(name, Param)`` pairs.
    """
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not math.isfinite(weight_decay) or weight_decay < 0:
        raise ConfigError(f"param_groups_no_decay: weight_decay must be a finite number >= 0, got {weight_decay!r}")
    named = model_or_named_params.named_parameters() if hasattr(model_or_named_params, "named_parameters") else model_or_named_params
    if not isinstance(named, Iterable):
        raise ConfigError(f"param_groups_no_decay: expected a Module or (name, Param) pairs, got {type(named).__name__}")
    decay: list[Param] = []
    no_decay: list[Param] = []
    for item in named:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Param)):
            raise ConfigError(f"param_groups_no_decay: expected (name, Param) pairs, got {item!r}")
        name, p = item
        (no_decay if p.data.ndim < 2 or str(name).endswith("bias") else decay).append(p)
    return [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]
