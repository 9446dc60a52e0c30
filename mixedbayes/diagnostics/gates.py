"""Convergence gates of a fit: R-hat, ESS, divergences, tree depth and E-BFMI.

:func:`diagnose` turns the usual MCMC checks (Vehtari et al. 2021; Betancourt 2016) into a
:class:`Diagnostics` object of :class:`Gate` s, each with a status (``pass``, ``warn``,
``fail``), the numbers behind it and what to do about it.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from mixedbayes.compile.model import integrated_out
from mixedbayes.diagnostics.gate_helpers import GROUP_PREFIXES as GROUP_PREFIXES
from mixedbayes.diagnostics.gate_helpers import SAMPLE_DIMS as SAMPLE_DIMS
from mixedbayes.diagnostics.gate_helpers import (
    _by_sample_dims,
    _extreme,
    _fmt,
    _geometry_advice,
    _group_of,
    _stuck,
    _switch_advice,
)
from mixedbayes.diagnostics.rhat import rank_rhat_dataset
from mixedbayes.diagnostics.switching import switched_pairs, switching_remedy
from mixedbayes.naming import Names
from mixedbayes.results.protocols import FitLike as FitLike

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design import Design

__all__ = ["ConvergenceWarning", "Diagnostics", "FitLike", "Gate", "diagnose", "warn_if_bad"]

Status = Literal["pass", "warn", "fail"]
RHAT_FAIL = 1.05
TREEDEPTH_STATS = ("maxdepth_reached", "reached_max_treedepth")


class ConvergenceWarning(UserWarning):
    """Issued by :func:`warn_if_bad` when a convergence gate does not pass."""


@dataclass(frozen=True)
class Gate:
    """One convergence check.

    Attributes
    ----------
    name : str
        ``rhat``, ``rhat_all``, ``ess_bulk``, ``ess_tail``, ``divergences``, ``treedepth`` or
        ``ebfmi``.
    value : float
        The statistic checked (NaN when the sampler did not record it).
    threshold : float
        The limit it is checked against.
    status : {"pass", "warn", "fail"}
    message : str
        What was found, with the numbers.
    remedy : str
        What to do when the gate does not pass (empty when it passes).
    parameter : str
        The worst parameter with its coordinates (``sd_Subject[Days]``), where it applies.
    """

    name: str
    value: float
    threshold: float
    status: Status
    message: str
    remedy: str = ""
    parameter: str = ""

    @property
    def passed(self) -> bool:
        """Whether the status is ``pass``."""
        return self.status == "pass"


@dataclass(frozen=True)
class Diagnostics:
    """The convergence gates of one fit.

    Attributes
    ----------
    gates : tuple of Gate
    n_chains, n_draws : int
        Chains and draws per chain of the posterior checked.
    """

    gates: tuple[Gate, ...]
    n_chains: int = 0
    n_draws: int = 0

    @property
    def ok(self) -> bool:
        """True only when every gate passes."""
        return all(g.passed for g in self.gates)

    @property
    def failed(self) -> tuple[Gate, ...]:
        """The gates that failed."""
        return tuple(g for g in self.gates if g.status == "fail")

    @property
    def warned(self) -> tuple[Gate, ...]:
        """The gates that warned."""
        return tuple(g for g in self.gates if g.status == "warn")

    @property
    def not_passed(self) -> tuple[Gate, ...]:
        """The gates that failed or warned, in order."""
        return tuple(g for g in self.gates if not g.passed)

    def __getitem__(self, name: str) -> Gate:
        for g in self.gates:
            if g.name == name:
                return g
        raise KeyError(f"no gate {name!r}; gates: {[g.name for g in self.gates]}")

    def __iter__(self) -> Iterator[Gate]:
        return iter(self.gates)

    def __len__(self) -> int:
        return len(self.gates)

    def to_frame(self) -> pd.DataFrame:
        """One row per gate.

        Returns
        -------
        DataFrame
            Columns ``gate``, ``status``, ``value``, ``threshold``, ``parameter``,
            ``message``, ``remedy``.
        """
        return pd.DataFrame(
            {
                "gate": [g.name for g in self.gates],
                "status": [g.status for g in self.gates],
                "value": [g.value for g in self.gates],
                "threshold": [g.threshold for g in self.gates],
                "parameter": [g.parameter for g in self.gates],
                "message": [g.message for g in self.gates],
                "remedy": [g.remedy for g in self.gates],
            }
        )

    def _headline(self) -> str:
        draws = f"{self.n_chains} chains × {self.n_draws} draws"
        if self.ok:
            return f"Convergence: all {len(self.gates)} gates pass ({draws})."
        return (
            f"Convergence: {len(self.failed)} failed, {len(self.warned)} warned "
            f"of {len(self.gates)} gates ({draws})."
        )

    def __str__(self) -> str:
        width = max(len(g.name) for g in self.gates) if self.gates else 4
        lines = [self._headline()]
        for g in self.gates:
            lines.append(f"  {g.status.upper():<4}  {g.name:<{width}}  {g.message}")
        bad = self.not_passed
        if bad:
            lines.append("Remedies:")
            lines += [f"  {g.name}: {g.remedy}" for g in bad]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colours = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}
        rows = []
        for g in self.gates:
            style = f"color:{colours[g.status]};font-weight:bold"
            cells = [
                f'<td style="{style}">{g.status}</td>',
                f"<td>{html.escape(g.name)}</td>",
                f"<td>{html.escape(g.message)}</td>",
                f"<td>{html.escape(g.remedy)}</td>",
            ]
            rows.append("<tr>" + "".join(cells) + "</tr>")
        head = "<tr><th>status</th><th>gate</th><th>finding</th><th>remedy</th></tr>"
        return (
            f"<p>{html.escape(self._headline())}</p>"
            f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
        )


def warn_if_bad(diagnostics: Diagnostics, *, stacklevel: int = 2) -> bool:
    """Issue one :class:`ConvergenceWarning` listing every gate that did not pass.

    Parameters
    ----------
    diagnostics : Diagnostics
    stacklevel : int
        Passed to :func:`warnings.warn`.

    Returns
    -------
    bool
        Whether a warning was issued.
    """
    bad = diagnostics.not_passed
    if not bad:
        return False
    lines = [f"{len(bad)} convergence gate(s) did not pass:"]
    for g in bad:
        lines.append(f"- {g.name} [{g.status}]: {g.message} Remedy: {g.remedy}")
    warnings.warn("\n".join(lines), ConvergenceWarning, stacklevel=stacklevel)
    return True


# -- gates -----------------------------------------------------------------------------------


def _rhat_gate(
    name: str,
    rhat: xr.Dataset,
    draws: xr.Dataset,
    names: Sequence[str],
    rhat_max: float,
    design: Design | None,
    scope: str,
    integrated: Collection[str] = (),
) -> Gate:
    stuck = _stuck(draws, names)
    if stuck:
        shown = ", ".join(stuck[:5]) + (f" and {len(stuck) - 5} more" if len(stuck) > 5 else "")
        message = f"{shown} constant over all draws: the sampler did not move ({scope})."
        remedy = (
            "check the model (initial values, priors, a parameter without data) and refit; "
            "reparametrize if the sampler stays stuck."
        )
        return Gate(name, np.inf, rhat_max, "fail", message, remedy, stuck[0])
    value, label = _extreme(rhat, draws, names, "max")
    if np.isnan(value):
        return Gate(name, value, rhat_max, "pass", f"no R-hat to check ({scope}).")
    fail_at = max(rhat_max, RHAT_FAIL)
    status: Status = "fail" if value > fail_at else "warn" if value > rhat_max else "pass"
    message = f"max R-hat {_fmt(value, 4)} at {label} ({scope}; threshold {rhat_max})."
    remedy = ""
    if status != "pass":
        advice = _switch_advice(design, _group_of(label, design), integrated)
        remedy = (
            "run longer chains (e.g. mb.fit(..., draws=2000, tune=2000)); if the chains "
            "disagree, look for multimodality, use stronger priors"
            + (f", or {advice}" if advice else ", or reparametrize the model")
            + "."
        )
        pairs = switched_pairs(rhat, draws, names, rhat_max, _parts(design))
        if pairs:
            finding, remedy = switching_remedy(pairs, _parts(design))
            message = f"{message} {finding}"
    return Gate(name, value, rhat_max, status, message, remedy, label)


def _parts(design: Design | None) -> tuple[str, ...]:
    if design is None:
        return ()
    from mixedbayes.kinds import kind_of

    return kind_of(design.spec).parts(design)


def _ess_gate(
    method: Literal["bulk", "tail"],
    ess: xr.Dataset,
    draws: xr.Dataset,
    names: Sequence[str],
    threshold: float,
    design: Design | None,
    integrated: Collection[str] = (),
) -> Gate:
    name = f"ess_{method}"
    value, label = _extreme(ess, draws, names, "min")
    if np.isnan(value):
        return Gate(name, value, threshold, "pass", f"no {method} ESS to check.")
    status: Status = "fail" if value < 0.1 * threshold else "warn" if value < threshold else "pass"
    message = f"min {method} ESS {value:.0f} at {label} (threshold {threshold:.0f})."
    remedy = ""
    if status != "pass":
        advice = _switch_advice(design, _group_of(label, design), integrated)
        remedy = (
            "draw more (e.g. mb.fit(..., draws=2000, tune=2000)); if the draws are strongly "
            "autocorrelated, "
            + (advice if advice else "reparametrize the model or use stronger priors")
            + "."
        )
    return Gate(name, value, threshold, status, message, remedy, label)


def _divergence_gate(
    stats: xr.Dataset | None,
    total: int,
    limit: int,
    design: Design | None,
    integrated: Collection[str] = (),
) -> Gate:
    if stats is None or "diverging" not in stats:
        return Gate("divergences", np.nan, limit, "pass", "not recorded by the sampler; skipped.")
    diverging = _by_sample_dims(stats["diverging"]).to_numpy().astype(bool)
    count = int(diverging.sum())
    pct = 100.0 * count / max(total, 1)
    per_chain = ", ".join(str(int(n)) for n in diverging.sum(axis=1))
    message = f"{count} divergent transitions ({pct:.2f}% of {total} draws; per chain {per_chain})."
    if count <= limit:
        return Gate("divergences", float(count), limit, "pass", message)
    status: Status = "fail" if pct > 1.0 else "warn"
    remedy = (
        "raise target_accept (e.g. mb.fit(..., target_accept=0.95)) or "
        + _geometry_advice(design, integrated)
        + "."
    )
    return Gate("divergences", float(count), limit, status, message, remedy)


def _treedepth_gate(stats: xr.Dataset | None, limit: float) -> Gate:
    found = [s for s in TREEDEPTH_STATS if stats is not None and s in stats]
    if stats is None or not found:
        return Gate("treedepth", np.nan, limit, "pass", "not recorded by the sampler; skipped.")
    hit = _by_sample_dims(stats[found[0]]).to_numpy().astype(bool)
    fraction = float(hit.mean())
    depth = ""
    for key in ("depth", "tree_depth"):
        if key in stats:
            depth = f"; largest depth {int(np.nanmax(stats[key].to_numpy()))}"
            break
    message = (
        f"{int(hit.sum())} of {hit.size} draws ({100 * fraction:.2f}%) hit the maximum tree "
        f"depth{depth}."
    )
    if fraction <= limit:
        return Gate("treedepth", fraction, limit, "pass", message)
    remedy = (
        "the posterior is slow to traverse (strong correlations or very different scales): "
        "reparametrize, use stronger priors or rescale predictors; raising the maximum tree "
        "depth only buys time."
    )
    return Gate("treedepth", fraction, limit, "warn", message, remedy)


def ebfmi_values(energy: np.ndarray) -> np.ndarray:
    """E-BFMI of each chain: ``sum(diff(E)**2) / sum((E - mean(E))**2)``.

    Parameters
    ----------
    energy : ndarray, shape (chain, draw)

    Returns
    -------
    ndarray, shape (chain,)
    """
    e = np.asarray(energy, dtype=float)
    num = np.sum(np.diff(e, axis=1) ** 2, axis=1)
    den = np.sum((e - e.mean(axis=1, keepdims=True)) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(num / den)


def _ebfmi(stats: xr.Dataset) -> np.ndarray:
    energy = _by_sample_dims(stats["energy"])
    try:
        import arviz_stats as azs

        out = azs.bfmi(energy.to_dataset(name="energy"), var_names="energy")["energy"]
        return np.asarray(out.to_numpy(), dtype=float).reshape(-1)
    except Exception:  # arviz_stats API changes: fall back to the definition
        return ebfmi_values(energy.to_numpy())


def _ebfmi_gate(
    stats: xr.Dataset | None,
    limit: float,
    design: Design | None,
    integrated: Collection[str] = (),
) -> Gate:
    if stats is None or "energy" not in stats:
        return Gate("ebfmi", np.nan, limit, "pass", "energy not recorded by the sampler; skipped.")
    values = _ebfmi(stats)
    shown = ", ".join(_fmt(v, 2) for v in values)
    low = [i for i, v in enumerate(values) if np.isfinite(v) and v < limit]
    value = float(np.nanmin(values)) if np.any(np.isfinite(values)) else np.nan
    if not low:
        return Gate("ebfmi", value, limit, "pass", f"E-BFMI per chain: {shown}.")
    message = f"E-BFMI below {limit} in chain(s) {low}; per chain: {shown}."
    remedy = (
        "the momentum resampling explores the energy poorly (heavy tails or a funnel): "
        + _geometry_advice(design, integrated)
        + "; or use stronger priors and a longer tune."
    )
    return Gate("ebfmi", value, limit, "warn", message, remedy)


def _default_names(fit: FitLike, posterior: xr.Dataset) -> list[str]:
    from mixedbayes.results.summary import summary_variables

    return summary_variables(fit.design, posterior, False)


#: The ``rhat_all`` gate checks at most this many levels of each grouping factor (a fixed
#: random sample; R-hat of tens of thousands of group effects takes minutes).
RHAT_MAX_LEVELS = 250


def _level_sample(posterior: xr.Dataset, design: Design | None) -> tuple[xr.Dataset, str]:
    """The posterior with each large grouping factor's levels sampled, and the gate's scope."""
    scope = "all variables"
    if design is None:
        return posterior, scope
    sampled = []
    for g in getattr(design, "groups", ()):
        # r_<g>_<b> (one per block) hold the same draws as r_<g>: checked once, there.
        if Names.r(g.name) in posterior:
            copies = [Names.r(g.name, str(b)) for b in range(len(g.blocks))]
            posterior = posterior.drop_vars([c for c in copies if c in posterior])
        size = posterior.sizes.get(g.dim, 0)
        if size > RHAT_MAX_LEVELS:
            keep = np.sort(np.random.default_rng(0).choice(size, RHAT_MAX_LEVELS, replace=False))
            posterior = posterior.isel({g.dim: keep})
            sampled.append(f"{RHAT_MAX_LEVELS} of {size} levels of {g.name}")
    posterior, cells = _cell_sample(posterior)
    sampled += cells
    if sampled:
        scope += " (" + "; ".join(sampled) + ")"
    return posterior, scope


#: The ``rhat_all`` gate checks at most this many values of any one variable (a fixed random
#: sample: a compositional model's residual has samples × taxa values per draw).
RHAT_MAX_CELLS = 20_000


def _cell_sample(posterior: xr.Dataset) -> tuple[xr.Dataset, list[str]]:
    import xarray as xr

    out, notes = {}, []
    for name, da in posterior.data_vars.items():
        da = da.transpose("chain", "draw", ...)
        shape = da.shape[2:]
        size = int(np.prod(shape)) if shape else 1
        if size <= RHAT_MAX_CELLS:
            out[name] = da
            continue
        keep = np.sort(np.random.default_rng(0).choice(size, RHAT_MAX_CELLS, replace=False))
        flat = da.to_numpy().reshape(da.shape[0], da.shape[1], size)[:, :, keep]
        where = np.unravel_index(keep, shape)
        labels = [
            ",".join(
                str(da[d].values[i]) if d in da.coords else str(i)
                for d, i in zip(da.dims[2:], idx, strict=True)
            )
            for idx in zip(*where, strict=True)
        ]
        cell = f"{name}_cell"
        out[name] = xr.DataArray(flat, dims=("chain", "draw", cell), coords={cell: labels})
        notes.append(f"{RHAT_MAX_CELLS:,} of {size:,} values of {name}")
    return xr.Dataset(out), notes


def diagnose(
    fit: FitLike,
    *,
    rhat_max: float = 1.01,
    ess_bulk_min: float | None = None,
    ess_tail_min: float | None = None,
    max_divergences: int = 0,
    max_treedepth_fraction: float = 0.0,
    ebfmi_min: float = 0.3,
    var_names: Sequence[str] | None = None,
) -> Diagnostics:
    """Check the convergence of a fit.

    Parameters
    ----------
    fit : Fit
        A fit (anything with ``idata`` and ``design``).
    rhat_max : float
        Largest acceptable rank-normalized split R-hat. Above it the gate warns; above
        ``max(rhat_max, 1.05)`` it fails.
    ess_bulk_min, ess_tail_min : float, optional
        Smallest acceptable bulk / tail ESS; default 100 per chain (400 for 4 chains, as
        Vehtari et al. 2021 recommend). Below it the gate warns; below 10% of it it fails.
    max_divergences : int
        Divergent transitions tolerated. More warn; more than 1% of the draws fail.
    max_treedepth_fraction : float
        Fraction of draws allowed to hit the maximum tree depth (any, by default).
    ebfmi_min : float
        Smallest acceptable E-BFMI in every chain.
    var_names : sequence of str, optional
        Variables for the R-hat and ESS gates; by default those of ``fit.summary()``:
        ``b``, ``sd_<group>``, ``cor_<group>`` (off-diagonal) and the family's parameters.

    Returns
    -------
    Diagnostics
        Gates ``rhat``, ``rhat_all`` (every posterior variable, group effects ``r_*``
        included), ``ess_bulk``, ``ess_tail``, ``divergences``, ``treedepth``, ``ebfmi``.

    Examples
    --------
    >>> d = diagnose(fit)  # doctest: +SKIP
    >>> d.ok, d["rhat"].message  # doctest: +SKIP
    """
    import arviz_stats as azs

    tree = fit.idata
    posterior = tree["posterior"].to_dataset()
    names = list(var_names) if var_names is not None else _default_names(fit, posterior)
    missing = [n for n in names if n not in posterior]
    if missing:
        raise KeyError(f"not in the posterior: {missing}; variables: {list(posterior.data_vars)}")
    n_chains = int(posterior.sizes.get("chain", 1))
    n_draws = int(posterior.sizes.get("draw", 0))
    total = n_chains * n_draws
    bulk_min = float(ess_bulk_min) if ess_bulk_min is not None else 100.0 * n_chains
    tail_min = float(ess_tail_min) if ess_tail_min is not None else 100.0 * n_chains
    design: Design | None = getattr(fit, "design", None)
    # groups integrated out (marginalised LMM) were never sampled: no parametrization advice
    integrated = integrated_out(tree["posterior"].attrs)

    all_names = [str(n) for n in posterior.data_vars]
    subset, scope_all = _level_sample(posterior[all_names], design)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat_all = rank_rhat_dataset(subset)
        checked = posterior[names]
        ess_bulk = azs.ess(checked, method="bulk")
        ess_tail = azs.ess(checked, method="tail")

    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else None
    gates = (
        _rhat_gate(
            "rhat", rhat_all, posterior, names, rhat_max, design, "summary parameters", integrated
        ),
        _rhat_gate(
            "rhat_all",
            rhat_all,
            subset,
            [str(n) for n in subset.data_vars],
            rhat_max,
            design,
            scope_all,
            integrated,
        ),
        _ess_gate("bulk", ess_bulk, posterior, names, bulk_min, design, integrated),
        _ess_gate("tail", ess_tail, posterior, names, tail_min, design, integrated),
        _divergence_gate(stats, total, max_divergences, design, integrated),
        _treedepth_gate(stats, max_treedepth_fraction),
        _ebfmi_gate(stats, ebfmi_min, design, integrated),
    )
    return Diagnostics(gates, n_chains, n_draws)
