"""(placeholder: filled by the layers work)."""

from __future__ import annotations

__all__: list[str] = []

LAYERS: dict[str, type] = {}
