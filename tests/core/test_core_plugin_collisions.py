"""Real installed plugin distributions that fight over names.

Each test writes small distributions (``*.dist-info`` with ``METADATA`` and
``entry_points.txt`` beside their module: an installed distribution exactly as
``importlib.metadata`` sees it) and runs a fresh Python with them put on ``sys.path`` in
both orders, before and after the site packages that hold Plait's own distributions, so
entry points are found in each order. Every order must give the same registry, the same
warnings, and zoo models that still build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = '''
from plait.core import Module
from plait.core.plugins import hookimpl


class {cls}(Module):
    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


@hookimpl
def register_layers(register):
{body}
'''

PROBE = textwrap.dedent('''
    import json, sys, warnings
    front, back = json.loads(sys.argv[1])
    sys.path[:0] = front
    sys.path.extend(back)
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from plait.core import registry
        from plait.core.registry import KINDS
        tables = {k: {n: [registry.table(k).origin(n), registry.table(k).get(n).__module__]
                      for n in registry.table(k).names()} for k in KINDS}
    import numpy as np
    import plait.zoo as zoo
    model = zoo.create("lenet5")
    y = model(np.zeros((2, 1, 28, 28), np.float32))
    from plait.core.cli import main
    import contextlib, io
    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):
        main(["registry", "layers"])
    errors = {"listing": [line for line in listing.getvalue().splitlines() if "CONFLICT" in line]}
    for name in sys.argv[2:]:
        try:
            registry.layers.get(name)
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"tables": tables, "warnings": sorted(str(w.message) for w in caught),
                      "lenet5": list(y.shape), "errors": errors}))
''')


def _dist(root: Path, name: str, registrations: list[str]) -> Path:
    """One installed distribution ``name`` 0.0.1 whose plugin runs ``registrations``."""
    module = name.replace("-", "_")
    folder = root / name
    folder.mkdir()
    body = "\n".join(f"    {line}" for line in registrations)
    (folder / f"{module}.py").write_text(PLUGIN.format(cls="Custom", body=body))
    info = folder / f"{module}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[plait]\n{module} = {module}\n")
    return folder


def _probe(front: list[Path], back: list[Path], *names: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps([[str(p) for p in front], [str(p) for p in back]]),
                          *names], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _every_order(dists: list[Path], *names: str) -> dict:
    """Probe with the distributions before and after the site packages, in both orders; all must agree."""
    results = [_probe(dists, [], *names), _probe(dists[::-1], [], *names),
               _probe([], dists, *names), _probe([], dists[::-1], *names)]
    for other in results[1:]:
        assert other["tables"] == results[0]["tables"]
        assert other["warnings"] == results[0]["warnings"]
        assert other["errors"] == results[0]["errors"]
    assert results[0]["lenet5"] == [2, 10]  # zoo models still build
    return results[0]


def test_third_party_colliding_with_a_built_in_loses_in_every_order(tmp_path):
    dist = _dist(tmp_path, "aaa-linear", ['register("linear", Custom)', 'register("aaa_extra", Custom)'])
    got = _every_order([dist])
    layers = got["tables"]["layers"]
    assert layers["linear"][0] == "plait-layers"
    assert layers["aaa_extra"] == ["aaa-linear", "aaa_linear"]  # the rest of its hook registered
    assert len(layers) > 40  # no built-in vanished
    (warning,) = [w for w in got["warnings"] if "'linear'" in w]
    assert "distribution aaa-linear 0.0.1" in warning  # names the distribution that lost
    assert "by plait-layers and by aaa-linear" in warning  # and both origins


def test_override_wins_in_every_order(tmp_path):
    dist = _dist(tmp_path, "zz-relu", ['register("relu", Custom, override=True)'])
    got = _every_order([dist])
    assert got["tables"]["layers"]["relu"] == ["zz-relu", "zz_relu"]
    assert got["errors"]["listing"] == []
    assert got["warnings"] == []
    assert got["tables"]["layers"]["linear"][0] == "plait-layers"


def test_between_third_parties_the_alphabetically_first_keeps_a_name(tmp_path):
    alpha = _dist(tmp_path, "alpha-plugin", ['register("shared_layer", Custom)'])
    beta = _dist(tmp_path, "beta-plugin", ['register("shared_layer", Custom)', 'register("beta_only", Custom)'])
    got = _every_order([alpha, beta])
    layers = got["tables"]["layers"]
    assert layers["shared_layer"] == ["alpha-plugin", "alpha_plugin"]
    assert layers["beta_only"] == ["beta-plugin", "beta_plugin"]
    (warning,) = got["warnings"]
    assert "distribution beta-plugin 0.0.1" in warning
    assert "'shared_layer' is registered twice: by alpha-plugin and by beta-plugin" in warning


def test_two_overrides_of_one_name_are_an_error_naming_both(tmp_path):
    one = _dist(tmp_path, "one-gelu", ['register("gelu", Custom, override=True)'])
    two = _dist(tmp_path, "two-gelu", ['register("gelu", Custom, override=True)'])
    got = _every_order([one, two], "gelu")
    assert "gelu" not in got["tables"]["layers"]
    assert "overridden (override=True) by both one-gelu and two-gelu" in got["errors"]["gelu"]
    assert got["errors"]["gelu"].startswith("RegistryError")
    assert any("one-gelu and two-gelu" in w for w in got["warnings"])
    assert [line.split(None, 2) for line in got["errors"]["listing"]] == [
        ["layers", "gelu", "CONFLICT: overridden by one-gelu and two-gelu"]]


def test_under_pythonwarnings_error_the_report_raises_once_and_the_registry_works(tmp_path):
    dist = _dist(tmp_path, "aaa-linear", ['register("linear", Custom)'])
    code = textwrap.dedent('''
        import sys
        from plait.core import registry
        from plait.core.plugins import PluginWarning
        try:
            registry.layers.get("linear")
        except PluginWarning as exc:
            print("raised:", "aaa-linear" in str(exc))
        import plait.zoo as zoo
        print(registry.layers.origin("linear"), type(zoo.create("lenet5")).__name__)
    ''')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env.update(PYTHONWARNINGS="error", PYTHONPATH=str(dist))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["raised: True", "plait-layers CNN"]
