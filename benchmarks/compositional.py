"""The compositional model at dietswap size (``make bench-compositional``): mixedbayes against
the per-taxon frequentist route a Python analyst takes, on the same taxa.

    python benchmarks/compositional.py [--out benchmarks/results/compositional.md]
        [--runs dietswap:dirichlet_multinomial,simulated:dirichlet_multinomial,...]
        [--draws 300] [--tune 300] [--chains 2] [--budget 1500]

- **mixedbayes**: ``benchmarks/dietswap.py``'s spec (``~ nationality * group + (1 |
  subject)``, taxa present in >= 10 % of the samples: 222 samples × 110 taxa), one
  posterior over all taxa. Each fit runs in a fresh process on empty compile caches (what a
  first fit costs) and is killed when it runs past its share of ``--budget`` seconds (then
  recorded as timed out), so the whole run ends within about ``--budget`` + a few minutes.
  By default: the Dirichlet-multinomial on both data sets, then the multinomial
  logistic-normal on dietswap (the slowest: a latent residual per sample and taxon).
- **per-taxon MixedLM** (statsmodels): CLR of the counts with a pseudocount of 0.5 reads,
  then one ``MixedLM`` per taxon (``clr ~ nationality * group``, a random intercept per
  subject, REML), p-values adjusted per coefficient by Benjamini-Hochberg (as MaAsLin does).
- fido and MaAsLin2 (R) are recorded as not run unless ``Rscript`` loads them (no R script
  for them yet).

``simulated``: ``mb.simulate.compositional`` at the same size (37 subjects × 6 times × 110
taxa, a fifth of the taxa changing with diet over time), so both routes are also compared
with the truth. Writes a Markdown report (speed, agreement, truth). Not part of the test
suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dietswap import available, dietswap_spec, load_dietswap  # noqa: E402

#: The level of the calls: lfsr (mixedbayes) and BH-adjusted p (MixedLM).
LEVEL = 0.05
#: Reads added to every count before the CLR of the per-taxon route.
PSEUDOCOUNT = 0.5
#: R packages a microbiome analyst would run instead, probed with ``Rscript``.
R_PEERS = {"fido (pibble)": "fido", "MaAsLin2": "Maaslin2"}
#: The simulated data set: dietswap's size, its truth known.
SIMULATED = {
    "n_subjects": 37,
    "n_times": 6,
    "n_taxa": 110,
    "share_changed": 0.2,
    "effect": 0.3,
    "seed": 2015,
}


# --------------------------------------------------------------------------- data sets


def dataset(name: str, variant: str, draws: int, tune: int, chains: int) -> dict[str, Any]:
    """Data, mixedbayes spec, per-taxon formula and level order, and truth (or None).

    ``variant`` is a likelihood, optionally with the taxon pooling after a slash
    (``multinomial/horseshoe``; default ``taxa``)."""
    likelihood, _, pooling = variant.partition("/")
    pooling = pooling or "taxa"
    if name == "dietswap":
        spec = {**dietswap_spec(likelihood, draws=draws, tune=tune, chains=chains)}
        spec["pooling"] = pooling
        return {
            "data": load_dietswap(),
            "spec": spec,
            "formula": "clr ~ nationality * group",
            "levels": {"group": ["HE", "DI", "ED"], "nationality": ["AAM", "AFR"]},
            "truth": None,
        }
    import mixedbayes as mb

    sim = mb.simulate.compositional(**SIMULATED)  # type: ignore[arg-type]
    spec = {
        **sim.spec,
        "name": "simulated",
        "likelihood": likelihood,
        "pooling": pooling,
        "taxa": {"min_prevalence": 0.1},
        "sampler": {"draws": draws, "tune": tune, "chains": chains, "seed": 2015},
    }
    return {
        "data": sim.data,
        "spec": spec,
        "formula": "clr ~ group * time",
        "levels": {"group": ["ctl", "diet"]},
        "truth": sim.effects,
    }


def modelled_taxa(spec: dict[str, Any], data: dict[str, pd.DataFrame]) -> list[str]:
    """The taxa the mixedbayes design keeps (both routes model the same taxa)."""
    import mixedbayes as mb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return list(mb.design(spec, data).taxa)


# --------------------------------------------------------------------------- per-taxon route


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept)."""
    q = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok])]
    m = len(order)
    adj = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(adj[::-1])[::-1])
    return q


def _term(name: str) -> str:
    """A statsmodels term name in mixedbayes' spelling (``group[T.DI]`` → ``group[DI]``)."""
    return name.replace("[T.", "[")


def per_taxon_mixedlm(
    counts: pd.DataFrame,
    samples: pd.DataFrame,
    taxa: list[str],
    formula: str,
    levels: dict[str, list[str]],
    timeout: float,
) -> dict[str, Any]:
    """CLR with a pseudocount, then one MixedLM per taxon: wall time and a tidy table."""
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    t0 = time.perf_counter()
    x = counts.loc[samples.index, taxa].to_numpy(dtype=float) + PSEUDOCOUNT
    logx = np.log(x)
    clr = logx - logx.mean(axis=1, keepdims=True)
    frame = samples.copy()
    for column, order in levels.items():
        frame[column] = pd.Categorical(frame[column].astype(str), categories=order)
    rows, warned, failed = [], 0, 0
    for j, taxon in enumerate(taxa):
        if time.perf_counter() - t0 > timeout:
            return {"error": f"timed out after {timeout:.0f} s ({j} of {len(taxa)} taxa)"}
        frame["clr"] = clr[:, j]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = smf.mixedlm(formula, frame, groups=frame["subject"]).fit(reml=True)
            except (np.linalg.LinAlgError, ValueError):
                failed += 1
                continue
        warned += any(issubclass(w.category, ConvergenceWarning) for w in caught)
        for name in res.fe_params.index:
            if name == "Intercept":
                continue
            rows.append(
                {
                    "taxon": taxon,
                    "coefficient": _term(str(name)),
                    "estimate": float(res.fe_params[name]),
                    "se": float(res.bse_fe[name]),
                    "p": float(res.pvalues[name]),
                }
            )
    wall = time.perf_counter() - t0
    table = pd.DataFrame(rows)
    table["q"] = table.groupby("coefficient")["p"].transform(lambda p: _bh(p.to_numpy()))
    return {"wall": wall, "table": table, "warned": warned, "failed": failed, "taxa": len(taxa)}


# --------------------------------------------------------------------------- mixedbayes


def _population(name: str) -> bool:
    """The parameters the ESS and R-hat columns cover (not the latent per-sample values or
    the standardised effects)."""
    return name in ("b", "sigma", "phi") or name.startswith(("sd_", "cor_"))


def _cell(values: Any, which: str) -> str:
    """``name[coords]`` of the smallest (``min``) or largest (``max``) cell of ``values``."""
    arr = np.asarray(values.values, dtype=float)
    if arr.ndim == 0:
        return str(values.name)
    flat = int(np.nanargmin(arr) if which == "min" else np.nanargmax(arr))
    index = np.unravel_index(flat, arr.shape)
    labels = [str(values[dim].values[i]) for dim, i in zip(values.dims, index, strict=True)]
    return f"{values.name}[{', '.join(labels)}]"


def child(name: str, likelihood: str, draws: int, tune: int, chains: int, out: str) -> None:
    """One mixedbayes fit (in a fresh process): prints ``RESULT <json>``, writes the taxon
    effects to ``out``."""
    import resource

    import arviz_stats as azs

    import mixedbayes as mb

    case = dataset(name, likelihood, draws, tune, chains)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit = mb.fit(case["spec"], case["data"], check=False)
    wall = time.perf_counter() - t0
    post = fit.idata["posterior"].to_dataset()
    names = [v for v in post.data_vars if _population(str(v))]
    ess = azs.ess(post[names], method="bulk")
    rhat = azs.rhat(post[names])
    fit.taxa_effects().to_csv(out, index=False)
    stats = fit.idata["sample_stats"]
    low = {v: float(np.nanmin(ess[v].values)) for v in names}
    high = {v: float(np.nanmax(rhat[v].values)) for v in names}
    worst_ess, worst_rhat = min(low, key=low.__getitem__), max(high, key=high.__getitem__)
    result = {
        "fit": wall,
        "min_ess": low[worst_ess],
        "max_rhat": high[worst_rhat],
        "worst": f"{_cell(ess[worst_ess], 'min')} / {_cell(rhat[worst_rhat], 'max')}",
        "sampler": str(fit.idata["posterior"].attrs.get("sampler", "")),
        "divergences": int(np.sum(stats["diverging"].values)) if "diverging" in stats else -1,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        **fit.timings,
    }
    print("RESULT", json.dumps(result), flush=True)


def run_mixedbayes(
    name: str, likelihood: str, draws: int, tune: int, chains: int, timeout: float, tmp: Path
) -> dict[str, Any]:
    """:func:`child` in a fresh process on empty compile caches, killed after ``timeout``."""
    tag = likelihood.replace("/", "-")
    cache = tmp / f"cache-{name}-{tag}"
    env = dict(os.environ)
    env.update(
        PYTENSOR_FLAGS=f"base_compiledir={cache / 'pytensor'}",
        NUMBA_CACHE_DIR=str(cache / "numba"),
        MIXEDBAYES_CACHE_DIR=str(cache / "mixedbayes"),
        JAX_COMPILATION_CACHE_DIR=str(cache / "jax"),
    )
    out = tmp / f"effects-{name}-{tag}.csv"
    args = [name, likelihood, str(draws), str(tune), str(chains), str(out)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "spent": time.perf_counter() - t0}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            result["table"] = pd.read_csv(out)
            result["spent"] = time.perf_counter() - t0
            return result
    return {"error": proc.stderr.strip()[-300:], "spent": time.perf_counter() - t0}


def probe_r(package: str) -> str:
    """ "" when ``Rscript`` loads ``package``, else why not."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "skipped: R not installed"
    proc = subprocess.run(
        [rscript, "-e", f"library({package})"], capture_output=True, text=True, timeout=300
    )
    return "" if proc.returncode == 0 else f"skipped: R found, {package} not installed"


# --------------------------------------------------------------------------- comparison


def agreement(bayes: pd.DataFrame, freq: pd.DataFrame) -> list[dict[str, Any]]:
    """Per coefficient: correlation of the point estimates, calls of each route, shared."""
    rows = []
    for coef in dict.fromkeys(freq["coefficient"]):  # the formula's order
        other = freq[freq["coefficient"] == coef].set_index("taxon")
        mine = bayes[bayes["coefficient"] == coef].set_index("taxon").loc[other.index]
        b_call = np.sign(mine["mean"]) * (mine["lfsr"] <= LEVEL)
        f_call = np.sign(other["estimate"]) * (other["q"] < LEVEL)
        rows.append(
            {
                "coefficient": coef,
                "taxa": len(other),
                "r": float(np.corrcoef(mine["mean"], other["estimate"])[0, 1]),
                "slope": float(np.polyfit(other["estimate"], mine["mean"], 1)[0]),
                "bayes": int((b_call != 0).sum()),
                "freq": int((f_call != 0).sum()),
                "freq_raw": int((other["p"] < LEVEL).sum()),
                "both": int(((b_call != 0) & (b_call == f_call)).sum()),
                "opposite": int(((b_call != 0) & (f_call != 0) & (b_call != f_call)).sum()),
            }
        )
    return rows


def against_truth(
    table: pd.DataFrame, truth: pd.DataFrame, estimate: str, called: pd.Series, coef: str
) -> dict[str, Any]:
    """RMSE and calls of one route against the simulated CLR effects of ``coef``."""
    part = table[table["coefficient"] == coef].set_index("taxon")
    true = truth.loc[part.index, coef]
    changed = true.abs() > 0.5 * SIMULATED["effect"]  # type: ignore[operator]
    call = called.loc[part.index].astype(bool)
    sign_ok = np.sign(part[estimate]) == np.sign(true)
    return {
        "rmse": float(np.sqrt(np.mean((part[estimate] - true) ** 2))),
        "r": float(np.corrcoef(part[estimate], true)[0, 1]),
        "found": f"{int((call & changed & sign_ok).sum())} / {int(changed.sum())}",
        "false": int((call & ~changed).sum()),
        "wrong_sign": int((call & changed & ~sign_ok).sum()),
    }


# --------------------------------------------------------------------------- report


def _f(value: Any, fmt: str = ".1f") -> str:
    try:
        return format(float(value), fmt)
    except (TypeError, ValueError):
        return "—"


def _speed_row(name: str, system: str, mbr: dict[str, Any]) -> str:
    if "fit" not in mbr:
        return f"| {name} | {system} | not run: {mbr['error']} | | | | | | | | |"
    return (
        f"| {name} | {system} ({mbr['sampler']}) | {_f(mbr['fit'])} | "
        f"{_f(mbr.get('compile_seconds'))} | {_f(mbr.get('sample_seconds'))} | "
        f"{_f(mbr['min_ess'], '.0f')} | {_f(mbr['min_ess'] / mbr['fit'], '.2f')} | "
        f"{_f(mbr['max_rhat'], '.3f')} | {mbr.get('worst', '')} | {mbr['divergences']} | "
        f"{_f(mbr['peak_rss_gb'], '.2f')} |"
    )


def markdown(
    args: argparse.Namespace, results: dict[str, dict[str, Any]], r_peers: dict[str, str]
) -> str:
    import importlib.metadata as md

    versions = ", ".join(
        f"{p} {md.version(p)}" for p in ("mixedbayes", "pymc", "nutpie", "numpyro", "statsmodels")
    )
    lines = [
        "# Compositional model at dietswap size: mixedbayes against per-taxon MixedLM",
        "",
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores ({platform.machine()}); "
        f"{versions}. `python benchmarks/compositional.py --runs {args.runs} --draws "
        f"{args.draws} --tune {args.tune} --chains {args.chains} --budget {args.budget:.0f}`.",
        "",
        f"mixedbayes: {args.chains} chains × {args.draws} draws after {args.tune} tuning, the "
        "sampler chosen by the policy, a fresh process on empty compile caches; `wall` = "
        "seconds of `mb.fit` (design, compile, sampling, log-likelihood); min bulk ESS and max "
        "R-hat over `b` (every term × taxon), `sd_b`, `sd_subject` and `sigma` / `phi`; "
        "min-ESS/s = min bulk ESS / wall. Per-taxon route: CLR with 0.5 pseudo-reads, one "
        "statsmodels `MixedLM` (REML, random intercept per subject) per taxon; wall seconds "
        "for all taxa (one estimate per taxon and coefficient, no draws: no ESS).",
        "",
        "## Speed",
        "",
        "| data | system | wall s | compile s | sample s | min bulk ESS | min-ESS/s | "
        "max R-hat | worst (ESS / R-hat) | divergences | peak RSS GB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for name, res in results.items():
        for likelihood, mbr in res["runs"].items():
            lines.append(_speed_row(name, f"mixedbayes {likelihood}", mbr))
        sm = res["mixedlm"]
        if "wall" in sm:
            note = f"{sm['taxa']} fits: {sm['warned']} warned of convergence, {sm['failed']} failed"
            lines.append(
                f"| {name} | per-taxon MixedLM | {_f(sm['wall'])} | | | {note} | | | | | |"
            )
        else:
            lines.append(f"| {name} | per-taxon MixedLM | not run: {sm['error']} | | | | | | | | |")
    for peer, why in r_peers.items():
        lines.append(f"| all | {peer} | {why or 'not run: no script yet'} | | | | | | | | |")
    lines += [
        "",
        "## Agreement of the effects",
        "",
        "Per coefficient over the taxa: Pearson r and least-squares slope of the mixedbayes "
        "posterior means on the MixedLM estimates (both CLR); calls: mixedbayes lfsr <= "
        f"{LEVEL}, MixedLM Benjamini-Hochberg q < {LEVEL} (raw p < {LEVEL} in brackets); "
        "`both`: called by both with the same sign; `opposite`: called by both, signs differ.",
        "",
        "| data | likelihood | coefficient | taxa | r | slope | mixedbayes calls | "
        "MixedLM calls | both | opposite |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, res in results.items():
        for likelihood, rows in res["agreement"].items():
            if not rows:
                lines.append(f"| {name} | {likelihood} | (a route did not finish) | | | | | | | |")
            for row in rows:
                lines.append(
                    f"| {name} | {likelihood} | `{row['coefficient']}` | {row['taxa']} | "
                    f"{row['r']:.2f} | {row['slope']:.2f} | {row['bayes']} | {row['freq']} "
                    f"({row['freq_raw']}) | {row['both']} | {row['opposite']} |"
                )
    truth_rows = [(n, r) for n, r in results.items() if r["truth"]]
    if truth_rows:
        lines += [
            "",
            "## Against the simulated truth",
            "",
            f"`group[diet]:time`, the diet's effect per time step ({SIMULATED['effect']} for a "
            "fifth of the taxa, alternating signs; the truth on the CLR scale). `found`: "
            "changed taxa called with the right sign; `false`: unchanged taxa called; `wrong "
            "sign`: changed taxa called with the wrong sign.",
            "",
            "| data | route | RMSE | r with truth | found | false calls | wrong sign |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, res in truth_rows:
            for route, row in res["truth"].items():
                lines.append(
                    f"| {name} | {route} | {row['rmse']:.3f} | {row['r']:.2f} | {row['found']} |"
                    f" {row['false']} | {row['wrong_sign']} |"
                )
    return "\n".join(lines) + "\n"


def compare(case: dict[str, Any], res: dict[str, Any], likelihood: str) -> None:
    """Add the agreement (and the truth, when known) of one mixedbayes run to ``res``."""
    mbr, sm = res["runs"][likelihood], res["mixedlm"]
    res["agreement"][likelihood] = []
    if "table" not in mbr or "table" not in sm:
        return
    bayes, freq = mbr.pop("table"), sm["table"]
    res["agreement"][likelihood] = agreement(bayes, freq)
    truth = case["truth"]
    if truth is not None:
        coef = "group[diet]:time"
        b = bayes[bayes["coefficient"] == coef].set_index("taxon")
        f = freq[freq["coefficient"] == coef].set_index("taxon")
        res["truth"][f"mixedbayes {likelihood}"] = against_truth(
            bayes, truth, "mean", b["lfsr"] <= LEVEL, coef
        )
        res["truth"]["per-taxon MixedLM"] = against_truth(
            freq, truth, "estimate", f["q"] < LEVEL, coef
        )


#: The default runs (data set: likelihood), cheapest first: each gets an equal share of what
#: is left of the budget.
RUNS = "dietswap:dirichlet_multinomial,simulated:dirichlet_multinomial,dietswap:multinomial"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results" / "compositional.md"))
    parser.add_argument("--runs", default=RUNS, help="data set:likelihood, comma-separated")
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument(
        "--budget", type=float, default=1500.0, help="seconds for all mixedbayes fits"
    )
    parser.add_argument(
        "--append", action="store_true", help="add the tables to --out instead of replacing it"
    )
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, likelihood, draws, tune, chains, out = args.child
        child(name, likelihood, int(draws), int(tune), int(chains), out)
        return 0
    runs = [tuple(r.split(":")) for r in args.runs.split(",") if r]
    if not available():
        print("dietswap not found: its runs are skipped", flush=True)
        runs = [r for r in runs if r[0] != "dietswap"]
    r_peers = {peer: probe_r(package) for peer, package in R_PEERS.items()}
    results: dict[str, dict[str, Any]] = {}
    cases: dict[str, dict[str, Any]] = {}
    deadline = time.perf_counter() + args.budget
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, likelihood) in enumerate(runs):
            if name not in results:
                case = cases[name] = dataset(name, likelihood, args.draws, args.tune, args.chains)
                taxa = modelled_taxa(case["spec"], case["data"])
                data = case["data"]
                sm = per_taxon_mixedlm(
                    data["counts"], data["samples"], taxa, case["formula"], case["levels"], 600.0
                )
                print(name, "MixedLM", sm.get("wall", sm.get("error")), flush=True)
                results[name] = {"mixedlm": sm, "runs": {}, "agreement": {}, "truth": {}}
            share = (deadline - time.perf_counter()) / (len(runs) - i)
            mbr = run_mixedbayes(
                name, likelihood, args.draws, args.tune, args.chains, max(share, 60.0), Path(tmp)
            )
            print(name, likelihood, {k: v for k, v in mbr.items() if k != "table"}, flush=True)
            results[name]["runs"][likelihood] = mbr
            compare(cases[name], results[name], likelihood)
    text = markdown(args, results, r_peers)
    out = Path(args.out)
    if args.append and out.exists():
        text = (
            out.read_text()
            + "\n"
            + text.replace("# Compositional", "# Another run: compositional", 1)
        )
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
