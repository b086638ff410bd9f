"""Token embeddings: ``Embedding``.

Maths (ids: int array of any shape, W: (num_embeddings, embedding_dim))::

    y[..., :]  = W[ids[...], :]
    dW[v, :]   = sum of dy[...] over every position whose id is v   (repeated ids accumulate)
    dW[padding_idx] = 0
"""

from __future__ import annotations

from typing import Any

from plait.core import ConfigError, Module, Param, ShapeError, check_array, check_int_array, get_array_module, get_rng
from plait.core.initializers import Normal

__all__ = ["Embedding", "embedding_backward", "embedding_forward"]


# -- maths ----------------------------------------------------------------------------------
def embedding_forward(ids: Any, weight: Any) -> Any:
    """W[ids]: (...) -> (..., D)."""
    return weight[ids]


def embedding_backward(dy2d: Any, ids1d: Any, dweight: Any) -> None:
    """Scatter-add rows of dy (N, D) into dweight (V, D) at ids (N,), in place.

    Repeated ids add up (``np.add.at``; ``cupyx.scatter_add`` on the GPU) -- a plain
    ``dweight[ids] += dy`` would keep only one of them.
    """
    xp = get_array_module(dweight)
    if xp.__name__ == "numpy":
        xp.add.at(dweight, ids1d, dy2d)
    else:  # pragma: no cover - exercised on GPU machines only
        import cupyx  # noqa: PLC0415

        cupyx.scatter_add(dweight, ids1d, dy2d)


# -- layer ------------------------------------------------------------------------------------
class Embedding(Module):
    """A lookup table: integer ids (any shape) -> vectors (..., embedding_dim).

    Initialised like ``torch.nn.Embedding``: W ~ N(0, 1), with the ``padding_idx`` row
    zeroed; that row never receives a gradient. ``backward`` returns ``None`` (ids have no
    gradient).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype: str = "float32") -> None:
        super().__init__()
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        if self.num_embeddings <= 0 or self.embedding_dim <= 0:
            raise ConfigError(f"Embedding: num_embeddings and embedding_dim must be positive, got "
                              f"{num_embeddings} and {embedding_dim}")
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ConfigError(f"Embedding: padding_idx must be in [-{self.num_embeddings}, {self.num_embeddings}), "
                                  f"got {padding_idx}")
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        shape = (self.num_embeddings, self.embedding_dim)
        self.weight = Param(Normal(0.0, 1.0)(shape, self.embedding_dim, self.num_embeddings, get_rng(), dtype))
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, ids: Any) -> Any:
        ids = check_int_array(ids, "Embedding", what="ids", high=self.num_embeddings)
        xp = get_array_module(self.weight.data)
        ids = xp.asarray(ids)
        self.save_for_backward(ids)
        return embedding_forward(ids, self.weight.data)

    def backward(self, dy: Any) -> None:
        ids = self.saved()
        expected = (*ids.shape, self.embedding_dim)
        dy = check_array(dy, "Embedding.backward", what="output gradient")
        if tuple(dy.shape) != expected:
            raise ShapeError(f"Embedding.backward: expected output gradient of shape {expected}, got {tuple(dy.shape)}")
        w = self.weight
        if not w.requires_grad:
            return None
        ids1d = ids.reshape(-1)
        dy2d = dy.reshape(-1, self.embedding_dim).astype(w.dtype, copy=False)
        if self.padding_idx is not None:
            keep = ids1d != self.padding_idx
            ids1d, dy2d = ids1d[keep], dy2d[keep]
        if w.grad is None:
            w.grad = get_array_module(w.data).zeros_like(w.data)
        embedding_backward(dy2d, ids1d, w.grad)
        return None

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


LAYERS: dict[str, type] = {"embedding": Embedding}
