"""plait-zoo's plugin: registers its components through core's hooks, like any third party."""

from __future__ import annotations
