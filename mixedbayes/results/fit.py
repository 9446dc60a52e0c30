"""Stage 4 output: :class:`Fit`, the posterior with its spec, design and prior table."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pandas as pd

from mixedbayes.results.io import read_fit
from mixedbayes.results.predict import Level, NewGroups, predict_draws
from mixedbayes.results.summary import summarise, summary_variables

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.compile import CompiledModel
    from mixedbayes.design import Design
    from mixedbayes.diagnostics import Diagnostics, LooReport, Rootogram
    from mixedbayes.kinds import Kind
    from mixedbayes.priors import PriorTable
    from mixedbayes.results.conditional import ConditionalEffects
    from mixedbayes.results.emmeans import EMMeans
    from mixedbayes.results.kfold import KFoldResult
    from mixedbayes.results.shrinkage import Shrinkage
    from mixedbayes.results.trajectories import Trajectories
    from mixedbayes.spec import ModelSpec

__all__ = ["Fit", "load_fit"]


@dataclass(eq=False)
class Fit:
    """A fitted model.

    Attributes
    ----------
    idata : xarray.DataTree
        ``posterior``, ``sample_stats``, ``observed_data``, ``constant_data``,
        ``log_likelihood`` and, on request, ``posterior_predictive``.
    spec : ModelSpec
    design : Design
    priors : PriorTable
        The prior table used (print it to see every prior and its provenance).
    timings : dict
        ``compile_seconds`` and ``sample_seconds``.
    """

    idata: xr.DataTree
    spec: ModelSpec
    design: Design
    priors: PriorTable
    timings: dict[str, float] = field(default_factory=dict)
    _compiled: CompiledModel | None = field(default=None, repr=False)

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws as an ``xarray.Dataset``."""
        return self.idata["posterior"].to_dataset()

    @property
    def compiled(self) -> CompiledModel:
        """The compiled model (rebuilt on first use after :func:`mixedbayes.load`)."""
        if self._compiled is None:
            from mixedbayes.kinds import compile_model

            self._compiled = compile_model(self.design, self.priors)
        return self._compiled

    @property
    def model(self) -> Any:
        """The ``pm.Model`` behind the fit."""
        return self.compiled.model

    @property
    def kind(self) -> Kind:
        """The model kind (what the fit can do: ``fit.kind.capabilities``)."""
        from mixedbayes.kinds import kind_of

        return kind_of(self.spec)

    def summary(
        self,
        prob: float = 0.95,
        *,
        var_names: list[str] | None = None,
        include_group_levels: bool = False,
    ) -> pd.DataFrame:
        """Tidy summary: one row per parameter.

        Parameters
        ----------
        prob : float
            Mass of the central interval (``lower``, ``upper``).
        var_names : list of str, optional
            Variables to summarise; by default ``b``, ``sd_*``, ``cor_*`` and the family's
            parameters (``sigma``).
        include_group_levels : bool
            Also list every group effect ``r_<group>[level, term]``.

        Returns
        -------
        DataFrame
            Columns ``parameter``, ``class``, ``group``, ``term``, ``mean``, ``sd``,
            ``median``, ``lower``, ``upper``, ``rhat``, ``ess_bulk``, ``ess_tail``,
            ``mcse_mean``.
        """
        post = self.posterior
        names = var_names or summary_variables(self.design, post, include_group_levels)
        from mixedbayes.errors import require_known

        known = [str(v) for v in post.data_vars]
        require_known(names, known, where="var_names", what="the posterior's variables")
        return summarise(post, self.design, names, prob)

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        *,
        kind: Literal["link", "mean", "response"] = "mean",
        level: Level = None,
        new_groups: NewGroups = "error",
        seed: int | None = None,
    ) -> xr.DataArray:
        """Posterior draws of predictions, dims (chain, draw, observation).

        Evaluated in NumPy from the draws, without compiling the model again. Nonlinear fits
        (PK library, expression, ODE) predict the structural model from each draw's
        parameters; newdata are read as the fit's data (an event table's doses, a dose
        column); see :mod:`mixedbayes.results.nonlinear_predict`.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict for (the fitted rows when None).
        kind : {"link", "mean", "response"}
            The linear predictor, the expected response, or simulated new responses (with
            the residual error model for nonlinear fits, whose ``"mean"`` is the structural
            prediction and which have no single ``"link"``).
        level : None, "population", str or list of str
            Grouping factors whose effects are included: all (None), none ("population"),
            or the ones named (e.g. ``["clinic"]``, like lme4's ``re.form``).
        new_groups : {"error", "sample", "population"}
            Levels the model has not seen: raise a ``DataError`` naming them; draw their
            effects from the fitted group-level distribution (a new patient in a known clinic
            keeps the clinic's effect and draws only its own); or leave them out.
        seed : int, optional
            The same seed gives the same predictions (new-level effects and responses).

        Examples
        --------
        >>> new = pd.DataFrame({"Days": [0, 9], "Subject": ["308", "new"]})  # doctest: +SKIP
        >>> fit.predict(new, new_groups="sample", seed=1).mean(("chain", "draw"))  # doctest: +SKIP
        """
        self.kind.require("predict", "predict")
        return predict_draws(
            self.posterior,
            self.design,
            newdata,
            kind=kind,
            level=level,
            new_groups=new_groups,
            seed=seed,
        )

    def hypothesis(
        self,
        hypotheses: str | Sequence[str],
        *,
        prob: float = 0.95,
        rope: tuple[float, float] | None = None,
    ) -> pd.DataFrame:
        """Posterior tests of hypotheses such as ``"trt:time < 0"`` (as brms's ``hypothesis``).

        See :func:`mixedbayes.results.hypothesis.hypothesis`.
        """
        from mixedbayes.results.hypothesis import hypothesis

        return hypothesis(self, hypotheses, prob=prob, rope=rope)

    def slopes(
        self,
        variable: str,
        *,
        by: str | None = None,
        values: Sequence[Any] | None = None,
        at: Mapping[str, Any] | None = None,
        prob: float = 0.95,
        rope: tuple[float, float] | None = None,
        compare: bool = False,
    ) -> pd.DataFrame:
        """Population-level slope of E[y] in ``variable`` per value of ``by`` (e.g. per arm).

        ``compare=True`` adds each value's slope minus the first's: are trajectories parallel?
        See :func:`mixedbayes.results.slopes.slopes`.
        """
        from mixedbayes.results.slopes import slopes

        self.kind.require("slopes", "slopes")
        return slopes(
            self, variable, by=by, values=values, at=at, prob=prob, rope=rope, compare=compare
        )

    def contrasts(
        self,
        variable: str,
        values: Sequence[Any] | None = None,
        *,
        by: str | None = None,
        at: Mapping[str, Any] | None = None,
        prob: float = 0.95,
        rope: tuple[float, float] | None = None,
    ) -> pd.DataFrame:
        """Differences in E[y] between values of ``variable`` (against the first), per ``by``.

        See :func:`mixedbayes.results.slopes.contrasts`.
        """
        from mixedbayes.results.slopes import contrasts

        self.kind.require("slopes", "contrasts")
        return contrasts(self, variable, values, by=by, at=at, prob=prob, rope=rope)

    def emmeans(
        self, specs: str | Sequence[str], by: str | Sequence[str] | None = None, **options: Any
    ) -> EMMeans:
        """Estimated marginal (least-squares) means of ``specs`` per ``by``, as R's emmeans
        (``fit.emmeans("arm", by="visit").pairs()``: the arm difference at each visit).
        Options ``at``, ``type``, ``weights``, ``prob``:
        :func:`mixedbayes.results.emmeans.emmeans`."""
        from mixedbayes.results.emmeans import emmeans

        self.kind.require("slopes", "emmeans")
        return emmeans(self, specs, by, **options)

    def shrinkage(self, group: str | None = None, prob: float = 0.95) -> Shrinkage:
        """No-pooling, complete-pooling and partial-pooling estimates per level and term.

        See :func:`mixedbayes.results.shrinkage.shrinkage`; ``.plot()`` draws the arrows.
        """
        from mixedbayes.results.shrinkage import shrinkage

        self.kind.require("shrinkage", "shrinkage")
        return shrinkage(self, group, prob)

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
        """Each individual's fitted trajectory and the population trajectory.

        See :func:`mixedbayes.results.trajectories.trajectories`; ``.plot()`` adds the data.
        """
        from mixedbayes.results.trajectories import trajectories

        self.kind.require("trajectories", "trajectories")
        return trajectories(
            self, groups, at, time=time, group=group, prob=prob, max_groups=max_groups
        )

    def bayes_r2(
        self, *, method: Literal["gelman", "nakagawa"] | None = None, prob: float = 0.95
    ) -> pd.DataFrame:
        """Bayesian R², marginal and conditional, with its posterior (estimate, sd, interval).

        See :func:`mixedbayes.results.r2.bayes_r2` (Gelman et al. 2019; Nakagawa et al. 2017).
        """
        from mixedbayes.results.r2 import bayes_r2

        self.kind.require("predict", "bayes_r2")
        return bayes_r2(self, method=method, prob=prob)

    def conditional_effects(
        self,
        effect: str,
        conditions: Mapping[str, Any] | pd.DataFrame | None = None,
        **options: Any,
    ) -> ConditionalEffects:
        """E[y] over a grid of ``effect`` (``"x"`` or ``"x:z"``), as brms's
        ``conditional_effects``; ``.data`` and ``.plot()``.

        See :func:`mixedbayes.results.conditional.conditional_effects` for the options.
        """
        from mixedbayes.results.conditional import conditional_effects

        self.kind.require("predict", "conditional_effects")
        return conditional_effects(self, effect, conditions, **options)

    def kfold(self, k: int = 10, *, group: str | None = None, **options: Any) -> KFoldResult:
        """K-fold cross-validation (``group``: hold out whole levels), refits through
        :mod:`mixedbayes.batch`. See :func:`mixedbayes.workflows.kfold.kfold`."""
        from mixedbayes.results.refit import refit_method

        self.kind.require("predict", "kfold")
        return cast("KFoldResult", refit_method("kfold")(self, k, group=group, **options))

    def update(
        self, formula: str | None = None, data: pd.DataFrame | None = None, **changes: Any
    ) -> Fit:
        """Refit with a changed formula (``". ~ . + z"``), data or spec keys, keeping the
        rest (priors, sampler settings), as ``brms::update``.
        See :func:`mixedbayes.workflows.update.update`."""
        from mixedbayes.results.refit import refit_method

        return cast("Fit", refit_method("update")(self, formula, data, **changes))

    def diagnose(self, **thresholds: Any) -> Diagnostics:
        """Convergence gates with their numbers: R-hat, bulk/tail ESS, divergences, tree depth,
        E-BFMI. See :func:`mixedbayes.diagnostics.diagnose` for the thresholds."""
        from mixedbayes.diagnostics import diagnose

        return diagnose(self, **thresholds)

    @property
    def ok(self) -> bool:
        """Whether every convergence gate passes at the default thresholds."""
        return self.diagnose().ok

    def loo(self, *, pointwise: bool = False, moment_match: bool = False) -> LooReport:
        """PSIS-LOO with a Pareto-k report. See :func:`mixedbayes.diagnostics.loo`."""
        from mixedbayes.diagnostics import loo

        return loo(self, pointwise=pointwise, moment_match=moment_match)

    def plot_ppc(self, *, num_draws: int = 100, seed: int | None = None) -> Any:
        """Posterior predictive density overlay (arviz-plots); draws the group if missing."""
        from mixedbayes.diagnostics import plot_ppc

        return plot_ppc(self, num_draws=num_draws, seed=seed)

    def rootogram(self, *, max_count: int | None = None, seed: int | None = None) -> Rootogram:
        """Hanging rootogram of a count model (``.plot()`` draws it)."""
        from mixedbayes.diagnostics import rootogram

        return rootogram(self, max_count=max_count, seed=seed)

    def ppc_stats(self, *, seed: int | None = None) -> pd.DataFrame:
        """Posterior predictive p-values of the response's mean, sd, min and max."""
        from mixedbayes.diagnostics import ppc_stats

        return ppc_stats(self, seed=seed)

    def typical_values(self, prob: float = 0.95) -> pd.DataFrame:
        """Nonlinear fits: typical parameter values and between-subject variability (%CV)."""
        from mixedbayes.results.nonlinear import typical_values

        return typical_values(self, prob)

    def individual_parameters(self, prob: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Nonlinear fits: each subject's parameters and the per-parameter shrinkage %."""
        from mixedbayes.results.nonlinear import individual_parameters

        return individual_parameters(self, prob)

    def concentration_curves(
        self, subjects: Sequence[str] | None = None, times: Sequence[float] | None = None
    ) -> Any:
        """Nonlinear fits: each subject's fitted curve (and the population curve) with the
        observed points; ``.plot()`` draws them."""
        from mixedbayes.results.nonlinear import individual_curves

        return individual_curves(self, subjects, times)

    def predict_regimen(
        self,
        doses: Sequence[Any],
        times: Sequence[float],
        *,
        subject: str | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """PK fits: concentrations under a new regimen (``mb.pk.regimen(...)``), for a known
        subject or a new one (between-subject effects drawn from the fitted distribution)."""
        from mixedbayes.results.nonlinear import predict_regimen

        return predict_regimen(self, doses, times, subject=subject, seed=seed)

    def predict_survival(
        self,
        newdata: pd.DataFrame | None = None,
        *,
        times: Any,
        landmark: float | None = None,
        n_draws: int = 200,
        prob: float = 0.95,
        seed: int | None = None,
    ) -> Any:
        """Joint fits: each patient's survival after ``landmark`` given their measurements up
        to it, with posterior intervals, and their fitted trajectories
        (:func:`mixedbayes.results.joint_predict.predict_survival`)."""
        from mixedbayes.results.joint_predict import predict_survival

        self.kind.require("survival", "predict_survival")
        return predict_survival(
            self, newdata, times=times, landmark=landmark, n_draws=n_draws, prob=prob, seed=seed
        )

    def validate_dynamic(
        self, *, landmark: float, horizon: float, n_draws: int = 100, seed: int | None = None
    ) -> dict[str, float]:
        """Joint fits: time-dependent AUC and Brier score of the dynamic predictions at
        ``landmark`` for ``horizon``, on the fit's own subjects (IPCW;
        :func:`mixedbayes.results.joint_predict.validate_dynamic`)."""
        from mixedbayes.results.joint_predict import validate_dynamic

        self.kind.require("survival", "validate_dynamic")
        return validate_dynamic(
            self, landmark=landmark, horizon=horizon, n_draws=n_draws, seed=seed
        )

    def taxa_effects(
        self,
        coefficients: Any = None,
        *,
        prob: float = 0.9,
        level: float = 0.05,
        scale: str = "clr",
    ) -> pd.DataFrame:
        """Compositional fits: one row per taxon and coefficient — mean, interval,
        probability of direction, local false sign rate and the differential-abundance call
        at ``level`` — sorted by lfsr
        (:func:`mixedbayes.results.compositional.taxa_effects`)."""
        from mixedbayes.results.compositional import taxa_effects

        self.kind.require("taxa", "taxa_effects")
        return taxa_effects(self, coefficients, prob=prob, level=level, scale=scale)

    def expected_proportions(
        self,
        newdata: pd.DataFrame | None = None,
        *,
        level: Level = None,
        new_groups: NewGroups = "error",
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Compositional fits: each sample's expected composition (posterior mean of the
        softmax of its log-abundances), samples × taxa; for ``newdata`` (sample metadata)
        too. ``level``, ``new_groups`` and ``seed`` as in :meth:`predict`."""
        from mixedbayes.results.compositional import expected_proportions

        self.kind.require("taxa", "expected_proportions")
        return expected_proportions(self, newdata, level=level, new_groups=new_groups, seed=seed)

    def residual_covariance(
        self, times: Sequence[Any] | None = None, *, correlation: bool = False
    ) -> pd.DataFrame:
        """The implied within-subject residual covariance (or correlation) over the visits,
        posterior mean, of an ``lmm`` fitted with ``residuals:``.

        See :func:`mixedbayes.results.residual_covariance.residual_covariance`.
        """
        from mixedbayes.results.residual_covariance import residual_covariance

        return residual_covariance(self, times, correlation=correlation)

    def imputed(self, prob: float = 0.9) -> pd.DataFrame:
        """The values imputed by sampling (the spec's ``missing:``): one row per imputed
        cell with ``column``, ``row`` (the data's label), ``mean``, ``sd``, ``lower``,
        ``upper`` (central ``prob`` interval); the draws are in ``fit.idata["imputed"]``."""
        from mixedbayes.results.imputation import imputed_table

        return imputed_table(self.idata, prob)

    def sample_posterior_predictive(self, seed: int | None = None) -> xr.DataTree:
        """Add (and return) the ``posterior_predictive`` group: one replicated response per
        draw at the fitted rows, simulated with NumPy from the family (as
        ``fit.predict(kind="response")``; nothing is compiled), named and shaped like the
        ``observed_data``. A model the predictions cannot simulate is drawn with PyMC."""
        from mixedbayes.results.ppc import posterior_predictive

        self.idata["posterior_predictive"] = posterior_predictive(self, seed)
        return self.idata

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to a directory that :func:`mixedbayes.load` restores (spec, data, draws)."""
        from mixedbayes.results.io import save_fit

        return save_fit(self, path)

    def report(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        n_groups: int = 8,
        seed: int = 1,
        prob: float = 0.95,
        sections: Sequence[str] | None = None,
        embed: bool = False,
    ) -> Path:
        """Write the posterior report: a self-contained HTML page (or Markdown).

        Model, data (rows used and dropped), priors with provenance, convergence gates,
        parameters, forest, trace and rank plots, posterior predictive check, LOO, and by
        kind: shrinkage and trajectories (regression), rootogram (counts), typical values
        and fitted curves (nonlinear). A section that cannot be produced shows why.

        Parameters
        ----------
        path : str or path
            The file to write (``.html`` or ``.md``).
        format : {"html", "md"}, optional
            Default: from the suffix of ``path``.
        n_groups : int
            Levels shown in the per-individual plots and tables (a random sample fixed by
            ``seed`` when there are more).
        seed : int
            Seed of that sample and of the posterior predictive draws.
        prob : float
            Mass of the central intervals.
        sections : sequence of str, optional
            Keys of the sections to include (``mixedbayes.report.section_keys()``).
        embed : bool
            Markdown only: embed the images instead of writing PNG files to
            ``<stem>_files/`` next to the Markdown file.

        Returns
        -------
        Path
            The file written. The fit itself is not modified.

        See Also
        --------
        mixedbayes.report.build_report : the :class:`~mixedbayes.report.Report` object.
        """
        from mixedbayes.report import write_report

        return write_report(
            self,
            path,
            format=format,
            embed=embed,
            n_groups=n_groups,
            seed=seed,
            prob=prob,
            sections=sections,
        )

    def __repr__(self) -> str:
        from mixedbayes.compile.model import integrated_out, sampled_parametrization

        d = self.design
        post = self.posterior
        lines = [
            f"mixedbayes {self.spec.kind} fit: {self.kind.describe(self.spec)}",
            f"  family: {d.family.name} (link {d.link.name}); "
            f"{d.report.rows_used} rows"
            + (f" ({d.report.rows_dropped} dropped)" if d.report.rows_dropped else ""),
        ]
        imputed = getattr(d.report, "imputed", ())
        lines += [f"  imputed: {i.count} of '{i.column}' ({i.how})" for i in imputed]
        lines += [f"  {name}: {value}" for name, value in self.kind.report_items(self.spec)]
        integrated = integrated_out(post.attrs)
        for g in d.groups:
            params = sampled_parametrization(g, integrated)
            lines.append(f"  group {g.name}: {g.n_levels} levels, terms {list(g.terms)} [{params}]")
        note = self.idata["posterior"].attrs.get("marginalization")
        if note:
            lines.append(f"  group effects {note}")
        lines.append(f"  draws: {post.sizes['chain']} chains × {post.sizes['draw']}")
        table = self.summary()
        cols = ["parameter", "mean", "sd", "lower", "upper", "rhat", "ess_bulk", "ess_tail"]
        lines.append(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return "\n".join(lines)


def load_fit(path: str | os.PathLike[str]) -> Fit:
    """Read a fit written by :meth:`Fit.save` (``mb.load``).

    Parameters
    ----------
    path : str or path
        The directory written by :meth:`Fit.save`.

    Returns
    -------
    Fit
        Spec and design are restored from the saved rows (it can predict).

    Raises
    ------
    DataError
        If ``path`` is not a saved fit.
    """
    return Fit(*read_fit(path))
