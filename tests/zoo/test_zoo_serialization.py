"""save / load of model folders: exact round trips, third-party layers, clear failures."""

from __future__ import annotations

import json

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import SerializationError, manual_seed


def _mlp(**kw):
    manual_seed(0)
    return zoo.create("mlp", sizes=[6, 5, 3], **kw)


def test_round_trip_is_exact_and_config_is_complete(tmp_path):
    model = _mlp()
    folder = zoo.save(model, tmp_path / "m", metadata={"note": "hello"})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format"] == "plait-model" and cfg["format_version"] == 1
    assert cfg["architecture"] == "mlp"
    assert cfg["model_args"]["sizes"] == [6, 5, 3]
    assert set(cfg["versions"]) >= {"plait-core", "plait-layers", "plait-zoo"}
    assert cfg["metadata"] == {"note": "hello"}
    same = zoo.load(folder)
    assert type(same) is type(model)
    for (k, a), (k2, b) in zip(model.state_dict().items(), same.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(same(x), model(x))


def test_float64_model_round_trips_in_float64(tmp_path):
    model = _mlp().astype(np.float64)
    same = zoo.load(zoo.save(model, tmp_path / "m64"))
    assert same.layers[0].weight.dtype == np.float64
    np.testing.assert_array_equal(same.layers[0].weight.data, model.layers[0].weight.data)


def test_third_party_layer_in_the_config_is_rebuilt_through_its_plugin(tmp_path):
    pytest.importorskip("plait_example_plugin")
    model = _mlp(norm="example_scale")
    model.layers[1].weight.data[:] = np.arange(5, dtype=np.float32)
    same = zoo.load(zoo.save(model, tmp_path / "plug"))
    assert type(same.layers[1]).__name__ == "Scale"
    cfg = json.loads((tmp_path / "plug" / "config.json").read_text())
    assert cfg["model_args"]["norm"] == "example_scale"
    providers = {r["distribution"]: r for r in cfg["requires"]}  # the plugin is recorded as a requirement
    assert "layers:example_scale" in providers["plait-example-plugin"]["provides"]
    assert "models:mlp" in providers["plait-zoo"]["provides"]
    from importlib import metadata

    real = metadata.version

    def uninstalled(name):
        if name == "plait-example-plugin":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    metadata.version = uninstalled  # as if the plugin were not installed where the folder is loaded
    try:
        with pytest.raises(SerializationError, match=r"needs plait-example-plugin \S+ \(pip install plait-example-plugin\)"):
            zoo.load(tmp_path / "plug")
    finally:
        metadata.version = real
    x = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_array_equal(same(x), model(x))


def test_loading_into_another_architecture_fails_clearly(tmp_path):
    zoo.save(_mlp(), tmp_path / "m")
    with pytest.raises(SerializationError, match=r"config.json: holds a 'mlp' model, not the requested 'gpt'"):
        zoo.load(tmp_path / "m", architecture="gpt")
    other = zoo.create("mlp", sizes=[6, 4, 3])
    with pytest.raises(SerializationError, match=r"model.safetensors: does not fit the 'mlp' model.*layers.0.weight"):
        zoo.load_weights(other, tmp_path / "m")


def test_missing_and_corrupt_files_fail_naming_path_and_problem(tmp_path):
    with pytest.raises(SerializationError, match="no such directory"):
        zoo.load(tmp_path / "nothing")
    folder = zoo.save(_mlp(), tmp_path / "m")
    cfg_path = folder / "config.json"
    good = cfg_path.read_text()

    cfg_path.write_text(good[:40])
    with pytest.raises(SerializationError, match=r"config.json is not valid JSON"):
        zoo.load(folder)
    cfg_path.write_text(json.dumps({**json.loads(good), "format_version": 99}))
    with pytest.raises(SerializationError, match="format_version 99 is not supported"):
        zoo.load(folder)
    cfg_path.write_text(json.dumps({**json.loads(good), "architecture": "mlpp"}))
    with pytest.raises(SerializationError, match=r"cannot rebuild the 'mlpp' model: unknown model 'mlpp'"):
        zoo.load(folder)
    cfg_path.write_text(json.dumps({**json.loads(good), "model_args": {"sizes": [6, 9, 3]}}))
    with pytest.raises(SerializationError, match="does not fit the 'mlp' model"):
        zoo.load(folder)

    cfg_path.write_text(good)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(SerializationError, match="model.safetensors"):
        zoo.load(folder)
    weights.unlink()
    with pytest.raises(SerializationError, match="weights file not found"):
        zoo.load(folder)
    cfg_path.unlink()
    with pytest.raises(SerializationError, match=r"config.json: missing"):
        zoo.load(folder)


def test_saving_an_unregistered_module_fails_clearly(tmp_path):
    from plait.core import ConfigError, Module

    class Loose(Module):
        def forward(self, x):
            return x

    with pytest.raises(ConfigError, match="not a registered model architecture"):
        zoo.save(Loose(), tmp_path / "loose")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: {**c, "format_version": True}, "format_version True is not supported"),
        (lambda c: {**c, "dtype": "int8"}, "dtype 'int8' is not one of"),
        (lambda c: {**c, "model_args": {**c["model_args"], "sizes": "4,8,3"}}, "cannot rebuild the 'mlp' model"),
    ],
    ids=["bool version", "integer dtype", "sizes a string"],
)
def test_hostile_config_values_fail_as_serialization_errors(tmp_path, edit, match):
    folder = zoo.save(_mlp(), tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(edit(cfg)))
    with pytest.raises(SerializationError, match=match):
        zoo.load(folder)


def test_a_json_nesting_bomb_fails_as_a_serialization_error(tmp_path):
    folder = zoo.save(_mlp(), tmp_path / "m")
    (folder / "config.json").write_text('{"a": ' * 50_000 + "1" + "}" * 50_000)
    with pytest.raises(SerializationError, match="config.json: JSON nested too deeply"):
        zoo.load(folder)


def test_model_checkpoint_folders_open_with_zoo_load(tmp_path):
    train = pytest.importorskip("plait.train")
    from plait.layers import CrossEntropyLoss
    from plait.optim import SGD

    model = _mlp()
    x = np.random.default_rng(0).standard_normal((32, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    run = tmp_path / "run"
    trainer = train.Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1),
                            callbacks=[train.ModelCheckpoint(run, monitor="loss", max_to_keep=2)], seed=0)
    trainer.fit((x, y), epochs=4, batch_size=8, verbose=False)
    kept = sorted(p.name for p in run.iterdir() if p.is_dir() and not p.is_symlink())
    assert len(kept) <= 3 and "epoch-0004" in kept  # bounded: 2 kept, plus the best if older
    for name in ("latest", "epoch-0004"):
        same = zoo.load(run / name)
        assert type(same) is type(model)
        np.testing.assert_array_equal(same(x), model.eval()(x))
    assert type(zoo.load(run / "best")) is type(model)
