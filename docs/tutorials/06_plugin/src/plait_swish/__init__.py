"""plait-swish: Swish with a learnable beta, ``y = x * sigmoid(beta * x)``, as a Plait plugin."""

from .layer import BetaSwish
from .maths import beta_swish_backward, beta_swish_forward

__all__ = ["BetaSwish", "beta_swish_backward", "beta_swish_forward"]
