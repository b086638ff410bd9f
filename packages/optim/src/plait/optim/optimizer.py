"""The ``Optimizer`` base class: parameter groups, validation, per-parameter state, state dicts.

Optimizers are built like ``torch.optim`` ones::

    AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    SGD([{"params": body, "lr": 0.1}, {"params": head, "weight_decay": 0.0}], lr=0.01, momentum=0.9)

A subclass writes two methods: ``_init_state(p, group)`` (the buffers it keeps per
parameter) and ``_update(p, d, state, group)``, which changes ``p.data`` in place from
``d``, the gradient as the rule should see it (see :meth:`Optimizer._gradient`).

Regularisation, three ways (every optimizer takes all three):

* ``l2=c`` adds ``c * p`` to the gradient: the gradient of the penalty ``c/2 * ||p||^2``.
* ``l1=c`` adds ``c * sign(p)`` to the gradient: the (sub)gradient of ``c * ||p||_1``.
* ``weight_decay=c`` is torch's option of the same name. For SGD, Adam, RMSprop and
  Adagrad it is *coupled*: identical to ``l2=c`` (the penalty passes through the adaptive
  scaling, so large-gradient weights are decayed less). AdamW and Lion *decouple* it:
  ``p *= 1 - lr * c`` before the update, independent of the gradient statistics
  (Loshchilov & Hutter, 2019). With AdamW, ``l2`` still gives the coupled penalty.

Updates are in place: the state buffers are allocated on the first step, scratch space
is shared by parameters of equal shape and dtype, and every later step writes through
``out=`` arguments and in-place operators, allocating no parameter-sized array.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from plait.core import Param, get_array_module
from plait.core.errors import ConfigError, PlaitError, SerializationError, ShapeError

from ._optimizer_state import normalise_options, parse_state_dict
from ._state_checks import is_finite

__all__ = ["Optimizer", "ParamsT", "state_buffer"]

ParamsT = Iterable[Param] | Iterable[Mapping[str, Any]]

# Options whose values must be booleans / non-negative numbers, wherever they appear.
_BOOL_OPTIONS = ("maximize", "amsgrad", "nesterov", "centered")
_NON_NEGATIVE_OPTIONS = ("lr", "weight_decay", "eps", "l1", "l2")


class Optimizer:
    """Base class: holds ``param_groups`` (list of dicts), ``state`` (Param -> dict) and ``defaults``.

    Args:
        params: an iterable of Params (``model.parameters()``), or of parameter-group dicts
            ``{"params": [...], **options}``; a group's missing options come from ``defaults``.
        defaults: the subclass's options (``lr``, ``weight_decay``, ...); the keys
            ``lr``, ``weight_decay``, ``eps``, ``l1``, ``l2`` are checked to be finite and
            >= 0, ``maximize``/``amsgrad``/``nesterov``/``centered`` to be bools and
            ``betas`` a pair in [0, 1).

    Raises:
        ConfigError: ``params`` is empty, a single Param or dict, mixes Params and dicts, or
            holds a Param twice; or an option is of the wrong type or out of range.
    """

    #: True: ``weight_decay`` is added to the gradient (torch's SGD/Adam). False: decoupled (AdamW).
    _coupled_weight_decay: bool = True

    def __init__(self, params: ParamsT, defaults: Mapping[str, Any]) -> None:
        self.defaults: dict[str, Any] = normalise_options(dict(defaults))
        self._validate(self.defaults, "")
        self.state: dict[Param, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        self._scratch: dict[tuple[Any, ...], Any] = {}
        for group in self._as_groups(params):
            self.add_param_group(group)
        if not any(group["params"] for group in self.param_groups):
            raise ConfigError(f"{self.name}: got an empty parameter list")

    @property
    def name(self) -> str:
        return type(self).__name__

    # -- parameter groups -------------------------------------------------------------------
    def _as_groups(self, params: Any) -> list[Mapping[str, Any]]:
        expected = "an iterable of Params (e.g. model.parameters()) or of parameter-group dicts"
        if isinstance(params, (Param, Mapping)):
            raise ConfigError(f"{self.name}: expected {expected}, got a single {type(params).__name__}; wrap it in a list")
        try:
            items = list(params)
        except TypeError:
            raise ConfigError(f"{self.name}: expected {expected}, got {type(params).__name__}") from None
        if not items:
            raise ConfigError(f"{self.name}: got an empty parameter list")
        dicts = [isinstance(item, Mapping) for item in items]
        if all(dicts):
            return items
        if any(dicts):
            raise ConfigError(f"{self.name}: expected {expected}, got a mix of Params and dicts")
        return [{"params": items}]

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group ``{"params": [...], **options}``; missing options come from ``defaults``.

        Args:
            param_group: a dict with ``"params"`` (a Param or an ordered iterable of Params,
                none already in another group) and any options of this optimizer.

        Raises:
            ConfigError: no ``"params"``, a set of Params, an item that is not a Param, a
                Param already in a group, or an option out of range.
        """
        index = len(self.param_groups)
        where = f" (parameter group {index})"
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise ConfigError(f"{self.name}: a parameter group must be a dict with a 'params' entry, got {param_group!r}")
        params = param_group["params"]
        if isinstance(params, Param):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise ConfigError(f"{self.name}: parameters must come in an ordered sequence, not a set{where}")
        else:
            try:
                params = list(params)
            except TypeError:
                raise ConfigError(f"{self.name}: 'params' must be an iterable of Params, got {type(params).__name__}{where}") from None
        taken = {id(p) for group in self.param_groups for p in group["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Param):
                raise ConfigError(f"{self.name}: item {i} is a {type(p).__name__}, expected a plait.core.Param{where}")
            if id(p) in taken:
                raise ConfigError(f"{self.name}: {p!r} appears more than once (a parameter may belong to one group only){where}")
            taken.add(id(p))
        group = normalise_options({k: v for k, v in param_group.items() if k != "params"})
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._validate(group, where)
        group["params"] = params
        self.param_groups.append(group)

    # -- validation ---------------------------------------------------------------------------
    def _validate(self, group: Mapping[str, Any], where: str) -> None:
        for key in _NON_NEGATIVE_OPTIONS:
            if key in group:
                self._check_number(group, key, where)
        for key in _BOOL_OPTIONS:
            if key in group and not isinstance(group[key], (bool, np.bool_)):
                raise ConfigError(f"{self.name}: {key} must be True or False, got {group[key]!r}{where}")
        if "betas" in group:
            betas = group["betas"]
            if not isinstance(betas, tuple) or len(betas) != 2:
                raise ConfigError(f"{self.name}: betas must be a pair (beta1, beta2), got {betas!r}{where}")
            for i, beta in enumerate(betas):
                if not _is_real(beta) or not 0.0 <= beta < 1.0:
                    raise ConfigError(f"{self.name}: betas[{i}] must be in [0, 1), got {beta!r}{where}")
        self._check_options(group, where)

    def _check_options(self, group: Mapping[str, Any], where: str) -> None:
        """Checks of the options only this optimizer has (overridden by subclasses)."""

    def _check_number(self, group: Mapping[str, Any], key: str, where: str, low: float = 0.0, high: float = math.inf) -> None:
        value = group[key]
        if not _is_real(value) or not is_finite(value) or not low <= value <= high:
            bound = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
            raise ConfigError(f"{self.name}: {key} must be a finite number {bound}, got {value!r}{where}")

    # -- the step ------------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` when given one.

        Args:
            closure: default None; a callable that recomputes the loss (forward, backward)
                and returns it; it is called once, before the update.

        Raises:
            ShapeError: a Param's gradient does not have its data's shape.
        """
        loss = closure() if closure is not None else None
        states = self.state
        for group in self.param_groups:
            options = self._gradient_options(group)  # once per group, not per parameter
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = states.get(p)
                if state is None:
                    state = states[p] = self._init_state(p, group)
                self._update(p, self._gradient(p, options), state, group)
        return loss

    def _gradient_options(self, group: Mapping[str, Any]) -> tuple[Any, ...]:
        """``(decay, l1, maximize)`` of a group: what :meth:`_gradient` adds to ``p.grad``;
        ``()`` when none is active (the rule then reads ``p.grad`` as is).

        ``decay`` is ``l2`` plus ``weight_decay`` where this optimizer couples it to the gradient.
        """
        coupled = self._coupled_weight_decay and not group.get("decoupled_weight_decay", False)
        decay = group.get("l2", 0.0) + (group.get("weight_decay", 0.0) if coupled else 0.0)
        l1, maximize = group.get("l1", 0.0), group.get("maximize", False)
        return (decay, l1, maximize) if decay or l1 or maximize else ()

    def _init_state(self, p: Param, group: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def _update(self, p: Param, d: Any, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _gradient(self, p: Param, options: tuple[Any, ...]) -> Any:
        """``±grad + (l2 [+ coupled weight_decay]) * p + l1 * sign(p)``; ``p.grad`` itself when plain.

        ``options`` is the group's :meth:`_gradient_options`. The result lives in a scratch
        buffer (``p.grad`` is never modified); with no option active, ``p.grad`` is returned
        as is and must only be read.
        """
        g = p.grad
        if g.shape != p.data.shape:
            raise ShapeError(f"{self.name}: the gradient of {p!r} has shape {tuple(g.shape)}, expected {p.shape}")
        if not options:
            return g
        decay, l1, maximize = options
        xp = get_array_module(p.data)
        d = self._buffer(p, "grad")
        if decay:
            xp.multiply(p.data, decay, out=d)
            if maximize:
                d -= g
            else:
                d += g
        elif maximize:
            xp.negative(g, out=d)
        else:
            xp.copyto(d, g)
        if l1:
            t = self._buffer(p, "tmp")
            xp.sign(p.data, out=t)
            t *= l1
            d += t
        return d

    def _buffer(self, p: Param, role: str) -> Any:
        """A scratch array shaped like ``p.data``, shared by every parameter of that shape and dtype."""
        data = p.data
        if type(data) is np.ndarray:  # the common case: a cheaper key
            key: tuple[Any, ...] = (role, data.shape, data.dtype)
        else:
            key = (role, type(data), data.shape, data.dtype.str, str(getattr(data, "device", "")))
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = get_array_module(data).empty_like(data)
        return buf

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zero every gradient in place, or drop them with ``set_to_none=True``.

        torch's default is ``True``; Plait keeps ``False`` because its backward passes add
        into the existing gradient buffer (``Param.accumulate``), so dropping it only
        costs a fresh allocation per parameter and step (measured: no gain for a
        784-512-256-10 MLP, 3.5x slower gradient bookkeeping for a 32-64-64-10 one).
        Either way works with every optimizer: a parameter whose ``grad`` is None is
        skipped by :meth:`step` and by ``clip_grad_norm_``, as in torch.

        Args:
            set_to_none: default False (torch's is True, see above); True sets each ``grad``
                to None instead of zeroing it.
        """
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_grad(set_to_none=set_to_none)

    def config(self) -> dict[str, Any]:
        """``{"type": registered name, **defaults}`` (JSON-able; parameters and per-group
        options are not part of it). Rebuild with
        ``registry.build({**cfg, "params": params}, kind="optimizers")``."""
        from plait.core import registry  # noqa: PLC0415 - the registry loads plugins lazily

        found = registry.name_of(type(self))
        if found is None or found[0] != "optimizers":
            raise ConfigError(f"{self.name}: config() needs the class to be registered as an optimizer")
        return {"type": found[1], **{k: list(v) if isinstance(v, tuple) else v for k, v in self.defaults.items()}}

    # -- state dicts ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: array copy | number}}, "param_groups": [{..., "params": [indices]}]}``.

        Parameters are numbered in group order, as in torch; arrays are copies, everything
        else is plain JSON-able Python (see :func:`plait.optim.split_state_dict`).
        """
        index: dict[Param, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(p, len(index)) for p in group["params"]]
            groups.append(packed)
        state = {
            index[p]: {name: _export_value(value) for name, value in values.items()}
            for p, values in self.state.items()
            if p in index
        }
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore options and buffers saved by :meth:`state_dict` (keys may be strings after JSON).

        Everything is checked before anything changes: only known keys (the entries
        ``state``/``param_groups``, this optimizer's options and the schedulers' group keys,
        the buffers :meth:`state_names` lists), parameter indices that are plain integers,
        counters that are integers in ``[0, 2**53]``, buffers of the parameter's shape with a
        real, finite dtype (complex state is refused, not truncated). A damaged state dict
        raises :class:`SerializationError` naming the field; the optimizer is left as it was.

        Args:
            state_dict: what :meth:`state_dict` returned (or :func:`merge_state_dict`
                rebuilt from a file); parameters match by their index in group order.

        Raises:
            SerializationError: a missing, unknown or malformed entry, another number of
                groups or parameters, or a buffer of the wrong shape or dtype.
        """
        try:
            new_groups, new_state = parse_state_dict(self, state_dict)
        except PlaitError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
            raise SerializationError(f"{self.name}: malformed state dict ({type(exc).__name__}: {exc})") from exc
        self.param_groups = new_groups
        self.state = new_state

    def state_names(self, p: Param, group: Mapping[str, Any]) -> set[str]:
        """The buffer names this optimizer may keep for ``p``: those of a fresh state and :attr:`optional_state`.

        Args:
            p: the parameter.
            group: the parameter group ``p`` belongs to (its options decide the buffers,
                e.g. ``amsgrad``).
        """
        return set(self._init_state(p, group)) | set(self.optional_state)

    #: Buffers a subclass creates after the first step (e.g. when an option is switched on later).
    optional_state: tuple[str, ...] = ()

    def __repr__(self) -> str:
        lines = [f"{self.name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"


def state_buffer(state: dict[str, Any], name: str, like: Any) -> Any:
    """``state[name]``, created as zeros shaped like ``like`` if absent (an option switched on later)."""
    buf = state.get(name)
    if buf is None:
        buf = state[name] = get_array_module(like).zeros_like(like)
    return buf


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _export_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "copy") and hasattr(value, "shape"):
        return value.copy()
    return value
