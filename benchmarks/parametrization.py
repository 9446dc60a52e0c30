"""Does the ``auto`` centred/non-centred choice beat both fixed choices?

``python benchmarks/parametrization.py [--draws 1000] [--chains 4] [--out DIR]`` fits each
scenario three times (``parametrization=centered``, ``noncentered``, ``auto``), with the
plain model (``marginalize=False``: a marginalised LMM has no group effects to
parametrise), and writes ``parametrization.md``: min bulk ESS over the hyperparameters per
second of sampling, divergences, and what ``auto`` chose per factor and why.

Scenarios (simulated, known parameters):

- ``rich``: 30 subjects × 40 visits, small residual noise: the data pin down every subject's
  effect (centred geometry is best);
- ``poor``: 150 subjects × 3 visits, large noise: the prior dominates (non-centred is best);
- ``mixed``: a data-rich factor crossed with a data-poor one in the same model (20 sites ×
  60 rows, 300 raters × 4 rows): only a per-factor choice is right for both;
- ``poisson``: a Poisson GLMM with data-poor subjects (200 × 3 counts) and data-rich
  clinics (10 clinics with 60 rows each).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import machine_info  # noqa: E402


def _rich() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(30), 40)
    t = np.tile(np.arange(40), 30) / 10
    u0, u1 = rng.normal(0, 1.0, 30), rng.normal(0, 0.5, 30)
    y = 5 + 0.5 * t + u0[g] + u1[g] * t + rng.normal(0, 0.3, g.size)
    return pd.DataFrame({"y": y, "t": t, "subject": [f"s{i}" for i in g]})


def _poor() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(150), 3)
    t = np.tile(np.arange(3), 150).astype(float)
    u0 = rng.normal(0, 0.3, 150)
    y = 5 + 0.5 * t + u0[g] + rng.normal(0, 2.0, g.size)
    return pd.DataFrame({"y": y, "t": t, "subject": [f"s{i}" for i in g]})


def _mixed() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 1200
    site = np.repeat(np.arange(20), 60)
    rater = rng.permutation(np.repeat(np.arange(300), 4))
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(0, 1.5, 20)[site] + rng.normal(0, 0.2, 300)[rater]
    y = y + rng.normal(0, 1.0, n)
    return pd.DataFrame(
        {"y": y, "x": x, "site": [f"a{i}" for i in site], "rater": [f"r{i}" for i in rater]}
    )


def _poisson() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    subject = np.repeat(np.arange(200), 3)
    clinic = subject % 10
    x = rng.normal(size=subject.size)
    eta = 0.3 + 0.2 * x + rng.normal(0, 0.8, 10)[clinic] + rng.normal(0, 0.2, 200)[subject]
    return pd.DataFrame(
        {
            "count": rng.poisson(np.exp(eta)),
            "x": x,
            "clinic": [f"c{i}" for i in clinic],
            "subject": [f"s{i}" for i in subject],
        }
    )


SCENARIOS: dict[str, tuple[str, str, Callable[[], pd.DataFrame]]] = {
    "rich": ("gaussian", "y ~ t + (t | subject)", _rich),
    "poor": ("gaussian", "y ~ t + (1 | subject)", _poor),
    "mixed": ("gaussian", "y ~ x + (1 | site) + (1 | rater)", _mixed),
    "poisson": ("poisson", "count ~ x + (1 | clinic) + (1 | subject)", _poisson),
}


def fit_one(scenario: str, param: str, draws: int, chains: int, seed: int) -> dict[str, object]:
    """One fit; the numbers of its row."""
    import mixedbayes as mb

    family, formula, make = SCENARIOS[scenario]
    data = make()
    spec = (
        mb.LMM(formula, parametrization=param)
        if family == "gaussian"
        else mb.GLMM(formula, family, parametrization=param)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        fit = mb.fit(
            spec, data, draws=draws, tune=draws, chains=chains, seed=seed, marginalize=False
        )
        total = time.perf_counter() - t0
    table = fit.summary()
    hyper = table[table["class"].isin(["b", "sd", "sigma"])]
    worst = hyper.loc[hyper["ess_bulk"].idxmin()]
    diverging = int(np.asarray(fit.idata["sample_stats"]["diverging"]).sum())
    chosen = "; ".join(
        f"{g.name}: {', '.join(b.parametrization for b in g.blocks)}" for g in fit.design.groups
    )
    sample_s = fit.timings["sample_seconds"]
    return {
        "scenario": scenario,
        "parametrization": param,
        "chosen": chosen,
        "min_ess": float(worst["ess_bulk"]),
        "at": str(worst["parameter"]),
        "sample_s": sample_s,
        "total_s": total,
        "ess_per_s": float(worst["ess_bulk"]) / sample_s,
        "divergences": diverging,
        "reasons": " | ".join(b.reason for g in fit.design.groups for b in g.blocks),
    }


def to_markdown(rows: list[dict[str, object]], settings: str) -> str:
    """The results table, the winner per scenario, and machine info."""
    df = pd.DataFrame(rows)
    lines = [
        "# auto vs fixed parametrisation",
        "",
        f"Settings: {settings}; plain model (`marginalize=False`); min bulk ESS over `b`, "
        "`sd_*` and `sigma`; ESS/s per second of sampling (compile excluded: the three "
        "variants compile alike).",
        "",
        "| scenario | parametrization | chosen per factor | min ESS (at) | sampling s | "
        "min-ESS/s | divergences |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['parametrization']} | {r['chosen']} | "
            f"{float(r['min_ess']):.0f} ({r['at']}) | {float(r['sample_s']):.1f} | "
            f"{float(r['ess_per_s']):.0f} | {r['divergences']} |"
        )
    lines += ["", "## auto relative to the fixed choices", ""]
    lines += ["| scenario | auto ÷ centered | auto ÷ noncentered |", "| --- | --- | --- |"]
    for scenario, sub in df.groupby("scenario", sort=False):
        by = sub.set_index("parametrization")["ess_per_s"]
        lines.append(
            f"| {scenario} | {by['auto'] / by['centered']:.2f} | "
            f"{by['auto'] / by['noncentered']:.2f} |"
        )
    lines += ["", "## why auto chose what it did", ""]
    for r in rows:
        if r["parametrization"] == "auto":
            lines.append(f"- {r['scenario']}: {r['reasons']}")
    info = machine_info()
    lines += ["", "## machine", ""] + [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run every scenario × parametrization and write the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    rows = []
    for scenario in args.scenarios.split(","):
        for param in ("centered", "noncentered", "auto"):
            row = fit_one(scenario, param, args.draws, args.chains, args.seed)
            print(
                f"{scenario:8s} {param:12s} min ESS {row['min_ess']:7.0f} "
                f"ESS/s {row['ess_per_s']:8.1f} div {row['divergences']}",
                flush=True,
            )
            rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    settings = f"{args.chains} chains × {args.draws} draws (tune {args.draws}), seed {args.seed}"
    (args.out / "parametrization.md").write_text(to_markdown(rows, settings))
    print(f"wrote {args.out / 'parametrization.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
