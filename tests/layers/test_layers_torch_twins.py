"""A class with a torch name behaves like torch's class: walked over the registry.

Every first-party registered layer whose class name is also a ``torch.nn`` class needs an entry in
TWINS. Each entry builds our layer through the registry and torch's twin from the same arguments
(or a named builder), loads torch's ``state_dict()`` with ``strict=True`` (keys, shapes, buffers),
and compares the output, the gradient of every float input and of every parameter, in float64
and float32. A new torch-named layer without an entry fails ``test_every_torch_named_layer_has_a_twin``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

from plait.core import enable_grad, manual_seed, registry


@dataclass
class Twin:
    args: dict[str, Any]  # constructor arguments of ours (a registry config) and, unless ``make``, of torch's
    shapes: tuple[tuple[int, ...], ...]  # positional float inputs (ints: see ``ints``)
    make: Callable[[], torch.nn.Module] | None = None  # torch's twin when it is not cls(**args)
    kwargs: dict[str, Any] = field(default_factory=dict)  # forward keyword arguments (arrays or values)
    ints: int = 0  # > 0: one integer input in [0, ints) instead of floats (Embedding)
    train: bool = True  # compare in training mode (False: eval, e.g. Dropout)


def _enc(**kw: Any) -> dict[str, Any]:
    return {"type": "transformer_encoder_layer", "d_model": 8, "nhead": 2, "dim_feedforward": 16, "dropout": 0.0, **kw}


def _dec(**kw: Any) -> dict[str, Any]:
    return {"type": "transformer_decoder_layer", "d_model": 8, "nhead": 2, "dim_feedforward": 16, "dropout": 0.0, **kw}


_PAD = np.array([[False, False, False, True], [False] * 4, [True, False, False, False]])

TWINS: dict[str, Twin] = {
    "adaptive_avg_pool2d": Twin({"output_size": 2}, ((2, 3, 5, 5),)),
    "adaptive_max_pool1d": Twin({"output_size": 3}, ((2, 3, 7),)),
    "adaptive_max_pool2d": Twin({"output_size": (2, 3)}, ((2, 3, 5, 7),)),
    "avg_pool1d": Twin({"kernel_size": 3, "stride": 2, "padding": 1}, ((2, 3, 8),)),
    "avg_pool2d": Twin({"kernel_size": 2}, ((2, 3, 4, 4),)),
    "batch_norm1d": Twin({"num_features": 3}, ((4, 3, 5),)),
    "batch_norm2d": Twin({"num_features": 3}, ((4, 3, 2, 2),)),
    "conv1d": Twin({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1}, ((2, 2, 6),)),
    "conv2d": Twin({"in_channels": 2, "out_channels": 4, "kernel_size": 3, "stride": 2, "groups": 2},
                   ((2, 2, 7, 7),)),
    "conv_transpose2d": Twin({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2}, ((2, 2, 3, 3),)),
    "dropout": Twin({"p": 0.5}, ((3, 4),), train=False),
    "celu": Twin({"alpha": 0.7}, ((3, 4),)),
    "elu": Twin({"alpha": 0.7}, ((3, 4),)),
    "glu": Twin({"dim": -1}, ((3, 4),)),
    "hardsigmoid": Twin({}, ((3, 4),)),
    "hardswish": Twin({}, ((3, 4),)),
    "log_sigmoid": Twin({}, ((3, 4),)),
    "embedding": Twin({"num_embeddings": 7, "embedding_dim": 4}, ((2, 3),), ints=7),
    "flatten": Twin({}, ((2, 3, 4),)),
    "gelu": Twin({"approximate": "tanh"}, ((3, 4),)),
    "group_norm": Twin({"num_groups": 2, "num_channels": 4}, ((2, 4, 3),)),
    "gru": Twin({"input_size": 3, "hidden_size": 4, "num_layers": 2, "batch_first": True}, ((2, 5, 3),)),
    "hardtanh": Twin({"min_val": -0.5, "max_val": 0.7}, ((3, 4),)),
    "identity": Twin({}, ((3, 4),)),
    "instance_norm1d": Twin({"num_features": 3, "affine": True}, ((2, 3, 6),)),
    "instance_norm2d": Twin({"num_features": 3, "affine": True, "track_running_stats": True}, ((2, 3, 4, 5),)),
    "layer_norm": Twin({"normalized_shape": 4}, ((2, 3, 4),)),
    "leaky_relu": Twin({"negative_slope": 0.1}, ((3, 4),)),
    "linear": Twin({"in_features": 4, "out_features": 3}, ((2, 3, 4),)),
    "log_softmax": Twin({"dim": -1}, ((3, 4),)),
    "lstm": Twin({"input_size": 3, "hidden_size": 4, "num_layers": 2}, ((5, 2, 3),)),
    "max_pool1d": Twin({"kernel_size": 2}, ((2, 3, 6),)),
    "max_pool2d": Twin({"kernel_size": 2}, ((2, 3, 4, 4),)),
    "mish": Twin({}, ((3, 4),)),
    "multihead_attention": Twin({"embed_dim": 8, "num_heads": 2, "kdim": 6, "vdim": 5}, ((5, 3, 8), (4, 3, 6),
                                                                                         (4, 3, 5))),
    "prelu": Twin({"num_parameters": 3, "init": 0.1}, ((2, 3, 4),)),
    "relu": Twin({}, ((3, 4),)),
    "relu6": Twin({}, ((3, 4),)),
    "rms_norm": Twin({"normalized_shape": 4, "eps": 1e-6}, ((2, 3, 4),)),
    "rnn": Twin({"input_size": 3, "hidden_size": 4, "nonlinearity": "relu"}, ((5, 2, 3),)),
    "selu": Twin({}, ((3, 4),)),
    "sequential": Twin({"layers": [{"type": "linear", "in_features": 4, "out_features": 5}, {"type": "relu"},
                                   {"type": "linear", "in_features": 5, "out_features": 2}]}, ((3, 4),),
                       make=lambda: torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))),
    "sigmoid": Twin({}, ((3, 4),)),
    "silu": Twin({}, ((3, 4),)),
    "softmax": Twin({"dim": 1}, ((3, 4, 2),)),
    "softplus": Twin({"beta": 2.0}, ((3, 4),)),
    "softsign": Twin({}, ((3, 4),)),
    "tanh": Twin({}, ((3, 4),)),
    "transformer_encoder_layer": Twin({k: v for k, v in _enc(norm_first=True).items() if k != "type"}, ((5, 3, 8),),
                                      kwargs={"src_key_padding_mask": np.array([[False] * 5, [False] * 4 + [True],
                                                                                [True] + [False] * 4])}),
    "transformer_decoder_layer": Twin({k: v for k, v in _dec(activation="gelu").items() if k != "type"},
                                      ((5, 3, 8), (4, 3, 8)), kwargs={"memory_key_padding_mask": _PAD}),
    "transformer_encoder": Twin({"encoder_layer": _enc(), "num_layers": 2,
                                 "norm": {"type": "layer_norm", "normalized_shape": 8}}, ((5, 3, 8),),
                                make=lambda: torch.nn.TransformerEncoder(
                                    torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2,
                                    norm=torch.nn.LayerNorm(8), enable_nested_tensor=False),
                                kwargs={"is_causal": True, "mask": "causal"}),
    "transformer_decoder": Twin({"decoder_layer": _dec(batch_first=True), "num_layers": 2}, ((3, 5, 8), (3, 4, 8)),
                                make=lambda: torch.nn.TransformerDecoder(
                                    torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2),
                                kwargs={"memory_key_padding_mask": _PAD}),
    "unflatten": Twin({"dim": 1, "unflattened_size": [2, 2]}, ((3, 4, 5),)),
}


def _first_party_torch_named() -> list[str]:
    names = []
    for name in registry.layers.names():
        cls = registry.layers.get(name)
        if registry.layers.origin(name).startswith("plait-") and isinstance(getattr(torch.nn, cls.__name__, None), type):
            names.append(name)
    return sorted(names)


def test_every_torch_named_layer_has_a_twin():
    missing = [n for n in _first_party_torch_named() if n not in TWINS]
    assert not missing, f"torch-named layers without a strict-load parity entry in {__file__}: {missing}"


def _with_dtype(cfg: Any, dtype: str) -> Any:
    """Add ``dtype`` to every nested registry config whose class takes one."""
    if isinstance(cfg, list):
        return [_with_dtype(c, dtype) for c in cfg]
    if not isinstance(cfg, dict):
        return cfg
    out = {k: _with_dtype(v, dtype) for k, v in cfg.items()}
    if "type" in cfg and "dtype" in inspect.signature(registry.layers.get(cfg["type"]).__init__).parameters:
        out["dtype"] = dtype
    return out


def _torch_twin(name: str, twin: Twin, tdtype: torch.dtype) -> torch.nn.Module:
    if twin.make is not None:
        return twin.make().to(tdtype)
    cls = getattr(torch.nn, registry.layers.get(name).__name__)
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in twin.args.items()}
    return cls(**args).to(tdtype)


def _tol(dtype: str) -> dict[str, float]:
    return dict(rtol=1e-6, atol=1e-9) if dtype == "float64" else dict(rtol=2e-4, atol=5e-5)


def _main(out: Any) -> Any:
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(TWINS))
def test_strict_load_and_parity_with_torch(name, dtype):
    if name not in registry.layers:
        pytest.skip(f"{name} is not registered")
    twin = TWINS[name]
    tdtype = getattr(torch, dtype)
    torch.manual_seed(0)
    manual_seed(0)
    ref = _torch_twin(name, twin, tdtype)
    ours = registry.build(_with_dtype({"type": name, **twin.args}, dtype))
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.2 * torch.randn_like(p))  # non-trivial biases and affines
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert {k: tuple(np.shape(v)) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ref.state_dict().items()}
    ref.train(twin.train)
    ours.train(twin.train)

    rng = np.random.default_rng(1)
    if twin.ints:
        inputs = [rng.integers(0, twin.ints, size=twin.shapes[0])]
    else:
        inputs = [rng.standard_normal(s).astype(dtype) for s in twin.shapes]
    t_inputs = [torch.from_numpy(x.copy()).requires_grad_(x.dtype.kind == "f") for x in inputs]
    kwargs, t_kwargs = {}, {}
    for k, v in twin.kwargs.items():
        if isinstance(v, str) and v == "causal":
            L = twin.shapes[0][0]
            v = np.triu(np.ones((L, L), bool), 1)
        kwargs[k] = v
        t_kwargs[k] = torch.from_numpy(v) if isinstance(v, np.ndarray) else v
    y = _main(ref(*t_inputs, **t_kwargs))
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    with enable_grad():  # eval-mode twins (Dropout) keep their cache for the backward below
        out = _main(ours(*inputs, **kwargs))
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, y.detach().numpy(), **_tol(dtype), err_msg=f"{name} output")
    grads = ours.backward(dy.numpy())
    if not twin.ints:
        got = list(grads) if isinstance(grads, tuple) else [grads]
        for k, t in enumerate(t_inputs):
            np.testing.assert_allclose(got[k], t.grad.numpy(), **_tol(dtype), err_msg=f"{name} input {k} gradient")
    theirs = dict(ref.named_parameters())
    ours_params = dict(ours.named_parameters())
    assert set(ours_params) == set(theirs), name
    for pname, p in theirs.items():
        np.testing.assert_allclose(ours_params[pname].grad, p.grad.numpy(), **_tol(dtype),
                                   err_msg=f"{name} {pname} gradient")
