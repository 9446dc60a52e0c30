"""The registry of report sections, and what a section is given to build itself.

A section is one object (a subclass of :class:`Section`) registered with
:func:`register_section`. The builder asks every registered section, in ``order``, whether
it applies to the fit (by kind and family); the sections that apply build their blocks from a
shared :class:`ReportContext`, which computes the summary, the diagnostics, LOO and the sample
of groups once for all of them.

A section that applies but cannot be produced raises (any exception): the report then shows
a short note saying why instead of the section, and the other sections are unaffected.
Raising :class:`SectionUnavailable` gives the note's text exactly.

Examples
--------
>>> from mixedbayes.report import Section, register_section, Paragraph
>>> @register_section
... class Hello(Section):  # doctest: +SKIP
...     key, title, order = "hello", "Hello", 999
...     def build(self, ctx):
...         return [Paragraph(f"{ctx.fit.design.report.rows_used} rows")]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import Field, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from mixedbayes.errors import SpecError
from mixedbayes.report.blocks import Block, Status
from mixedbayes.results.protocols import FitLike

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.diagnostics import Diagnostics, LooReport, Rootogram
    from mixedbayes.results.shrinkage import Shrinkage
    from mixedbayes.results.trajectories import Trajectories

__all__ = [
    "SECTIONS",
    "ReportContext",
    "ReportableFit",
    "Section",
    "SectionUnavailable",
    "get_section",
    "register_section",
    "section_keys",
]


class ReportableFit(FitLike, Protocol):
    """What the report needs of a fit beyond :class:`~mixedbayes.results.protocols.FitLike`.

    The methods of :class:`~mixedbayes.Fit` its sections call, and dataclass fields: the
    report works on a copy (``dataclasses.replace``) so that the user's fit is not modified.
    """

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def diagnose(self, **thresholds: Any) -> Diagnostics:
        """Convergence gates (:meth:`mixedbayes.Fit.diagnose`)."""
        ...

    def loo(self, *, pointwise: bool = False, moment_match: bool = False) -> LooReport:
        """PSIS-LOO (:meth:`mixedbayes.Fit.loo`)."""
        ...

    def plot_ppc(self, *, num_draws: int = 100, seed: int | None = None) -> Any:
        """Posterior predictive density overlay (:meth:`mixedbayes.Fit.plot_ppc`)."""
        ...

    def ppc_stats(self, *, seed: int | None = None) -> pd.DataFrame:
        """Posterior predictive p-values (:meth:`mixedbayes.Fit.ppc_stats`)."""
        ...

    def rootogram(self, *, max_count: int | None = None, seed: int | None = None) -> Rootogram:
        """Hanging rootogram of a count model (:meth:`mixedbayes.Fit.rootogram`)."""
        ...

    def shrinkage(self, group: str | None = None, prob: float = 0.95) -> Shrinkage:
        """Pooling estimates per level and term (:meth:`mixedbayes.Fit.shrinkage`)."""
        ...

    def trajectories(
        self,
        groups: Sequence[str] | None = None,
        at: Sequence[float] | None = None,
        *,
        time: str | None = None,
        group: str | None = None,
        prob: float = 0.95,
        max_groups: int = 12,
    ) -> Trajectories:
        """Fitted individual trajectories (:meth:`mixedbayes.Fit.trajectories`)."""
        ...

    def typical_values(self, prob: float = 0.95) -> pd.DataFrame:
        """Nonlinear fits: typical values (:meth:`mixedbayes.Fit.typical_values`)."""
        ...

    def individual_parameters(self, prob: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Nonlinear fits: each subject's parameters and their shrinkage."""
        ...

    def concentration_curves(
        self, subjects: Sequence[str] | None = None, times: Sequence[float] | None = None
    ) -> Any:
        """PK fits: individual predicted concentration curves with the observed points."""
        ...


class SectionUnavailable(Exception):
    """Raised by a section that cannot be produced for this fit; the message is shown."""


class Section:
    """One part of the report.

    Subclasses set ``key`` (unique, used as the HTML anchor and in ``sections=``),
    ``title``, ``order`` (position in the report) and implement :meth:`build`; they override
    :meth:`applies` to be picked only for some kinds or families.
    """

    key: ClassVar[str] = ""
    title: ClassVar[str] = ""
    order: ClassVar[int] = 0

    def applies(self, fit: FitLike) -> bool:
        """Whether the section belongs in a report of ``fit`` (default: always).

        Parameters
        ----------
        fit : Fit

        Returns
        -------
        bool
        """
        return True

    def build(self, ctx: ReportContext) -> list[Block]:
        """The section's content.

        Parameters
        ----------
        ctx : ReportContext

        Returns
        -------
        list of Block
        """
        raise NotImplementedError

    def status(self, ctx: ReportContext) -> Status | None:
        """The badge shown next to the section in the contents (None: no badge).

        Parameters
        ----------
        ctx : ReportContext

        Returns
        -------
        {"pass", "warn", "fail"} or None
        """
        return None


SECTIONS: dict[str, Section] = {}


def register_section[S: type[Section]](cls: S) -> S:
    """Class decorator: register one instance of a :class:`Section` subclass by its key.

    Parameters
    ----------
    cls : type
        A subclass of :class:`Section` with a non-empty ``key``.

    Returns
    -------
    type
        ``cls`` unchanged.
    """
    if not cls.key:
        raise ValueError(f"{cls.__name__} has no key.")
    if cls.key in SECTIONS and type(SECTIONS[cls.key]) is not cls:
        raise ValueError(f"a section with key {cls.key!r} is already registered.")
    SECTIONS[cls.key] = cls()
    return cls


def section_keys() -> list[str]:
    """Keys of the registered sections, in report order.

    Returns
    -------
    list of str
    """
    return [s.key for s in sorted(SECTIONS.values(), key=lambda s: s.order)]


def get_section(key: str) -> Section:
    """The registered section with ``key``.

    Parameters
    ----------
    key : str

    Returns
    -------
    Section

    Raises
    ------
    SpecError
        If no section has that key (the valid keys are listed).
    """
    try:
        return SECTIONS[key]
    except KeyError:
        raise SpecError(
            f"no report section {key!r}.",
            where="sections",
            hint=f"use some of {section_keys()}.",
        ) from None


@dataclass
class ReportContext:
    """What the sections share: the fit, the options, and results computed once.

    Attributes
    ----------
    fit : Fit
        A copy of the user's fit whose ``idata`` may gain a ``posterior_predictive`` group
        (the user's fit is never modified).
    n_groups : int
        How many levels (subjects, patients) the per-group plots and tables show.
    seed : int
        Seed of the random sample of levels and of the posterior predictive draws.
    prob : float
        Mass of the central intervals.
    """

    fit: ReportableFit
    n_groups: int = 8
    seed: int = 1
    prob: float = 0.95
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def for_fit(
        cls, fit: ReportableFit, *, n_groups: int = 8, seed: int = 1, prob: float = 0.95
    ) -> ReportContext:
        """A context on a copy of ``fit`` (its DataTree copied, its arrays shared).

        Parameters
        ----------
        fit : Fit
        n_groups : int
        seed : int
        prob : float

        Returns
        -------
        ReportContext
        """
        if n_groups < 1:
            raise SpecError(
                f"n_groups must be at least 1, not {n_groups}.",
                where="n_groups",
                hint="e.g. n_groups=8.",
            )
        copy = dataclasses.replace(fit, idata=fit.idata.copy(deep=False))
        return cls(copy, int(n_groups), int(seed), float(prob))

    def _cached(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def summary(self) -> pd.DataFrame:
        """``fit.summary(prob)``, computed once."""
        return self._cached("summary", lambda: self.fit.summary(self.prob))

    def diagnostics(self) -> Diagnostics:
        """``fit.diagnose()``, computed once."""
        return self._cached("diagnostics", self.fit.diagnose)

    def loo(self) -> LooReport:
        """``fit.loo()``, computed once."""
        return self._cached("loo", self.fit.loo)

    @staticmethod
    def sample_phrase(shown: int, total: int) -> str:
        """How many of a factor's levels a table or plot shows: ``"all 18"`` or
        ``"a random sample of 12 of 180"``."""
        return f"all {total}" if shown == total else f"a random sample of {shown} of {total}"

    def sample_levels(self, group: str) -> list[str]:
        """A reproducible random sample of ``n_groups`` levels of a grouping factor.

        Parameters
        ----------
        group : str
            The grouping factor's name.

        Returns
        -------
        list of str
            The levels in the factor's own order (all of them when there are few).
        """
        factor = next((g for g in self.fit.design.groups if g.name == group), None)
        if factor is None:
            raise SpecError(f"no grouping factor {group!r}.", where="group")
        levels: Sequence[str] = factor.levels
        if len(levels) <= self.n_groups:
            return list(levels)
        rng = np.random.default_rng(self.seed)
        chosen = np.sort(rng.choice(len(levels), size=self.n_groups, replace=False))
        return [levels[int(i)] for i in chosen]
