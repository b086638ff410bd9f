"""Grad mode: whether forward passes keep what backward needs.

Three states, per thread:

* default: a module in training mode keeps its forward cache; a module in ``eval()`` mode
  keeps none (inference with a loaded model never grows memory);
* ``no_grad()``: nothing is kept, whatever the mode;
* ``enable_grad()``: everything is kept, in ``eval()`` mode too (input gradients of a
  model in eval mode, e.g. saliency maps or adversarial examples).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["enable_grad", "grad_mode", "is_grad_enabled", "no_grad", "set_grad_enabled"]

_state = threading.local()


def grad_mode() -> bool | None:
    """True inside :func:`enable_grad`, False inside :func:`no_grad`, None by default."""
    return getattr(_state, "enabled", None)


def is_grad_enabled() -> bool:
    """False inside :func:`no_grad`: layers then keep no forward cache."""
    return getattr(_state, "enabled", None) is not False


@contextmanager
def set_grad_enabled(mode: bool) -> Iterator[None]:
    """Keep forward caches (``True``, in every mode) or none (``False``) inside the block.

    Args:
        mode: True acts as :func:`enable_grad`, False as :func:`no_grad`; the previous
            state (per thread) comes back on exit. Unlike torch, it is a context manager
            only, not a plain function call.
    """
    previous = grad_mode()
    _state.enabled = bool(mode)
    try:
        yield
    finally:
        _state.enabled = previous


def no_grad() -> AbstractContextManager[None]:
    """Context manager for inference: forward caches nothing, so memory stays flat."""
    return set_grad_enabled(False)


def enable_grad() -> AbstractContextManager[None]:
    """Context manager: forward keeps its cache even for modules in ``eval()`` mode."""
    return set_grad_enabled(True)
