"""Containers: ``Sequential`` (a chain) and ``Residual`` (x + f(x)).

``Sequential``: forward runs the layers in order; backward runs their backwards in reverse,
feeding each the gradient of its output. ``Residual``: ``y = x + f(x)``, so
``dx = dy + f.backward(dy)``. (``ModuleList`` and ``ModuleDict`` come from plait.core.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from plait.core import ConfigError, Module, ShapeError, check_array, leading_modules

__all__ = ["Residual", "Sequential"]


def _require_module(obj: Any, where: str) -> Module:
    if not isinstance(obj, Module):
        raise ConfigError(f"{where}: expected a Module, got {type(obj).__name__}")
    return obj


class Sequential(Module):
    """``Sequential(Linear(4, 8), ReLU(), Linear(8, 2))``; children are named ``0``, ``1``, ...

    Also ``Sequential(layers=[...])`` (what its config rebuilds from). Indexable (a slice
    gives a new ``Sequential`` sharing the layers), ``len``, iteration, ``append``, ``extend``.

    Args:
        *modules: the layers, in order (each a ``Module``).
        layers: keyword-only alternative to ``*modules``: an iterable of layers; default None.
            Torch's ``Sequential(OrderedDict)`` form is not accepted (children are always ``0``, ``1``, ...).

    Shapes:
        ``forward(x)``: whatever the chain maps x to; ``backward(dy)``: dy of the last layer's output
        shape -> the first layer's input gradient.

    Raises:
        ConfigError: a layer that is not a Module, or both ``*modules`` and ``layers`` given.
        ShapeError: ``backward`` after layers were appended since the forward (plus whatever the
            layers raise).
    """

    def __init__(self, *modules: Module, layers: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules and layers is not None:
            raise ConfigError("Sequential: pass the layers positionally or as layers=[...], not both")
        for m in (modules if layers is None else layers):
            self.append(m)

    # -- list behaviour --------------------------------------------------------------------
    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end (named ``str(len(self))``); returns self.

        Args:
            module: the layer to add.

        Raises:
            ConfigError: ``module`` is not a Module.
        """
        self.__dict__["_modules"][str(len(self))] = _require_module(module, "Sequential.append")
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        """Append each of ``modules`` in order; returns self.

        Args:
            modules: an iterable of layers.

        Raises:
            ConfigError: an item that is not a Module.
        """
        for m in modules:
            self.append(m)
        return self

    def __len__(self) -> int:
        return len(self.__dict__["_modules"])

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self.__dict__["_modules"].values()))

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self.__dict__["_modules"].values())
        if isinstance(index, slice):
            return Sequential(*items[index])
        try:
            return items[index]
        except IndexError:
            raise IndexError(f"Sequential index {index} out of range for {len(items)} layer(s)") from None

    # -- forward / backward ----------------------------------------------------------------
    def forward(self, x: Any) -> Any:
        """Run the layers in order.

        Args:
            x: the first layer's input.

        Returns:
            The last layer's output (x itself for an empty Sequential).
        """
        for layer in self:
            x = layer(x)
        self.save_for_backward(len(self))
        return x

    def backward(self, dy: Any) -> Any:
        """Run the layers' backwards in reverse order.

        Args:
            dy: gradient of the output.

        Returns:
            The gradient of the first layer's input.

        Raises:
            ShapeError: layers were appended between forward and backward.
            PlaitError: no matching forward.
        """
        count = self.saved()
        layers = list(self)
        if count != len(layers):
            raise ShapeError(f"Sequential.backward: {len(layers)} layers now but forward ran {count}; "
                             "do not append layers between forward and backward")
        for layer in reversed(layers):
            dy = layer.backward(dy)
        return dy

    def input_modules(self) -> list[Module]:
        return leading_modules(self)

    def config(self) -> dict[str, Any]:
        """``{"type": "sequential", "layers": [child configs...]}`` (appended layers included)."""
        cfg = {k: v for k, v in super().config().items() if k in ("type", "kind")}
        cfg["layers"] = [m.config() for m in self]
        return cfg

    def extra_repr(self) -> str:
        return ""


class Residual(Module):
    """``y = x + module(x)``; the wrapped module must keep the shape of its input.

    Args:
        module: f, the wrapped ``Module``; its output must have its input's shape.

    Shapes:
        ``forward(x)``: x (...) -> y = x + f(x) of x's shape. ``backward(dy)``: dy -> dx = dy + f.backward(dy).

    Raises:
        ConfigError: ``module`` is not a Module.
        ShapeError: f changes the shape of its input.
        DTypeError: a non-floating input.
    """

    def __init__(self, module: Module) -> None:
        super().__init__()
        self.module = _require_module(module, "Residual")

    def forward(self, x: Any) -> Any:
        """y = x + module(x).

        Args:
            x: the input (...), float.

        Returns:
            y of x's shape.

        Raises:
            ShapeError: the module changed the shape.
            DTypeError: a non-floating x.
        """
        x = check_array(x, "Residual")
        fx = self.module(x)
        if getattr(fx, "shape", None) != getattr(x, "shape", None):
            raise ShapeError(f"Residual: the wrapped {type(self.module).__name__} changed the shape "
                             f"{tuple(x.shape)} -> {tuple(getattr(fx, 'shape', ()))}; x + f(x) needs them equal")
        self.save_for_backward(None)
        return x + fx

    def backward(self, dy: Any) -> Any:
        """dx = dy + module.backward(dy).

        Args:
            dy: gradient of y, x's shape.

        Raises:
            PlaitError: no matching forward.
        """
        self.saved()
        return dy + self.module.backward(dy)

    def extra_repr(self) -> str:
        return ""


LAYERS: dict[str, type] = {"sequential": Sequential, "residual": Residual}
