"""The layer: its constructor, its Param, its input check and the names of its maths pair."""

import numpy as np

from plait.core import Module, Param, check_array

from .maths import beta_swish_backward, beta_swish_forward


# --8<-- [start:layer]
class BetaSwish(Module):
    """y = x * sigmoid(beta * x), one learnable beta shared by every element; x: any shape.

    Args:
        beta: the initial beta (1.0 is SiLU; large beta approaches ReLU).
    """

    maths = (beta_swish_forward, beta_swish_backward)  # Module does the bookkeeping
    maths_params = ("beta",)                            # the Params handed to the pair, in order

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = Param(np.full(1, beta, dtype=np.float32))

    def check_input(self, x):
        return check_array(x, "BetaSwish")  # a float array, else a ShapeError/DTypeError naming us
# --8<-- [end:layer]
