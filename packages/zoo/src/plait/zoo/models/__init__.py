"""The zoo's architectures; importing this package declares them on the zoo's catalog."""

from __future__ import annotations

from .cnn import CNN
from .gpt import GPT, GPTCache
from .mlp import MLP
from .resnet import BasicBlock, ResNet
from .rnn import RecurrentCache, RNNClassifier, RNNLanguageModel
from .transformer import Seq2SeqCache, Transformer

__all__ = [
    "CNN",
    "GPT",
    "MLP",
    "BasicBlock",
    "GPTCache",
    "RNNClassifier",
    "RNNLanguageModel",
    "RecurrentCache",
    "ResNet",
    "Seq2SeqCache",
    "Transformer",
]
