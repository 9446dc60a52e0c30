"""The public entry points: each stage as a function (``design``, ``compile``, ``fit``)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from mixedbayes.compile import CompiledModel
from mixedbayes.compile.model import INTEGRATED_OUT
from mixedbayes.design import ModelDesign
from mixedbayes.errors import DataError, SpecError
from mixedbayes.inference import get_sampler
from mixedbayes.inference.init import plan_start
from mixedbayes.kinds import (
    add_log_likelihood,
    build_prior_table,
    compile_model,
    kind_of,
    make_design,
)
from mixedbayes.priors import PriorTable
from mixedbayes.results import Fit, load_fit
from mixedbayes.results.imputation import add_imputed
from mixedbayes.spec import ModelSpec, load_spec

__all__ = [
    "compile",
    "design",
    "fit",
    "get_priors",
    "load",
    "load_data",
    "prior_predictive",
    "spec_and_data",
]

LOG_LIKELIHOOD_MAX_VALUES = 50_000_000
"""Largest pointwise log-likelihood (draws × rows) a fit stores by default (400 MB)."""

SpecLike = ModelSpec | dict[str, Any] | str | os.PathLike[str]


def load_data(
    source: str | os.PathLike[str] | Mapping[str, str],
    base: str | os.PathLike[str] | None = None,
) -> Any:
    """Read the data a spec points at: ``"dataset:NAME"`` (bundled) or a CSV path; a mapping
    of table names to such sources gives a dict of DataFrames (kinds fitted to several
    tables).

    Parameters
    ----------
    source : str, path or mapping of str to str
    base : str or path, optional
        Directory that relative paths are relative to (the spec file's); else the CWD.
    """
    if isinstance(source, Mapping):
        return {name: load_data(value, base) for name, value in source.items()}
    text = os.fspath(source)
    if text.startswith("dataset:"):
        from mixedbayes import datasets

        return datasets.load(text.removeprefix("dataset:"))
    path = Path(text)
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if not path.is_file():
        raise DataError(
            f"no data file at {str(path)!r}.",
            where="data",
            hint="give a CSV path, or 'dataset:NAME' for a bundled set (mb.datasets.names()).",
        )
    return pd.read_csv(path, na_values=["NA"])


def spec_and_data(spec: SpecLike, data: pd.DataFrame | None) -> tuple[ModelSpec, pd.DataFrame]:
    """The validated spec and the data to fit it to (what every stage starts from).

    Parameters
    ----------
    spec : ModelSpec, dict, YAML path or text
    data : DataFrame, optional
        Defaults to the data the spec names (a relative CSV path is relative to the spec
        file's directory).

    Returns
    -------
    (ModelSpec, DataFrame)

    Raises
    ------
    DataError
        If no data is given and the spec names none.
    """
    base = None
    if isinstance(spec, str | os.PathLike) and Path(os.fspath(spec)).is_file():
        base = Path(os.fspath(spec)).parent
    model_spec = load_spec(spec)
    if data is None:
        if model_spec.data is None:
            raise DataError(
                "no data given and the spec names none.",
                where="data",
                hint="pass data=DataFrame, or set 'data:' in the spec (a CSV or 'dataset:NAME').",
            )
        data = load_data(model_spec.data, base)
    return model_spec, data


def design(spec: SpecLike, data: pd.DataFrame | None = None) -> ModelDesign:
    """Stage 2: validate ``data`` against ``spec`` and build the design (no PyMC).

    Parameters
    ----------
    spec : ModelSpec, dict, YAML path or text
    data : DataFrame, optional
        Defaults to the data the spec names.

    Returns
    -------
    ModelDesign
        A :class:`~mixedbayes.design.Design` for the regression kinds, a
        :class:`~mixedbayes.design.NonlinearDesign` for ``nonlinear``.
    """
    return make_design(*spec_and_data(spec, data))


def get_priors(spec: SpecLike, data: pd.DataFrame | None = None) -> PriorTable:
    """The prior table (defaults with provenance, the spec's overrides applied)."""
    d = design(spec, data)
    return build_prior_table(d, d.spec.priors)


def compile(
    spec: SpecLike | ModelDesign,
    data: pd.DataFrame | None = None,
    *,
    marginalize: bool | None = None,
) -> CompiledModel:
    """Stage 3: build the PyMC model (``compiled.model``) of a spec or design.

    ``marginalize`` (default: the spec's ``sampler.marginalize``) also builds the
    marginalised Gaussian LMM that NUTS samples (``compiled.sampling_model``) where it
    applies; ``compiled.model`` is always the plain model.
    """
    d = design(spec, data) if isinstance(spec, ModelSpec | dict | str | os.PathLike) else spec
    if marginalize is None:
        marginalize = d.spec.sampler.marginalize
    return compile_model(d, marginalize=marginalize)


def _seed(seed: int | None) -> int:
    if seed is not None:
        return int(seed)
    return int(np.random.SeedSequence().entropy % (2**31 - 1))  # type: ignore[operator]


def _count(name: str, value: int | None, default: int, least: int) -> int:
    """A sampler count argument, the spec's when None; SpecError below ``least``."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise SpecError(
            f"{name} must be a whole number >= {least}, got {value!r}.",
            where=name,
            hint=f"pass e.g. {name}={default} (the spec's value), or leave it out.",
        )
    return int(value)


def fit(
    spec: SpecLike,
    data: pd.DataFrame | None = None,
    *,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    target_accept: float | None = None,
    posterior_predictive: bool = False,
    progressbar: bool = False,
    check: bool = True,
    priors: PriorTable | None = None,
    log_likelihood: bool | None = None,
    marginalize: bool | None = None,
    init: Mapping[str, Any] | None = None,
    point_fit: bool | None = None,
) -> Fit:
    """Fit a model: spec → design → compile → NUTS.

    Parameters
    ----------
    spec : ModelSpec, dict, YAML path or text
    data : DataFrame, optional
        Defaults to the data the spec names. Never modified.
    draws, tune, chains, seed, sampler, target_accept : optional
        Override the spec's ``sampler`` settings. ``sampler`` is ``"auto"`` (default:
        NumPyro's NUTS compiled once per model structure and cached on disk, nutpie where
        JAX cannot run the model), ``"numpyro"``, ``"nutpie"`` or ``"pymc"``. Without a
        seed one is drawn and recorded in ``fit.idata.posterior.attrs["seed"]``.
    posterior_predictive : bool
        Also draw the ``posterior_predictive`` group.
    progressbar : bool
        Show a progress display while sampling.
    check : bool
        Run the convergence gates after sampling and warn (``ConvergenceWarning``) with the
        numbers and remedies when one does not pass.
    priors : PriorTable, optional
        Use this prior table instead of the spec's (e.g. one fixed across refits, as
        simulation-based calibration needs).
    log_likelihood : bool, optional
        Store the pointwise log-likelihood (for LOO). By default it is stored when it takes
        at most ``LOG_LIKELIHOOD_MAX_VALUES`` numbers (draws × rows); otherwise
        :meth:`Fit.loo` computes it when first needed.
    marginalize : bool, optional
        Integrate the group effects out of a Gaussian LMM with one grouping factor (the
        spec's ``sampler.marginalize``, default True): the log-density then costs per group,
        not per row, and ``r_<group>`` is drawn from its exact conditional afterwards. The
        fit records what was done in ``fit.idata.posterior.attrs["marginalization"]``.
    init : dict, optional
        Where the chains start: values by variable name (``b_lrc1``, ``sd_Subject``,
        ``sigma``; on the variable's own scale, broadcast to its shape), each chain jittered
        by ±0.1 on the sampler's scale; the other variables start as by default. Unknown
        names, wrong shapes and values outside a prior's support are a ``SpecError``.
        Honoured by every sampler.
    point_fit : bool, optional
        Start the chains at a point fit (the mode of the log-density on the sampler's scale,
        by L-BFGS from ``init`` or the model's self-start values) instead of jitter around
        the priors' centres. Default: the kind's :meth:`~mixedbayes.kinds.Kind.point_fit`
        (yes for user expressions and ordered or self-starting nonlinear models; no for PK
        library and ODE models, whose joint mode can sit in the flip-flop or a funnel's
        neck, and for regressions) unless ``init`` is given.

    Returns
    -------
    Fit

    Examples
    --------
    >>> import mixedbayes as mb
    >>> fit = mb.fit("models/sleepstudy.yaml", draws=500, seed=1)  # doctest: +SKIP
    >>> fit.summary()  # doctest: +SKIP
    """
    model_spec, frame = spec_and_data(spec, data)
    s = model_spec.sampler
    draws = _count("draws", draws, s.draws, 1)
    tune = _count("tune", tune, s.tune, 0)
    chains = _count("chains", chains, s.chains, 1)
    chosen = get_sampler(sampler or s.name)
    t0 = time.perf_counter()
    d = make_design(model_spec, frame)
    t_design = time.perf_counter()
    compiled = compile_model(
        d, priors, marginalize=s.marginalize if marginalize is None else marginalize
    )
    start = plan_start(
        kind_of(model_spec),
        d,
        compiled.sampling_model,
        plain=compiled.model,
        init=init,
        point_fit=point_fit,
    )
    t1 = time.perf_counter()
    used_seed = _seed(seed if seed is not None else s.seed)
    result = chosen.sample(
        compiled.sampling_model,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=used_seed,
        target_accept=target_accept or s.target_accept,
        progressbar=progressbar,
        **({"start": start} if start is not None else {}),
    )
    t2 = time.perf_counter()
    idata = compiled.complete(result.idata, used_seed)
    idata = add_imputed(idata, d, used_seed, kind_of(model_spec).imputed_draws)
    n_values = idata["posterior"].sizes["chain"] * idata["posterior"].sizes["draw"] * d.n
    if log_likelihood or (log_likelihood is None and n_values <= LOG_LIKELIHOOD_MAX_VALUES):
        idata = add_log_likelihood(idata, compiled.model, model_spec, d)
    timings = {
        "design_seconds": t_design - t0,
        "build_seconds": t1 - t_design,
        "compile_seconds": result.compile_seconds,
        "sample_seconds": result.sample_seconds,
        "post_seconds": time.perf_counter() - t2,
    }
    idata["posterior"].attrs.update(
        {
            "seed": used_seed,
            "sampler": result.sampler or chosen.name,
            "mixedbayes_spec": model_spec.to_yaml(),
            "marginalization": compiled.marginalization,
            INTEGRATED_OUT: list(compiled.integrated_out),
            "start": "sampler default" if start is None else start.describe(),
        }
    )
    out = Fit(idata, model_spec, cast(Any, d), compiled.priors, timings, compiled)
    if check:
        from mixedbayes.diagnostics import diagnose, warn_if_bad

        t3 = time.perf_counter()
        warn_if_bad(diagnose(out), stacklevel=3)
        timings["check_seconds"] = time.perf_counter() - t3
    if posterior_predictive:
        out.sample_posterior_predictive(seed=used_seed)
    return out


def prior_predictive(
    spec: SpecLike, data: pd.DataFrame | None = None, *, draws: int = 500, seed: int | None = None
) -> Any:
    """Prior predictive draws: a DataTree with ``prior``, ``prior_predictive``, ``observed_data``.

    One call: the spec's priors (defaults plus overrides) with the design of ``data``.
    """
    import pymc as pm

    compiled = compile(spec, data)
    return pm.sample_prior_predictive(draws=draws, model=compiled.model, random_seed=_seed(seed))


def load(path: str | os.PathLike[str]) -> Fit:
    """Load a fit saved with :meth:`Fit.save`; spec and design are restored (it can predict)."""
    return load_fit(path)
