"""Multiple imputation through the batch layer (``make bench-mi``): M fits of one LMM run
serially and on a Dask ``LocalCluster``, and the pooled result.

    python benchmarks/multiple_imputation.py [--m 20] [--draws 500] [--tune 500]
        [--chains 2] [--workers 2] [--missing 0.2] [--seed 1]
        [--out benchmarks/results/multiple_imputation.md]

- **Data**: sleepstudy (18 subjects × 10 days), with a fraction ``--missing`` of the
  ``Reaction`` cells removed completely at random (seeded).
- **Completed sets**: a proper parametric draw per imputation (mice's ``norm`` method):
  on the observed rows, the regression ``Reaction ~ Days * Subject`` by least squares;
  per imputation σ² is drawn from its scaled inverse-χ² posterior, β from N(β̂, σ²(XᵀX)⁻¹)
  and each missing cell from N(xβ, σ²).
- **Fits**: ``Reaction ~ Days + (Days | Subject)`` on each set with :func:`mb.fit_multiple`,
  first ``backend="serial"`` (in this process), then ``backend="dask"`` (a new
  ``LocalCluster`` of ``--workers`` single-threaded workers, started inside the timed
  call), same seeds. Wall time is measured around each ``fit_multiple`` call. An untimed
  fit first puts the compiled sampler in the on-disk cache (``$MIXEDBAYES_CACHE_DIR``), so
  neither run pays a first compilation; the Dask workers each load it once.
- brms ``brm_multiple`` is recorded as skipped unless ``Rscript`` can load brms (there is no
  R script for it yet).

Writes a Markdown report. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mixedbayes as mb

HERE = Path(__file__).resolve().parent
SPEC = {"formula": "Reaction ~ Days + (Days | Subject)"}


def with_holes(data: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """``data`` with a fraction of the responses removed completely at random."""
    rng = np.random.default_rng(seed)
    out = data.copy()
    rows = rng.choice(len(out), round(fraction * len(out)), replace=False)
    out.loc[out.index[rows], "Reaction"] = np.nan
    return out


def parametric_draws(data: pd.DataFrame, m: int, seed: int) -> list[pd.DataFrame]:
    """M completed sets by Bayesian linear-regression draws (mice's ``norm``)."""
    rng = np.random.default_rng(seed)
    days = data["Days"].to_numpy(float)
    subject = pd.get_dummies(data["Subject"].astype(str), drop_first=True, dtype=float)
    x = np.column_stack([np.ones(len(data)), days, subject, subject.to_numpy() * days[:, None]])
    miss = data["Reaction"].isna().to_numpy()
    xo, yo = x[~miss], data["Reaction"].to_numpy(float)[~miss]
    beta, *_ = np.linalg.lstsq(xo, yo, rcond=None)
    dof = len(yo) - x.shape[1]
    s2 = float(np.sum((yo - xo @ beta) ** 2) / dof)
    chol = np.linalg.cholesky(np.linalg.inv(xo.T @ xo))
    out = []
    for _ in range(m):
        sigma2 = s2 * dof / rng.chisquare(dof)
        b = beta + np.sqrt(sigma2) * chol @ rng.standard_normal(x.shape[1])
        frame = data.copy()
        frame.loc[miss, "Reaction"] = x[miss] @ b + rng.normal(0, np.sqrt(sigma2), miss.sum())
        out.append(frame)
    return mb.impute(data, out)


def brms_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", "library(brms)"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


def run(args: argparse.Namespace, sets: list[pd.DataFrame], backend: str) -> mb.MultipleFit:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mi = mb.fit_multiple(
            SPEC,
            sets,
            backend=backend,
            workers=args.workers,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=args.seed,
        )
    mi.settings["measured_seconds"] = time.perf_counter() - t0
    print(f"{backend}: {mi.settings['measured_seconds']:.1f} s", flush=True)
    return mi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=20)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--missing", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "multiple_imputation.md")
    args = parser.parse_args()

    full = mb.datasets.load("sleepstudy")
    data = with_holes(full, args.missing, args.seed)
    sets = parametric_draws(data, args.m, args.seed + 1)
    with warnings.catch_warnings():  # untimed: the model's first compilation lands on disk
        warnings.simplefilter("ignore")
        mb.fit(SPEC, sets[0], draws=args.draws, tune=args.tune, chains=args.chains, seed=0)
    serial = run(args, sets, "serial")
    dask = run(args, sets, "dask")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        complete = mb.fit(
            SPEC, full, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed
        )
    ts, td = serial.settings["measured_seconds"], dask.settings["measured_seconds"]
    pooled = dask.pooled()
    reference = complete.summary().set_index("parameter")
    diag = dask.diagnostics()
    lines = [
        "# Multiple imputation: M fits through the Dask batch vs serially",
        "",
        f"`python benchmarks/multiple_imputation.py --m {args.m} --draws {args.draws} "
        f"--tune {args.tune} --chains {args.chains} --workers {args.workers}` "
        f"(`make bench-mi`), {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), shared with other "
        "jobs while it ran (the times are indicative).",
        "",
        f"Data: sleepstudy, {int(data['Reaction'].isna().sum())} of {len(data)} `Reaction` "
        "cells removed completely at random; "
        f"{args.m} completed sets by parametric draws (mice's `norm`: σ², β and the "
        "missing cells drawn from the Bayesian regression `Reaction ~ Days * Subject` on the "
        f"observed rows). Model `{SPEC['formula']}`, {args.chains} chains × {args.draws} "
        f"draws after {args.tune} tuning per fit, sampler `auto` "
        f"(`{serial.fits[0].idata['posterior'].attrs.get('sampler', '?')}`).",
        "",
        "| route | wall s | s per fit (median on the worker) | ratio to serial |",
        "|---|---:|---:|---:|",
        f"| serial (this process) | {ts:.1f} | {serial.runs['seconds'].median():.2f} | 1.00 |",
        f"| Dask LocalCluster, {dask.settings['workers']} workers | {td:.1f} | "
        f"{dask.runs['seconds'].median():.2f} | {td / ts:.2f} |",
        "| brms `brm_multiple` | skipped | — | — |",
        "",
        "An untimed fit compiled the model first, so neither route pays a first compilation; "
        "Dask's time includes starting the cluster and each worker loading the compiled "
        "sampler from the disk cache. The JAX sampler already runs a fit's chains in parallel "
        "threads, so on two cores a serial run keeps both busy; Dask gains where there are "
        "more cores than chains, or on a cluster (`backend='tcp://...'`).",
        "",
        "brms `brm_multiple`: "
        + (
            "R with brms found, but no R script for it yet."
            if brms_available()
            else "skipped: no R on this machine."
        ),
        "",
        f"## Pooled (Rubin's rules, M = {args.m}) beside the fit to the complete data",
        "",
        "| parameter | pooled | 95% interval | FMI | df | complete data (mean) |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in pooled.itertuples(index=False):
        ref = reference.loc[r.parameter, "mean"] if r.parameter in reference.index else np.nan
        lines.append(
            f"| `{r.parameter}` | {r.estimate:.2f} | [{r.lower:.2f}, {r.upper:.2f}] | "
            f"{r.fmi:.2f} | {r.df:.0f} | {ref:.2f} |"
        )
    lines += [
        "",
        f"Per-imputation convergence (Dask run): {int(diag['ok'].sum())} of {args.m} fits pass "
        f"every gate; max R-hat {diag['rhat_max'].max():.3f}, min bulk ESS "
        f"{diag['ess_bulk_min'].min():.0f}, divergences {int(diag['divergences'].sum())} in all.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
