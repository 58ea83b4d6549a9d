"""Frozen slotted dataclasses built on a hot path without their generated ``__init__``.

A frozen dataclass's ``__init__`` assigns every field through ``object.__setattr__`` (the class forbids
plain assignment), and ``dataclasses.replace`` adds a keyword dictionary and a field walk on top. The
live path builds thousands of such objects per minute between the candle close and the signal
(:class:`~tickwise.domain.candle.Candle` and :class:`~tickwise.domain.bar.Bar` in the candle builder,
:class:`~tickwise.domain.signal.Signal` in the engine and the signal sink). Measured on the reference
machine: 3.6 -> 2.0 us per ``Signal(...)``, 8.0 -> 1.6 us per ``dataclasses.replace(signal, ...)``.

The builders below write the slots directly, through each slot's own descriptor, in straight-line code
generated once per class from ``dataclasses.fields`` (field names, never input), so the object is the
one ``__init__`` would build: equal, same type, every field set (tested field by field). They refuse a
class whose ``__init__`` does more than set its fields (``__post_init__``, ``init=False`` fields).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _slot_fields(cls: type[Any]) -> list[str]:
    if not dataclasses.is_dataclass(cls) or not hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}'s __init__ does more than set its fields")
    return [f.name for f in fields]


def _namespace(cls: type[Any], names: list[str]) -> dict[str, Any]:
    ns: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    for name in names:
        ns[f"_set_{name}"] = vars(cls)[name].__set__
    return ns


def positional(cls: type[T]) -> Callable[..., T]:
    """``make(v1, v2, ...)``: an instance of ``cls`` with its fields, in declaration order, all given."""
    names = _slot_fields(cls)
    ns = _namespace(cls, names)
    body = "".join(f"    _set_{n}(obj, {n})\n" for n in names)
    source = f"def make({', '.join(names)}):\n    obj = _new(_cls)\n{body}    return obj\n"
    exec(source, ns)  # nosec B102: generated from the dataclass's own field names, never from input
    make: Callable[..., T] = ns["make"]
    return make


def replacing(cls: type[T], name: str) -> Callable[[T, Any], T]:
    """``replace(obj, value)``: a copy of ``obj`` with field ``name`` set to ``value``
    (``dataclasses.replace(obj, name=value)``)."""
    names = _slot_fields(cls)
    if name not in names:
        raise ValueError(f"{cls.__name__} has no field {name!r}")
    ns = _namespace(cls, names)
    body = "".join(
        f"    _set_{n}(obj, value)\n" if n == name else f"    _set_{n}(obj, old.{n})\n" for n in names
    )
    source = f"def replace(old, value):\n    obj = _new(_cls)\n{body}    return obj\n"
    exec(source, ns)  # nosec B102: generated from the dataclass's own field names, never from input
    replace: Callable[[T, Any], T] = ns["replace"]
    return replace
