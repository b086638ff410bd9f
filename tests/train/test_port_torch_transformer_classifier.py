"""A typical small torch training script ported to Plait: a transformer encoder classifier.

Embedding + TransformerEncoder (torch's defaults but batch_first, a padding mask) + mean pooling
+ Linear, trained with AdamW on cross-entropy. Plait's model is built from the same torch-named
layers, starts from torch's initial weights (``load_state_dict(strict=True)``), and the losses
of every step must match torch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from plait.core import Module
from plait.layers import CrossEntropyLoss, Embedding, Linear, TransformerEncoder, TransformerEncoderLayer
from plait.optim import AdamW

VOCAB, D, HEADS, FF, LAYERS, CLASSES, N, T, STEPS = 20, 16, 4, 32, 2, 3, 8, 7, 8


class TorchClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, D)
        layer = torch.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.fc = torch.nn.Linear(D, CLASSES)

    def forward(self, ids: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embedding(ids), src_key_padding_mask=pad)
        return self.fc(h.mean(dim=1))


class PlaitClassifier(Module):
    """The same model; forward/backward written from its children, as a ported script does."""

    def __init__(self, dtype: str) -> None:
        super().__init__()
        self.embedding = Embedding(VOCAB, D, dtype=dtype)
        layer = TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True, dtype=dtype)
        self.encoder = TransformerEncoder(layer, LAYERS)
        self.fc = Linear(D, CLASSES, dtype=dtype)

    def forward(self, ids: np.ndarray, pad: np.ndarray) -> Any:
        h = self.encoder(self.embedding(ids), src_key_padding_mask=pad)
        self.save_for_backward(h.shape)
        return self.fc(h.mean(axis=1))

    def backward(self, dlogits: Any) -> None:
        shape = self.saved()
        dpooled = self.fc.backward(dlogits)
        dh = np.broadcast_to(dpooled[:, None, :] / shape[1], shape)  # mean over the sequence
        self.embedding.backward(self.encoder.backward(np.ascontiguousarray(dh)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_transformer_classifier_losses_match_torch_step_by_step(dtype):
    torch.manual_seed(0)
    tdtype = getattr(torch, dtype)
    ref = TorchClassifier().to(tdtype)
    ours = PlaitClassifier(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()}, strict=True)

    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, size=(N, T))
    lengths = rng.integers(3, T + 1, size=N)
    pad = np.arange(T)[None, :] >= lengths[:, None]  # True = padding, as torch
    labels = rng.integers(0, CLASSES, size=N)

    t_opt = torch.optim.AdamW(ref.parameters(), lr=3e-3, weight_decay=0.01)
    opt = AdamW(ours.parameters(), lr=3e-3, weight_decay=0.01)
    t_loss_fn, loss_fn = torch.nn.CrossEntropyLoss(), CrossEntropyLoss()
    t_ids, t_pad, t_labels = torch.from_numpy(ids), torch.from_numpy(pad), torch.from_numpy(labels)
    theirs, mine = [], []
    for _ in range(STEPS):
        t_opt.zero_grad()
        t_loss = t_loss_fn(ref(t_ids, t_pad), t_labels)
        t_loss.backward()
        t_opt.step()
        theirs.append(t_loss.item())

        opt.zero_grad()
        loss = loss_fn(ours(ids, pad), labels)
        ours.backward(loss_fn.backward())
        opt.step()
        mine.append(loss)

    tol = dict(rtol=1e-9, atol=1e-10) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mine, theirs, **tol)
    assert theirs[-1] < theirs[0]  # it learns
    if dtype == "float64":  # and ends with the same weights (in float32, Adam's normalised steps amplify
        for name, p in ref.named_parameters():  # rounding in near-zero gradients: the losses are the check)
            np.testing.assert_allclose(dict(ours.named_parameters())[name].data, p.detach().numpy(), rtol=1e-8,
                                       atol=1e-9, err_msg=name)
