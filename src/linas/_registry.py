"""One name -> object registry for every pluggable part (ops, runtimes, proxies, samplers,
dataset loaders, search and Pareto strategies).

``register`` refuses a duplicate name; ``get`` fails with the menu and the closest match;
``names()`` feeds CLI help and lets tests iterate over every registered entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from linas._errors import unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Objects of one kind, registered by name.

    Args:
        kind: what the entries are, as error messages name them (e.g. ``"dataset kind"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering its target under ``name``.

        Raises:
            ValueError: ``name`` is already registered (a programming error, not user input).
        """

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name`` (see :meth:`register`)."""
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        """The entry named ``name``.

        Raises:
            ConfigError: unknown name, listing the valid names and the closest match.
        """
        if name not in self._items:
            raise unknown_name(self.kind, name, self._items)
        return self._items[name]

    def check(self, name: str) -> str:
        """``name`` itself when registered (for validating config values early)."""
        self.get(name)
        return name

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
