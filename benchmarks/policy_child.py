"""One timed fit for ``policy.py``, in a fresh process:

    python policy_child.py FORMULA GROUPS ROWS_PER_GROUP MARGINALIZE(0|1) SAMPLER
    python policy_child.py models/NAME.yaml 0 0 1 SAMPLER

GROUPS = 0 fits sleepstudy; a spec file is fitted to its own data with its own sampler
settings (draws, tune, chains, seed). Prints ``RESULT <json>``.
"""

import json
import sys
import time

t_proc = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

formula, G, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
marginalize, sampler = sys.argv[4] == "1", sys.argv[5]
spec_file = formula.endswith(".yaml")
if spec_file:
    import mixedbayes as mb

    spec = mb.load_spec(formula)
    df = mb.load_data(str(spec.data))
elif G == 0:
    import mixedbayes as mb

    df = mb.datasets.load("sleepstudy")
    df = df.rename(columns={"Reaction": "y", "Days": "days", "Subject": "subj"})
else:
    rng = np.random.default_rng(7)
    subj = np.repeat(np.arange(G), n)
    days = np.tile(np.arange(n), G).astype(float)
    eta = 250 + rng.normal(0, 25, G)[subj] + (10 + rng.normal(0, 6, G)[subj]) * days
    df = pd.DataFrame(
        {"y": eta + rng.normal(0, 25, G * n), "days": days, "subj": [f"s{i}" for i in subj]}
    )
import arviz_stats as azs  # noqa: E402

import mixedbayes as mb  # noqa: E402

t0 = time.perf_counter()
if spec_file:
    fit = mb.fit(spec, df, sampler=sampler, check=False)
else:
    fit = mb.fit(
        mb.LMM(formula),
        df,
        draws=1000,
        tune=1000,
        chains=4,
        seed=1,
        sampler=sampler,
        marginalize=marginalize,
        check=False,
    )
wall = time.perf_counter() - t0
post = fit.idata["posterior"].to_dataset()
if spec_file:  # every population parameter: fixed effects, SDs, correlations, family's
    names = [v for v in post.data_vars if not str(v).startswith("r_") and post[v].ndim <= 3]
else:
    names = [v for v in ("b", "sd_subj", "sigma", "cor_subj") if v in post]
ess = azs.ess(post[names], method="bulk")
vals = np.concatenate([np.ravel(ess[v].values) for v in names])
result = {
    "fit": wall,
    "process": time.perf_counter() - t_proc,
    "min_ess": float(np.nanmin(vals)),
    "sampler": fit.idata["posterior"].attrs["sampler"],
    **fit.timings,
}
print("RESULT", json.dumps(result))
