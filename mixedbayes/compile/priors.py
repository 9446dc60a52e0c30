"""Turn prior-table rows into PyMC variables (one vector variable per class where possible)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixedbayes.compile.context import BuildContext
from mixedbayes.naming import Names
from mixedbayes.priors.distributions import build_prior
from mixedbayes.priors.table import PriorRow

__all__ = ["ordered_vector_prior", "scalar_prior", "vector_prior"]


def scalar_prior(ctx: BuildContext, name: str, row: PriorRow, *, positive: bool) -> Any:
    """One scalar variable ``name`` of ``ctx.model`` with the prior of ``row``."""
    return build_prior(name, [row.prior], model=ctx.model, positive=positive)


def vector_prior(
    ctx: BuildContext, name: str, rows: Sequence[PriorRow], dims: str | None, *, positive: bool
) -> Any:
    """One variable ``name`` with an element per row (``dims``), or a scalar if ``dims`` is None.

    When the rows use one distribution family the variable is a single vectorised random
    variable; otherwise each element is its own variable (``name[coef]``) and ``name`` is their
    stack, kept as a deterministic.
    """
    import pytensor.tensor as pt

    priors = [r.prior for r in rows]
    if dims is None:
        return build_prior(name, priors, model=ctx.model, positive=positive)
    if len({p.name for p in priors}) == 1:
        return build_prior(name, priors, model=ctx.model, dims=dims, positive=positive)
    parts = [
        build_prior(Names.element(name, r.coef), [r.prior], model=ctx.model, positive=positive)
        for r in rows
    ]
    return ctx.deterministic(name, pt.stack(parts), dims=dims)


def ordered_vector_prior(
    ctx: BuildContext, name: str, rows: Sequence[PriorRow], dims: str, index: int, lower: Any
) -> Any:
    """As :func:`vector_prior`, with element ``index`` truncated below at ``lower``.

    A single element is one vector variable ``name``; with more, each element is its own
    variable (``name[coef]``) and ``name`` their stack, kept as a deterministic.
    """
    import pytensor.tensor as pt

    if len(rows) == 1:
        return build_prior(name, [rows[0].prior], model=ctx.model, dims=dims, lower=lower)
    parts = [
        build_prior(
            Names.element(name, r.coef),
            [r.prior],
            model=ctx.model,
            lower=lower if i == index else None,
        )
        for i, r in enumerate(rows)
    ]
    return ctx.deterministic(name, pt.stack(parts), dims=dims)
