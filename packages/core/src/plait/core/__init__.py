"""plait-core: Module/Param, protocols, registry, plugins, backend, initializers, weights I/O."""

from __future__ import annotations

from . import init
from .backend import default_device, device_of, get_array_module, to_device, to_numpy
from .checks import check_array, check_int_array, check_number, check_parameter_count, check_same_shape, check_size
from .containers import ModuleDict, ModuleList, leading_modules
from .errors import (
    CheckpointError,
    ConfigError,
    DeviceError,
    DTypeError,
    PlaitError,
    PluginError,
    RegistryError,
    SerializationError,
    ShapeError,
)
from .files import atomic_folder, atomic_write, atomic_write_bytes, atomic_write_text
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .hookspecs import hookimpl
from .initializers import calculate_gain, compute_fans, get_initializer
from .model_folder import (
    describe_model,
    load_model,
    load_model_tokenizer,
    load_model_weights,
    read_model_config,
    save_model,
)
from .module import Module
from .param import Param
from .protocols import (
    CallbackProtocol,
    InitializerProtocol,
    LayerProtocol,
    LossProtocol,
    MetricProtocol,
    OptimizerProtocol,
    SchedulerProtocol,
    TokenizerProtocol,
)
from .random import check_rng_state, get_rng, manual_seed, set_rng_state
from .reading import parse_json, read_bytes, read_json, read_text
from .registry import registry
from .weights import (
    load_safetensors,
    load_safetensors_bytes,
    read_safetensors_metadata,
    safetensors_metadata,
    save_safetensors,
)

__version__ = "0.1.0"

__all__ = [
    "CallbackProtocol",
    "CheckpointError",
    "ConfigError",
    "DTypeError",
    "DeviceError",
    "InitializerProtocol",
    "LayerProtocol",
    "LossProtocol",
    "MetricProtocol",
    "Module",
    "ModuleDict",
    "ModuleList",
    "OptimizerProtocol",
    "Param",
    "PlaitError",
    "PluginError",
    "RegistryError",
    "SchedulerProtocol",
    "SerializationError",
    "ShapeError",
    "TokenizerProtocol",
    "atomic_folder",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "calculate_gain",
    "check_array",
    "check_int_array",
    "check_number",
    "check_parameter_count",
    "check_rng_state",
    "check_same_shape",
    "check_size",
    "compute_fans",
    "default_device",
    "describe_model",
    "device_of",
    "get_array_module",
    "get_initializer",
    "get_rng",
    "init",
    "hookimpl",
    "enable_grad",
    "is_grad_enabled",
    "leading_modules",
    "load_model",
    "load_model_tokenizer",
    "load_model_weights",
    "load_safetensors",
    "load_safetensors_bytes",
    "manual_seed",
    "no_grad",
    "parse_json",
    "read_bytes",
    "read_json",
    "read_model_config",
    "read_safetensors_metadata",
    "read_text",
    "registry",
    "safetensors_metadata",
    "save_model",
    "save_safetensors",
    "set_grad_enabled",
    "set_rng_state",
    "to_device",
    "to_numpy",
]


# The protocols' old names (until 0.2): ``plait.core.Loss`` read as the loss base class, which is
# ``plait.layers.Loss``; the structural contracts are now the ``*Protocol`` names.
_RENAMED_PROTOCOLS = {"Callback": CallbackProtocol, "Initializer": InitializerProtocol, "Layer": LayerProtocol,
                      "Loss": LossProtocol, "Metric": MetricProtocol, "Optimizer": OptimizerProtocol,
                      "Scheduler": SchedulerProtocol, "Tokenizer": TokenizerProtocol}


def __getattr__(name: str) -> object:
    protocol = _RENAMED_PROTOCOLS.get(name)
    if protocol is None:
        raise AttributeError(f"module 'plait.core' has no attribute {name!r}")
    import warnings  # noqa: PLC0415 - only on this deprecated path

    warnings.warn(f"plait.core.{name} is renamed plait.core.{protocol.__name__} (the structural protocol the "
                  f"registry checks); the old name goes in the next release", DeprecationWarning, stacklevel=2)
    return protocol
