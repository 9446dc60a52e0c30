"""One benchmark run in a fresh process: one Python system fitting one case.

``python benchmarks/worker.py JOB.json RESULT.json``. The parent (``run.py``) writes the job
(case, variant, draws, tune, chains, cores, seed, ...) and reads the result: timings, per
parameter posterior mean / bulk ESS / R-hat under mixedbayes' names, and the peak RSS of this
process. Imports happen before the clock starts; model building and compilation are timed.

Both systems' draws go through the same ESS and R-hat functions (arviz-stats).
"""

from __future__ import annotations

import importlib
import json
import re
import resource
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import CASES, Case, Variant

Result = dict[str, Any]

#: Classes whose minimum bulk ESS is reported (``cor`` is shown but not in the minimum).
MIN_ESS_CLASSES = ("b", "sd", "sigma")


def _rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _posterior_dataset(idata: Any) -> Any:
    post = idata["posterior"]
    return post.to_dataset() if hasattr(post, "to_dataset") else post


def _stats(draws: np.ndarray) -> dict[str, float]:
    """Mean, bulk ESS and rank-normalised R-hat of (chain, draw) draws."""
    stats: Any = importlib.import_module("arviz_stats.base").array_stats  # untyped
    arr = np.asarray(draws, dtype=float)
    return {
        "mean": float(arr.mean()),
        "ess_bulk": float(stats.ess(arr, chain_axis=0, draw_axis=1, method="bulk")),
        "rhat": float(stats.rhat(arr, chain_axis=0, draw_axis=1)),
    }


def _cells(da: Any) -> list[tuple[str, np.ndarray]]:
    """(label, (chain, draw) array) of every scalar of a posterior variable."""
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    arr = da.transpose("chain", "draw", *dims).to_numpy()
    if not dims:
        return [("", arr)]
    coords = [[str(v) for v in da[d].to_numpy()] for d in dims]
    out = []
    for idx in np.ndindex(*arr.shape[2:]):
        label = ",".join(coords[k][i] for k, i in enumerate(idx))
        out.append((label, arr[(slice(None), slice(None), *idx)]))
    return out


def _class_of(name: str) -> str:
    """``b``, ``sd``, ``cor`` or ``sigma`` (the part before the first ``_`` or ``[``)."""
    return name.split("[", 1)[0].split("_", 1)[0]


def _preload(*modules: str) -> None:
    """Import ``modules`` now, so that the timed part does not pay for importing them."""
    for module in modules:
        importlib.import_module(module)


def _mixedbayes_params(post: Any) -> dict[str, np.ndarray]:
    """Hyperparameters of a mixedbayes posterior under its summary names."""
    out: dict[str, np.ndarray] = {}
    for name in post.data_vars:
        name = str(name)
        is_hyper = (
            name == "b"
            or name.startswith("sd_")
            or (name.startswith("cor_") and not name.startswith("cor_chol"))
            or name == "sigma"
        )
        if not is_hyper:
            continue
        cells = _cells(post[name])
        if name.startswith("cor_"):
            dims = [d for d in post[name].dims if d not in ("chain", "draw")]
            n = post[name].sizes[dims[0]]
            keep = []
            for k, (label, arr) in enumerate(cells):
                i, j = divmod(k, n)
                if i < j and float(np.ptp(arr)) > 0:  # upper triangle, correlated blocks only
                    keep.append((label, arr))
            cells = keep
        for label, arr in cells:
            out[f"{name}[{label}]" if label else name] = arr
    return out


_BAMBI_SD = re.compile(r"^(?P<term>.+)\|(?P<group>.+)_sigma$")


def _bambi_params(post: Any, family: str) -> dict[str, np.ndarray]:
    """bambi's hyperparameters renamed to mixedbayes' names.

    ``Intercept``, ``Days``, ``Trt[1]`` → ``b[...]``; ``1|Subject_sigma`` →
    ``sd_Subject[Intercept]``, ``Days|Subject_sigma`` → ``sd_Subject[Days]``; ``sigma``.
    Group-level effects (``1|Subject``) and offsets are left out.
    """
    out: dict[str, np.ndarray] = {}
    family_params = {"sigma"} if family == "gaussian" else set()
    for name in post.data_vars:
        name = str(name)
        match = _BAMBI_SD.match(name)
        if match:
            term = "Intercept" if match["term"] == "1" else match["term"]
            out[f"sd_{match['group']}[{term}]"] = _cells(post[name])[0][1]
        elif name in family_params:
            out[name] = _cells(post[name])[0][1]
        elif "|" in name or name.endswith("_offset"):
            continue
        else:
            for label, arr in _cells(post[name]):
                out[f"b[{name}[{label}]]" if label else f"b[{name}]"] = arr
    return out


def _summarise(params: dict[str, np.ndarray]) -> Result:
    table = {name: _stats(arr) for name, arr in params.items()}
    in_min = {k: v for k, v in table.items() if _class_of(k) in MIN_ESS_CLASSES}
    worst = min(in_min, key=lambda k: in_min[k]["ess_bulk"]) if in_min else ""
    return {
        "params": table,
        "min_ess": in_min[worst]["ess_bulk"] if worst else float("nan"),
        "min_ess_param": worst,
        "max_rhat": max((v["rhat"] for v in in_min.values()), default=float("nan")),
    }


def _divergences(idata: Any) -> int:
    try:
        stats = idata["sample_stats"]
        return int(np.asarray(stats["diverging"]).sum())
    except (KeyError, TypeError):
        return -1


# --------------------------------------------------------------------------- systems


def run_mixedbayes(case: Case, variant: Variant, job: dict[str, Any]) -> Result:
    """``mb.fit`` with the variant's options (e.g. ``marginalize=False``)."""
    _preload(
        "pymc", "nutpie", "numba", "arviz_stats", "mixedbayes.diagnostics", "mixedbayes.inference"
    )
    import mixedbayes as mb

    data = case.make_data()
    spec: Any = (
        mb.LMM(variant.formula)
        if case.family == "gaussian"
        else mb.GLMM(variant.formula, "poisson")
    )
    rss_import = _rss_mib()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        fit = mb.fit(
            spec,
            data,
            draws=job["draws"],
            tune=job["tune"],
            chains=job["chains"],
            seed=job["seed"],
            target_accept=job["target_accept"],
            **dict(variant.options),
        )
        total = time.perf_counter() - t0
    n_warnings = sum(type(w.message).__name__ == "ConvergenceWarning" for w in caught)
    idata = fit.idata
    tm = fit.timings
    compile_s = tm["design_seconds"] + tm.get("build_seconds", 0.0) + tm["compile_seconds"]
    sample_s = tm["sample_seconds"]
    out = _summarise(_mixedbayes_params(_posterior_dataset(idata)))
    out.update(
        total_s=total,
        compile_s=compile_s,
        sample_s=sample_s,
        post_s=total - compile_s - sample_s,
        divergences=_divergences(idata),
        convergence_warnings=n_warnings,
        rss_import_mib=rss_import,
        marginalization=idata["posterior"].attrs.get("marginalization", ""),
        log_likelihood="log_likelihood" in idata.children,
    )
    return out


def run_bambi(case: Case, variant: Variant, job: dict[str, Any]) -> Result:
    """``bambi.Model(formula, data, family=...).fit(inference_method=...)``: nutpie unless the
    variant's options name another (``"pymc"``, bambi's default)."""
    _preload("pymc", "nutpie", "numba")
    import bambi

    data = case.make_data()
    rss_import = _rss_mib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model = bambi.Model(variant.formula, data, family=case.family)
        idata = model.fit(
            draws=job["draws"],
            tune=job["tune"],
            chains=job["chains"],
            cores=job["cores"],
            random_seed=job["seed"],
            inference_method=dict(variant.options).get("inference_method", "nutpie"),
            nuts={"target_accept": job["target_accept"]},
            progressbar=False,
        )
        total = time.perf_counter() - t0
    post = _posterior_dataset(idata)
    sample_s = float(post.attrs.get("sampling_time", float("nan")))
    out = _summarise(_bambi_params(post, case.family))
    out.update(
        total_s=total,
        compile_s=total - sample_s,  # model build + nutpie compile (+ result clean-up)
        sample_s=sample_s,
        post_s=None,  # bambi computes no log-likelihood or diagnostics after sampling
        divergences=_divergences(idata),
        convergence_warnings=0,
        rss_import_mib=rss_import,
    )
    return out


SYSTEMS = {"mixedbayes": run_mixedbayes, "bambi": run_bambi}


def main(argv: list[str]) -> int:
    """Run the job in ``argv[1]``, write the result to ``argv[2]``."""
    job = json.loads(Path(argv[1]).read_text())
    case = CASES[job["case"]]
    variant = case.variant(job["variant"])
    try:
        result = SYSTEMS[variant.system](case, variant, job)
        result["status"] = "ok"
    except Exception as exc:  # reported in the table, not raised
        result = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
            "traceback": traceback.format_exc()[-4000:],
        }
    result["peak_rss_mib"] = _rss_mib()
    Path(argv[2]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
