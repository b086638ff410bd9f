"""Published weights: a Hugging Face GPT-2 folder (or a saved Plait model) with its tokenizer.

    model, tokenizer = zoo.from_pretrained("path/to/gpt2")   # a folder you downloaded
    model, tokenizer = zoo.from_pretrained("gpt2")           # looked up in local caches only
    ids = zoo.generate(model, tokenizer.encode("Hello"), 20, temperature=0)

A GPT-2 folder holds ``config.json`` + ``model.safetensors`` (or shards named by
``model.safetensors.index.json``), float32/float16, or bfloat16 converted to float32 with
a warning; and the tokenizer as ``vocab.json`` + ``merges.txt`` (or GPT-2's original
``encoder.json`` + ``vocab.bpe``). The config becomes a zoo ``gpt`` (learned positions,
tanh GELU, tied head), the weights are renamed by :mod:`.torch_weights`' GPT-2 key map and
every shape is checked. The tokenizer is built through ``registry.tokenizers`` (plait-zoo
does not import plait-tokenizers): without that distribution the tokenizer is None.

A name is looked up, never downloaded: ``$PLAIT_HOME/models/<name>`` (``PLAIT_HOME``
defaults to ``~/.cache/plait``), then the Hugging Face hub cache
(``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``:
``models--<org>--<name>/snapshots/<refs/main>/``); a bare ``gpt2*`` name also tries
``openai-community/<name>``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from plait.core import ConfigError, Module, PlaitError, SerializationError, ShapeError, read_bytes, read_json, registry

from .catalog import create
from .serialization import FORMAT, load
from .torch_weights import load_torch_state_dict, read_safetensors

__all__ = ["Pretrained", "find_pretrained", "from_pretrained", "gpt2_model_args", "read_json_file"]

_MAX_CONFIG = 1 << 20  # config.json, index.json, refs/main
_MAX_TOKENIZER_FILE = 64 << 20  # vocab.json ~1 MB, merges.txt ~0.5 MB for GPT-2
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a commit hash or a branch name, never ".."
_SHARD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.safetensors")
_TOKENIZER = "byte_level_bpe"  # the registry name of plait-tokenizers' byte-level BPE
_TOKENIZER_FILES = (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe"))
_ACTIVATIONS: dict[str, Any] = {  # Hugging Face's activation_function -> a zoo layer spec
    "gelu_new": {"type": "gelu", "approximate": "tanh"},
    "gelu_pytorch_tanh": {"type": "gelu", "approximate": "tanh"},
    "gelu": "gelu",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}


class Pretrained(NamedTuple):
    """What :func:`from_pretrained` returns: unpack as ``model, tokenizer = ...``.

    Attributes:
        model: the model, in eval mode.
        tokenizer: its tokenizer, or None when the folder has none (or plait-tokenizers is
            not installed).
    """

    model: Module
    tokenizer: Any


# -- files ------------------------------------------------------------------------------------
def read_json_file(path: Path, limit: int = _MAX_CONFIG) -> Any:
    """Strict JSON (no duplicate keys, no NaN/Infinity, no huge integers) from a regular file of at most ``limit`` bytes."""
    return read_json(path, component="from_pretrained", max_bytes=limit, expect=None)


def _int_field(config: dict[str, Any], key: str, default: int | None, path: Path, high: int = 1 << 20) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise SerializationError(f"{path}: field {key!r} must be an integer in [1, {high}], got {value!r}")
    return value


def gpt2_model_args(config: Any, path: Path) -> dict[str, Any]:
    """A Hugging Face GPT-2 ``config.json`` (parsed) -> the zoo ``gpt`` arguments; every field checked."""
    if not isinstance(config, dict):
        raise SerializationError(f"{path}: expected a JSON object, got {type(config).__name__}")
    model_type = config.get("model_type", "gpt2")
    if model_type != "gpt2":
        raise SerializationError(f"{path}: field 'model_type' is {model_type!r}; from_pretrained reads 'gpt2' "
                                 "checkpoints (and folders written by plait.zoo.save)")
    d_model = _int_field(config, "n_embd", 768, path)
    heads = _int_field(config, "n_head", 12, path, high=4096)
    if d_model % heads:
        raise SerializationError(f"{path}: field 'n_embd' ({d_model}) must be a multiple of 'n_head' ({heads})")
    inner = config.get("n_inner")
    activation = config.get("activation_function", "gelu_new")
    if activation not in _ACTIVATIONS:
        raise SerializationError(f"{path}: field 'activation_function' is {activation!r}; supported: "
                                 f"{', '.join(_ACTIVATIONS)}")
    eps = config.get("layer_norm_epsilon", 1e-5)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise SerializationError(f"{path}: field 'layer_norm_epsilon' must be a number in (0, 1), got {eps!r}")
    for key, unsupported in (("scale_attn_weights", False), ("scale_attn_by_inverse_layer_idx", True),
                             ("add_cross_attention", True)):
        if config.get(key, not unsupported) is unsupported:
            raise SerializationError(f"{path}: field {key!r} = {json.dumps(unsupported)} is not supported by the "
                                     "zoo gpt")
    tie = config.get("tie_word_embeddings", True)
    if not isinstance(tie, bool):
        raise SerializationError(f"{path}: field 'tie_word_embeddings' must be true or false, got {tie!r}")
    return {
        "vocab_size": _int_field(config, "vocab_size", 50257, path, high=1 << 24),
        "context_length": _int_field(config, "n_positions", config.get("n_ctx", 1024), path),
        "d_model": d_model,
        "num_layers": _int_field(config, "n_layer", 12, path, high=4096),
        "num_heads": heads,
        "ffn_dim": None if inner is None else _int_field(config, "n_inner", None, path),
        "activation": _ACTIVATIONS[activation],
        "norm": {"type": "layer_norm", "eps": float(eps)},
        "positional": "learned",
        "dropout": 0.0,
        "tie_embeddings": tie,
        "bias": True,
    }


def _weights(folder: Path) -> dict[str, Any]:
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return read_safetensors(single)
    if index.is_file():
        payload = read_json_file(index)
        weight_map = payload.get("weight_map") if isinstance(payload, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise SerializationError(f"{index}: field 'weight_map' must be an object of tensor name -> file name")
        tensors: dict[str, Any] = {}
        for shard in sorted(set(weight_map.values())):
            if not _SHARD.fullmatch(shard):
                raise SerializationError(f"{index}: shard name {shard!r} is not a plain *.safetensors file name")
            tensors.update(read_safetensors(folder / shard))
        return tensors
    pickled = [n for n in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack") if (folder / n).is_file()]
    hint = (f" (it has {', '.join(pickled)}; Plait reads only safetensors, which cannot run code: get the "
            "model.safetensors file of the same model)") if pickled else ""
    raise SerializationError(f"{folder}: no model.safetensors (or model.safetensors.index.json){hint}")


def _tokenizer(folder: Path, required: bool) -> Any:
    files = next(((folder / a, folder / b) for a, b in _TOKENIZER_FILES
                  if (folder / a).is_file() and (folder / b).is_file()), None)
    if files is None:
        message = f"{folder}: no GPT-2 tokenizer files (vocab.json + merges.txt, or encoder.json + vocab.bpe)"
        if required:
            raise SerializationError(message)
        warnings.warn(message + "; the tokenizer is None", UserWarning, stacklevel=3)
        return None
    if _TOKENIZER not in registry.tokenizers:
        message = ("the GPT-2 tokenizer needs the plait-tokenizers distribution (pip install plait-tokenizers), "
                   f"which registers {_TOKENIZER!r}")
        if required:
            raise ConfigError(message)
        warnings.warn(message + "; the tokenizer is None", UserWarning, stacklevel=3)
        return None
    for f in files:
        size = f.stat().st_size
        if size > _MAX_TOKENIZER_FILE:
            raise SerializationError(f"{f}: {size} bytes is more than a tokenizer file may have "
                                     f"({_MAX_TOKENIZER_FILE})")
    return registry.tokenizers.get(_TOKENIZER).from_gpt2_files(*files)


# -- finding ----------------------------------------------------------------------------------
def _hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ["HF_HOME"]) if os.environ.get("HF_HOME") else Path.home() / ".cache" / "huggingface"
    return home / "hub"


def _plait_home() -> Path:
    return Path(os.environ["PLAIT_HOME"]) if os.environ.get("PLAIT_HOME") else Path.home() / ".cache" / "plait"


def _snapshot(repo: Path) -> Path | None:
    """``repo/snapshots/<revision>`` named by ``refs/main`` (else the newest snapshot with a config.json)."""
    ref, snapshots = repo / "refs" / "main", repo / "snapshots"
    try:
        if ref.is_file():
            try:
                revision = read_bytes(ref, component="from_pretrained", max_bytes=256).decode("ascii").strip()
            except (SerializationError, UnicodeDecodeError):  # an unusable ref counts as absent
                revision = ""
            if _REVISION.fullmatch(revision) and (snapshots / revision / "config.json").is_file():
                return snapshots / revision
        found = [p for p in snapshots.iterdir() if (p / "config.json").is_file()] if snapshots.is_dir() else []
        return max(found, key=lambda p: p.stat().st_mtime) if found else None
    except OSError:  # unreadable cache entries count as absent
        return None


def find_pretrained(name: str) -> Path:
    """The local folder holding the pretrained model ``name`` (e.g. ``"gpt2"``); never downloads.

    Args:
        name: ``"name"`` or ``"org/name"`` (letters, digits, ``.``, ``_``, ``-``; no ``..``),
            looked up in ``$PLAIT_HOME/models`` then the Hugging Face hub cache.

    Raises:
        ConfigError: ``name`` is not a valid model name.
        SerializationError: no local copy was found (the message says where it looked and
            how to fetch one).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"from_pretrained: {name!r} is neither an existing folder nor a model name "
                          "like 'gpt2' or 'org/name'")
    names = [name] + ([f"openai-community/{name}"] if "/" not in name and name.startswith("gpt2") else [])
    looked = []
    for n in names:
        folder = _plait_home() / "models" / n
        looked.append(str(folder))
        if (folder / "config.json").is_file():
            return folder
    for n in names:
        repo = _hub_cache() / ("models--" + n.replace("/", "--"))
        looked.append(str(repo / "snapshots" / "<refs/main>"))
        snapshot = _snapshot(repo) if repo.is_dir() else None
        if snapshot is not None:
            return snapshot
    repo_id = names[-1]
    raise SerializationError(
        f"from_pretrained: {name!r} is not an existing folder, and no local files for it were found; looked in "
        f"{', '.join(looked)}. Plait never downloads: "
        f"fetch config.json, model.safetensors, vocab.json and merges.txt from https://huggingface.co/{repo_id} "
        f"into {_plait_home() / 'models' / name} (or run `hf download {repo_id}`, which fills the Hugging Face "
        "cache), then pass the name or the folder"
    )


def from_pretrained(path_or_name: str | os.PathLike[str], *, require_tokenizer: bool = False) -> Pretrained:
    """Load a pretrained model and its tokenizer -> ``Pretrained(model, tokenizer)``, model in eval mode.

    ``path_or_name``: a folder (Hugging Face GPT-2 layout, or one written by ``plait.zoo.save``)
    or a name looked up in the local caches (see the module docstring).
    ``require_tokenizer``: raise instead of returning ``tokenizer=None`` (with a warning) when the
    tokenizer files or the plait-tokenizers distribution are missing.

    Args:
        path_or_name: a folder, or a model name (see :func:`find_pretrained`).
        require_tokenizer: default False; keyword-only.

    Raises:
        SerializationError: nothing found, a missing or invalid config.json, weights that
            are missing, malformed or do not fit the configuration, or (with
            ``require_tokenizer``) missing tokenizer files.
        ConfigError: an invalid name, or ``require_tokenizer`` without plait-tokenizers.
    """
    folder = Path(path_or_name)
    if not folder.is_dir():
        folder = find_pretrained(str(path_or_name))
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise SerializationError(f"{folder}: no config.json (a pretrained folder holds config.json and "
                                 "model.safetensors)")
    config = read_json_file(config_path)
    if isinstance(config, dict) and config.get("format") == FORMAT:  # saved by plait.zoo.save
        from .text import load_text_codec  # noqa: PLC0415

        model = load(folder)
        tokenizer = load_text_codec(folder)
        if tokenizer is None and require_tokenizer:
            raise SerializationError(f"{folder}: no tokenizer.json and no character vocabulary in config.json")
        return Pretrained(model, tokenizer)
    args = gpt2_model_args(config, config_path)
    tokenizer = _tokenizer(folder, require_tokenizer)  # before the big read: fail fast on a missing distribution
    try:
        model = create("gpt", **args)
    except PlaitError as exc:
        raise SerializationError(f"{config_path}: cannot build the gpt model it describes: {exc}") from exc
    try:
        load_torch_state_dict(model, _weights(folder), architecture="gpt")
    except (ConfigError, ShapeError) as exc:  # name the folder, keep the list of every problem
        raise SerializationError(f"{folder}: the weights do not fit the model config.json describes: {exc}") from exc
    model.eval()
    return Pretrained(model, tokenizer)
