"""A generic registry of objects by name, with the error users see for an unknown name."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator

from mixedbayes.errors import SpecError

__all__ = ["Registry", "import_submodules"]


def import_submodules(package: str) -> list[str]:
    """Import every module of ``package`` (so that a new module's ``@register_...``
    decorators run: a new family, section or kind is one class in one new file).

    Returns
    -------
    list of str
        The modules' full names, sorted.
    """
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    names = sorted(f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__))
    for name in names:
        importlib.import_module(name)
    return names


class Registry[T]:
    """Named objects of one extension point (kinds, ...), registered with a decorator.

    Parameters
    ----------
    what : str
        What the objects are, for messages (``"model kind"``).
    where : str
        The spec key that names one (``"kind"``), for messages.

    Examples
    --------
    >>> reg: Registry[int] = Registry("number", "n")
    >>> reg.add("one", 1)
    1
    >>> reg.get("one")
    1
    """

    def __init__(self, what: str, where: str) -> None:
        self.what = what
        self.where = where
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name`` (replacing an earlier one) and return it."""
        self._items[name] = item
        return item

    def remove(self, name: str) -> T:
        """Unregister ``name`` and return what was registered (``KeyError`` if nothing)."""
        return self._items.pop(name)

    def register(self, name_of: Callable[[T], str]) -> Callable[[T], T]:
        """A decorator registering an object under ``name_of(object)``."""

        def deco(item: T) -> T:
            return self.add(name_of(item), item)

        return deco

    def get(self, name: str) -> T:
        """The object called ``name``.

        Raises
        ------
        SpecError
            Naming the unknown name, the close matches and every known name.
        """
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._items), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SpecError(
                f"unknown {self.what} {name!r}.",
                where=self.where,
                hint=f"{hint}use one of {self.names()}.",
            ) from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)
