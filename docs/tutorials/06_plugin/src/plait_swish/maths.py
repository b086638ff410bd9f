"""The maths of BetaSwish: a pure pair, arrays in and arrays out (no Module, no Param).

With s = sigmoid(beta x) and s' = s (1 - s):

    y       = x s
    dy/dx   = s + beta x s'
    dy/dbeta = x^2 s'
"""

from plait.core import get_array_module


# --8<-- [start:maths]
def beta_swish_forward(x, beta):
    """x: any shape; beta: (1,). Returns (y, ctx) with y shaped like x and ctx = (x, s)."""
    xp = get_array_module(x)  # numpy, or cupy for arrays on a GPU
    s = xp.tanh(beta * x * 0.5)  # sigmoid(z) = (1 + tanh(z / 2)) / 2: no overflow for any z
    s += 1
    s *= 0.5
    return x * s, (x, s)


def beta_swish_backward(dy, ctx, beta, need_dx=True):
    """dy: shaped like y. Returns (dx or None, dbeta of shape (1,))."""
    x, s = ctx
    ds = s * (1 - s)                                      # sigmoid'(beta x)
    dbeta = (dy * x * x * ds).sum().reshape(1)            # beta is shared by every element
    dx = dy * (s + beta * x * ds) if need_dx else None
    return dx, dbeta
# --8<-- [end:maths]
