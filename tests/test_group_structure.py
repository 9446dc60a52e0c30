"""The group-effect core apart from rows: several parts over different rows read one
covariance (no sampling; log-densities checked against a dense computation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mixedbayes.design import GroupBlock, GroupFactor, GroupStructure, RowMap, merge_factors
from mixedbayes.priors import PriorDist, PriorRow, PriorTable


def _factor(levels: list[str], labels: list[str], terms: list[str], Z: np.ndarray) -> GroupFactor:
    index = np.array([levels.index(lab) for lab in labels], dtype=np.int64)
    blocks = (GroupBlock(tuple(range(len(terms))), len(terms) > 1),)
    return GroupFactor.make("id", tuple(levels), tuple(terms), index, Z, blocks)


@pytest.fixture(scope="module")
def two_parts() -> tuple[GroupFactor, GroupFactor]:
    rng = np.random.default_rng(4)
    # part "long": 12 visits of subjects a, b, c with a random intercept and slope in time
    long_labels = [s for s in "abc" for _ in range(4)]
    t = np.tile(np.arange(4.0), 3)
    long = _factor(
        ["a", "b", "c"], long_labels, ["Intercept", "t"], np.column_stack([np.ones(12), t])
    )
    # part "event": one row per subject, not the same subjects (d is new, a is absent)
    ev_labels = ["c", "b", "d"]
    event = _factor(["b", "c", "d"], ev_labels, ["Intercept"], np.ones((3, 1)))
    del rng
    return long, event


def test_merge_makes_one_structure_with_a_row_map_per_part(
    two_parts: tuple[GroupFactor, GroupFactor],
) -> None:
    long, event = two_parts
    structures, rows = merge_factors({"long": [long], "event": [event]}, correlation="block")
    (s,) = structures
    assert isinstance(s, GroupStructure)
    assert s.name == "id"
    assert s.levels == ("a", "b", "c", "d")  # union, in order of first appearance
    assert s.terms == ("long:Intercept", "long:t", "event:Intercept")
    assert len(s.blocks) == 1 and s.blocks[0].correlated and s.blocks[0].columns == (0, 1, 2)
    r_long, r_event = rows[("long", "id")], rows[("event", "id")]
    assert isinstance(r_long, RowMap) and r_long.n == 12 and r_event.n == 3
    assert r_long.columns == (0, 1) and r_event.columns == (2,)
    # each row still points at its own subject, now in the merged level order
    assert [s.levels[i] for i in r_event.index] == ["c", "b", "d"]
    assert [s.levels[i] for i in r_long.index] == [lab for lab in "abc" for _ in range(4)]


def test_merge_parts_keeps_each_parts_blocks(two_parts: tuple[GroupFactor, GroupFactor]) -> None:
    long, event = two_parts
    (s,), _ = merge_factors({"long": [long], "event": [event]}, correlation="parts")
    assert [b.columns for b in s.blocks] == [(0, 1), (2,)]
    assert [b.correlated for b in s.blocks] == [True, False]
    (d,), _ = merge_factors({"long": [long], "event": [event]}, correlation="diagonal")
    assert [b.columns for b in d.blocks] == [(0,), (1,), (2,)]


def _priors(s: GroupStructure) -> PriorTable:
    rows = [
        PriorRow("sd", t, s.name, "", PriorDist("student_t", (3.0, 0.0, 1.0)), "default", "")
        for t in s.terms
    ]
    rows.append(PriorRow("cor", "", s.name, "", PriorDist("lkj", (1.0,)), "default", ""))
    return PriorTable(tuple(rows))


def test_one_r_read_by_both_parts_matches_a_dense_log_density(
    two_parts: tuple[GroupFactor, GroupFactor],
) -> None:
    """One ``r_id`` (levels × merged terms) with one LKJ across parts; each part reads its
    columns through its row map. The model's log-density of ``r`` and of both parts' data
    equals a dense computation (MvNormal per level; each row's mean from explicit loops)."""
    import pymc as pm

    from mixedbayes.compile import BuildContext, new_model
    from mixedbayes.compile.group_effects import cor_dim, group_effects, read_effects

    long, event = two_parts
    (s,), rows = merge_factors(
        {"long": [long], "event": [event]}, correlation="block", parametrization="centered"
    )
    ctx = BuildContext(new_model({**s.coords(), cor_dim(s): list(s.terms)}))
    r = group_effects(s, _priors(s), ctx)
    assert r.name == "r_id"
    rng = np.random.default_rng(7)
    data = {}
    for part in ("long", "event"):
        m = rows[(part, "id")]
        pc = ctx.scoped(part)
        index = pc.data(pc.names.data("index", "id"), m.index)
        Z = pc.data(pc.names.data("Z", "id"), m.Z)
        y = rng.normal(size=m.n)
        data[part] = y
        with ctx.active():
            pm.Normal(f"y_{part}", read_effects(r, index, Z, m.columns), 1.0, observed=y)
    model = ctx.model
    assert {v.name for v in model.free_RVs} >= {"r_id", "sd_id", "cor_chol_id"}
    assert "cor_id" in model.named_vars
    point = model.initial_point()
    point["r_id"] = rng.normal(size=(4, 3))
    point["sd_id_log__"] = np.log([0.7, 0.3, 1.2])
    logp_vars = [model["r_id"], model["y_long"], model["y_event"]]
    got = model.compile_logp(vars=logp_vars, mode="FAST_COMPILE")(point)
    outs = model.replace_rvs_by_values([model["sd_id"], model["cor_id"]])
    values = model.compile_fn(
        outs, inputs=model.value_vars, on_unused_input="ignore", mode="FAST_COMPILE"
    )(point)
    sd, cor = (np.asarray(v) for v in values)
    cov = np.outer(sd, sd) * cor
    r_val = point["r_id"]
    dense = stats.multivariate_normal(np.zeros(3), cov).logpdf(r_val).sum()
    for part, y in data.items():
        m = rows[(part, "id")]
        mean = np.array(
            [
                sum(m.Z[i, k] * r_val[m.index[i], c] for k, c in enumerate(m.columns))
                for i in range(m.n)
            ]
        )
        dense += stats.norm(mean, 1.0).logpdf(y).sum()
    assert got == pytest.approx(dense, rel=1e-9)


def test_two_regression_parts_build_into_one_model_under_their_own_names() -> None:
    """The linear predictor is re-entrant: two parts' fixed effects, family parameters, data
    and dims get their part's names (a joint model's outcomes), the plain part today's."""
    import mixedbayes as mb
    from mixedbayes.compile import BuildContext, new_model
    from mixedbayes.compile.regression import add_regression
    from mixedbayes.kinds import build_prior_table

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=20), "u": rng.normal(size=20)})
    df["y1"] = 1 + df["x"] + rng.normal(size=20)
    df["y2"] = 2 - df["u"] + rng.normal(size=20)
    ctx = BuildContext(new_model())
    for part, formula in (("y1", "y1 ~ x"), ("y2", "y2 ~ u")):
        d = mb.design(mb.LMM(formula), df)
        add_regression(d, build_prior_table(d), ctx.scoped(part))
    names = set(ctx.model.named_vars)
    assert {"b_y1", "b_y2", "sigma_y1", "sigma_y2", "Intercept_y1", "X_y2", "y_obs_y1"} <= names
    assert {"b", "sigma", "X"}.isdisjoint(names)
    assert ctx.model.named_vars_to_dims["b_y1"] == ("y1_term",)
    assert list(ctx.model.coords["y2_term"]) == ["Intercept", "u"]
    assert np.isfinite(ctx.model.compile_logp(mode="FAST_COMPILE")(ctx.model.initial_point()))
