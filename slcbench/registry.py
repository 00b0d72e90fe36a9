"""Named entries of one kind (architecture sources, losses, metrics, output formats): the extension points.

A registry keeps entries in the order they were added, refuses a second entry under a taken name,
and answers an unknown name with a one-line SlcbenchError that lists the known ones. Entries are
added where they are defined, with ``register`` or the ``add`` decorator, so adding one is a
change to one file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from slcbench.errors import SlcbenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one ``kind`` by name, in registration order.

    Parameters
    ----------
    kind : str
        What an entry is, for messages (``"loss"``, ``"architecture source"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` and return it; a name can be registered once."""
        if name in self._entries:
            raise ValueError(f"a {self.kind} named {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def add(self, name: str) -> Callable[[T], T]:
        """Decorator form of ``register``."""

        def decorate(entry: T) -> T:
            return self.register(name, entry)

        return decorate

    def unregister(self, name: str) -> T:
        """Remove and return the entry named ``name`` (KeyError if there is none)."""
        return self._entries.pop(name)

    def get(self, name: str) -> T:
        """The entry named ``name``; SlcbenchError naming the choices when there is none."""
        try:
            return self._entries[name]
        except KeyError:
            raise SlcbenchError(f"unknown {self.kind} {name!r}; choose from: {', '.join(self._entries)}") from None

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def values(self) -> tuple[T, ...]:
        return tuple(self._entries.values())

    def items(self) -> tuple[tuple[str, T], ...]:
        return tuple(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
