"""Benchmark cases: the model, the data and the formula each system is given.

Every case is deterministic: its data come from a bundled data set or from
``numpy.random.default_rng(seed)``, so the parent process and every worker build identical
data from the case name alone.

Parameter names are mixedbayes' summary names (``b[Days]``, ``sd_Subject[Intercept]``,
``cor_Subject[Intercept,Days]``, ``sigma``); each worker maps its system's names onto them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BAMBI_DEFAULT_ROW_CAP", "CASES", "PEER_ROW_CAP", "QUICK_CASES", "Case", "Variant"]

#: Peers (bambi, brms, lme4) are skipped above this many rows unless --with-peers-large.
PEER_ROW_CAP = 100_000


@dataclass(frozen=True)
class Variant:
    """One system fitting one formula on a case's data: one row of the case's table."""

    key: str
    system: str  # "mixedbayes", "bambi", "lme4" or "brms"
    formula: str
    note: str = ""
    #: Compared in the summary's ratio column (the model every system fits).
    primary: bool = True
    #: Extra keyword arguments of ``mb.fit`` (mixedbayes) or of ``Model.fit`` (bambi).
    options: tuple[tuple[str, Any], ...] = ()
    #: Python modules the variant needs (it is recorded as not run without them).
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """A model and its data; ``variants`` are the rows of its table."""

    name: str
    description: str
    family: str  # "gaussian" or "poisson" (mixedbayes, bambi and brms/lme4 names agree)
    make_data: Callable[[], pd.DataFrame]
    variants: tuple[Variant, ...]
    #: Columns that are grouping factors or categorical predictors (factors in R).
    factors: tuple[str, ...]
    n_rows: int
    n_groups: int
    truth: dict[str, float] = field(default_factory=dict)

    def variant(self, key: str) -> Variant:
        """The variant called ``key``."""
        for v in self.variants:
            if v.key == key:
                return v
        raise KeyError(key)


# --------------------------------------------------------------------------- data


def _sleepstudy() -> pd.DataFrame:
    import mixedbayes as mb

    return mb.datasets.load("sleepstudy")


def _epilepsy() -> pd.DataFrame:
    import mixedbayes as mb

    return mb.datasets.load("epilepsy")


def _levels(n: int) -> pd.Index:
    width = len(str(n))
    return pd.Index([f"s{i:0{width}d}" for i in range(1, n + 1)], dtype=str)


#: Known parameters of the simulated gaussian cases.
LMM_TRUTH = {
    "b[Intercept]": 10.0,
    "b[time]": 0.5,
    "sd_subject[Intercept]": 1.0,
    "sd_subject[time]": 0.5,
    "sigma": 1.0,
}

#: Known parameters of the simulated poisson case.
POISSON_TRUTH = {
    "b[Intercept]": 0.5,
    "b[x]": 0.3,
    "b[trt]": -0.3,
    "sd_subject[Intercept]": 0.5,
}


def simulate_lmm(n_groups: int, n_per_group: int, seed: int) -> pd.DataFrame:
    """Longitudinal gaussian data: ``y ~ time + (time || subject)`` with :data:`LMM_TRUTH`.

    Each subject is measured ``n_per_group`` times at ``time = 0, 0.1, 0.2, ...``; the random
    intercepts and slopes are independent normals.
    """
    t = LMM_TRUTH
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), n_per_group)
    time = np.tile(np.arange(n_per_group), n_groups) / 10.0
    u0 = t["sd_subject[Intercept]"] * rng.standard_normal(n_groups)
    u1 = t["sd_subject[time]"] * rng.standard_normal(n_groups)
    y = (
        t["b[Intercept]"]
        + t["b[time]"] * time
        + u0[g]
        + u1[g] * time
        + t["sigma"] * rng.standard_normal(g.size)
    )
    subject = pd.Categorical.from_codes(g, categories=_levels(n_groups))
    return pd.DataFrame({"y": y, "time": time, "subject": subject})


def simulate_poisson(n_groups: int, n_per_group: int, seed: int) -> pd.DataFrame:
    """Counts: ``count ~ x + trt + (1 | subject)``, log link, with :data:`POISSON_TRUTH`.

    ``x`` is a row-level N(0, 1) covariate, ``trt`` a 0/1 treatment assigned per subject
    (half each).
    """
    t = POISSON_TRUTH
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), n_per_group)
    trt_group = rng.permutation(np.arange(n_groups) % 2)
    u = t["sd_subject[Intercept]"] * rng.standard_normal(n_groups)
    x = rng.standard_normal(g.size)
    trt = trt_group[g]
    eta = t["b[Intercept]"] + t["b[x]"] * x + t["b[trt]"] * trt + u[g]
    count = rng.poisson(np.exp(eta))
    subject = pd.Categorical.from_codes(g, categories=_levels(n_groups))
    return pd.DataFrame({"count": count, "x": x, "trt": trt.astype(np.int64), "subject": subject})


# --------------------------------------------------------------------------- cases

_BAMBI_INDEPENDENT = "bambi cannot fit correlated group effects: its `(x | g)` is lme4's `(x || g)`"


_PLAIN = "marginalize=False: the group effects sampled jointly with NUTS, as bambi does"

#: bambi's own default sampler (PyMC's NUTS) is run beside bambi + nutpie up to this many rows.
BAMBI_DEFAULT_ROW_CAP = 20_000


def _bambi_variants(formula: str, note: str, n_rows: int) -> tuple[Variant, ...]:
    """bambi with nutpie (the ratio column) and, on small cases, with its default sampler."""
    out = [Variant("bambi", "bambi", formula, note)]
    if n_rows <= BAMBI_DEFAULT_ROW_CAP:
        default = "bambi's default sampler (PyMC's NUTS, C backend): `Model.fit()` as users call it"
        out.append(
            Variant(
                "bambi-pymc",
                "bambi",
                formula,
                "; ".join(n for n in (default, note) if n),
                primary=False,
                options=(("inference_method", "pymc"),),
            )
        )
    return tuple(out)


def _jax_variants(formula: str) -> tuple[Variant, ...]:
    """mixedbayes with the other backends of the sampler policy: nutpie (numba), marginalised
    and plain, beside the default (``auto``: one compiled JAX program per structure)."""
    return (
        Variant(
            "mixedbayes-nutpie",
            "mixedbayes",
            formula,
            "sampler='nutpie' (numba-compiled log-density, Rust NUTS)",
            primary=False,
            options=(("sampler", "nutpie"),),
        ),
        Variant(
            "mixedbayes-nutpie-plain",
            "mixedbayes",
            formula,
            "sampler='nutpie', marginalize=False",
            primary=False,
            options=(("sampler", "nutpie"), ("marginalize", False)),
        ),
    )


def _lmm_extra_variants(formula: str, plain: bool) -> tuple[Variant, ...]:
    """The correlated model (LKJ) and, where affordable, the plain (not marginalised) one."""
    cor = formula.replace("||", "|")
    out = [
        Variant(
            "mixedbayes-cor",
            "mixedbayes",
            cor,
            "correlated intercept and slope (LKJ); bambi cannot fit this model",
            primary=False,
        )
    ]
    if plain:
        out.append(
            Variant(
                "mixedbayes-plain",
                "mixedbayes",
                formula,
                _PLAIN,
                primary=False,
                options=(("marginalize", False),),
            )
        )
    return tuple(out)


def _lmm_case(name: str, n_groups: int, n_per_group: int, seed: int) -> Case:
    n = n_groups * n_per_group
    return Case(
        name=name,
        description=(
            f"Simulated longitudinal gaussian data: {n_groups:,} subjects × {n_per_group} "
            f"visits = {n:,} rows; independent random intercept and slope on `time` with known "
            f"parameters (seed {seed})."
        ),
        family="gaussian",
        make_data=lambda: simulate_lmm(n_groups, n_per_group, seed),
        variants=(
            Variant("mixedbayes", "mixedbayes", "y ~ time + (time || subject)"),
            *_lmm_extra_variants("y ~ time + (time || subject)", plain=n <= 100_000),
            *(_jax_variants("y ~ time + (time || subject)") if n == 20_000 else ()),
            *_bambi_variants("y ~ time + (time | subject)", _BAMBI_INDEPENDENT, n),
            Variant("lme4", "lme4", "y ~ time + (time || subject)", "REML fit (lmer)"),
            Variant("brms", "brms", "y ~ time + (time || subject)"),
        ),
        factors=("subject",),
        n_rows=n,
        n_groups=n_groups,
        truth=dict(LMM_TRUTH),
    )


def _poisson_case(name: str, n_groups: int, n_per_group: int, seed: int) -> Case:
    n = n_groups * n_per_group
    formula = "count ~ x + trt + (1 | subject)"
    return Case(
        name=name,
        description=(
            f"Simulated poisson counts (log link): {n_groups:,} subjects × {n_per_group} rows "
            f"= {n:,} rows; row-level covariate `x`, between-subject treatment `trt`, random "
            f"intercept, known parameters (seed {seed})."
        ),
        family="poisson",
        make_data=lambda: simulate_poisson(n_groups, n_per_group, seed),
        variants=(
            Variant("mixedbayes", "mixedbayes", formula),
            *_bambi_variants(formula, "", n),
            Variant("lme4", "lme4", formula, "ML fit (glmer, Laplace)"),
            Variant("brms", "brms", formula),
        ),
        factors=("subject",),
        n_rows=n,
        n_groups=n_groups,
        truth=dict(POISSON_TRUTH),
    )


_EPILEPSY = "count ~ zAge + zBase * Trt + (1 | patient)"

CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case(
            name="sleepstudy",
            description=(
                "lme4's sleepstudy: reaction times of 18 subjects over 10 days of sleep "
                "deprivation (180 rows); random intercept and `Days` slope per subject."
            ),
            family="gaussian",
            make_data=_sleepstudy,
            variants=(
                Variant("mixedbayes", "mixedbayes", "Reaction ~ Days + (Days || Subject)"),
                *_lmm_extra_variants("Reaction ~ Days + (Days || Subject)", plain=True),
                *_bambi_variants(
                    "Reaction ~ Days + (Days | Subject)", _BAMBI_INDEPENDENT, n_rows=180
                ),
                Variant("lme4", "lme4", "Reaction ~ Days + (Days || Subject)", "REML fit (lmer)"),
                Variant("brms", "brms", "Reaction ~ Days + (Days || Subject)"),
            ),
            factors=("Subject",),
            n_rows=180,
            n_groups=18,
        ),
        _lmm_case("lmm20k", 1_000, 20, seed=20),
        _lmm_case("lmm100k", 5_000, 20, seed=100),
        # 10,000 × 100 rather than 50,000 × 20: the posterior of the group effects alone would
        # be 50,000 × 2 × 4,000 draws × 8 B = 3.2 GB per variable.
        _lmm_case("lmm1m", 10_000, 100, seed=1_000),
        Case(
            name="poisson_epilepsy",
            description=(
                "brms' epilepsy data (Thall & Vail 1990): seizure counts of 59 patients at 4 "
                "visits (236 rows); poisson GLMM with a random intercept per patient."
            ),
            family="poisson",
            make_data=_epilepsy,
            variants=(
                Variant("mixedbayes", "mixedbayes", _EPILEPSY),
                *_bambi_variants(_EPILEPSY, "", n_rows=236),
                Variant("lme4", "lme4", _EPILEPSY, "ML fit (glmer, Laplace)"),
                Variant("brms", "brms", _EPILEPSY),
            ),
            factors=("Trt", "patient"),
            n_rows=236,
            n_groups=59,
        ),
        _poisson_case("poisson100k", 5_000, 20, seed=7),
    )
}

#: The cases ``--quick`` runs.
QUICK_CASES = ("sleepstudy", "poisson_epilepsy")
