"""Simulation-based calibration of the model kinds (``make validate``).

    python benchmarks/validate.py [--n 200] [--cases lmm,glmm,pk] [--backend dask]
                                  [--workers 2] [--address tcp://...] [--quick]

For each case: ``mb.sbc`` with ``--n`` replicates (parameters and data drawn from the prior
on a fixed template design, model refitted with NUTS, ranks of the true values among the
posterior draws), run through ``mixedbayes.batch`` on Dask (a ``LocalCluster`` unless
``--address`` names a running scheduler) or local processes. Every finished replicate is
written under ``--runs`` at once, so an interrupted run resumes where it stopped (run the
same command again). Writes ``--out`` (``benchmarks/results/sbc.md``): machine and versions,
per case the model, the template, the settings, the per-parameter chi-square and ECDF
p-values, the refit diagnostics and the time; and rank-histogram / ECDF-difference plots
next to it. Not part of the test suite (``tests/test_sbc.py`` runs a small SBC).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACKAGES = ("mixedbayes", "pymc", "pytensor", "nutpie", "numba", "arviz", "dask", "distributed")


@dataclass(frozen=True)
class Case:
    """One SBC run: a spec with fixed priors on a template design."""

    name: str
    title: str
    spec: dict[str, Any]
    template: Callable[[], Any]
    template_text: str
    draws: int = 300  # per chain; ranks count among 99 draws thinned evenly from all
    tune: int = 300
    chains: int = 2
    target_accept: float | None = None


def _lmm_template() -> pd.DataFrame:
    rng = np.random.default_rng(2018)
    n_id, n_t = 20, 5
    df = pd.DataFrame(
        {
            "id": np.repeat([f"p{i:02d}" for i in range(n_id)], n_t),
            "time": np.tile(np.arange(n_t), n_id),
        }
    )
    df["y"] = rng.normal(size=len(df))  # replaced in every replicate
    return df


def _glmm_template() -> pd.DataFrame:
    rng = np.random.default_rng(2019)
    n_g, n_per = 20, 5
    df = pd.DataFrame({"id": np.repeat([f"g{i:02d}" for i in range(n_g)], n_per)})
    df["x"] = rng.normal(size=len(df))
    df["count"] = rng.poisson(3, size=len(df))  # replaced in every replicate
    return df


def _pk_template() -> pd.DataFrame:
    import mixedbayes as mb

    return mb.datasets.load("theoph")


def _joint_template() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(2020)
    n_id, visits, follow_up = 40, 6, 6.0
    ids = [f"p{i:02d}" for i in range(n_id)]
    trt = rng.permutation(np.repeat([0, 1], n_id // 2))
    long = pd.DataFrame(
        {
            "id": np.repeat(ids, visits),
            "time": np.tile(np.arange(visits, dtype=float), n_id),
            "trt": np.repeat(trt, visits),
        }
    )
    long["y"] = rng.normal(size=len(long))  # replaced in every replicate
    surv = pd.DataFrame({"id": ids, "stop": follow_up, "event": 0, "trt": trt})
    return {"longitudinal": long, "survival": surv}


def _compositional_template() -> dict[str, pd.DataFrame]:
    import mixedbayes as mb

    sim = mb.simulate.compositional(
        n_subjects=12, n_times=2, n_taxa=5, min_reads=500, max_reads=3000, seed=2021
    )
    return sim.data  # the counts are replaced in every replicate


def _compositional_case(
    name: str, title: str, priors: list[dict[str, str]] | None = None, **options: str
) -> Case:
    """A compositional case: ``~ group + (1 | subject)`` on :func:`_compositional_template`
    with fixed priors for the intercepts, subject SD and residual SDs (and ``priors``), the
    spec's ``options`` (``pooling``, ``group_sd``), 2 × 500 draws at target_accept 0.9."""
    return Case(
        name,
        title,
        {
            "kind": "compositional",
            "formula": "~ group + (1 | subject)",
            "parametrization": "noncentered",
            **options,
            "priors": [
                {"class": "Intercept", "prior": "normal(0, 1)"},
                *(priors or []),
                {"class": "sd", "group": "subject", "prior": "normal(0, 0.5)"},
                {"class": "sigma", "prior": "normal(0, 0.5)"},
            ],
        },
        _compositional_template,
        "simulated (mb.simulate.compositional): 12 subjects (two arms) × 2 samples, 5 taxa, "
        "library sizes 500–3,000",
        draws=500,
        tune=500,
        target_accept=0.9,
    )


CASES: dict[str, Case] = {
    "lmm": Case(
        "lmm",
        "Gaussian LMM, correlated random intercept and slope",
        {
            "kind": "lmm",
            "formula": "y ~ time + (time | id)",
            "priors": [
                {"class": "Intercept", "prior": "normal(0, 2)"},
                {"class": "b", "prior": "normal(0, 1)"},
                {"class": "sd", "prior": "normal(0, 1)"},
                {"class": "cor", "prior": "lkj(2)"},
                {"class": "sigma", "prior": "normal(0, 1)"},
            ],
        },
        _lmm_template,
        "simulated: 20 subjects × 5 times (time 0..4), 100 rows",
        draws=1000,
        tune=500,
    ),
    "glmm": Case(
        "glmm",
        "Poisson GLMM (log link), random intercept",
        {
            "kind": "glmm",
            "family": "poisson",
            "formula": "count ~ x + (1 | id)",
            "priors": [
                {"class": "Intercept", "prior": "normal(1, 0.5)"},
                {"class": "b", "prior": "normal(0, 0.5)"},
                {"class": "sd", "prior": "normal(0, 0.5)"},
            ],
        },
        _glmm_template,
        "simulated: 20 groups × 5 rows, x ~ N(0, 1), 100 rows",
        draws=1000,
        tune=500,
    ),
    "pk": Case(
        "pk",
        "One-compartment PK model (first-order absorption), random KA and CL",
        {
            "kind": "nonlinear",
            "model": "oral_1cmt_ke",
            "parameters": {
                "log_KE": "1",
                "log_KA": "1 + (1 | Subject)",
                "log_CL": "1 + (1 | Subject)",
            },
            "correlation": "diagonal",
            "response": "conc",
            "time": "Time",
            "subject": "Subject",
            "dosing": {"dose": "Dose"},
            "error": "additive",
            "priors": [
                {
                    "class": "b",
                    "coef": "Intercept",
                    "nlpar": "log_KE",
                    "prior": "normal(-2.5, 0.3)",
                },
                {"class": "b", "coef": "Intercept", "nlpar": "log_KA", "prior": "normal(0.5, 0.3)"},
                {"class": "b", "coef": "Intercept", "nlpar": "log_CL", "prior": "normal(-3, 0.3)"},
                {"class": "sd", "group": "Subject", "prior": "normal(0, 0.4)"},
                {"class": "sigma", "prior": "normal(0, 0.7)"},
            ],
        },
        _pk_template,
        "Theoph (R datasets): 12 subjects, 132 concentrations, their doses and sampling times",
        draws=500,
        tune=1000,
        target_accept=0.9,
    ),
    "joint": Case(
        "joint",
        "Joint model: Gaussian LMM (random intercept and slope) and a Weibull hazard reading "
        "its current value",
        {
            "kind": "joint",
            "subject": "id",
            "time": "time",
            "longitudinal": {"y": "y ~ time + (time | id)"},
            "survival": {"formula": "Surv(stop, event) ~ trt", "baseline": "weibull"},
            "association": {"y": ["value"]},
            "priors": [
                {"class": "Intercept", "nlpar": "y", "prior": "normal(1, 0.5)"},
                {"class": "b", "nlpar": "y", "prior": "normal(0.2, 0.2)"},
                {"class": "sd", "group": "id", "prior": "normal(0, 0.5)"},
                {"class": "cor", "group": "id", "prior": "lkj(2)"},
                {"class": "sigma", "nlpar": "y", "prior": "normal(0, 1)"},
                {"class": "b", "nlpar": "event", "prior": "normal(0, 0.5)"},
                {"class": "alpha", "prior": "normal(0.5, 0.5)"},
                {"class": "log_h0", "nlpar": "event", "prior": "normal(-2.5, 0.5)"},
                {"class": "shape", "nlpar": "event", "prior": "gamma(20, 20)"},
            ],
        },
        _joint_template,
        "simulated: 40 subjects (half treated), visits at 0..5, follow-up to 6 (event times "
        "drawn from the hazard, censored at 6; visits after an event kept)",
        draws=500,
        tune=500,
        target_accept=0.9,
    ),
    "compositional": _compositional_case(
        "compositional",
        "Compositional: multinomial logistic-normal counts of 5 taxa, a group effect pooled "
        "across taxa, subject random intercepts per taxon",
        [{"class": "sd_b", "prior": "normal(0, 0.7)"}],
        pooling="taxa",
    ),
    "compositional_horseshoe": _compositional_case(
        "compositional_horseshoe",
        "Compositional, `pooling: horseshoe`: as `compositional`, the group effect's taxon "
        "effects under the regularised horseshoe with its default priors (global scale "
        "half-Student-t(3, 0, τ0), slab InvGamma(2, 2/sd(x)²))",
        pooling="horseshoe",
    ),
    "compositional_group_sd": _compositional_case(
        "compositional_group_sd",
        "Compositional, `group_sd: taxon`: as `compositional_horseshoe`, with a subject SD "
        "per taxon, log-normal around the pooled one (spread `tau_sd_subject`, "
        "half-Normal(0, 0.5))",
        pooling="horseshoe",
        group_sd="taxon",
    ),
}


def _versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _log_path(case: Case, args: argparse.Namespace) -> Path:
    return Path(args.runs) / case.name / "invocations.json"


def _invocations(case: Case, args: argparse.Namespace) -> list[dict[str, Any]]:
    path = _log_path(case, args)
    return list(json.loads(path.read_text())) if path.exists() else []


def run_case(case: Case, args: argparse.Namespace) -> tuple[Any, float]:
    import mixedbayes as mb

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mb.sbc(
            case.spec,
            case.template(),
            n=args.n,
            draws=case.draws,
            tune=case.tune,
            chains=case.chains,
            target_accept=case.target_accept,
            max_rank=99,
            seed=args.seed,
            backend=args.backend,
            workers=args.workers,
            address=args.address,
            out_dir=Path(args.runs) / case.name,
            retries=args.retries,
        )
    seconds = time.perf_counter() - t0
    ran = len(res.replicates) - (len(res.batch.reused) if res.batch is not None else 0)
    log = _invocations(case, args)
    log.append(
        {
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "n": args.n,
            "replicates_run": ran,
            "seconds": round(seconds, 1),
        }
    )
    _log_path(case, args).write_text(json.dumps(log, indent=1))
    return res, seconds


def write_report(results: dict[str, tuple[Any, float]], args: argparse.Namespace) -> str:
    import yaml

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Simulation-based calibration",
        "",
        "Talts et al. (2018): for each replicate, parameters and a data set are drawn from the "
        "prior predictive distribution on a fixed template design, the model is refitted with "
        "NUTS (the default sampler), and the rank of each true value among L = 99 posterior "
        "draws (thinned evenly from chains × draws) is recorded. Under a correct "
        "implementation the ranks are uniform on 0..99. Tests per parameter: Pearson "
        "chi-square on 20 bins and the simultaneous ECDF test (Säilynoja et al. 2022); "
        "p-values are not corrected for the number of parameters (the Bonferroni-corrected "
        "minimum is given per case).",
        "",
        f"Generated by `python benchmarks/validate.py --n {args.n} --cases {args.cases} "
        f"--backend {args.backend} --workers {args.workers}` on {now}.",
        "",
        f"- Machine: {platform.platform()}; {_cpu()}; {_cpus()} CPUs available",
        f"- Python {platform.python_version()}; {_versions()}",
        f"- Backend: {args.backend}"
        + (f" at {args.address}" if args.address else f" with {args.workers} local workers")
        + f"; seed {args.seed}; a failed refit is retried {args.retries} time(s)",
        "",
    ]
    for name, (res, _seconds) in results.items():
        case = CASES[name]
        ok = res.replicates[res.replicates["status"] == "ok"]
        worker_min = float(ok["seconds"].sum()) / 60 if len(ok) else 0.0
        runs = [r for r in _invocations(case, args) if r["replicates_run"] > 0]
        wall = sum(r["seconds"] for r in runs) / 60
        timing = (
            f"Wall-clock: {wall:.1f} min (the invocation(s) that ran replicates: "
            + ", ".join(f"{r['replicates_run']} in {r['seconds'] / 60:.1f} min" for r in runs)
            + f"); worker time of the refits {worker_min:.1f} min in all (each worker's first "
            "refit includes the numba compilation)."
        )
        lines += [
            f"## {case.title} (`{name}`)",
            "",
            f"Template: {case.template_text}. {timing}",
            "",
            "```yaml",
            yaml.safe_dump(case.spec, sort_keys=False).rstrip(),
            "```",
            "",
            res.to_markdown(),
            f"![rank histograms](sbc_{name}_ranks.png) ![ECDF difference](sbc_{name}_ecdf.png)",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="replicates per case (default 200)")
    parser.add_argument(
        "--cases", default="lmm,glmm,pk", help="comma-separated: " + ",".join(CASES)
    )
    parser.add_argument("--backend", default="dask", choices=("serial", "processes", "dask"))
    parser.add_argument("--workers", type=int, default=max(1, min(2, _cpus())))
    parser.add_argument("--address", default=None, help="scheduler of a running Dask cluster")
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--seed", type=int, default=20180501)
    parser.add_argument("--runs", default=str(ROOT / "out" / "sbc"), help="per-replicate files")
    parser.add_argument("--out", default=str(HERE / "results" / "sbc.md"))
    parser.add_argument("--quick", action="store_true", help="20 replicates, a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.n = 20
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {list(CASES)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, tuple[Any, float]] = {}
    for name in names:
        print(f"[validate] {name}: {args.n} replicates ...", flush=True)
        res, seconds = run_case(CASES[name], args)
        results[name] = (res, seconds)
        print(f"[validate] {name}: {res!r} in {seconds:.0f} s", flush=True)
        print(res.test().to_string(index=False), flush=True)
        for kind, fig in (("ranks", res.plot_ranks()), ("ecdf", res.plot_ecdf_diff())):
            fig.savefig(out.parent / f"sbc_{name}_{kind}.png", dpi=80)
            plt.close(fig)
        out.write_text(write_report(results, args))  # the report grows case by case
    print(f"[validate] wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
