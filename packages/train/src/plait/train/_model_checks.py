"""Mistakes a torch or Keras user makes that train worse without an error, warned about once.

train cannot import layers (``train -> optim -> core``): modules and losses are recognised
by the names they are registered under.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["DoubleActivationWarning", "check_output_activation"]

# (last module's registered name, loss's registered name) -> what to say.
_REDUNDANT = {
    ("softmax", "cross_entropy"): "CrossEntropyLoss applies log_softmax to its input itself, so the model's final "
    "Softmax makes it a double softmax: gradients shrink and training slows or stalls. Remove the final Softmax "
    "(apply it only when you want probabilities), or keep it and use NLLLoss on its log",
    ("log_softmax", "cross_entropy"): "CrossEntropyLoss applies log_softmax to its input itself, so the model's "
    "final LogSoftmax is applied twice (harmless but wasted work). Remove it, or keep it and use NLLLoss",
    ("sigmoid", "bce_with_logits"): "BCEWithLogitsLoss applies the sigmoid itself, so the model's final Sigmoid "
    "makes it a double sigmoid that trains badly. Remove the final Sigmoid, or keep it and use BCELoss",
}


class DoubleActivationWarning(UserWarning):
    """The model's output activation is applied again by the loss."""


def _name(obj: Any, kind: str) -> str | None:
    from plait.core import registry  # noqa: PLC0415 - the registry loads plugins lazily

    found = registry.name_of(type(obj))
    return found[1] if found is not None and found[0] == kind else None


def last_module(model: Any) -> Any:
    """The module that produces a ``Sequential``'s output (nested ones followed); the model otherwise."""
    seen = 0
    while _name(model, "layers") == "sequential" and seen < 100:
        children = list(vars(model).get("_modules", {}).values())
        if not children:
            break
        model, seen = children[-1], seen + 1
    return model


def check_output_activation(model: Any, loss: Any) -> str | None:
    """Warn (once per model and loss) when the loss repeats the model's output activation;
    returns the message (None when all is well)."""
    loss_name = _name(loss, "losses")
    if loss_name is None:
        return None
    message = _REDUNDANT.get((_name(last_module(model), "layers"), loss_name))
    if message is not None:
        warnings.warn(f"Trainer: {message}.", DoubleActivationWarning, stacklevel=3)
    return message
