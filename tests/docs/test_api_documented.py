"""Every argument of the public API has an entry, stating its default, in an ``Args:`` section.

The walk: for each package ``plait.{core,layers,optim,tokenizers,train,zoo}``, every name in
its ``__all__``, one test case per object (a failure names the object, the method and the
arguments).

What is checked, the same rule for every package:

* A **function**'s parameters, in its own docstring.
* A **class**'s constructor parameters (``inspect.signature(cls)``), in the class docstring
  or the ``__init__`` docstring (either, as mkdocstrings reads them; an inherited
  ``__init__`` brings the docstrings of the class that defines it).
* The **public methods a class defines** (in its own ``__dict__`` or in a non-public plait
  mixin it inherits, such as ``Module``'s state methods; name not starting with ``_``;
  plain, class and static methods). An argument's entry may sit in the docstring of the
  method it overrides, so it is written once on the base (``Optimizer.step(closure)``,
  ``Callback.on_epoch_end(epoch, logs)``, ``Module.forward(x)``); an override documents
  the arguments it adds or renames. A subclass answers only for the methods it defines.
  The per-layer hooks ``Module`` calls and users do not (``check_input``, ``options``,
  ``extra_repr``) are exempt; ``forward`` and ``backward`` are not.
* A public submodule in ``__all__`` (``core.init``, ``layers.functional``) is walked
  through its own ``__all__``; bound methods (``zoo.register_model``) count as functions;
  an instance of a plait class (``core.registry``) is walked as its class. So is every class
  or function the six packages register by name without listing it in ``__all__`` (the
  zoo's architectures, the initializers): a config or ``zoo.create`` passes its arguments.
  Exceptions (the
  constructor is the message), protocols (``typing.Protocol``: structural types, never
  called) and plain data (dicts, strings) are not walked.
* ``self``/``cls`` and ``*args``/``**kwargs`` need no entry (they may have one).

An argument is documented when a Google-style section (``Args:``, ``Arguments:``,
``Parameters:``, ``Keyword Args:``, ``Keyword Arguments:``, ``Other Parameters:``: what
the mkdocstrings parser configured in ``mkdocs.yml`` reads) stands on a line of its own and
holds an entry ``name: text`` or ``name (type): text`` at the section's entry indentation;
a NamedTuple's fields may be in ``Attributes:``, where mkdocstrings renders them. The word
appearing elsewhere in the prose does not count. Two more failures: an entry for an
argument the signature does not have (stale; only the method's own entries are checked,
not those it inherits), and the entry of an argument with a default that does not state
it: the text must hold the word "default" or the value as written (``None``, ``True``,
``0.1``, ``"fan_in"``).
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PACKAGES = ("core", "layers", "optim", "tokenizers", "train", "zoo")
ARG_SECTIONS = ("Args", "Arguments", "Parameters", "Params", "Keyword Args", "Keyword Arguments", "Other Parameters")
ENTRY = re.compile(r"^(?P<name>\*{0,2}[A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:(?:\s|$)")
EXEMPT_METHODS = frozenset({"check_input", "extra_repr", "options"})


def documented_entries(doc: str | None, sections: tuple[str, ...] = ARG_SECTIONS) -> dict[str, str]:
    """The entries of the Google-style parameter sections of ``doc``: name -> its text.

    Args:
        doc: a docstring (raw or cleaned), or ``None``.
        sections: default the parameter sections; the section titles read.

    Returns:
        ``{name: the entry's text, continuation lines included}``, ``*``/``**`` stripped.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    section = re.compile(rf"^(?P<indent>\s*)(?:{'|'.join(sections)})\s*:\s*$")
    entries: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = section.match(lines[i])
        i += 1
        if not m:
            continue
        header = len(m.group("indent"))
        entry_indent = None
        current = None
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            indent = len(line) - len(line.lstrip())
            if indent <= header:
                break
            if entry_indent is None:
                entry_indent = indent
            e = ENTRY.match(line.strip()) if indent == entry_indent else None
            if e:
                current = e.group("name").lstrip("*")
                entries[current] = line.strip()
            elif current is not None:
                entries[current] += " " + line.strip()
            i += 1
    return entries


def documented_names(doc: str | None, sections: tuple[str, ...] = ARG_SECTIONS) -> set[str]:
    """The names of :func:`documented_entries`.

    Args:
        doc: a docstring, or ``None``.
        sections: default the parameter sections; the section titles read.
    """
    return set(documented_entries(doc, sections))


def names_default(text: str, default: Any) -> bool:
    """Whether an entry's text states the parameter's default: the word, or the value as written.

    Args:
        text: the entry's text.
        default: the parameter's default value.
    """
    if re.search(r"\bdefault", text, re.IGNORECASE):
        return True
    spellings = {repr(default), str(default)} if not isinstance(default, type) else {default.__name__}
    return any(re.search(rf"(?<![\w.]){re.escape(v)}(?![\w])", text) for v in spellings if v)


def _required(sig: inspect.Signature) -> list[str]:
    return [
        p.name
        for p in sig.parameters.values()
        if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _allowed(sig: inspect.Signature) -> set[str]:
    return {p.name for p in sig.parameters.values()}


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):  # builtins without a signature
        return None


def _problems(what: str, sig: inspect.Signature | None, doc: dict[str, str],
              inherited: dict[str, str] | None = None) -> list[str]:
    """Missing entries (``doc`` and ``inherited`` count), stale ones (only ``doc``: its own)
    and entries of arguments with a default that do not state it."""
    if sig is None:
        return []
    known = {**(inherited or {}), **doc}
    out = []
    missing = [n for n in _required(sig) if n not in known]
    if missing:
        out.append(f"{what}: no Args entry for {', '.join(missing)}")
    stale = sorted(set(doc) - _allowed(sig) - {"self", "cls"})
    if stale:
        out.append(f"{what}: Args entries for arguments it does not have: {', '.join(stale)}")
    silent = [p.name for p in sig.parameters.values()
              if p.default is not p.empty and p.name in known and not names_default(known[p.name], p.default)]
    if silent:
        out.append(f"{what}: the Args entry does not state the default of {', '.join(silent)}")
    return out


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False)) or typing.Protocol in cls.__mro__


def _owners(cls: type) -> list[type]:
    """``cls`` and its non-public plait bases (mixins), whose methods it answers for."""
    walked = {id(o) for o in OBJECTS.values() if inspect.isclass(o)}
    covered = {id(c) for b in cls.__mro__[1:] if id(b) in walked for c in b.__mro__}
    return [cls] + [b for b in cls.__mro__[1:] if b.__module__.startswith("plait.") and id(b) not in covered]


def _methods(cls: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    seen: set[str] = set()
    for owner in _owners(cls):
        for name, raw in vars(owner).items():
            if name.startswith("_") or name in EXEMPT_METHODS or name in seen:
                continue
            seen.add(name)
            if getattr(cls, name, None) is None:
                continue
            if isinstance(raw, (classmethod, staticmethod)) or inspect.isfunction(raw):
                yield name, getattr(cls, name)


def _method_doc(cls: type, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """Entries of the method ``name`` itself, and of every method it overrides (documented once on the base)."""
    found = [documented_entries(getattr(raw, "__func__", raw).__doc__)
             for klass in cls.__mro__ if (raw := vars(klass).get(name)) is not None]
    inherited: dict[str, str] = {}
    for entries in reversed(found[1:]):  # the nearest base's text wins
        inherited.update(entries)
    return found[0], inherited


def check_class(qual: str, cls: type) -> list[str]:
    """Every problem of one class: constructor arguments and its own public methods."""
    own = documented_entries(cls.__doc__)
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):  # a NamedTuple: its fields are Attributes
        own |= documented_entries(cls.__doc__, ("Attributes",))
    doc: dict[str, str] = {}
    init = cls.__dict__.get("__init__")
    if init is None:  # inherited constructor: its docstring may sit on the base
        for base in cls.__mro__[1:]:
            if "__init__" in base.__dict__:
                init = base.__dict__["__init__"]
                doc |= documented_entries(base.__doc__)
                break
    doc |= documented_entries(getattr(init, "__doc__", None))
    doc |= own  # the class's own docstring wins over the constructor's and the base's
    problems = _problems(qual, _signature(cls), doc)
    for name, meth in _methods(cls):
        problems += _problems(f"{qual}.{name}", _signature(meth), *_method_doc(cls, name))
    return problems


def check_function(qual: str, fn: Callable[..., Any]) -> list[str]:
    """Every problem of one function."""
    return _problems(qual, _signature(fn), documented_entries(fn.__doc__))


def public_objects() -> Iterator[tuple[str, Any]]:
    """``(qualified name, object)`` for every walked object of the six packages."""
    for pkg in PACKAGES:
        mod = importlib.import_module(f"plait.{pkg}")
        names = [(f"plait.{pkg}.{n}", getattr(mod, n)) for n in mod.__all__]
        for qual, obj in list(names):
            if inspect.ismodule(obj):  # a public submodule (core.init, layers.functional)
                names += [(f"{qual}.{n}", getattr(obj, n)) for n in getattr(obj, "__all__", ())]
        for qual, obj in names:
            if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
                if not type(obj).__module__.startswith("plait."):
                    continue
                obj = type(obj)
            if inspect.isclass(obj):
                if issubclass(obj, BaseException) or _is_protocol(obj):
                    continue
            elif not inspect.isroutine(obj):
                continue
            yield qual, obj


def registered_objects(walked: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Classes and functions the six packages register by name (zoo architectures,
    initializers, ...) that their ``__all__`` does not already list, named by import path."""
    from plait.core import registry  # noqa: PLC0415

    seen = {id(o) for o in walked.values()}
    for kind in registry.tables():
        table = registry.table(kind)
        for name in table.names():
            obj = table.get(name)
            module = getattr(obj, "__module__", "") or ""
            if id(obj) in seen or not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue  # presets are instances: their architecture is walked
            if module.split(".")[:2] not in [["plait", p] for p in PACKAGES]:
                continue  # other distributions' plugins
            seen.add(id(obj))
            yield f"{module}.{obj.__qualname__}", obj


OBJECTS = dict(public_objects())
OBJECTS.update(registered_objects(OBJECTS))


@pytest.mark.parametrize("qual", sorted(OBJECTS))
def test_every_argument_has_an_args_entry(qual: str) -> None:
    obj = OBJECTS[qual]
    problems = check_class(qual, obj) if inspect.isclass(obj) else check_function(qual, obj)
    assert not problems, "\n".join(problems)


def test_the_walk_covers_every_package() -> None:
    by_pkg = {p: sum(q.startswith(f"plait.{p}.") for q in OBJECTS) for p in PACKAGES}
    assert all(by_pkg.values()), by_pkg
    assert len(OBJECTS) > 100, len(OBJECTS)
    assert "plait.zoo.models.gpt.GPT" in OBJECTS  # a registered architecture, not in __all__


def test_entries_are_read_from_sections_only() -> None:
    doc = """Summary naming alpha and beta in prose.

    Args:
        alpha: the first.
        beta (int): the second,
            gamma: a continuation line is not an entry.
        *args: extra.

    Returns:
        delta: not an argument section.
    """
    assert documented_names(doc) == {"alpha", "beta", "args"}
    assert documented_names("Args: alpha, beta on one line is prose.") == set()
    assert documented_names("Summary.\n\nAttributes:\n    alpha: a field.\n") == set()
    assert documented_names("Summary.\n\nAttributes:\n    alpha: a field.\n", ("Attributes",)) == {"alpha"}


def test_overrides_inherit_entries_but_answer_for_their_own() -> None:
    class Base:
        """Base.

        Args:
            size: a size.
        """

        def __init__(self, size: int) -> None:
            self.size = size

        def backward(self, dy: Any) -> None:
            """Args:
            dy: not a section: the entries must be indented below the title.
            """

        def forward(self, x: Any) -> None:
            """Forward.

            Args:
                x: the input.
            """

    class Child(Base):
        def forward(self, x: Any, offset: int = 0) -> None:  # no docstring: x comes from Base
            pass

    class Renamed(Base):
        def forward(self, query: Any) -> None:
            """Forward.

            Args:
                query: the input, under another name.
            """

    assert check_class("Base", Base) == ["Base.backward: no Args entry for dy"]
    # a subclass answers for the methods it defines (Base answers for backward)
    assert check_class("Child", Child) == ["Child.forward: no Args entry for offset"]
    assert check_class("Renamed", Renamed) == []  # Base's entry for x is not stale in the override


def test_an_entry_states_its_default() -> None:
    assert names_default("eps: default 1e-5; added to the variance.", 1e-5)
    assert names_default("bias: True adds a learnable bias.", True)
    assert names_default("mode: ``'fan_in'`` or ``'fan_out'``.", "fan_in")
    assert not names_default("label_smoothing: in [0, 1], mixes in the uniform distribution.", 0.0)
    assert not names_default("momentum: the factor, like 0.15.", 0.1)

    def fn(x: Any, eps: float = 1e-5, affine: bool = True) -> None:
        """Summary.

        Args:
            x: the input.
            eps: added to the variance.
            affine: default True; learnable scale and shift.
        """

    assert check_function("fn", fn) == ["fn: the Args entry does not state the default of eps"]
