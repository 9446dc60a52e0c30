"""The measurement behind the default sampler policy (``sampler="auto"``): each backend on the
same models, cold (every compile cache empty) and warm (a second process on the caches the
first filled), total wall time as a user waits and minimum bulk ESS.

    python benchmarks/policy.py [--out benchmarks/results/policy.md] [--cases a,b]

Each run is a fresh process; writes a Markdown table. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (formula or spec file in models/, groups, rows per group (0: sleepstudy or the
#: spec's own data), marginalize)
CASES: dict[str, tuple[str, int, int, bool]] = {
    "epilepsy": (str(HERE.parent / "models" / "epilepsy.yaml"), 0, 0, True),
    "theoph": (str(HERE.parent / "models" / "theophylline.yaml"), 0, 0, True),
    "sleepstudy": ("y ~ days + (days | subj)", 0, 0, True),
    "lmm20k": ("y ~ days + (days | subj)", 1000, 20, True),
    "plain2k": ("y ~ days + (1 | subj)", 100, 20, False),
    "plain5k": ("y ~ days + (1 | subj)", 250, 20, False),
    "plain20k": ("y ~ days + (1 | subj)", 1000, 20, False),
}
SAMPLERS = ("numpyro", "nutpie")


def _run(case: str, sampler: str, cache: Path) -> dict[str, float]:
    formula, groups, per, marginalize = CASES[case]
    env = dict(os.environ)
    env.update(
        PYTENSOR_FLAGS=f"base_compiledir={cache / 'pytensor'}",
        NUMBA_CACHE_DIR=str(cache / "numba"),
        MIXEDBAYES_CACHE_DIR=str(cache / "mixedbayes"),
        JAX_COMPILATION_CACHE_DIR=str(cache / "jax"),
        XDG_CACHE_HOME=str(cache / "xdg"),
    )
    args = [formula, str(groups), str(per), "1" if marginalize else "0", sampler]
    proc = subprocess.run(
        [sys.executable, str(HERE / "policy_child.py"), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    return {"error": float("nan"), "stderr": proc.stderr[-400:]}  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(HERE / "results" / "policy.md"))
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    rows = []
    for case in args.cases.split(","):
        for sampler in SAMPLERS:
            with tempfile.TemporaryDirectory() as tmp:
                cold = _run(case, sampler, Path(tmp))
                warm = _run(case, sampler, Path(tmp))
            rows.append((case, sampler, cold, warm))
            print(case, sampler, cold, warm, flush=True)
    lines = [
        "# Sampler policy: each backend cold and warm (fresh process each)",
        "",
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; 4 chains x 1000 draws after 1000"
        " tuning steps (a spec in `models/`: its own sampler settings); `fit` = `mb.fit` wall"
        " s, `process` = with imports and data.",
        "",
        "| case | sampler | cold fit s | cold compile s | cold sample s | warm fit s | "
        "warm compile s | min bulk ESS | min-ESS/s (cold fit) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case, sampler, cold, warm in rows:
        if "fit" not in cold:
            lines.append(f"| {case} | {sampler} | failed | | | | | | |")
            continue
        lines.append(
            f"| {case} | {cold.get('sampler', sampler)} | {cold['fit']:.1f} | "
            f"{cold['compile_seconds']:.1f} | {cold['sample_seconds']:.1f} | "
            f"{warm.get('fit', float('nan')):.1f} | {warm.get('compile_seconds', float('nan')):.1f}"
            f" | {cold['min_ess']:.0f} | {cold['min_ess'] / cold['fit']:.1f} |"
        )
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
