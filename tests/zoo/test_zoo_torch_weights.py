"""load_torch_state_dict: torch twins of zoo models, saved with safetensors.torch, load and agree."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import ConfigError, ShapeError, manual_seed, no_grad

torch = pytest.importorskip("torch")
st = pytest.importorskip("safetensors.torch")
nn = torch.nn


def _torch_models():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_torch_models.py"
    if not path.is_file():
        pytest.skip("benchmarks/_torch_models.py is not in this checkout")
    spec = importlib.util.spec_from_file_location("_bench_torch_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _randomize(model) -> None:
    """Random weights everywhere, and BatchNorm running statistics that are not the identity."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                t.copy_(torch.rand_like(t) + 0.5 if name.endswith("running_var") else torch.randn_like(t) * 0.2)


def _roundtrip(tmp_path, torch_model, zoo_name: str, x: np.ndarray, **overrides):
    _randomize(torch_model)
    torch_model.eval()
    path = tmp_path / "weights.safetensors"
    st.save_model(torch_model, str(path))  # drops the duplicate of a tied tensor, as torch users do
    manual_seed(1)
    model = zoo.create(zoo_name, **overrides).eval()
    assert zoo.load_torch_state_dict(model, path) is model
    with no_grad():
        ours = np.asarray(model(x))
    with torch.no_grad():
        theirs = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
    return model


def test_lenet5_from_an_nn_sequential(tmp_path):
    twin = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    _roundtrip(tmp_path, twin, "lenet5", x)


class _TorchvisionBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class _TorchvisionResNet8(nn.Module):
    """torchvision's ResNet layout (conv1, bn1, layer1..3, fc) at ResNet-8's CIFAR sizes."""

    def __init__(self, widths=(16, 32, 64)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.layer1 = nn.Sequential(_TorchvisionBlock(widths[0], widths[0], 1))
        self.layer2 = nn.Sequential(_TorchvisionBlock(widths[0], widths[1], 2))
        self.layer3 = nn.Sequential(_TorchvisionBlock(widths[1], widths[2], 2))
        self.fc = nn.Linear(widths[2], 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean(dim=(2, 3)))


def test_resnet8_from_torchvision_names(tmp_path):
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    model = _roundtrip(tmp_path, _TorchvisionResNet8(), "resnet8", x)
    assert model.state_dict()["blocks.1.shortcut.1.num_batches_tracked"].dtype == np.int64


def test_char_lstm_from_its_torch_twin(tmp_path):
    twin = _torch_models().TorchLSTMLM(vocab_size=65, embed_dim=64, hidden_size=256, num_layers=1)
    ids = np.random.default_rng(0).integers(0, 65, size=(2, 20))
    _roundtrip(tmp_path, twin, "char-lstm", ids)


def test_gpt_nano_from_the_benchmarks_torch_gpt(tmp_path):
    twin = _torch_models().TorchGPT(vocab_size=65, context_length=128, d_model=64, num_layers=2, num_heads=4,
                                    ffn_dim=256, tie_embeddings=True)
    ids = np.random.default_rng(0).integers(0, 65, size=(2, 32))
    model = _roundtrip(tmp_path, twin, "gpt-nano", ids)
    assert model.head.weight is model.tok_emb.weight


def test_a_dict_of_torch_tensors_and_packed_in_projections():
    manual_seed(0)
    source = zoo.create("gpt-nano")
    state = {k: torch.from_numpy(np.array(v)) for k, v in source.state_dict().items()}
    for i in range(2):  # nn.MultiheadAttention's layout: q, k, v stacked in one in_proj
        for kind in ("weight", "bias"):
            parts = [state.pop(f"blocks.{i}.attn.{p}_proj.{kind}") for p in "qkv"]
            state[f"blocks.{i}.attn.in_proj_{kind}"] = torch.cat(parts).to(torch.bfloat16).float()
    manual_seed(1)
    model = zoo.load_torch_state_dict(zoo.create("gpt-nano"), state)
    np.testing.assert_array_equal(model.blocks[1].attn.v_proj.bias.data,
                                  state["blocks.1.attn.in_proj_bias"][128:].numpy())
    np.testing.assert_array_equal(model.norm.weight.data, source.norm.weight.data)


def test_an_explicit_mapping_renames_and_drops():
    manual_seed(0)
    source = zoo.create("mlp", sizes=[4, 3, 2])
    sd = source.state_dict()
    state = {"encoder.weight": sd["layers.0.weight"], "encoder.bias": sd["layers.0.bias"],
             "decoder.weight": sd["layers.3.weight"], "decoder.bias": sd["layers.3.bias"], "step": np.array(7)}
    mapping = {"encoder.weight": "layers.0.weight", "encoder.bias": "layers.0.bias",
               "decoder.weight": "layers.3.weight", "decoder.bias": "layers.3.bias", "step": None}
    model = zoo.load_torch_state_dict(zoo.create("mlp", sizes=[4, 3, 2]), state, mapping=mapping)
    x = np.ones((1, 4), dtype=np.float32)
    np.testing.assert_array_equal(model(x), source(x))
    renamed = zoo.load_torch_state_dict(zoo.create("mlp", sizes=[4, 3, 2]), state,
                                        mapping=lambda k: None if k == "step" else mapping[k])
    np.testing.assert_array_equal(renamed(x), source(x))


def test_every_problem_is_listed_at_once():
    state = {k: np.asarray(v) for k, v in zoo.create("gpt-nano").state_dict().items()}
    state["blocks.0.ffn.linear1.weight"] = np.zeros((3, 3), dtype=np.float32)
    state["norm.weight"] = np.zeros(7, dtype=np.float32)
    state.pop("blocks.1.norm2.bias")
    state["mystery.tensor"] = np.zeros(2, dtype=np.float32)
    with pytest.raises(ShapeError) as info:
        zoo.load_torch_state_dict(zoo.create("gpt-nano"), state)
    message = str(info.value)
    for part in ("blocks.0.ffn.linear1.weight: expected shape (256, 64), got (3, 3)", "norm.weight: expected shape (64,)",
                 "blocks.1.norm2.bias", "mystery.tensor"):
        assert part in message


def test_a_tied_weight_given_twice_must_agree():
    state = {k: np.asarray(v) for k, v in zoo.create("gpt-nano").state_dict().items()}
    state["head.weight"] = state["tok_emb.weight"] + 1
    with pytest.raises(ConfigError, match="tied to tok_emb.weight"):
        zoo.load_torch_state_dict(zoo.create("gpt-nano"), state)
    state["head.weight"] = state["tok_emb.weight"].copy()
    zoo.load_torch_state_dict(zoo.create("gpt-nano"), state)


def test_bad_mappings_and_files(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        zoo.load_torch_state_dict(zoo.create("gpt-nano"), {}, mapping={"a": 3})
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\xff" * 20)
    with pytest.raises(Exception) as info:
        zoo.load_torch_state_dict(zoo.create("gpt-nano"), bad)
    assert type(info.value).__name__ == "SerializationError"
