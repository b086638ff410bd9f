"""Containers that register a variable number of child modules: ``ModuleList``, ``ModuleDict``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .errors import ConfigError
from .module import Module

__all__ = ["ModuleDict", "ModuleList", "leading_modules"]


class ModuleList(Module):
    """A list of modules whose parameters are registered as ``0.weight``, ``1.weight``, ...

    It has no forward/backward of its own (as torch's): the owner calls its items.

    Args:
        modules: default ``()``; an iterable of Modules, appended in order.

    Raises:
        ConfigError: an item is not a Module.
    """

    def __init__(self, modules: Any = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        """Register ``module`` under the next index; returns self.

        Args:
            module: the Module to add.

        Raises:
            ConfigError: ``module`` is not a Module.
        """
        if not isinstance(module, Module):
            raise ConfigError(f"ModuleList.append expects a Module, got {type(module).__name__}")
        self.__dict__["_modules"][str(len(self))] = module
        return self

    def __len__(self) -> int:
        return len(self.__dict__["_modules"])

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self.__dict__["_modules"].values()))

    def __getitem__(self, index: int) -> Module:
        items = list(self.__dict__["_modules"].values())
        return items[index]

    def extra_repr(self) -> str:
        return ""


class ModuleDict(Module):
    """A dict of named modules, registered under their keys.

    Args:
        modules: default None (empty); a mapping of attribute-name keys to Modules, added in
            its order (parameters appear as ``<key>.weight``).
    """

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        super().__init__()
        for k, m in (modules or {}).items():
            self[k] = m

    def __setitem__(self, key: str, module: Module) -> None:
        setattr(self, key, module)

    def __getitem__(self, key: str) -> Module:
        return self.__dict__["_modules"][key]

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__["_modules"]

    def __len__(self) -> int:
        return len(self.__dict__["_modules"])

    def keys(self) -> list[str]:
        return list(self.__dict__["_modules"])

    def items(self) -> list[tuple[str, Module]]:
        return list(self.__dict__["_modules"].items())

    def extra_repr(self) -> str:
        return ""


def leading_modules(layers: Any) -> list[Module]:
    """The layers of a chain that see the chain's input: shape-only layers, then the first other one.

    Args:
        layers: the chain's modules in order (any iterable of Modules).

    Returns:
        A list: the leading ``shape_only`` layers and the first layer that is not.
    """
    out: list[Module] = []
    for layer in layers:
        out.append(layer)
        if not getattr(layer, "shape_only", False):
            break
    return out
