"""NUTS sampler backends, one class each, in one registry.

Every backend takes a built ``pm.Model`` and returns a ``DataTree`` with ``posterior``,
``sample_stats``, ``observed_data`` and ``constant_data``, plus the timings (compile and
sampling seconds) that the benchmarks and the fit record. :func:`log_likelihood` adds the
pointwise ``log_likelihood`` group afterwards.

nutpie keeps the compiled log-density of the last models of the process
(:class:`~mixedbayes.inference.reuse.CompileCache`): refitting a model of the same structure
on new data swaps the data in instead of compiling again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mixedbayes._system import usable_cpus
from mixedbayes.inference.init import Start, chain_starts, constrained, start_vector
from mixedbayes.inference.reuse import COMPILE_CACHE, pack_data, structure_key
from mixedbayes.inference.trees import data_groups

if TYPE_CHECKING:
    import pymc as pm
    import xarray as xr

__all__ = [
    "COMPILE_CACHE",
    "SAMPLERS",
    "SampleResult",
    "Sampler",
    "data_groups",
    "get_sampler",
    "log_likelihood",
    "register_sampler",
    "sampler_names",
]


@dataclass(frozen=True)
class SampleResult:
    """A sampler's output: the draws, how long compiling and sampling took, and which
    backend drew them (set by the ``auto`` policy)."""

    idata: xr.DataTree
    compile_seconds: float
    sample_seconds: float
    sampler: str = ""


class Sampler:
    """A NUTS backend."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()

    def available(self) -> str:
        """Empty if the backend can run here, else what to install."""
        import importlib.util

        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            return (
                f"the {self.name} sampler needs {missing}, core dependencies of mixedbayes: "
                "reinstall it (pip install -c constraints.txt -e .)"
            )
        return ""

    def sample(
        self,
        model: pm.Model,
        *,
        draws: int,
        tune: int,
        chains: int,
        seed: int,
        target_accept: float,
        progressbar: bool,
        start: Start | None = None,
    ) -> SampleResult:
        """Draw from the posterior of ``model``; the chains start as ``start`` says
        (:mod:`mixedbayes.inference.init`), or by the backend's default when it is None."""
        raise NotImplementedError


SAMPLERS: dict[str, Sampler] = {}


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    """Class decorator adding a sampler to the registry under ``cls.name``."""
    SAMPLERS[cls.name] = cls()
    return cls


def sampler_names() -> tuple[str, ...]:
    """The names of the samplers registered now, including any registered after import."""
    return tuple(SAMPLERS)


def get_sampler(name: str) -> Sampler:
    """The registered sampler ``name``; ``SpecError`` naming the known ones otherwise."""
    from mixedbayes.errors import SpecError

    if name not in SAMPLERS:
        raise SpecError(
            f"unknown sampler {name!r}.",
            where="sampler.name",
            hint=f"use one of {sampler_names()}.",
        )
    sampler = SAMPLERS[name]
    missing = sampler.available()
    if missing:
        raise SpecError(missing, where="sampler.name", hint="or choose sampler 'nutpie'.")
    return sampler


def log_likelihood(
    idata: xr.DataTree,
    model: pm.Model,
    pointwise: np.ndarray | None = None,
    extra: dict[str, tuple[tuple[str, ...], np.ndarray]] | None = None,
) -> xr.DataTree:
    """Add the pointwise ``log_likelihood`` group of ``model``'s observed variable(s).

    ``pointwise`` (chain, draw, rows), when the kind computed it with NumPy, is stored as the
    log-likelihood of the model's one observed variable (or, beside others such as an
    imputation submodel's, of the one over the ``observation`` rows). Otherwise the model's
    own pointwise log-density is evaluated at every draw, compiled by JAX when it is installed (its
    persistent cache serves later sessions), else by PyTensor's default backend. ``extra``
    adds log-likelihood terms that are not observed variables, by name: (dims, values). PyMC's
    ``compute_log_likelihood`` maps posterior variables to value variables by name, which
    fails for ``LKJCorr`` (its untransformed value variable is renamed), so the inputs are
    matched by position here instead.
    """
    import xarray as xr

    post = idata["posterior"].to_dataset()
    dims = model.named_vars_to_dims
    observed_names = [rv.name for rv in model.observed_RVs]
    if pointwise is not None and len(observed_names) == 1:
        out = [np.asarray(pointwise)]
    else:
        out = _evaluated(model, post)
        if pointwise is not None:  # the response's rows, beside other observed variables
            out = _with_response(out, observed_names, dims, np.asarray(pointwise))
    # a multivariate observation (a sample's counts of every taxon) has one value per row
    data_vars = {
        name: (("chain", "draw", *tuple(dims.get(name, ()))[: np.ndim(arr) - 2]), arr)
        for name, arr in zip(observed_names, out, strict=True)
    }
    for name, (extra_dims, arr) in (extra or {}).items():
        data_vars[name] = (("chain", "draw", *extra_dims), arr)
    coords = {k: list(v) for k, v in model.coords.items() if v is not None}
    ds = xr.Dataset(data_vars, coords={"chain": post["chain"], "draw": post["draw"]})
    ds = ds.assign_coords({k: v for k, v in coords.items() if k in ds.dims})
    idata["log_likelihood"] = xr.DataTree(ds)
    return idata


def _with_response(
    out: list[np.ndarray],
    names: list[str],
    dims: dict[str, tuple[str, ...]],
    pointwise: np.ndarray,
) -> list[np.ndarray]:
    """``out`` with the kind's ``pointwise`` in place of the response's evaluated log-density:
    the one observed variable over the rows dim (``observation``) of the same shape. The
    kind's values carry what the graph's observed variable does not (rows whose discrete
    covariate is summed out: their marginal log-likelihood)."""
    from mixedbayes.naming import OBS_DIM

    hits = [
        i
        for i, name in enumerate(names)
        if tuple(dims.get(name, ()))[:1] == (OBS_DIM,) and out[i].shape == pointwise.shape
    ]
    if len(hits) != 1:
        return out
    return [pointwise if i == hits[0] else arr for i, arr in enumerate(out)]


def _evaluated(model: pm.Model, post: xr.Dataset) -> list[np.ndarray]:
    import importlib.util

    from pymc.model.transform.conditioning import remove_value_transforms
    from pymc.model.transform.optimization import freeze_dims_and_data

    # dims frozen: JAX needs the static shapes of arrays reshaped by a dim's length
    umodel = freeze_dims_and_data(remove_value_transforms(model), data=[])
    observed = list(umodel.observed_RVs)
    mode = None
    if importlib.util.find_spec("jax") is not None:
        from mixedbayes.inference.artifacts import configure_jax_cache

        configure_jax_cache()
        mode = "JAX"
    fn = umodel.compile_fn(
        inputs=umodel.value_vars,
        outs=umodel.logp(vars=observed, sum=False),
        on_unused_input="ignore",
        mode=mode,
    )
    names = [rv.name for rv in umodel.free_RVs]
    values = [post[name].to_numpy() for name in names]
    value_names = [umodel.rvs_to_values[rv].name for rv in umodel.free_RVs]
    dtypes = [umodel.rvs_to_values[rv].type.dtype for rv in umodel.free_RVs]
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    out: list[np.ndarray] = []
    for c in range(n_chain):
        for d in range(n_draw):
            point = {
                vn: v[c, d].astype(dt, copy=False)
                for vn, v, dt in zip(value_names, values, dtypes, strict=True)
            }
            res = fn(point)
            if not out:
                out = [np.empty((n_chain, n_draw, *np.shape(r))) for r in res]
            for o, r in zip(out, res, strict=True):
                o[c, d] = r
    return out


def _with_model_coords(idata: xr.DataTree, model: pm.Model) -> xr.DataTree:
    """The posterior with ``model``'s coordinates (a reused compiled model carries those of
    the data it was compiled with)."""
    post = idata["posterior"].to_dataset()
    coords = {
        k: list(v)
        for k, v in model.coords.items()
        if v is not None and k in post.dims and post.sizes[k] == len(v)
    }
    if coords:
        import xarray as xr

        idata["posterior"] = xr.DataTree(post.assign_coords(coords))
    return idata


@register_sampler
class Nutpie(Sampler):
    """nutpie (Rust NUTS, numba-compiled log-density): the default."""

    name = "nutpie"
    requires = ("nutpie",)

    def sample(
        self,
        model: pm.Model,
        *,
        draws: int,
        tune: int,
        chains: int,
        seed: int,
        target_accept: float,
        progressbar: bool,
        start: Start | None = None,
    ) -> SampleResult:
        import nutpie
        from pymc.backends.arviz import patch_nutpie_idata
        from pymc.progress_bar.progress import NutpieProgressBarManager

        t0 = time.perf_counter()
        key, data = structure_key(model)
        cached = COMPILE_CACHE.get(key)
        if cached is None:
            packed, packing = pack_data(model, data)
            compiled = nutpie.compile_pymc_model(packed, backend="numba")
            COMPILE_CACHE.put(key, (compiled, packing))
        else:
            compiled, packing = cached
            names = {var.name for var in compiled.shared_var_keys}
            compiled = compiled.with_data(
                **{k: v for k, v in packing.pack(data).items() if k in names}
            )
        if start is not None:
            x, mask = start_vector(model, start, lambda: _nutpie_logp(compiled))
            compiled = dataclasses.replace(
                compiled, initial_point_func=chain_starts(x, mask, start.jitter)
            )
        t1 = time.perf_counter()
        bars = NutpieProgressBarManager(chains=chains, draws=draws, progressbar=progressbar)
        with bars:
            idata = nutpie.sample(
                compiled,
                draws=draws,
                tune=max(tune, 1),
                chains=chains,
                cores=chains,
                seed=seed,
                save_warmup=False,
                progress_bar=False,
                progress_callback=bars.update,
                target_accept=target_accept,
            )
        t2 = time.perf_counter()
        patch_nutpie_idata(idata, model, sampling_time=t2 - t1)
        return SampleResult(_with_model_coords(idata, model), t1 - t0, t2 - t1)


def _nutpie_logp(compiled: Any) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """The log-density and gradient nutpie compiled (with its current data), callable on a
    flat vector: a point fit costs no second compilation."""
    import ctypes

    cfunc = compiled.compiled_logp_func.ctypes
    n = int(compiled.n_dim)
    pointer = ctypes.POINTER(ctypes.c_double)

    def value(x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float64)
        grad = np.zeros(n)
        logp = np.zeros(1)
        code = cfunc(
            n,
            x.ctypes.data_as(pointer),
            grad.ctypes.data_as(pointer),
            logp.ctypes.data_as(pointer),
            compiled.user_data.ctypes.data,
        )
        if code != 0:
            return -np.inf, grad
        return float(logp[0]), grad

    return value


class _PyMCSampled(Sampler):
    """A backend driven through ``pm.sample(nuts_sampler=...)``."""

    nuts_sampler: ClassVar[str]

    def sample(
        self,
        model: pm.Model,
        *,
        draws: int,
        tune: int,
        chains: int,
        seed: int,
        target_accept: float,
        progressbar: bool,
        start: Start | None = None,
    ) -> SampleResult:
        import pymc as pm

        extra: dict[str, Any] = {}
        if self.nuts_sampler == "pymc":
            extra = {"target_accept": target_accept, "cores": min(chains, usable_cpus())}
        else:
            extra = {"nuts_sampler_kwargs": {"target_accept": target_accept}}
        t0 = time.perf_counter()
        if start is not None:
            extra["initvals"] = _initvals(model, start, chains, seed)
            if self.nuts_sampler == "pymc":
                extra["init"] = "adapt_diag"  # no further jitter
            else:
                extra["nuts_sampler_kwargs"]["jitter"] = False
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            nuts_sampler=self.nuts_sampler,  # type: ignore[arg-type]
            progressbar=progressbar,
            model=model,
            compute_convergence_checks=False,
            quiet=True,
            **extra,
        )
        t1 = time.perf_counter()
        return SampleResult(idata, 0.0, t1 - t0)  # type: ignore[arg-type]


def _initvals(model: pm.Model, start: Start, chains: int, seed: int) -> list[dict[str, Any]]:
    """One start per chain on the variables' own scales (``pm.sample(initvals=...)``)."""
    x, mask = start_vector(model, start)
    draw = chain_starts(x, mask, start.jitter)
    seeds = np.random.SeedSequence(seed).spawn(chains)
    return constrained(model, [draw(s) for s in seeds])


@register_sampler
class PyMCNuts(_PyMCSampled):
    """PyMC's own NUTS (C-compiled log-density, multiprocess chains)."""

    name = "pymc"
    nuts_sampler = "pymc"


@register_sampler
class NumPyro(Sampler):
    """NumPyro's NUTS on JAX (CPU or GPU), every chain in one compiled program per model
    structure, persisted across sessions (:mod:`mixedbayes.inference.jax_nuts`)."""

    name = "numpyro"
    requires = ("numpyro", "jax")

    def sample(
        self,
        model: pm.Model,
        *,
        draws: int,
        tune: int,
        chains: int,
        seed: int,
        target_accept: float,
        progressbar: bool,
        start: Start | None = None,
    ) -> SampleResult:
        from mixedbayes.inference.jax_nuts import run_jax_nuts

        tree, compile_s, sample_s = run_jax_nuts(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            target_accept=target_accept,
            start=start,
        )
        return SampleResult(tree, compile_s, sample_s)


#: What the ``auto`` policy runs, best first (measured: docs/performance.md).
AUTO_ORDER = ("numpyro", "nutpie")

#: Observed values above which ``auto`` prefers nutpie: XLA's CPU gather/scatter of group
#: effects per row makes each gradient of a large unmarginalised model several times slower
#: than numba's, which then outweighs JAX's shorter compile (docs/performance.md).
AUTO_JAX_MAX_VALUES = 5_000


def observed_values(model: pm.Model) -> int:
    """How many observed values ``model``'s log-density reads row by row (0 for the
    marginalised LMM, whose likelihood is a function of per-level statistics)."""
    total = 0
    for rv in model.observed_RVs:
        value = model.rvs_to_values[rv]
        if hasattr(value, "get_value"):
            total += int(np.size(value.get_value()))
        elif hasattr(value, "data"):
            total += int(np.size(value.data))
        elif all(d is not None for d in value.type.shape):  # a symbolic value: static shape
            total += int(np.prod(value.type.shape))
        else:  # a view of packed data containers: its shape evaluates
            total += int(np.prod(value.shape.eval()))
    return total


#: Values traced per draw (free variables and deterministics) above which ``auto`` prefers
#: nutpie: the JAX program's memory grew by ~37 MB per draw for a compositional model with
#: 33,000 values per draw (11 GB at 2 × 150 draws, nutpie 1 GB at the same speed).
AUTO_JAX_MAX_TRACED = 10_000


def traced_values(model: pm.Model) -> int:
    """Values per draw of ``model``'s free variables (on the sampler's scale)."""
    return int(sum(np.size(v) for v in model.initial_point().values()))


def auto_order(model: pm.Model) -> tuple[str, ...]:
    """The backends ``auto`` tries for ``model``, best first."""
    if observed_values(model) > AUTO_JAX_MAX_VALUES or traced_values(model) > AUTO_JAX_MAX_TRACED:
        return tuple(reversed(AUTO_ORDER))
    return AUTO_ORDER


@register_sampler
class Auto(Sampler):
    """The default: NumPyro's NUTS as one compiled JAX program per model structure, cached
    on disk (fastest first fit and later sessions, measured in docs/performance.md); nutpie
    for a model that reads more than :data:`AUTO_JAX_MAX_VALUES` observed values row by row
    or samples more than :data:`AUTO_JAX_MAX_TRACED` values per draw, when JAX is not
    installed, or when the model holds an operation JAX cannot translate."""

    name = "auto"

    def sample(
        self,
        model: pm.Model,
        *,
        draws: int,
        tune: int,
        chains: int,
        seed: int,
        target_accept: float,
        progressbar: bool,
        start: Start | None = None,
    ) -> SampleResult:
        kwargs: dict[str, Any] = {
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "seed": seed,
            "target_accept": target_accept,
            "progressbar": progressbar,
            "start": start,
        }
        usable = [
            SAMPLERS[n] for n in auto_order(model) if n in SAMPLERS and not SAMPLERS[n].available()
        ]
        for i, backend in enumerate(usable):
            try:
                result = backend.sample(model, **kwargs)
            except NotImplementedError:  # an operation without a JAX translation
                if i == len(usable) - 1:
                    raise
                continue
            return dataclasses.replace(result, sampler=backend.name)
        raise RuntimeError("no sampler backend is installed: pip install nutpie")
