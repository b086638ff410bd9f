"""One seeded random generator shared by initializers, dropout and data shuffling."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import SerializationError

__all__ = ["check_rng_state", "get_rng", "manual_seed", "set_rng_state"]

_rng: np.random.Generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed Plait's global generator (like ``torch.manual_seed``) and return it.

    Args:
        seed: any seed ``numpy.random.default_rng`` takes (an int >= 0, a sequence of
            them, or None for fresh OS entropy). The stream is NumPy's PCG64, so the same
            seed gives different numbers than torch's.
    """
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng(rng: np.random.Generator | int | None = None) -> np.random.Generator:
    """Return ``rng`` itself, a new generator seeded with it (int), or the global one (None).

    Args:
        rng: default None (the global generator, see :func:`manual_seed`); a
            ``numpy.random.Generator`` is returned as is; an int seeds a new one.
    """
    if rng is None:
        return _rng
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


_PCG = ("PCG64", "PCG64DXSM")


def check_rng_state(
    state: Any, generator: np.random.Generator | None = None, *, source: Any = "RNG state",
    error: type[SerializationError] = SerializationError,
) -> dict[str, Any]:
    """``state`` checked to be a valid ``bit_generator.state`` for ``generator`` (default: the global one).

    For PCG64 (NumPy's default) every field is checked: ``state`` and ``inc`` integers in
    ``[0, 2**128)`` (``inc`` odd), ``has_uint32`` 0 or 1, ``uinteger`` in ``[0, 2**32)``, no
    other keys. Other bit generators are checked by NumPy on a scratch generator. Returns
    a plain copy; raises ``error`` naming ``source`` and the field.

    Args:
        state: the candidate state (read from a file: untrusted).
        generator: default None (the global generator); the generator whose bit-generator
            kind ``state`` must match.
        source: default ``"RNG state"``; names the state's origin (a file) in the error.
        error: default :class:`SerializationError`; the PlaitError subclass raised
            (checkpoints pass ``CheckpointError``).

    Raises:
        SerializationError: (or ``error``) any field is missing, unknown or out of range.
    """
    gen = get_rng() if generator is None else generator
    kind = type(gen.bit_generator).__name__
    if not isinstance(state, Mapping):
        raise error(f"{source}: an RNG state must be a mapping, got {type(state).__name__}")
    if state.get("bit_generator") != kind:
        raise error(f"{source}: bit_generator is {str(state.get('bit_generator'))[:40]!r}, expected {kind!r}")
    if kind not in _PCG:
        scratch = type(gen.bit_generator)()
        try:
            scratch.state = copy.deepcopy(dict(state))
        except (TypeError, ValueError, KeyError, OverflowError, IndexError) as exc:
            raise error(f"{source}: not a valid {kind} state: {exc}") from None
        return scratch.state
    fields = {"bit_generator": None, "state": None, "has_uint32": (0, 2), "uinteger": (0, 2**32)}
    inner_fields = {"state": (0, 2**128), "inc": (0, 2**128)}
    unknown = sorted(map(str, set(state) - set(fields)))
    if unknown:
        raise error(f"{source}: unknown RNG state keys {unknown}")
    inner = state.get("state")
    if not isinstance(inner, Mapping) or set(inner) != set(inner_fields):
        raise error(f"{source}: field 'state' must be a mapping with 'state' and 'inc', got {str(inner)[:60]}")
    out: dict[str, Any] = {"bit_generator": kind, "state": {}}
    for where, mapping, bounds in (("", state, fields), ("state.", inner, inner_fields)):
        for key, span in bounds.items():
            if span is None:
                continue
            value = mapping.get(key)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or not span[0] <= value < span[1]:
                raise error(f"{source}: field '{where}{key}' must be an integer in [{span[0]}, {span[1]}), got {str(value)[:60]}")
            (out["state"] if where else out)[key] = int(value)
    if out["state"]["inc"] % 2 == 0:
        raise error(f"{source}: field 'state.inc' must be odd (PCG's increment), got {out['state']['inc']}")
    return out


def set_rng_state(
    state: Any, generator: np.random.Generator | None = None, *, source: Any = "RNG state",
    error: type[SerializationError] = SerializationError,
) -> None:
    """Give ``generator`` (default: the global one) the state :func:`check_rng_state` accepts.

    Args:
        state: a ``bit_generator.state`` mapping (e.g. from a checkpoint).
        generator: default None (the global generator); the generator to set.
        source: default ``"RNG state"``; names the state's origin in the error.
        error: default :class:`SerializationError`; the PlaitError subclass raised.

    Raises:
        SerializationError: (or ``error``) ``state`` is not valid for ``generator``; the
            generator is left unchanged.
    """
    gen = get_rng() if generator is None else generator
    gen.bit_generator.state = check_rng_state(state, gen, source=source, error=error)
