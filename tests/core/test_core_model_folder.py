"""Model folders in core: save/load through the registry, recorded providers, one-step writes."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

import plait.core.files as files
import plait.core.model_folder as mf
from plait.core import (
    SerializationError,
    load_model,
    load_model_tokenizer,
    load_model_weights,
    manual_seed,
    read_model_config,
    registry,
    save_model,
)


def _linear():
    manual_seed(0)
    return registry.build({"type": "linear", "in_features": 4, "out_features": 3})


def _edit(folder, change):
    cfg = json.loads((folder / "config.json").read_text())
    change(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


def test_a_registered_layer_round_trips_through_core_alone(tmp_path):
    model = _linear()
    folder = save_model(model, tmp_path / "lin", metadata={"note": 1})
    cfg = read_model_config(folder)
    assert cfg["architecture"] == "linear" and cfg["kind"] == "layers"
    assert cfg["model_args"]["in_features"] == 4 and cfg["metadata"] == {"note": 1}
    assert {"distribution": "plait-layers", "version": cfg["versions"]["plait-layers"],
            "provides": ["layers:linear"]} in cfg["requires"]
    assert set(cfg["files"]) == {"model.safetensors"}
    same = load_model(folder)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_array_equal(same(x), model(x))
    other = registry.build({"type": "linear", "in_features": 4, "out_features": 3})
    np.testing.assert_array_equal(load_model_weights(other, folder).weight.data, model.weight.data)


def test_a_missing_provider_is_named_with_its_install_command_and_another_version_warns(tmp_path):
    folder = save_model(_linear(), tmp_path / "lin")
    _edit(folder, lambda c: c["requires"].append({"distribution": "my-plait", "version": "0.0.1", "provides": []}))
    with pytest.raises(SerializationError, match=r"needs my-plait 0\.0\.1 \(pip install my-plait\)"):
        load_model(folder)
    _edit(folder, lambda c: c.update(requires=[{"distribution": "plait-layers", "version": "0.0.9"}]))
    with pytest.warns(UserWarning, match=r"saved with plait-layers 0\.0\.9; .* is installed"):
        load_model(folder)


@pytest.mark.parametrize("req", [{"distribution": "x; rm -rf /", "version": "1"}, {"distribution": "ok"},
                                 "plait-layers", {"distribution": "ok", "version": "1" * 100}])
def test_hostile_requirements_are_refused(tmp_path, req):
    folder = save_model(_linear(), tmp_path / "lin")
    _edit(folder, lambda c: c.update(requires=[req]))
    with pytest.raises(SerializationError, match="requires"):
        load_model(folder)


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/b", "", "config.json", "x" * 300])
def test_files_records_name_plain_children_only(tmp_path, name):
    folder = save_model(_linear(), tmp_path / "lin")
    _edit(folder, lambda c: c["files"].update({name: {"size": 1, "sha256": "0" * 64}}))
    with pytest.raises(SerializationError, match="files"):
        read_model_config(folder)


def test_a_tokenizer_is_saved_by_its_own_method_and_loaded_through_the_registry(tmp_path):
    tok_cls = registry.tokenizers.get("char")
    tok = tok_cls.from_text("hello world") if hasattr(tok_cls, "from_text") else tok_cls("helo wrd")
    folder = save_model(_linear(), tmp_path / "lin", tokenizer=tok)
    cfg = read_model_config(folder)
    assert cfg["tokenizer"]["type"] == "char" and cfg["tokenizer"]["distribution"] == "plait-tokenizers"
    assert set(cfg["files"]) == {"model.safetensors", "tokenizer.json"}
    back = load_model_tokenizer(folder)
    assert type(back) is type(tok) and back.decode(back.encode("hello")) == "hello"
    assert load_model_tokenizer(save_model(_linear(), tmp_path / "plain")) is None
    (folder / "tokenizer.json").write_text((folder / "tokenizer.json").read_text().replace("h", "x"))
    with pytest.raises(SerializationError, match="tokenizer.json: size or SHA-256"):
        load_model_tokenizer(folder)


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        folder = save_model(_linear(), tmp_path / "lin")
    finally:
        os.umask(old)
    assert oct(folder.stat().st_mode & 0o777) == oct(0o750)
    for f in folder.iterdir():
        assert oct(f.stat().st_mode & 0o777) == oct(0o640), f


def test_disk_full_raises_naming_the_path_and_keeps_the_old_folder(tmp_path, monkeypatch):
    model = _linear()
    folder = save_model(model, tmp_path / "lin")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real = os.fdopen
    calls = []

    def full(fd, *a, **k):
        calls.append(fd)
        if len(calls) == 2:  # the second file of the save (config.json)
            os.close(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, *a, **k)

    monkeypatch.setattr(files.os, "fdopen", full)
    model.weight.data += 1
    with pytest.raises(SerializationError, match=r"lin: cannot write: .*No space left") as err:
        save_model(model, folder)
    monkeypatch.undo()
    assert isinstance(err.value.__cause__, OSError)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lin"]  # no temporary left behind


def test_stale_temporaries_of_dead_saves_are_cleaned_and_live_ones_kept(tmp_path):
    folder = save_model(_linear(), tmp_path / "lin")
    dead = tmp_path / ".lin.plait-tmp-999999999-abc"
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"half")
    live = tmp_path / f".lin.plait-tmp-{os.getppid()}-xyz"
    live.mkdir()
    save_model(_linear(), folder)
    assert not dead.exists() and live.exists()
    other = tmp_path / ".gone.plait-tmp-999999999-zz"  # a killed save of another folder beside it
    other.mkdir()
    save_model(_linear(), tmp_path / "next")
    assert not other.exists() and live.exists()


def test_fallback_swap_and_recovery_after_a_kill_between_its_renames(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "exchange", lambda a, b: False)  # a system without RENAME_EXCHANGE
    model = _linear()
    folder = save_model(model, tmp_path / "lin")
    model.weight.data += 1
    save_model(model, folder)
    np.testing.assert_array_equal(load_model(folder).weight.data, model.weight.data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lin"]
    # killed after moving the old folder aside, before renaming the new one in:
    os.rename(folder, tmp_path / ".lin.plait-old-999999999-q")
    np.testing.assert_array_equal(load_model(folder).weight.data, model.weight.data)


def test_a_symlink_or_file_at_the_path_is_not_replaced(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(SerializationError, match="symbolic link"):
        save_model(_linear(), tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SerializationError, match="not a folder"):
        save_model(_linear(), tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x" and not any((tmp_path / "real").iterdir())


def test_a_load_that_raced_a_save_never_pairs_one_saves_config_with_anothers_weights(tmp_path, monkeypatch):
    a, b = _linear(), _linear()
    b.weight.data += 5
    folder = save_model(a, tmp_path / "m")
    real = mf.reading.read_file_bytes
    swapped = []

    def racing(path, *args, **kw):
        if str(path).endswith("model.safetensors") and not swapped:  # a save lands between the two reads
            swapped.append(1)
            save_model(b, folder)
        return real(path, *args, **kw)

    monkeypatch.setattr(mf.reading, "read_file_bytes", racing)
    np.testing.assert_array_equal(load_model(folder).weight.data, b.weight.data)  # retried: the new pair
    assert swapped


def test_special_files_are_refused_not_waited_on(tmp_path):
    folder = save_model(_linear(), tmp_path / "lin")
    (folder / "model.safetensors").unlink()
    os.mkfifo(folder / "model.safetensors")
    with pytest.raises(SerializationError, match="expected a regular file"):
        load_model(folder)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").symlink_to("/dev/zero")
    with pytest.raises(SerializationError, match="expected a regular file"):
        load_model(folder)
