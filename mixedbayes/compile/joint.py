"""pm.Model builder of the ``joint`` kind: every outcome's mixed submodel and the hazard, in
one graph, reading one set of group effects.

Variables: per outcome ``b_<outcome>`` (dim ``<outcome>_term``) and its family's parameters
(``sigma_<outcome>``); the core's ``sd_<g>``, ``cor_<g>``, ``r_<g>`` with terms
``<outcome>:<term>`` (one LKJ block across outcomes by default); the hazard's ``b_event``
(dim ``event_term``), ``alpha`` (dim ``association``) and the baseline's parameters. The
hazard's log-likelihood (``event_loglik``) is the survival rows' sum of
``event·log h(stop) − ∫ h`` with the cumulative hazard by Gauss–Legendre quadrature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes.compile.context import BuildContext
from mixedbayes.compile.group_effects import group_effects, read_effects
from mixedbayes.compile.priors import scalar_prior, vector_prior
from mixedbayes.compile.regression import fixed_effects
from mixedbayes.design.joint import ASSOCIATION_DIM, EVENT
from mixedbayes.naming import Names

if TYPE_CHECKING:
    from mixedbayes.design.joint import JointDesign, Reading
    from mixedbayes.priors.table import PriorTable

__all__ = ["ASSOCIATION_DIM", "add_joint", "joint_coords"]

#: An outcome's fixed effects as the regression core returns them: (intercept, b_slope, X).
Fixed = tuple[Any, Any, Any]


def joint_coords(design: JointDesign) -> dict[str, list[Any]]:
    """The model coords of a joint design (``design.coords()``)."""
    return design.coords()


def _fixed(design: JointDesign, name: str, priors: PriorTable, ctx: BuildContext) -> Fixed:
    """One outcome's fixed effects: ``(intercept, b_slope, X)`` as the regression core adds
    them (``b_<outcome>``)."""
    return fixed_effects(design.outcomes[name], priors, ctx.scoped(name), nlpar=name)


def _level_means(
    design: JointDesign, fixed: dict[str, Fixed], ctx: BuildContext, factor: str
) -> dict[str, Any] | None:
    """What a centred block of ``factor`` is centred on, by merged term (``y:Intercept``):
    each outcome's population intercept and fixed slopes (hierarchical centring, as the
    regression core does for one outcome); None when no outcome's block is centred."""
    from mixedbayes.compile.regression import hierarchical_centring, level_means

    means: dict[str, Any] = {}
    for name, d in design.outcomes.items():
        centring = hierarchical_centring(d)
        if centring is None or centring.factor != factor:
            continue
        g = next(g for g in d.groups if g.name == factor)
        intercept, b_slope, _ = fixed[name]
        found = level_means(ctx.scoped(name), d, g, intercept, b_slope, centring)
        means.update({f"{name}:{t}": v for t, v in found.items()})
    return means or None


def _outcome(
    design: JointDesign,
    name: str,
    fixed: Fixed,
    priors: PriorTable,
    ctx: BuildContext,
    r: dict[str, Any],
) -> Any:
    """Add one outcome's family parameters and likelihood; return its observed variable."""
    import pytensor.tensor as pt

    d = design.outcomes[name]
    c = ctx.scoped(name)
    names = c.names
    intercept, b_slope, X_data = fixed
    eta: Any = pt.zeros(d.n)
    if b_slope is not None:
        eta = eta + pt.dot(X_data, b_slope)
    if intercept is not None:
        eta = eta + intercept
    for g in d.groups:
        rm = design.rows[(name, g.name)]
        index = c.data(names.data("index", g.name), rm.index, dims=names.obs_dim)
        Z = c.data(names.data("Z", g.name), rm.Z)
        eta = eta + read_effects(r[g.name], index, Z, rm.columns)
    if d.offset is not None and np.any(d.offset != 0):
        eta = eta + c.data(names.data("offset"), d.offset, dims=names.obs_dim)
    params = {
        p.name: scalar_prior(
            c, names.param(p.name), priors.get(p.name, "", "", name), positive=p.positive
        )
        for p in d.family.params
    }
    trials = None
    if d.trials is not None:
        trials = c.data(names.data("trials"), np.asarray(d.trials, dtype="int64"), names.obs_dim)
    y = c.data(names.data("y_obs"), np.asarray(d.y), dims=names.obs_dim)
    mu = d.link.inverse(eta)
    return d.family.likelihood(ctx.model, name, mu, params, y, names.obs_dim, trials=trials)


def _read(ctx: BuildContext, key: str, reading: Reading, b: Any, r: dict[str, Any]) -> Any:
    """``X·b + Σ Z·r[index, columns]`` of one association at one set of times."""
    import pytensor.tensor as pt

    X = ctx.data(f"X_{key}", reading.X)
    out = pt.dot(X, b)
    for g, rm in reading.maps:
        index = ctx.data(f"index_{key}_{g}", rm.index)
        Z = ctx.data(f"Z_{key}_{g}", rm.Z)
        out = out + read_effects(r[g], index, Z, rm.columns)
    return out


def _baseline(design: JointDesign, priors: PriorTable, ctx: BuildContext) -> dict[str, Any]:
    theta = {}
    for p in design.baseline.params():
        if p.size:
            rows = [priors.get(p.name, label, "", EVENT) for label in p.labels]
            theta[p.name] = vector_prior(ctx, p.name, rows, p.dim, positive=p.positive)
        else:
            row = priors.get(p.name, "", "", EVENT)
            theta[p.name] = scalar_prior(ctx, p.name, row, positive=p.positive)
    return theta


def add_joint(design: JointDesign, priors: PriorTable, ctx: BuildContext) -> Any:
    """Add a joint model to ``ctx.model``; return the first outcome's observed variable."""
    import pytensor.tensor as pt

    from mixedbayes.survival import log_likelihood_rows

    ctx.add_coords(joint_coords(design))
    fixed = {name: _fixed(design, name, priors, ctx) for name in design.outcomes}
    r = {
        s.name: group_effects(s, priors, ctx, level_mean=_level_means(design, fixed, ctx, s.name))
        for s in design.structures
    }
    observed = [_outcome(design, n, fixed[n], priors, ctx, r) for n in design.outcomes]
    surv = design.survival
    event = Names(EVENT)
    n, q = surv.nodes.shape
    lin: Any = pt.zeros(n)
    if surv.terms:
        rows = [priors.get("b", t, "", EVENT) for t in surv.terms]
        gamma = pt.as_tensor(vector_prior(ctx, event.b, rows, event.term_dim, positive=False))
        X = ctx.data(event.data("X"), surv.X, dims=(event.obs_dim, event.term_dim))
        lin = pt.dot(X, gamma)
    labels = [label for a in design.associations for label in a.labels]
    alpha = pt.as_tensor(
        vector_prior(
            ctx, "alpha", [priors.get("alpha", x) for x in labels], ASSOCIATION_DIM, positive=False
        )
    )
    at_stop: Any = pt.zeros(n)
    at_nodes: Any = pt.zeros((n, q))
    level = ctx.data(event.data("level"), surv.level, dims=event.obs_dim)
    j = 0
    for k, a in enumerate(design.associations):
        if a.type == "shared":
            values = r[design.subject_factor][level][:, list(a.columns)]
            term = pt.dot(values, alpha[j : j + len(a.columns)])
            at_stop, at_nodes = at_stop + term, at_nodes + term[:, None]
            j += len(a.columns)
            continue
        assert a.at_stop is not None and a.at_nodes is not None
        b = ctx.model[Names(a.outcome).b]
        at_stop = at_stop + alpha[j] * _read(ctx, f"stop{k}", a.at_stop, b, r)
        nodes = _read(ctx, f"nodes{k}", a.at_nodes, b, r).reshape((n, q))
        at_nodes = at_nodes + alpha[j] * nodes
        j += 1
    theta = _baseline(design, priors, ctx)
    stop = ctx.data(event.data("stop"), surv.stop, dims=event.obs_dim)
    t_nodes = ctx.data(event.data("nodes"), surv.nodes)
    weights = ctx.data(event.data("weights"), surv.weights)
    status = ctx.data(event.data("status"), surv.event, dims=event.obs_dim)
    log_h_stop = design.baseline.log_hazard(stop, theta, pt) + lin + at_stop
    log_h_nodes = design.baseline.log_hazard(t_nodes, theta, pt) + lin[:, None] + at_nodes
    rows_ll = log_likelihood_rows(log_h_stop, log_h_nodes, weights, status, pt)
    ctx.potential("event_loglik", pt.sum(rows_ll))
    return observed[0]
