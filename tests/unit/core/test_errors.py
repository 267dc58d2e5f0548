"""One exception root: every exception class Herald's server code declares descends from ``HeraldError``, and
the tree drawn in ``herald.core.errors``' docstring is the tree of its classes."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import herald
from herald.core import errors


def _server_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(herald.__path__, "herald."):
        # herald.client and the demo (herald.presets.demo) are HTTP clients of a Herald, not server code
        client_side = ("herald.client", "herald.presets.demo")
        if not info.name.startswith((*client_side, "herald.storage.migrations", "herald.__main__")):
            names.append(info.name)
    return names


def test_every_server_exception_descends_from_the_root() -> None:
    strays = []
    for name in _server_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == name
                and issubclass(cls, BaseException)
                and not issubclass(cls, errors.HeraldError)
            ):
                strays.append(f"{name}.{cls.__name__}")
    assert strays == []


def _drawn_tree() -> dict[str, str | None]:
    """Class name -> parent name, read from the docstring's drawing (indentation gives the parent)."""
    assert errors.__doc__ is not None
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        found = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Z][A-Za-z]+)\s", line + " ")
        if not found or not line.startswith("    ") or ("──" not in line and line.strip() != "HeraldError"):
            continue
        depth = line.index(found.group(2))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[found.group(2)] = stack[-1][1] if stack else None
        stack.append((depth, found.group(2)))
    return parents


def test_the_drawing_matches_the_classes() -> None:
    declared = {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if cls.__module__ == errors.__name__ and issubclass(cls, errors.HeraldError)
    }
    drawn = _drawn_tree()
    assert set(drawn) == set(declared)
    for name, parent in drawn.items():
        base = declared[name].__bases__[0]
        assert (None if base is Exception else base.__name__) == parent, name
