"""The exception hierarchy of Plait.

Every error Plait raises on purpose is a :class:`PlaitError`; each subclass also derives
from the builtin a caller would naturally catch (``ValueError``, ``KeyError``, ...).
"""

from __future__ import annotations

__all__ = [
    "PlaitError",
    "ShapeError",
    "DTypeError",
    "ConfigError",
    "RegistryError",
    "PluginError",
    "DeviceError",
    "SerializationError",
    "CheckpointError",
]


class PlaitError(Exception):
    """Base class of every error raised by Plait on purpose."""


class ShapeError(PlaitError, ValueError):
    """An array has the wrong rank or size for the component that received it."""


class DTypeError(PlaitError, TypeError):
    """An array has a dtype the component cannot work with."""


class ConfigError(PlaitError, ValueError):
    """A constructor argument or a config dictionary is invalid."""


class RegistryError(PlaitError, KeyError):
    """A name is unknown to, or already taken in, a registry table."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginError(PlaitError, RuntimeError):
    """A plugin failed to load or misbehaved (raised in strict mode)."""


class DeviceError(PlaitError, RuntimeError):
    """A device was asked for that is unavailable, or arrays live on different devices."""


class SerializationError(PlaitError, ValueError):
    """A weights/config/tokenizer file is missing, truncated or malformed."""


class CheckpointError(SerializationError):
    """A training checkpoint could not be written or read."""
