"""Checking a ``DataLoader`` state dict before any of it is used (it may come from a file)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from plait.core import ConfigError, SerializationError

__all__ = ["LOADER_STATE_KEYS", "check_loader_state"]

#: The entries of ``DataLoader.state_dict()``; "generator" is the only one required.
LOADER_STATE_KEYS = ("generator", "position", "num_samples", "batch_size", "shuffle", "drop_last")

_WHO = "DataLoader.load_state_dict"


def check_loader_state(loader: Any, state: Any) -> tuple[dict[str, Any], int]:
    """``(generator state, position)`` from ``state``, after checking every entry.

    Raises :class:`~plait.core.SerializationError` for a malformed state (not a dict, an
    unknown key, a bad generator state or position) and :class:`~plait.core.ConfigError`
    when it was saved by a loader set up differently (other dataset length, batch size,
    shuffle or drop_last): resuming from it would replay other batches.
    """
    if not isinstance(state, Mapping):
        raise SerializationError(f"{_WHO}: expected a dict with keys {list(LOADER_STATE_KEYS)}, got {type(state).__name__}")
    unknown = sorted(str(k) for k in state if k not in LOADER_STATE_KEYS)
    if unknown:
        raise SerializationError(f"{_WHO}: unknown key(s) {unknown}; a loader state has {list(LOADER_STATE_KEYS)}")
    if "generator" not in state:
        raise SerializationError(f"{_WHO}: the state has no 'generator' entry")
    for key, mine in (
        ("num_samples", len(loader.dataset)),
        ("batch_size", loader.batch_size),
        ("shuffle", loader.shuffle),
        ("drop_last", loader.drop_last),
    ):
        if key not in state:
            continue
        value = state[key]
        is_flag = key in ("shuffle", "drop_last")
        if (isinstance(value, bool) != is_flag) or not isinstance(value, (int, np.integer)):
            kind = "True or False" if is_flag else "an integer"
            raise SerializationError(f"{_WHO}: {key} must be {kind}, got {value!r}")
        if value != mine:
            raise ConfigError(f"{_WHO}: saved {key}={value!r} but this loader has {mine!r}")
    position = state.get("position", 0)
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or not 0 <= position <= len(loader):
        raise SerializationError(f"{_WHO}: position must be an integer in [0, {len(loader)}], got {position!r}")
    return _check_generator(loader.generator, state["generator"]), int(position)


def _check_generator(generator: np.random.Generator, saved: Any) -> dict[str, Any]:
    """A copy of ``saved`` once a scratch generator of the same kind accepted it."""
    kind = type(generator.bit_generator).__name__
    if not isinstance(saved, Mapping) or saved.get("bit_generator") != kind:
        got = saved.get("bit_generator") if isinstance(saved, Mapping) else type(saved).__name__
        raise SerializationError(f"{_WHO}: generator must be a {kind} bit-generator state, got {got!r}")
    try:
        state = copy.deepcopy(dict(saved))
        probe = type(generator.bit_generator)()
        probe.state = state
    except (TypeError, ValueError, KeyError, OverflowError, RecursionError) as exc:
        raise SerializationError(f"{_WHO}: generator state is malformed ({type(exc).__name__}: {exc})") from exc
    return state
