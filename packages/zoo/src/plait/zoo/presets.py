"""Named presets: plain argument dicts over the registered architectures."""

from __future__ import annotations

from .catalog import register_preset

register_preset("mlp-mnist", "mlp", "MLP 784-256-128-10 for 28x28 digits", sizes=[784, 256, 128, 10], activation="relu")
