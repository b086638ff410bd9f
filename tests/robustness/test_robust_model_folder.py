"""Hostile saved-model folders (``config.json`` + ``model.safetensors``) through plait.zoo.load.

Every damaged folder raises SerializationError naming the file and the problem — missing
fields, wrong types, unknown architectures or layer names, nesting bombs, huge numbers,
non-UTF-8, absurd dtypes, weights that do not fit — and nothing else escapes. Loading
never runs code: names resolve only through the registry and weights are safetensors.

Decision on NaN/inf weights: a folder whose weights hold NaN/inf loads as saved (a
diverged checkpoint must stay inspectable); the Trainer stops on the first non-finite loss.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.core import SerializationError, load_safetensors, manual_seed, save_safetensors
from plait.core.errors import PlaitError

zoo = pytest.importorskip("plait.zoo")

CORPUS = Path(__file__).parent / "corpus" / "models"
FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    manual_seed(0)
    folder = tmp_path_factory.mktemp("zoo") / "mlp"
    zoo.save(zoo.create("mlp", sizes=[4, 8, 3]), folder)
    return folder


def _copy(saved: Path, tmp_path: Path) -> tuple[Path, dict]:
    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    return folder, json.loads((folder / "config.json").read_text())


def _write(folder: Path, config: Any) -> None:
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")


def _args(**changes: Any):
    def edit(cfg: dict, folder: Path) -> None:
        cfg["model_args"].update(changes)
        _write(folder, cfg)

    return edit


def _top(**changes: Any):
    def edit(cfg: dict, folder: Path) -> None:
        cfg.update(changes)
        for k, v in changes.items():
            if v is _DROP:
                del cfg[k]
        _write(folder, cfg)

    return edit


def _raw(text: str | bytes):
    def edit(cfg: dict, folder: Path) -> None:
        path = folder / "config.json"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return edit


def reseal(folder: Path) -> None:
    """Record the current files' sizes and SHA-256 in config.json, as a stranger handing out an
    edited folder would: the checksums catch corruption and races, not intent."""
    cfg = json.loads((folder / "config.json").read_text())
    cfg["files"] = {name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                    for name in cfg.get("files", {}) for data in [(folder / name).read_bytes()]}
    _write(folder, cfg)


def _weights(change=None, blob: bytes | None = None, sealed: bool = True):
    """Rewrite model.safetensors: ``change(arrays) -> arrays`` (written raw, any dtype), or ``blob``;
    ``sealed``: config.json's checksums are updated to match (else the checksum fails first)."""
    def edit(cfg: dict, folder: Path) -> None:
        from safetensors.numpy import save_file

        path = folder / "model.safetensors"
        if blob is not None:
            path.write_bytes(blob)
        else:
            save_file(change(load_safetensors(path)), str(path))
        if sealed:
            reseal(folder)

    return edit


def _first(arrays: dict) -> str:
    return sorted(arrays)[0]


_DROP = object()
CASES = {
    "format missing": (_top(format=_DROP), "format"),
    "format wrong": (_top(format="keras-h5"), "format"),
    "format_version missing": (_top(format_version=_DROP), "format_version"),
    "format_version from the future": (_top(format_version=99), "format_version"),
    "format_version a string": (_top(format_version="1"), "format_version"),
    "format_version true": (_top(format_version=True), "format_version"),
    "architecture missing": (_top(architecture=_DROP), "architecture"),
    "architecture unknown": (_top(architecture="mlpp"), "unknown model 'mlpp'"),
    "architecture a module path": (_top(architecture="os.system"), "unknown model"),
    "architecture a number": (_top(architecture=7), "architecture"),
    "model_args missing": (_top(model_args=_DROP), "model_args"),
    "model_args a list": (_top(model_args=[4, 8, 3]), "model_args"),
    "unknown argument": (_args(hidden=5), "no argument"),
    "sizes a string": (_args(sizes="4,8,3"), "mlp"),
    "sizes nested": (_args(sizes=[[4], [8], [3]]), "mlp"),
    "sizes negative": (_args(sizes=[4, -8, 3]), "mlp"),
    "sizes 10**12": (_args(sizes=[4, 10**12, 3]), "mlp"),
    "unknown activation layer": (_args(activation="relu7"), "unknown layer 'relu7'"),  # relu6 is a layer now
    "activation a layer config of an unknown type": (_args(activation={"type": "evil"}), "unknown layer 'evil'"),
    "activation a number": (_args(activation=5), "activation"),
    "dropout a string": (_args(dropout="0.1"), "dropout"),
    "dropout infinite": (_raw('{"format": "plait-model", "format_version": 1, "architecture": "mlp", '
                              '"model_args": {"sizes": [4, 8, 3], "dropout": Infinity}}'), "dropout"),
    "dtype unknown": (_top(dtype="float7"), "dtype"),
    "dtype a number": (_top(dtype=32), "dtype"),
    "dtype complex128": (_top(dtype="complex128"), "dtype"),
    "dtype int8": (_top(dtype="int8"), "dtype"),
    "not JSON": (_raw("{'format': 'plait-model'}"), "JSON"),
    "empty": (_raw(""), "JSON"),
    "a list": (_raw("[1, 2, 3]"), "object"),
    "not UTF-8": (_raw(b'{"format": "plait-model\xff\xfe"}'), "config.json"),
    "nesting bomb": (_raw('{"a": ' * 50_000 + "1" + "}" * 50_000), "config.json"),
    "nested arguments": (_args(sizes=json.loads("[" * 500 + "]" * 500)), "mlp"),
    "5000-digit number": (_raw('{"format": "plait-model", "format_version": ' + "9" * 5000 + "}"), "config.json"),
    "weights missing": (lambda cfg, folder: (folder / "model.safetensors").unlink(), "model.safetensors"),
    "weights truncated": (lambda cfg, folder: (folder / "model.safetensors").write_bytes(
        (folder / "model.safetensors").read_bytes()[:100]), "model.safetensors"),
    "weights a pickle": (_weights(blob=pickle.dumps({"layers.0.weight": [[1.0] * 4] * 8})), "model.safetensors"),
    "weights edited, checksum not": (_weights(lambda w: {k: v + 1 for k, v in w.items()}, sealed=False), "SHA-256"),
    "weights of another shape": (_weights(lambda w: {**w, _first(w): np.ones((2, 2, 2), np.float32)}), "shape"),
    "weights missing a tensor": (_weights(lambda w: {k: v for k, v in w.items() if k != _first(w)}), "missing"),
    "weights with an extra tensor": (_weights(lambda w: {**w, "evil": np.ones(1, np.float32)}), "unexpected"),
    "weights complex": (_weights(lambda w: {**w, _first(w): w[_first(w)].astype(np.complex64)}), "complex"),
    "weights float64 into float32": (_weights(lambda w: {**w, _first(w): w[_first(w)].astype(np.float64)}), "OK"),
    "weights int8": (_weights(lambda w: {**w, _first(w): w[_first(w)].astype(np.int8)}), "OK"),
    "config.json a folder": (lambda cfg, folder: ((folder / "config.json").unlink(), (folder / "config.json").mkdir()),
                             "config.json"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_model_folder(saved, tmp_path, case):
    folder, cfg = _copy(saved, tmp_path)
    edit, match = CASES[case]
    edit(cfg, folder)
    if match == "OK":  # a real dtype converts like torch's copy_: the model loads
        assert zoo.load(folder).num_parameters() > 0
        return
    with pytest.raises(SerializationError) as err:
        zoo.load(folder)
    message = str(err.value)
    assert str(folder) in message, message
    assert match.lower() in message.lower(), message


def test_loading_a_pickle_never_runs_it(saved, tmp_path):
    folder, _ = _copy(saved, tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (folder / "model.safetensors").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(SerializationError):
        zoo.load(folder)
    assert not marker.exists()


def test_missing_folder_and_read_config(tmp_path):
    with pytest.raises(SerializationError, match="no such directory"):
        zoo.load(tmp_path / "nowhere")
    with pytest.raises(SerializationError, match="missing"):
        zoo.read_config(tmp_path)


def test_non_finite_weights_load_as_saved(saved, tmp_path):
    folder, _ = _copy(saved, tmp_path)
    bad = load_safetensors(folder / "model.safetensors")
    key = _first(bad)
    bad[key].flat[:3] = [np.nan, np.inf, -np.inf]
    save_safetensors(folder / "model.safetensors", bad)
    reseal(folder)
    model = zoo.load(folder)
    assert model.state_dict()[key].tobytes() == bad[key].tobytes()


# -- hypothesis: mutated config.json ----------------------------------------------------------------
_junk = st.recursive(
    st.none() | st.booleans() | st.sampled_from([-1, 0, 1, 2, 3, 2**40, 2**64, 10**30]) | st.floats()
    | st.sampled_from(["", "relu", "mlp", "gpt", "float64", "layer_norm", "linear", "x" * 50]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["type", "sizes", "a", ""]), inner,
                                                                max_size=3),
    max_leaves=6,
)


@FUZZ
@given(data=st.data())
def test_fuzzed_config(saved, tmp_path, data):
    folder = tmp_path / "fuzz"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    cfg = json.loads((folder / "config.json").read_text())
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        where = data.draw(st.sampled_from(["top", "args"]), label="where")
        target = cfg if where == "top" or not isinstance(cfg.get("model_args"), dict) else cfg["model_args"]
        key = data.draw(st.sampled_from([*target, "extra"]), label="key")
        if data.draw(st.booleans(), label="delete") and key in target:
            del target[key]
        else:
            target[key] = data.draw(_junk, label="value")
    _write(folder, cfg)
    try:
        model = zoo.load(folder)
    except SerializationError as exc:
        assert str(folder) in str(exc)
        return
    except Exception as exc:  # record what escaped, then fail
        pytest.fail(f"{type(exc).__name__} escaped zoo.load: {exc}\nconfig: {json.dumps(cfg)[:300]}")
    assert model.num_parameters() > 0


# -- the stored corpus ------------------------------------------------------------------------
def _corpus() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else []


@pytest.mark.parametrize("folder", _corpus(), ids=lambda p: p.name)
def test_corpus_folder(folder):
    if folder.name.startswith("ok_"):
        assert zoo.load(folder).num_parameters() > 0
        return
    with pytest.raises(PlaitError) as err:
        zoo.load(folder)
    assert isinstance(err.value, SerializationError) and str(folder) in str(err.value)


_HUGE_MODEL = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))
from plait.core import SerializationError
import plait.zoo as zoo
folder = sys.argv[1]
cfg = json.load(open(folder + "/config.json"))
cfg["model_args"]["sizes"] = [4, 100_000, 100_000, 3]  # 40 GB of float32 weights
json.dump(cfg, open(folder + "/config.json", "w"))
try:
    zoo.load(folder)
except SerializationError as exc:
    print("clean:", str(exc)[:200])
"""


def test_huge_model_under_a_memory_limit_fails_cleanly(saved, tmp_path):
    """A config asking for 40 GB of weights, loaded with 3 GB of address space: SerializationError."""
    import subprocess
    import sys

    resource = pytest.importorskip("resource")
    del resource
    folder, _ = _copy(saved, tmp_path)
    out = subprocess.run([sys.executable, "-c", _HUGE_MODEL, str(folder)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("clean:"), out.stdout + out.stderr[-2000:]
    assert str(folder) in out.stdout
