"""The dietswap study (O'Keefe et al. 2015, Nat Commun 6:6342; the microbiome R package's
``dietswap``) as a compositional model: read in place from the shared reference data,
never copied into the project.

38 subjects (African Americans, ``AAM``, and rural Africans, ``AFR``) sampled up to six
times: at home (``HE``, timepoints 2-3), during a two-week diet swap (``DI``, 4-5: the
Americans ate a high-fibre, low-fat African diet, the Africans a high-fat, low-fibre
Western one) and at the endoscopies before and after (``ED``, 1 and 6). 222 samples, 130
genus-level taxa; with ``min_prevalence: 0.1``, 110 taxa are modelled.

    python benchmarks/dietswap.py [--out out/dietswap] [--draws 500] [--tune 500]
        [--chains 2] [--likelihood multinomial] [--pooling taxa] [--group-sd taxon]

fits the model end to end and writes ``report.html`` and ``taxa_effects.csv`` to ``--out``
(by hand: at this size sampling takes many minutes on 2 cores). ``load_dietswap()`` and
``dietswap_spec()`` are used by ``benchmarks/compositional.py`` and
``tests/test_compositional_dietswap.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
#: Where the shared reference data live (read only; ``MIXEDBAYES_DIETSWAP`` overrides it).
DIETSWAP = Path(
    os.environ.get(
        "MIXEDBAYES_DIETSWAP", HERE.parent.parent / "shared" / "refdata" / "read-only" / "dietswap"
    )
)
COUNTS_CSV = "dietswap_counts_taxa_x_samples.csv"
SAMPLES_CSV = "dietswap_sample_data.csv"
#: The model: diet phase by nationality, a random intercept per subject and taxon.
FORMULA = "~ nationality * group + (1 | subject)"
#: The coefficient of the diet swap's effect that differs by nationality.
SWAP = "nationality[AFR]:group[DI]"


def available(folder: Path = DIETSWAP) -> bool:
    """True when both dietswap tables are there."""
    return (folder / COUNTS_CSV).is_file() and (folder / SAMPLES_CSV).is_file()


def load_dietswap(folder: Path = DIETSWAP) -> dict[str, pd.DataFrame]:
    """The dietswap tables as ``mb.fit`` takes them.

    Returns
    -------
    dict
        ``counts``: samples × taxa (222 × 130; the file is taxa × samples, transposed here),
        indexed by sample id; ``samples``: one row per sample, indexed by the same ids, with
        ``subject``, ``sex``, ``nationality`` (AAM, AFR), ``group`` (HE home, DI diet swap,
        ED endoscopy), ``timepoint`` (1-6), ``timepoint_within_group`` (1-2) and
        ``bmi_group``.
    """
    if not available(folder):
        raise FileNotFoundError(f"dietswap not found in {folder} ({COUNTS_CSV}, {SAMPLES_CSV})")
    counts = pd.read_csv(folder / COUNTS_CSV, index_col="taxon").T
    counts.index.name = "sample_id"
    counts.columns.name = None
    samples = pd.read_csv(folder / SAMPLES_CSV).set_index("sample_id")
    samples = samples.drop(columns="sample").rename(
        columns={"timepoint.within.group": "timepoint_within_group"}
    )
    counts = counts.loc[samples.index].astype("int64")
    return {"counts": counts, "samples": samples}


def dietswap_spec(
    likelihood: str = "multinomial",
    *,
    formula: str = FORMULA,
    min_prevalence: float = 0.1,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 2015,
) -> dict[str, Any]:
    """The compositional spec fitted to dietswap (home environment and Americans as the
    reference levels)."""
    return {
        "kind": "compositional",
        "name": "dietswap",
        "description": "Diet swap between African Americans and rural Africans "
        "(O'Keefe et al. 2015).",
        "formula": formula,
        "taxa": {"min_prevalence": min_prevalence},
        "likelihood": likelihood,
        "contrasts": {"group": {"reference": "HE"}, "nationality": {"reference": "AAM"}},
        "sampler": {"draws": draws, "tune": tune, "chains": chains, "seed": seed},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fit dietswap end to end with a report.")
    parser.add_argument("--out", default=str(HERE.parent / "out" / "dietswap"))
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--likelihood", default="multinomial")
    parser.add_argument("--sampler", default=None)
    parser.add_argument("--pooling", default=None, help="horseshoe (default), taxa or none")
    parser.add_argument("--group-sd", default=None, help="shared (default) or taxon")
    args = parser.parse_args(argv)
    import warnings

    import mixedbayes as mb

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dietswap()
    spec = dietswap_spec(args.likelihood, draws=args.draws, tune=args.tune, chains=args.chains)
    options = {"pooling": args.pooling, "group_sd": args.group_sd}
    spec.update({k: v for k, v in options.items() if v is not None})
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the taxa dropped by the filter
        fit = mb.fit(spec, data, sampler=args.sampler, progressbar=True)
    wall = time.perf_counter() - t0
    print(fit)
    print(f"fit: {wall:.0f} s ({fit.timings})")
    effects = fit.taxa_effects()
    effects.to_csv(out / "taxa_effects.csv", index=False)
    swap = effects[effects["coefficient"] == SWAP].drop(columns="scale")
    print(swap.head(15).to_string(index=False))
    path = fit.report(out / "report.html")
    print(f"report: {path} ({time.perf_counter() - t0 - wall:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
