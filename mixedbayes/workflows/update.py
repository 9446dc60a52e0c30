"""``fit.update``: refit with a changed formula, data or spec settings (as ``brms::update``).

Everything not changed is kept: the spec (the priors the user set, the family, the sampler
section), and the sampler settings the fit was run with (draws and chains as in its
posterior, its tuning steps, seed and sampler). When the changed model has the structure of
a model already compiled in this process (same graph, data of the same shapes), the sampler
reuses that compilation (:mod:`mixedbayes.inference.reuse`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mixedbayes import api
from mixedbayes.errors import SpecError
from mixedbayes.results.refit import register_refit
from mixedbayes.spec import load_spec

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.results import Fit
    from mixedbayes.results.protocols import FitLike
    from mixedbayes.spec import ModelSpec

__all__ = ["update", "updated_formula", "updated_spec"]

_DOT = re.compile(r"(?<![\w.])\.(?![\w.])")


def updated_formula(old: str, new: str) -> str:
    """``new`` with ``.`` standing for the old formula's side, as R's ``update.formula``:
    ``updated_formula("y ~ x + (1 | g)", ". ~ . + z")`` is ``"y ~ x + (1 | g) + z"``."""
    if "~" not in new:
        raise SpecError(
            f"formula {new!r} has no '~'.", where="formula", hint="write e.g. '. ~ . + z'."
        )
    old_lhs, old_rhs = (part.strip() for part in old.split("~", 1))
    lhs, rhs = (part.strip() for part in new.split("~", 1))
    return f"{_DOT.sub(old_lhs, lhs)} ~ {_DOT.sub(lambda _: old_rhs, rhs)}"


def updated_spec(spec: ModelSpec, formula: str | None = None, **changes: Any) -> ModelSpec:
    """``spec`` with a new ``formula`` (``.`` keeps a side) and other top-level keys changed.

    Raises
    ------
    SpecError
        If the spec has no formula (nonlinear models: change ``parameters``), or a change is
        not a valid spec key or value.
    """
    data = spec.model_dump(by_alias=True)
    if formula is not None:
        if "formula" not in data:
            raise SpecError(
                f"a {spec.kind} spec has no formula to update.",
                where="formula",
                hint="pass the spec's own keys instead (e.g. parameters={...}).",
            )
        data["formula"] = updated_formula(data["formula"], formula)
    data.update(changes)
    return load_spec(data)


@register_refit("update")
def update(
    fit: FitLike,
    formula: str | None = None,
    data: pd.DataFrame | None = None,
    *,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    **spec_changes: Any,
) -> Fit:
    """Refit ``fit`` with a changed formula, data or spec keys; keep everything else.

    Parameters
    ----------
    fit : Fit
    formula : str, optional
        The new formula; ``.`` stands for the old side (``". ~ . + age"``).
    data : DataFrame, optional
        New data (default: the data the fit was given).
    draws, tune, chains, seed, sampler : optional
        Default: as the fit was run (its posterior's chains and draws, tuning steps, seed
        and sampler).
    **spec_changes
        Other top-level spec keys to change (``family=``, ``priors=``, ``group_effects=``,
        ...), as in :func:`mixedbayes.load_spec`.

    Returns
    -------
    Fit
    """
    spec = updated_spec(fit.spec, formula, **spec_changes)
    post = fit.posterior
    attrs = fit.idata["posterior"].attrs
    return api.fit(
        spec,
        fit.design.source if data is None else data,
        draws=draws or int(post.sizes["draw"]),
        tune=tune if tune is not None else attrs.get("tuning_steps"),
        chains=chains or int(post.sizes["chain"]),
        seed=seed if seed is not None else attrs.get("seed"),
        sampler=sampler or attrs.get("sampler"),
    )
