"""Token embeddings: ``Embedding`` (maths in :mod:`._embedding_maths`)."""

from __future__ import annotations

from typing import Any

from plait.core import (
    ConfigError,
    Module,
    Param,
    check_int_array,
    check_parameter_count,
    check_size,
    get_array_module,
    get_rng,
)
from plait.core.initializers import Normal

from ._embedding_maths import embedding_backward, embedding_forward
from ._init_args import InitSpec, chosen_initializer, draw

__all__ = ["Embedding", "embedding_backward", "embedding_forward"]


class Embedding(Module):
    """A lookup table: integer ids (any shape) -> vectors (..., embedding_dim).

    Initialised like ``torch.nn.Embedding``: W ~ N(0, 1) unless ``init`` names another rule
    (a registered initializer name, a ``{"type": name, **args}`` dict or an initializer;
    recorded in ``config()``), with the ``padding_idx`` row zeroed; that row never receives a gradient. ``backward`` returns ``None`` (ids have no
    gradient).

    Args:
        num_embeddings: V, the number of rows (ids in [0, V)), an int >= 1.
        embedding_dim: D, the size of each vector, an int >= 1.
        padding_idx: an id in [-V, V) (negative counts from the end, as torch) whose row starts at
            zeros and gets no gradient; default None.
        dtype: dtype of ``weight`` (V, D), default ``"float32"``.
        init: keyword-only initializer of ``weight``; default None keeps torch's N(0, 1).

    Torch's ``max_norm``, ``norm_type``, ``scale_grad_by_freq`` and ``sparse`` are not accepted.

    Shapes:
        ``forward(ids)``: integer ids (...) -> y (..., D). ``backward(dy)``: dy (..., D) -> None;
        adds dW (V, D) (rows of dy summed per id) to the gradient.

    Raises:
        ConfigError: ``num_embeddings``/``embedding_dim`` not an integer >= 1, ``padding_idx`` outside
            [-V, V), more parameters than ``PLAIT_MAX_PARAMETERS``, or an ``init`` that names no initializer.
        DTypeError: ids that are not integers; a non-floating ``dy``.
        ShapeError: an id outside [0, V); a ``dy`` of another shape than y.
    """

    maths = (embedding_forward, embedding_backward)
    maths_params = ("weight",)

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype: str = "float32", *, init: InitSpec = None) -> None:
        super().__init__()
        self.num_embeddings = check_size(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = check_size(embedding_dim, "Embedding", "embedding_dim")
        check_parameter_count(self.num_embeddings * self.embedding_dim, "Embedding")
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
        chosen = chosen_initializer(self, "init", init, "Embedding")
        if chosen is None:
            self.weight = Param(Normal(0.0, 1.0)(shape, self.embedding_dim, self.num_embeddings, get_rng(), dtype))
        else:
            self.weight = Param(draw(chosen, shape, dtype))
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def check_input(self, ids: Any) -> Any:
        ids = check_int_array(ids, "Embedding", what="ids", high=self.num_embeddings)
        return get_array_module(self.weight.data).asarray(ids)

    def options(self, ids: Any) -> dict[str, Any]:
        return {"padding_idx": self.padding_idx}

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


LAYERS: dict[str, type] = {"embedding": Embedding}
