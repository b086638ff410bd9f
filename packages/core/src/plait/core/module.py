"""``Module``: the base class of every layer and model.

Bookkeeping lives here, written once; the maths lives in each layer's pure functions.

The leaf-layer contract
-----------------------
A leaf layer (Linear, LayerNorm, Conv2d, ...) writes no ``forward``/``backward``. It names
its pure maths pair and the Params that pair takes::

    class Linear(Module):
        maths = (linear_forward, linear_backward)   # from _dense_maths.py
        maths_params = ("weight", "bias")

    y, ctx = linear_forward(x, weight, bias, **options)
    dx, dweight, dbias = linear_backward(dy, ctx, weight, bias, need_dx=True)

and may override :meth:`check_input` (validate/cast ``x``) and :meth:`options` (keyword
options of the pair). ``Module.forward`` then checks the input, calls the forward
function and keeps ``ctx``; ``Module.backward`` checks ``dy`` against the output's shape,
casts it to the output's dtype, calls the backward function (``need_dx`` is False when
the input needs no gradient, see :meth:`requires_input_grad`) and accumulates each
returned gradient into its Param. A Param that is ``None`` (``bias=False``) is passed as
``None`` and its gradient ignored.

Composites (containers, attention, recurrent stacks, blocks, models) and layers written
the older way override ``forward`` and ``backward`` themselves and use
:meth:`save_for_backward` / :meth:`saved`; both kinds mix freely.

Weight sharing: every forward call *pushes* its cache onto a stack and every backward
call *pops* the newest one. A module applied twice (a Siamese encoder, a block reused
in a loop) therefore needs its backward calls in the reverse order of its forward calls,
exactly as reverse-mode differentiation does; parameter gradients of the two uses add
up. A cache is kept in training mode unless inside :func:`plait.core.no_grad`, and in
``eval()`` mode only inside :func:`plait.core.enable_grad`; a stack longer than
``max_saved`` drops its oldest entry with a warning naming ``no_grad()``.

Constructor arguments: ``Module.__new__`` records the arguments a module was built with
(bound to the signature of its class's ``__init__``, inherited or its own), so
``config()`` and saving work for every subclass, with or without its own ``__init__``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._module_support import _NO_OPTIONS, bind_init_args, warn_plain_container, warn_unconsumed
from .checks import check_array, check_output_grad, dtype_of
from .errors import ConfigError, PlaitError
from .grad_mode import _state as _grad_state
from .jsonable import to_jsonable
from .module_state import IncompatibleKeys, ModuleState
from .param import Param

__all__ = ["IncompatibleKeys", "Module"]



class Module(ModuleState):
    """Base class of layers and models (like ``torch.nn.Module``, without autograd)."""

    training: bool
    #: False when backward need not return the input gradient (see :meth:`requires_input_grad`).
    needs_input_grad: bool = True
    #: Forward caches one module keeps waiting for backward; past it the oldest is dropped
    #: with a warning naming ``no_grad()`` (a forgotten ``no_grad`` cannot grow memory forever).
    max_saved: int = 1024
    #: True for layers that only reshape their input: a container passes "no input gradient
    #: needed" through them to the next layer (they then return None from backward).
    shape_only: bool = False

    # -- construction --------------------------------------------------------------
    def __new__(cls, *args: Any, **kwargs: Any) -> Module:
        self = super().__new__(cls)
        d = self.__dict__
        d["_init_args"] = bind_init_args(cls, args, kwargs)
        return self

    def __init__(self) -> None:
        self._ensure_state()

    def _ensure_state(self) -> None:
        d = self.__dict__
        if "_params" not in d:
            d["_params"] = {}
            d["_buffers"] = {}
            d["_non_persistent"] = set()
            d["_modules"] = {}
            d["_saved_stack"] = []
            d.setdefault("training", True)

    # -- attribute registration ------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        self._ensure_state()
        d = self.__dict__
        if isinstance(value, Param):
            d["_modules"].pop(name, None)
            if not value.name:
                value.name = name
            d["_params"][name] = value
            d.pop(name, None)
        elif isinstance(value, Module):
            d["_params"].pop(name, None)
            d["_modules"][name] = value
            d.pop(name, None)
        elif name in d["_params"] and value is None:
            del d["_params"][name]
            object.__setattr__(self, name, None)
        elif name in d["_buffers"]:
            d["_buffers"][name] = value
        else:
            d["_params"].pop(name, None) if name in d["_params"] else None
            d["_modules"].pop(name, None)
            if isinstance(value, (list, tuple, dict)) and value and any(
                    isinstance(item, Module) for item in (value.values() if isinstance(value, dict) else value)):
                warn_plain_container(self, name, value)
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_params", "_buffers", "_modules"):
            table = d.get(store)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in ("_params", "_buffers", "_modules"):
            if name in self.__dict__.get(store, {}):
                del self.__dict__[store][name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: Any, persistent: bool = True) -> None:
        """A non-trainable array that moves with the module and (if persistent) is saved.

        Args:
            name: the attribute name the buffer is read back under (``self.<name>``) and its
                key in :meth:`state_dict`.
            value: the array (any shape and dtype), or ``None`` for a slot filled later.
            persistent: default True; False keeps the buffer out of ``state_dict`` (it still
                moves with ``to``), as torch.
        """
        self._ensure_state()
        self.__dict__["_buffers"][name] = value
        if not persistent:
            self.__dict__["_non_persistent"].add(name)

    # -- forward / backward ---------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # The leaf-layer contract: a pure pair (forward_fn, backward_fn) and the Params it takes.
    #: ``(op_forward, op_backward)``: ``op_forward(x, *param_arrays, **options) -> (y, ctx)``,
    #: ``op_backward(dy, ctx, *param_arrays, need_dx=True) -> (dx, *param_grads)``.
    #: ``backward`` hands each ctx to ``op_backward`` once (it pops it), so ``op_backward`` may
    #: write into the ctx's own arrays (never into ``dy`` or the parameters).
    maths: tuple[Callable[..., Any], Callable[..., Any]] | None = None
    #: Attribute names of the Params handed to the pair after ``x``, in order (None allowed).
    maths_params: tuple[str, ...] = ()

    def check_input(self, x: Any) -> Any:
        """Validate (and if needed convert) the input of a leaf layer; default: a float array."""
        return check_array(x, type(self).__name__)

    def options(self, x: Any) -> dict[str, Any]:
        """Keyword options of the maths pair's forward for input ``x`` (default: none)."""
        return _NO_OPTIONS

    def forward(self, x: Any) -> Any:
        """Leaf layers: ``y`` of the maths pair (composites override this).

        Args:
            x: the input array; its shape is the layer's (Linear: ``(..., in_features)``).
                ``check_input`` validates it and may cast it to the weight's dtype.

        Returns:
            The output array; the forward cache is kept for :meth:`backward` (see
            :meth:`keeps_cache`).

        Raises:
            NotImplementedError: a subclass names no maths pair and does not override forward.
            ShapeError: ``x`` has the wrong number of dimensions or feature size.
            DTypeError: ``x`` is not an array of the dtype the layer takes (by default a
                floating-point one; integer ids for embeddings).
        """
        if self.maths is None:
            raise NotImplementedError(f"{type(self).__name__} does not implement forward() and names no maths pair")
        x = self.check_input(x)
        return self.forward_maths(x, self.options(x))

    def forward_maths(self, x: Any, options: dict[str, Any]) -> Any:
        """Run the forward function of :attr:`maths` on a checked ``x`` and keep its ctx.

        Args:
            x: the input, already through :meth:`check_input`.
            options: keyword options for the forward function (what :meth:`options` returns).

        Returns:
            The forward function's ``y``.
        """
        d = self.__dict__
        params = d["_params"]
        if self.maths_params:
            y, ctx = self.maths[0](x, *[None if (p := params.get(n)) is None else p.data for n in self.maths_params],
                                   **options)
        else:
            y, ctx = self.maths[0](x, **options)
        mode = getattr(_grad_state, "enabled", None)
        if d["training"] if mode is None else mode:  # inlined keeps_cache(): this runs on every call
            try:
                entry = (ctx, y.shape, y.dtype)
            except AttributeError:  # a non-array handed through (Identity): keep what it would become
                entry = (ctx, np.shape(y), dtype_of(y))
            stack = d["_saved_stack"]
            stack.append(entry)
            if len(stack) > self.max_saved:
                del stack[0]
                warn_unconsumed(self)
        return y

    def backward(self, dy: Any) -> Any:
        """Leaf layers: check ``dy``, call the backward function, accumulate parameter gradients.

        Args:
            dy: the gradient of the loss w.r.t. the output of the most recent forward call
                still cached; exactly the output's shape (never broadcast), cast to its dtype.

        Returns:
            ``dx``, the gradient w.r.t. that forward's input (same shape as ``x``), or
            ``None`` when ``requires_input_grad(False)`` was set.

        Raises:
            PlaitError: no forward cache is waiting (forward ran under ``no_grad()``, or
                backward was called twice).
            ShapeError: ``dy`` does not have the output's shape.
            NotImplementedError: a subclass names no maths pair and does not override backward.
        """
        if self.maths is None:
            raise NotImplementedError(f"{type(self).__name__} does not implement backward() and names no maths pair")
        stack = self.__dict__.get("_saved_stack")
        ctx, shape, dtype = stack.pop() if stack else self.saved()  # saved() raises the clear error
        if type(dy) is not np.ndarray or dy.dtype != dtype or dy.shape != shape:  # the common case costs nothing
            if dy is None and self.shape_only and not self.needs_input_grad:
                return None  # the layer after us skipped the input gradient: nothing to hand on
            dy = check_output_grad(dy, shape, dtype, type(self).__name__)
        if not self.maths_params:
            return self.maths[1](dy, ctx, need_dx=self.needs_input_grad)[0]
        params = self.__dict__["_params"]
        found = [params.get(name) for name in self.maths_params]
        grads = self.maths[1](dy, ctx, *[None if p is None else p.data for p in found],
                              need_dx=self.needs_input_grad)
        seen = {id(dy)}  # the pair's fresh gradients are its to give; dy, or an array given twice, is copied
        for p, g in zip(found, grads[1:]):
            if p is not None and g is not None:
                p.accumulate(g, owned=id(g) not in seen)
                seen.add(id(g))
        return grads[0]

    def requires_input_grad(self, enabled: bool = True) -> Module:
        """Say whether ``backward`` must return the gradient w.r.t. this module's input.

        ``False`` is what PyTorch infers from data with ``requires_grad=False``: layers that
        honour it (Linear, convolutions) then skip computing ``dx`` and return ``None``, and
        containers pass it on to the layers that see their input (:meth:`input_modules`).
        Parameter gradients are unaffected. Returns self.

        Args:
            enabled: default True (every module starts True); False lets ``backward`` skip
                ``dx`` and return ``None``.
        """
        object.__setattr__(self, "needs_input_grad", bool(enabled))
        for module in self.input_modules():
            module.requires_input_grad(enabled)
        return self

    def input_modules(self) -> list[Module]:
        """The children that receive this module's input (containers override; layers: none)."""
        return []

    def save_for_backward(self, ctx: Any) -> None:
        """Push what backward will need (see :meth:`keeps_cache` for when it is kept).

        Args:
            ctx: any object; :meth:`saved` pops it back in the matching ``backward``.
        """
        self._ensure_state()
        if self.keeps_cache():
            self._push(ctx)

    def keeps_cache(self) -> bool:
        """Whether a forward now keeps its cache: in training mode unless inside ``no_grad()``;
        in ``eval()`` mode only inside ``enable_grad()``."""
        mode = getattr(_grad_state, "enabled", None)
        return self.__dict__["training"] if mode is None else mode

    def _push(self, ctx: Any) -> None:
        stack = self.__dict__["_saved_stack"]
        stack.append(ctx)
        if len(stack) > self.max_saved:
            del stack[0]
            warn_unconsumed(self)

    def saved(self) -> Any:
        """Pop the cache of the most recent forward call not yet undone by backward."""
        stack = self.__dict__.get("_saved_stack")
        if not stack:
            raise PlaitError(
                f"{type(self).__name__}.backward() called without a matching forward() "
                "(was forward run inside no_grad(), or backward called twice?)"
            )
        return stack.pop()

    def clear_saved(self) -> None:
        """Drop every forward cache in this module tree (e.g. after an aborted step)."""
        for m in self.modules():
            m.__dict__.get("_saved_stack", []).clear()

    # -- traversal ------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        self._ensure_state()
        yield from self.__dict__["_modules"].items()

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Every module in the tree, depth first, each once; the root has name ``prefix``.

        Args:
            prefix: default ``""``; the root's name, put in front of every dotted name.
        """
        seen: set[int] = set()

        def walk(module: Module, name: str) -> Iterator[tuple[str, Module]]:
            if id(module) in seen:
                return
            seen.add(id(module))
            yield name, module
            for child_name, child in module.named_children():
                yield from walk(child, f"{name}.{child_name}" if name else child_name)

        yield from walk(self, prefix)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Param]]:
        """``(dotted name, Param)`` pairs; a shared Param appears once, under its first name.

        Args:
            prefix: default ``""``; put in front of every dotted name (``"enc"`` gives
                ``"enc.weight"``).
        """
        seen: set[int] = set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module.__dict__["_params"].items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Param]:
        for _, p in self.named_parameters():
            yield p

    def buffers(self) -> Iterator[Any]:
        for _, b in self.named_buffers():
            yield b

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """``(dotted name, array)`` of every buffer (non-persistent ones too), as torch.

        Args:
            prefix: default ``""``; put in front of every dotted name.
        """
        for mod_name, module in self.named_modules(prefix):
            for name, b in module.__dict__["_buffers"].items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """The number of scalars in the module's Params (a shared Param counted once).

        Args:
            trainable_only: default False; True counts only Params with ``requires_grad``.
        """
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Clear every Param's gradient.

        Args:
            set_to_none: default False (the gradient arrays are zeroed in place); True sets
                ``grad`` to ``None`` instead. torch's default is True since 2.0.
        """
        for p in self.parameters():
            p.zero_grad(set_to_none=set_to_none)

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every descendant; returns self.

        Args:
            mode: default True; False is evaluation mode (:meth:`eval`): dropout off,
                batch norm uses its running statistics, forward caches are not kept.
        """
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def apply(self, fn: Any) -> Module:
        """Call ``fn(module)`` on this module and every descendant (each once); returns self.

        Args:
            fn: a callable taking one Module (e.g. a weight initialiser); its result is ignored.
        """
        for m in self.modules():
            fn(m)
        return self

    # -- config and repr ----------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The JSON-able ``{"type": name, **args}`` that rebuilds this module via the registry."""
        from .registry import registry  # noqa: PLC0415

        found = registry.name_of(type(self))
        if found is None:
            raise ConfigError(
                f"{type(self).__name__} is not registered in the registry, so it has no config; "
                "register it from a plugin's register_layers hook"
            )
        args = self.__dict__.get("_init_args")
        if args is None:
            raise ConfigError(f"{type(self).__name__} did not record its constructor arguments")
        cfg: dict[str, Any] = {"type": found[1]}
        if found[0] != "layers":
            cfg["kind"] = found[0]
        for key, value in args.items():
            param = inspect.signature(type(self).__init__).parameters.get(key)
            if param is not None and param.kind is inspect.Parameter.VAR_KEYWORD:
                cfg.update({k: to_jsonable(v) for k, v in value.items()})
            else:
                cfg[key] = to_jsonable(value)
        return cfg

    def extra_repr(self) -> str:
        """One line of settings shown in ``repr``; defaults to the constructor arguments."""
        args = self.__dict__.get("_init_args") or {}
        parts = []
        for k, v in args.items():
            if isinstance(v, Module) or (isinstance(v, (list, tuple)) and any(isinstance(i, Module) for i in v)):
                continue
            parts.append(f"{k}={v!r}")
        return ", ".join(parts)

    def __repr__(self) -> str:
        children = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"
