"""Torch state dicts into zoo models: read the tensors, rename the keys, check every shape, copy.

    zoo.load_torch_state_dict(model, "lenet5.safetensors")      # saved with safetensors.torch
    zoo.load_torch_state_dict(model, torch_model.state_dict())  # torch tensors or NumPy arrays
    zoo.load_torch_state_dict(model, sd, mapping={"classifier.weight": "fc.weight", "aux.weight": None})

A key map turns the key names of a model's natural torch twin into the zoo model's names.
Every architecture tries its maps in turn and uses the first one under which every tensor
finds its place (Plait's own names always come first):

* ``mlp``, ``cnn``: a flat ``nn.Sequential`` (keys ``"<index>.<name>"``), matched module by
  module in order;
* ``resnet``: torchvision's names (``conv1``, ``bn1``, ``layer<s>.<j>.downsample.0``, ``fc``);
* ``gpt``: a torch GPT with ``blocks.<i>.{q,k,v,out}_proj``/``fc1``/``fc2`` (or
  ``nn.MultiheadAttention``'s packed ``in_proj_weight``), and Hugging Face's GPT-2
  (``transformer.h.<i>.attn.c_attn`` ...: its ``Conv1D`` stores ``(in, out)``, the transpose
  of a ``Linear``, and ``c_attn`` packs q, k, v);
* ``gpt``, ``transformer``: also the zoo's former feed-forward names ``ffn.fc1``/``ffn.fc2``
  (now ``ffn.linear1``/``ffn.linear2``, as ``plait.layers.FeedForward``);
* ``rnn_lm``, ``rnn_classifier``, ``transformer``: torch's own names (the zoo uses them).

``mapping`` (a dict ``{torch key: zoo key or None}``) is applied first; None drops a tensor.
A callable ``mapping(torch_key) -> zoo key or None`` replaces the architecture's maps.
A tensor for a weight the model ties to another (GPT's head and token embedding) must
equal it. Unmatched keys, missing weights and shape mismatches are reported all at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from plait.core import ConfigError, Module, PlaitError, SerializationError, ShapeError, load_safetensors

from .models.blocks import FFN_KEY, FORMER_FFN_KEY
from .serialization import model_spec

__all__ = ["KEY_MAPS", "Rule", "convert_state_dict", "load_torch_state_dict", "read_safetensors"]


class Rule(NamedTuple):
    """A torch key ``pattern`` (regular expression, whole key) -> zoo key ``targets`` (``re`` templates).

    ``targets=()`` drops the tensor; several targets split it along axis 0 into the sizes the
    model wants (packed q, k, v); ``transpose`` swaps the two axes first (``Conv1D`` -> ``Linear``).
    """

    pattern: str
    targets: tuple[str, ...]
    transpose: bool = False


KeyMap = Callable[[Module, list[str]], list[Rule]]


# -- reading ----------------------------------------------------------------------------------
def read_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as NumPy arrays; bfloat16 tensors become float32 (with a warning).

    One bounded read of a regular file, its header validated by core (:func:`plait.core.load_safetensors`).
    """
    return load_safetensors(path, bfloat16="float32")


def _to_numpy(name: str, value: Any) -> np.ndarray:
    if type(value).__module__.startswith("torch"):  # a torch tensor, without importing torch
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise SerializationError(f"load_torch_state_dict: {name!r} has dtype {arr.dtype}, not a number array")
    return arr


# -- key maps ---------------------------------------------------------------------------------
def _identity(model: Module, keys: list[str]) -> list[Rule]:
    return [Rule(r"(.+)", (r"\1",))]


def _natural(key: str) -> list[Any]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in key.split(".")]


def _sequential(model: Module, keys: list[str]) -> list[Rule]:
    """A flat ``nn.Sequential`` twin: its parametrised modules, in order, onto the model's."""
    if not keys or not all(re.fullmatch(r"\d+\.[^.]+", k) for k in keys):
        return []
    theirs: dict[str, list[str]] = {}
    for key in sorted(keys, key=_natural):
        prefix, leaf = key.rsplit(".", 1)
        theirs.setdefault(prefix, []).append(leaf)
    ours: dict[str, list[str]] = {}
    for key in model.state_dict():
        prefix, leaf = key.rsplit(".", 1)
        ours.setdefault(prefix, []).append(leaf)
    rules = []
    for (t_prefix, t_leaves), (o_prefix, o_leaves) in zip(theirs.items(), ours.items()):
        if sorted(t_leaves) != sorted(o_leaves):
            break  # from here on the layers no longer line up: leave the rest unmatched
        rules += [Rule(re.escape(f"{t_prefix}.{leaf}"), (f"{o_prefix}.{leaf}",)) for leaf in t_leaves]
    return rules


def _torchvision_resnet(model: Module, keys: list[str]) -> list[Rule]:
    rules = [Rule(r"conv1\.(.+)", (r"stem.0.\1",)), Rule(r"bn1\.(.+)", (r"stem.1.\1",)), Rule(r"fc\.(.+)", (r"fc.\1",))]
    counts = model_spec(model)[1].get("blocks", [])
    k = 0
    for stage, count in enumerate(counts, start=1):
        for j in range(int(count)):
            rules.append(Rule(rf"layer{stage}\.{j}\.downsample\.(\d+)\.(.+)", (rf"blocks.{k}.shortcut.\1.\2",)))
            rules.append(Rule(rf"layer{stage}\.{j}\.(.+)", (rf"blocks.{k}.\1",)))
            k += 1
    return rules


def _torch_gpt(model: Module, keys: list[str]) -> list[Rule]:
    b = r"blocks\.(\d+)\."
    return [
        Rule(b + r"(q|k|v|out)_proj\.(weight|bias)", (r"blocks.\1.attn.\2_proj.\3",)),
        Rule(b + r"attn\.in_proj_(weight|bias)", tuple(rf"blocks.\1.attn.{p}_proj.\2" for p in "qkv")),
        Rule(b + r"fc([12])\.(weight|bias)", (r"blocks.\1.ffn.linear\2.\3",)),
        Rule(r"(.+)", (r"\1",)),
    ]


def _hf_gpt2(model: Module, keys: list[str]) -> list[Rule]:
    t, h = r"(?:transformer\.)?", r"(?:transformer\.)?h\.(\d+)\."
    return [
        Rule(t + r"wte\.weight", ("tok_emb.weight",)),
        Rule(t + r"wpe\.weight", ("pos_emb.weight",)),
        Rule(h + r"ln_1\.(weight|bias)", (r"blocks.\1.norm1.\2",)),
        Rule(h + r"ln_2\.(weight|bias)", (r"blocks.\1.norm2.\2",)),
        Rule(h + r"attn\.c_attn\.weight", tuple(rf"blocks.\1.attn.{p}_proj.weight" for p in "qkv"), transpose=True),
        Rule(h + r"attn\.c_attn\.bias", tuple(rf"blocks.\1.attn.{p}_proj.bias" for p in "qkv")),
        Rule(h + r"attn\.c_proj\.weight", (r"blocks.\1.attn.out_proj.weight",), transpose=True),
        Rule(h + r"attn\.c_proj\.bias", (r"blocks.\1.attn.out_proj.bias",)),
        Rule(h + r"mlp\.c_fc\.weight", (r"blocks.\1.ffn.linear1.weight",), transpose=True),
        Rule(h + r"mlp\.c_fc\.bias", (r"blocks.\1.ffn.linear1.bias",)),
        Rule(h + r"mlp\.c_proj\.weight", (r"blocks.\1.ffn.linear2.weight",), transpose=True),
        Rule(h + r"mlp\.c_proj\.bias", (r"blocks.\1.ffn.linear2.bias",)),
        Rule(t + r"ln_f\.(weight|bias)", (r"norm.\1",)),
        Rule(r"lm_head\.weight", ("head.weight",)),
        Rule(h + r"attn\.(?:bias|masked_bias)", ()),  # the causal-mask buffers older files carry
    ]


def _former_zoo_names(model: Module, keys: list[str]) -> list[Rule]:
    """Plait's names from before the zoo used ``plait.layers.FeedForward`` (``ffn.fc1``/``ffn.fc2``)."""
    return [Rule(FORMER_FFN_KEY, (FFN_KEY,)), Rule(r"(.+)", (r"\1",))]


KEY_MAPS: dict[str, list[tuple[str, KeyMap]]] = {
    "mlp": [("torch nn.Sequential", _sequential)],
    "cnn": [("torch nn.Sequential", _sequential)],
    "resnet": [("torchvision ResNet", _torchvision_resnet)],
    "gpt": [("torch GPT", _torch_gpt), ("Hugging Face GPT-2", _hf_gpt2), ("former plait-zoo names", _former_zoo_names)],
    "transformer": [("former plait-zoo names", _former_zoo_names)],
}
"""architecture -> [(description, key map)], tried after Plait's own names; a plugin may add to it."""


# -- converting -------------------------------------------------------------------------------
def _aliases(model: Module) -> dict[str, str]:
    """Names under which a shared Param is reachable besides its state-dict name (a tied head)."""
    canonical = {id(p): name for name, p in model.named_parameters()}
    out = {}
    for mod_name, module in model.named_modules():
        for leaf, value in vars(module).get("_params", {}).items():
            key = f"{mod_name}.{leaf}" if mod_name else leaf
            if value is not None and canonical.get(id(value), key) != key:
                out[key] = canonical[id(value)]
    return out


def convert_state_dict(model: Module, tensors: Mapping[str, np.ndarray], rules: Iterable[Rule]
                       ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Apply ``rules`` (first match wins) -> (zoo-keyed arrays, every problem found)."""
    compiled = [(re.compile(r.pattern), r) for r in rules]
    slots = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    aliases = _aliases(model)
    out: dict[str, np.ndarray] = {}
    problems: list[str] = []
    unmatched = []
    for key, arr in tensors.items():
        found = next(((m, r) for c, r in compiled if (m := c.fullmatch(key))), None)
        if found is None:
            unmatched.append(key)
            continue
        match, rule = found
        names = [match.expand(t) for t in rule.targets]
        if rule.transpose:
            if arr.ndim != 2:
                problems.append(f"{key}: expected a matrix to transpose, got shape {arr.shape}")
                continue
            arr = arr.T
        if len(names) > 1:
            sizes = [slots.get(aliases.get(n, n), (0,))[0] for n in names]
            if arr.ndim < 1 or sum(sizes) != arr.shape[0]:
                problems.append(f"{key}: shape {arr.shape} does not split into {', '.join(names)} "
                                f"({' + '.join(map(str, sizes))} rows)")
                continue
            parts = np.split(arr, np.cumsum(sizes)[:-1], axis=0)
        else:
            parts = [arr]
        for name, part in zip(names, parts):
            if name in out:
                problems.append(f"{key}: maps onto {name}, which another tensor already filled")
            out[name] = part
    for alias, canonical in aliases.items():  # a tied weight given twice must agree; given once it fills both
        if alias in out:
            value = out.pop(alias)
            if canonical not in out:
                out[canonical] = value
            elif value.shape != out[canonical].shape or not np.array_equal(value, out[canonical]):
                problems.append(f"{alias} is tied to {canonical} in this model, but the two tensors differ")
    for name in sorted(set(out) - set(slots)):
        problems.append(f"{name}: the model has no such weight")
        del out[name]
    for name, want in slots.items():
        if name in out and tuple(out[name].shape) != want:
            problems.append(f"{name}: expected shape {want}, got {tuple(out[name].shape)}")
    missing = sorted(set(slots) - set(out))
    if unmatched:
        problems.append(f"unmatched tensors: {', '.join(sorted(unmatched))}")
    if missing:
        problems.append(f"missing weights: {', '.join(missing)}")
    return out, problems


def _architecture(model: Module) -> str | None:
    try:
        return model_spec(model)[0]
    except PlaitError:
        return None


def _explicit_rules(mapping: Mapping[str, str | None]) -> list[Rule]:
    rules = []
    for key, target in mapping.items():
        if not isinstance(key, str) or not (target is None or isinstance(target, str)):
            raise ConfigError(f"load_torch_state_dict: mapping must map str to str or None, got {key!r}: {target!r}")
        rules.append(Rule(re.escape(key), () if target is None else (target.replace("\\", "\\\\"),)))
    return rules


def load_torch_state_dict(model: Module, path_or_dict: str | os.PathLike[str] | Mapping[str, Any],
                          mapping: Mapping[str, str | None] | Callable[[str], str | None] | None = None,
                          architecture: str | None = None) -> Module:
    """Copy a torch state dict (a safetensors file or a dict of tensors/arrays) into ``model``.

    ``mapping``: see the module docstring. ``architecture``: the registry name whose key maps
    apply (default: the model's own). Raises :class:`ShapeError` (any shape mismatch) or
    :class:`ConfigError` listing every problem of the best-fitting key map; returns ``model``.

    Args:
        model: the zoo model to fill (in place, keeping its dtype and device).
        path_or_dict: a ``.safetensors`` file (as ``safetensors.torch.save_file`` writes),
            or a mapping of key -> torch tensor or array (``torch_model.state_dict()``).
        mapping: default None; ``{torch key: zoo key or None}`` applied before the
            architecture's maps, or a callable ``torch_key -> zoo key or None`` used instead
            of them.
        architecture: default None (the model's registered name); whose key maps apply.

    Raises:
        ShapeError: a tensor's shape differs from its weight's.
        ConfigError: keys no map places, missing weights, or a tied weight that differs.
        SerializationError: the file is missing, too large or malformed, or a value is not
            a tensor or array.
    """
    if isinstance(path_or_dict, Mapping):
        where = "load_torch_state_dict"
        tensors = {str(k): _to_numpy(str(k), v) for k, v in path_or_dict.items()}
    else:
        where = str(path_or_dict)
        tensors = read_safetensors(path_or_dict)
    keys = list(tensors)
    if callable(mapping):
        targets = {k: mapping(k) for k in keys}
        candidates = [("the given mapping", lambda m, k: _explicit_rules(targets))]
    else:
        first = _explicit_rules(mapping or {})
        arch = architecture or _architecture(model)
        maps = [("Plait's own names", _identity), *KEY_MAPS.get(arch or "", [])]
        candidates = [(name, lambda m, k, f=fn: first + f(m, k)) for name, fn in maps]
    best: tuple[int, str, list[str]] | None = None
    for name, key_map in candidates:
        converted, problems = convert_state_dict(model, tensors, key_map(model, keys))
        if not problems:
            model.load_state_dict(converted, strict=True)
            return model
        if best is None or len(converted) > best[0]:  # report the map that placed the most tensors
            best = (len(converted), name, problems)
    assert best is not None
    _, name, problems = best
    error = ShapeError if any("shape" in p for p in problems) else ConfigError
    raise error(f"{where}: does not fit the {type(model).__name__} model (closest key map: {name}): "
                + "; ".join(problems))
