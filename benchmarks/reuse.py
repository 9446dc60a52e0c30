"""Compile reuse: refitting a spec on new data of the same structure skips compilation.

``python benchmarks/reuse.py [--out DIR]`` fits each model on one data set, then on three
more of the same structure (new responses and covariates: new default priors, new centring
constants, new sufficient statistics), all in one process, and writes ``reuse.md`` with the
compile and sampling seconds of every fit.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cases import simulate_lmm, simulate_poisson  # noqa: E402
from run import machine_info  # noqa: E402

MODELS = {
    "LMM, marginalised": ("gaussian", "y ~ time + (time | subject)", {}),
    "LMM, plain (marginalize=False)": (
        "gaussian",
        "y ~ time + (time | subject)",
        {"marginalize": False},
    ),
    "Poisson GLMM": ("poisson", "count ~ x + trt + (1 | subject)", {}),
}


def data_for(family: str, seed: int) -> pd.DataFrame:
    """A data set of fixed structure (100 subjects × 10 rows); ``seed`` changes its values."""
    if family == "gaussian":
        return simulate_lmm(100, 10, seed)
    return simulate_poisson(100, 10, seed)


def main(argv: list[str] | None = None) -> int:
    """Fit every model on four data sets of one structure; write the table."""
    import mixedbayes as mb

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--refits", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    import pytensor

    numba_cache = Path(pytensor.config.base_compiledir) / "numba"
    n_cached = len(list(numba_cache.glob("*.nbi"))) if numba_cache.exists() else 0
    cache_line = (
        f"PyTensor's numba cache (`{numba_cache}`) held {n_cached} compiled functions at the "
        "start" + (": the first fits compile cold." if n_cached == 0 else ".")
    )
    lines = [
        "# compile reuse",
        "",
        f"Each model fitted on one data set, then refitted on {args.refits} new data sets of "
        f"the same structure (100 subjects × 10 rows; 4 chains × {args.draws} draws), in one "
        "process. Compile s: nutpie's numba compilation (or swapping the new data into the "
        "compiled model); total s: the whole `mb.fit` call.",
        "",
        cache_line,
        "",
        "| model | fit | compile s | sampling s | total s | mean of b[...] |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, (family, formula, options) in MODELS.items():
        spec = mb.LMM(formula) if family == "gaussian" else mb.GLMM(formula, family)
        for k in range(1 + args.refits):
            data = data_for(family, 100 + k)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                fit = mb.fit(spec, data, draws=args.draws, tune=args.draws, seed=k, **options)
                total = time.perf_counter() - t0
            b = fit.posterior["b"].mean(("chain", "draw")).to_numpy()
            name = "first" if k == 0 else f"refit {k}"
            lines.append(
                f"| {label} | {name} | {fit.timings['compile_seconds']:.2f} | "
                f"{fit.timings['sample_seconds']:.2f} | {total:.1f} | "
                f"{', '.join(f'{v:.3f}' for v in np.atleast_1d(b))} |"
            )
            print(lines[-1], flush=True)
    lines += ["", "## machine", ""] + [f"- {k}: {v}" for k, v in machine_info().items()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reuse.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'reuse.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
