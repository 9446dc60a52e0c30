"""Joint model speed at pbc2 size (``make bench-joint``): mixedbayes against rstanarm's
``stan_jm`` on the same data, ESS per second of total wall time.

    python benchmarks/joint.py [--out benchmarks/results/joint.md] [--timeout 3600]

The model is ``models/pbc_joint.yaml`` (bundled pbcseq: 312 patients, 1,945 visits; log
bilirubin with a random intercept and slope, a B-spline baseline hazard, the current value
of the trajectory). mixedbayes runs in fresh processes with every compile cache empty (cold)
and again on the caches the first run filled (warm), with each sampler backend of the policy
(``policy.py``'s child). rstanarm runs in a fresh ``Rscript`` (``r_joint.R``: the same
formulas, its B-spline baseline, ``etavalue`` association, 4 chains × 1,000 draws after
1,000 warm-up) when R and ``r-cran-rstanarm`` are installed; otherwise its row is recorded
as not run. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from policy import CASES, _run  # noqa: E402

SPEC = HERE.parent / "models" / "pbc_joint.yaml"
RSTANARM_MISSING = "R or rstanarm not installed (apt-get install r-cran-rstanarm)"


def probe_rstanarm() -> str:
    """ "" when ``Rscript`` can load rstanarm, else why not."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return RSTANARM_MISSING
    proc = subprocess.run(
        [rscript, "-e", "library(rstanarm)"], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        return "R found but rstanarm does not load: " + proc.stderr.strip()[-200:]
    return ""


def run_rstanarm(csv: Path, timeout: float) -> dict[str, Any]:
    """``stan_jm`` in a fresh process; its ``RESULT`` line (fit seconds, min bulk ESS)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [shutil.which("Rscript") or "Rscript", str(HERE / "r_joint.R"), str(csv)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            out: dict[str, Any] = json.loads(line[7:])
            out["process"] = time.perf_counter() - t0
            return out
    return {"error": proc.stderr.strip()[-300:]}


def _row(name: str, result: dict[str, Any], reference: float | None) -> str:
    if "fit" not in result:
        return f"| {name} | not run: {result.get('error', '')} | | | | |"
    rate = result["min_ess"] / result["fit"]
    ratio = f"{rate / reference:.1f}×" if reference else "—"
    return (
        f"| {name} | {result['fit']:.1f} | {result.get('compile_seconds', float('nan')):.1f} | "
        f"{result['min_ess']:.0f} | {rate:.1f} | {ratio} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results" / "joint.md"))
    parser.add_argument("--timeout", type=float, default=3600.0, help="rstanarm's cap, s")
    args = parser.parse_args(argv)
    rows: list[tuple[str, dict[str, Any]]] = []
    CASES["pbc_joint"] = (str(SPEC), 0, 0, True)
    for sampler in ("numpyro", "nutpie"):
        with tempfile.TemporaryDirectory() as tmp:
            cold = _run("pbc_joint", sampler, Path(tmp))
            warm = _run("pbc_joint", sampler, Path(tmp))
        rows += [(f"mixedbayes {sampler}, cold", cold), (f"mixedbayes {sampler}, warm", warm)]
        print(sampler, cold, warm, flush=True)
    why = probe_rstanarm()
    if why:
        peer: dict[str, Any] = {"error": why}
    else:
        import mixedbayes as mb

        spec = mb.load_spec(SPEC)
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "pbcseq.csv"
            mb.load_data(str(spec.data)).to_csv(csv, index=False)
            try:
                peer = run_rstanarm(csv, args.timeout)
            except subprocess.TimeoutExpired:
                peer = {"error": f"timed out after {args.timeout:.0f} s"}
    rows.append(("rstanarm stan_jm", peer))
    reference = peer["min_ess"] / peer["fit"] if "fit" in peer else None
    lines = [
        "# Joint model at pbc2 size: mixedbayes against rstanarm",
        "",
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; `models/pbc_joint.yaml` (312 "
        "patients, 1,945 visits; 4 chains × 1,000 draws after 1,000 tuning). `fit` = wall "
        "seconds of the fit call (design, compile, sampling, log-likelihood); min bulk ESS over "
        "every population parameter; ESS/s = min ESS / fit; ratio against rstanarm's ESS/s.",
        "",
        "| system | fit s | compile s | min bulk ESS | min-ESS/s | vs rstanarm |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(_row(name, result, reference) for name, result in rows),
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
