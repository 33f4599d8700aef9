"""Selecting modules or parameters by name glob, module type, or predicate."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable

from torch import nn

Selector = str | type | Callable[[str, nn.Module], bool]


def as_selectors(value: Selector | Iterable[Selector] | None, param: str) -> list[Selector] | None:
    """Normalise ``value`` to a list of selectors (``None`` stays ``None``: select everything)."""
    if value is None:
        return None
    if isinstance(value, (str, type)) or callable(value):
        return [value]
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{param} must be a name glob, a module type, a predicate or a list of them") from None
    for item in items:
        if not (isinstance(item, (str, type)) or callable(item)):
            raise TypeError(f"{param} entries must be name globs, module types or predicates, got {item!r}")
    return items


def matches(selectors: list[Selector], name: str, module: nn.Module) -> bool:
    """Whether ``name``/``module`` matches any selector (globs match the qualified name)."""
    for s in selectors:
        if isinstance(s, str):
            if fnmatch.fnmatchcase(name, s):
                return True
        elif isinstance(s, type):
            if isinstance(module, s):
                return True
        elif s(name, module):
            return True
    return False
