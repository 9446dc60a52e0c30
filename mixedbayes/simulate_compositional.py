"""Simulated microbiome counts from the compositional model (``mb.simulate.compositional``).

Subjects in two arms (``ctl``, ``diet``) sampled at ``n_times`` time points; each sample's
CLR log-abundances are ``b0 + b_diet·diet + b_time·t + b_int·diet·t + u_subject + ε``, and its
reads a multinomial (or Dirichlet-multinomial) draw of their softmax with a library size
between ``min_reads`` and ``max_reads``. A share of the taxa has a non-zero diet-by-time
effect; the rest have none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SimulatedCompositional", "compositional"]


@dataclass(frozen=True)
class SimulatedCompositional:
    """Simulated counts and the truth behind them.

    Attributes
    ----------
    data : dict of str to DataFrame
        ``{"counts": samples × taxa, "samples": metadata}``, as ``mb.fit`` takes them.
    effects : DataFrame
        The true CLR effects, one row per taxon, one column per coefficient
        (``Intercept``, ``group[diet]``, ``time``, ``group[diet]:time``).
    spec : dict
        The spec of the generating model.
    """

    data: dict[str, pd.DataFrame]
    effects: pd.DataFrame
    spec: dict[str, Any]


def _clr(x: np.ndarray) -> np.ndarray:
    return np.asarray(x - x.mean(axis=-1, keepdims=True))


def compositional(
    n_subjects: int = 20,
    n_times: int = 3,
    n_taxa: int = 30,
    *,
    share_changed: float = 0.2,
    effect: float = 1.0,
    sd_subject: float = 0.5,
    sd_residual: float = 0.3,
    phi: float | None = None,
    min_reads: int = 1_000,
    max_reads: int = 30_000,
    sparsity: float = 2.0,
    seed: int | None = None,
) -> SimulatedCompositional:
    """Simulate a diet intervention's effect on a community over time.

    Parameters
    ----------
    n_subjects, n_times, n_taxa : int
        Subjects (half in each arm), samples per subject (times 0, 1, ...), taxa.
    share_changed : float
        Share of the taxa whose diet-by-time effect is ``±effect`` (alternating signs); the
        others have none.
    effect : float
        Size of those effects on the CLR scale (per time step).
    sd_subject : float
        SD of each subject's own log-abundance of each taxon (random intercepts).
    sd_residual : float
        SD of the logistic-normal residual per sample and taxon.
    phi : float, optional
        If given, reads are Dirichlet-multinomial with this concentration (else multinomial).
    min_reads, max_reads : int
        Library sizes, drawn log-uniformly.
    sparsity : float
        SD of the taxa's baseline CLR abundances: larger gives rarer taxa and more zeros.
    seed : int, optional
    """
    if n_subjects < 2 or n_times < 1 or n_taxa < 3 or not 0 <= share_changed <= 1:
        raise ValueError("need n_subjects >= 2, n_times >= 1, n_taxa >= 3, share in [0, 1]")
    rng = np.random.default_rng(seed)
    taxa = [f"taxon{j + 1:03d}" for j in range(n_taxa)]
    n = n_subjects * n_times
    subject = np.repeat(np.arange(n_subjects), n_times)
    time = np.tile(np.arange(n_times, dtype=float), n_subjects)
    arm = rng.permutation(np.repeat([0, 1], [n_subjects - n_subjects // 2, n_subjects // 2]))
    diet = arm[subject].astype(float)
    b0 = _clr(rng.normal(0, sparsity, n_taxa))
    changed = round(share_changed * n_taxa)
    interaction = np.zeros(n_taxa)
    interaction[:changed] = effect * np.where(np.arange(changed) % 2 == 0, 1.0, -1.0)
    interaction = interaction[rng.permutation(n_taxa)]
    b_diet = _clr(rng.normal(0, 0.2, n_taxa))
    b_time = np.zeros(n_taxa)
    u = rng.normal(0, sd_subject, (n_subjects, n_taxa))
    lam = (
        b0
        + np.outer(diet, b_diet)
        + np.outer(time, b_time)
        + np.outer(diet * time, interaction)
        + u[subject]
        + rng.normal(0, sd_residual, (n, n_taxa))
    )
    p = np.exp(lam - lam.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    reads = np.exp(rng.uniform(np.log(min_reads), np.log(max_reads), n)).astype(np.int64)
    if phi is not None:
        p = np.array([rng.dirichlet(phi * row) for row in p])
    counts = np.array([rng.multinomial(reads[i], p[i]) for i in range(n)])
    ids = [f"S{i + 1:04d}" for i in range(n)]
    samples = pd.DataFrame(
        {
            "subject": [f"P{s + 1:03d}" for s in subject],
            "group": np.where(diet == 1, "diet", "ctl"),
            "time": time,
        },
        index=pd.Index(ids, name="sample"),
    )
    effects = pd.DataFrame(
        {
            "Intercept": b0,
            "group[diet]": _clr(b_diet),
            "time": b_time,
            "group[diet]:time": _clr(interaction),
        },
        index=pd.Index(taxa, name="taxon"),
    )
    spec = {
        "kind": "compositional",
        "formula": "~ group * time + (1 | subject)",
        "likelihood": "multinomial" if phi is None else "dirichlet_multinomial",
        "contrasts": {"group": {"reference": "ctl"}},
    }
    table = pd.DataFrame(counts, index=pd.Index(ids, name="sample"), columns=taxa)
    return SimulatedCompositional({"counts": table, "samples": samples}, effects, spec)
