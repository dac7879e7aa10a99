"""Name -> object registries with discovery of the modules that register into them.

Each registry belongs to one package (for example ``disentangle.methods``). Modules of
that package register their entries with a decorator; looking a name up imports every
module of the package once, so adding a method, dataset or metric is adding a file.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from disentangle.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to entries, filled by ``@registry.register(name)``."""

    def __init__(self, kind: str, package: str | None = None):
        self.kind = kind
        self.package = package
        self._entries: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def _discover(self) -> None:
        if self._discovered or self.package is None:
            return
        self._discovered = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def get(self, name: str, where: str = "") -> T:
        """The entry ``name`` (or of its ``prefix:``); ``where`` names the setting it came
        from in the error for an unknown name (:class:`UnknownNameError`, a ``KeyError``)."""
        self._discover()
        if isinstance(name, str):
            if name in self._entries:
                return self._entries[name]
            prefix = name.split(":", 1)[0] + ":"
            if ":" in name and prefix in self._entries:
                return self._entries[prefix]
        close = difflib.get_close_matches(str(name), list(self._entries), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        origin = f" ({where})" if where else ""
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}{origin}.{hint} Known: {', '.join(sorted(self))}")

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._discover()
        return iter(sorted(self._entries))

    def names(self) -> list[str]:
        return list(self)
