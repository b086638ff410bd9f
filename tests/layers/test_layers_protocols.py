"""Core's protocols are what the registry checks, under names that do not collide with the
concrete base classes (plait.layers.Loss is the loss base class; plait.core.LossProtocol the
structural contract); the old plait.core names still resolve, with a DeprecationWarning."""

from __future__ import annotations

import numpy as np
import pytest

import plait.core as core
import plait.layers as L
from plait.core import PluginError, registry
from plait.core.protocols import PROTOCOLS, LossProtocol, required_methods
from plait.core.registry import _REQUIRED_METHODS, check_registration


def test_the_registry_checks_exactly_the_protocols():
    assert set(PROTOCOLS) == set(_REQUIRED_METHODS)
    for kind, protocol in PROTOCOLS.items():
        assert _REQUIRED_METHODS[kind] == required_methods(protocol)
    assert required_methods(PROTOCOLS["losses"]) == ("forward", "backward")
    assert required_methods(PROTOCOLS["metrics"]) == ("reset", "update", "compute")


@pytest.mark.parametrize("kind", sorted(PROTOCOLS))
def test_every_registered_component_satisfies_its_tables_protocol(kind):
    table = registry.table(kind)
    for name in table.names():
        obj = table.get(name)
        missing = [m for m in required_methods(PROTOCOLS[kind]) if not callable(getattr(obj, m, None))]
        assert not missing, f"{kind} {name!r} lacks {missing}"


def test_a_component_missing_a_protocol_method_is_refused_naming_it():
    class HalfMetric:
        def reset(self): ...
        def update(self, pred, target): ...

    with pytest.raises(PluginError, match=r"missing method\(s\) compute"):
        check_registration("metrics", "half", HalfMetric, "test")


def test_losses_one_and_two_input_satisfy_the_loss_protocol():
    for fn in (L.MSELoss(), L.KLDivLoss(), L.CosineEmbeddingLoss(), L.MarginRankingLoss()):
        assert isinstance(fn, LossProtocol) and isinstance(fn, L.Loss)
    assert not isinstance(np.zeros(3), LossProtocol)


def test_no_shared_name_between_protocol_and_base_class():
    assert "Loss" not in core.__all__ and "Optimizer" not in core.__all__ and "Layer" not in core.__all__
    assert "LossProtocol" in core.__all__ and "Loss" in L.__all__
    for old in ("Loss", "Optimizer", "Layer", "Tokenizer", "Scheduler", "Metric", "Callback", "Initializer"):
        with pytest.warns(DeprecationWarning, match=f"plait.core.{old}Protocol"):
            assert getattr(core, old) is getattr(core, f"{old}Protocol")
    with pytest.raises(AttributeError):
        core.NoSuchThing  # noqa: B018
