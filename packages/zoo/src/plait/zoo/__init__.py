"""Models by name: MLP, CNN, ResNet, RNN/LSTM/GRU, GPT, Transformer; save/load; generation.

    import plait.zoo as zoo
    model = zoo.create("gpt-mini", dropout=0.1)
    zoo.list_models("gpt*")
    zoo.save(model, "runs/gpt"); same = zoo.load("runs/gpt")
    ids = zoo.generate(model, prompt_ids, max_new_tokens=100, temperature=0.8, top_k=40)
"""

from __future__ import annotations

from .catalog import (
    ModelCatalog,
    Preset,
    create,
    is_preset,
    list_models,
    model_config,
    register_model,
    register_preset,
)
from .generation import generate, greedy_decode
from .pretrained import Pretrained, find_pretrained, from_pretrained
from .serialization import load, load_weights, read_config, save
from .torch_weights import load_torch_state_dict

__version__ = "0.1.0"

__all__ = [
    "ModelCatalog",
    "Preset",
    "Pretrained",
    "create",
    "find_pretrained",
    "from_pretrained",
    "generate",
    "greedy_decode",
    "is_preset",
    "list_models",
    "load",
    "load_torch_state_dict",
    "load_weights",
    "model_config",
    "read_config",
    "register_model",
    "register_preset",
    "save",
]
