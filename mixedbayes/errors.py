"""Errors raised for bad specs and bad data.

Every error names what is wrong (the key, column, row or level) and how to fix it, so that
a user can act on the message without reading the source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["DataError", "MixedBayesError", "Problem", "SpecError", "require_known"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec or a data set.

    Parameters
    ----------
    message : str
        What is wrong.
    where : str, optional
        The key, column, row or level at fault (e.g. ``"formula"``, ``"column 'Days'"``).
    hint : str, optional
        How to fix it.
    """

    message: str
    where: str = ""
    hint: str = ""

    def __str__(self) -> str:
        text = f"[{self.where}] {self.message}" if self.where else self.message
        if self.hint:
            text += f" Fix: {self.hint}"
        return text


class MixedBayesError(ValueError):
    """Base class of the errors mixedbayes raises for bad input.

    Parameters
    ----------
    message : str or Problem or sequence of Problem
        One message, or every problem found (they are all reported at once).
    where : str, optional
        The key, column, row or level at fault, when ``message`` is a string.
    hint : str, optional
        How to fix it, when ``message`` is a string.
    """

    kind = "input"

    def __init__(
        self, message: str | Problem | Sequence[Problem], *, where: str = "", hint: str = ""
    ) -> None:
        if isinstance(message, str):
            problems: tuple[Problem, ...] = (Problem(message, where, hint),)
        elif isinstance(message, Problem):
            problems = (message,)
        else:
            problems = tuple(message)
        self.problems = problems
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems with the {self.kind}:"]
        lines += [f"  {i}. {p}" for i, p in enumerate(self.problems, 1)]
        return "\n".join(lines)

    @property
    def where(self) -> list[str]:
        """The keys, columns, rows or levels named by the problems."""
        return [p.where for p in self.problems if p.where]

    @classmethod
    def collect(cls, problems: Iterable[Problem]) -> None:
        """Raise one error holding every problem, if there is any."""
        found = list(problems)
        if found:
            raise cls(found)


class SpecError(MixedBayesError):
    """A model spec is invalid: an unknown key, family, prior, or a malformed formula."""

    kind = "model spec"


class DataError(MixedBayesError):
    """The data do not fit the spec: a missing column, a bad value, an empty frame."""

    kind = "data"


def format_rows(rows: Sequence[object], limit: int = 8) -> str:
    """Render row labels for a message, eliding after ``limit``."""
    shown = ", ".join(str(r) for r in list(rows)[:limit])
    more = len(rows) - limit
    return f"{shown} (+{more} more)" if more > 0 else shown


def require_known(
    names: Sequence[str], known: Sequence[str], *, where: str, what: str, hint: str = ""
) -> None:
    """``SpecError`` naming every one of ``names`` not in ``known`` (``what`` they are
    meant to be; ``hint`` defaults to listing the known names)."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SpecError(
            f"{what}: {unknown} {'is' if len(unknown) == 1 else 'are'} not among them.",
            where=where,
            hint=hint or f"use some of {sorted(map(str, known))}.",
        )
