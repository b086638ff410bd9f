"""The zoo's architectures; importing this package declares them on the zoo's catalog."""

from __future__ import annotations

from .mlp import MLP

__all__ = ["MLP"]
