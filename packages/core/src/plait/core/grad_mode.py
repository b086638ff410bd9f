"""``no_grad()``: run forward passes without keeping anything for backward."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["is_grad_enabled", "no_grad", "set_grad_enabled"]

_state = threading.local()


def is_grad_enabled() -> bool:
    """False inside :func:`no_grad`: layers then keep no forward cache."""
    return getattr(_state, "enabled", True)


@contextmanager
def set_grad_enabled(mode: bool) -> Iterator[None]:
    previous = is_grad_enabled()
    _state.enabled = bool(mode)
    try:
        yield
    finally:
        _state.enabled = previous


def no_grad() -> AbstractContextManager[None]:
    """Context manager for inference: forward caches nothing, so memory stays flat."""
    return set_grad_enabled(False)
