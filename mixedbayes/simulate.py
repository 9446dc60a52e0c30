"""Simulate mixed-model data with known parameters, for tests and examples.

:func:`lmm` draws longitudinal data (measurements in patients in clinics, optionally crossed
with raters) from a linear mixed model whose parameters are known; :func:`crossed` draws a
simple fully crossed subjects-by-items design. Both return a :class:`SimulatedData` holding
the data, the true parameters, the realised random effects and an lme4-style formula that
fits the generating model.

Only ``numpy.random.default_rng(seed)`` is used: the same arguments and seed give identical
data.

Examples
--------
>>> from mixedbayes.simulate import lmm
>>> sim = lmm(n_clinics=4, patients_per_clinic=6, n_times=5, seed=1)
>>> sim.data.shape
(120, 7)
>>> sim.params["b"]["time"]
0.5
>>> sim.formula
'y ~ trt * time + age * time + dose + (1 | clinic) + (1 + time | clinic:patient)'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.simulate_compositional import SimulatedCompositional, compositional
from mixedbayes.simulate_joint import SimulatedJoint, joint

__all__ = [
    "DEFAULT_BETA",
    "SimulatedCompositional",
    "SimulatedData",
    "SimulatedJoint",
    "compositional",
    "crossed",
    "joint",
    "lmm",
]

#: Default fixed effects of :func:`lmm`, by term name (formulae / lme4 naming).
DEFAULT_BETA: Mapping[str, float] = MappingProxyType(
    {
        "Intercept": 10.0,
        "time": 0.5,
        "trt": 0.0,
        "trt:time": -0.3,
        "age": 0.4,
        "age:time": 0.1,
        "dose": 0.2,
    }
)

#: SD of the patient-level part of ``dose``; a row-level N(0, 1) part is added to it.
_DOSE_PATIENT_SD = 0.5


@dataclass(frozen=True)
class SimulatedData:
    """Simulated data with the parameters and random effects that generated them.

    Parameters
    ----------
    data : pandas.DataFrame
        The simulated data set. Grouping columns are ``pandas.Categorical`` with string levels.
    params : dict
        The true parameter values: ``"b"`` maps fixed-effect term names to coefficients;
        ``"sd_<group>"`` maps each varying term of a grouping factor to its SD;
        ``"cor_<group>"`` is a correlation between varying terms; ``"sigma"`` is the
        residual SD.
    effects : dict of str to pandas.DataFrame
        The realised random effects per grouping factor, one row per level (nested levels
        are named ``"outer:inner"`` as formulae names them) and one column per varying term.
    formula : str
        An lme4-style formula for the generating model.
    """

    data: pd.DataFrame
    params: dict[str, Any]
    effects: dict[str, pd.DataFrame]
    formula: str


# --------------------------------------------------------------------------- validation


def _count(name: str, value: object, minimum: int = 1) -> int:
    """An integer argument that must be at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    number = int(value)
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}.")
    return number


def _real(name: str, value: object) -> float:
    """A finite real argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}.")
    return number


def _sd(name: str, value: object) -> float:
    """A finite, non-negative real argument (a standard deviation)."""
    number = _real(name, value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0 (it is a standard deviation), got {number}.")
    return number


def _seed(value: object) -> int | None:
    """``None`` or a non-negative integer seed."""
    if value is None:
        return None
    return _count("seed", value, minimum=0)


def _canonical_term(key: object) -> str | None:
    """The default term that ``key`` names (interaction parts in any order), or None."""
    if not isinstance(key, str):
        return None
    if key in DEFAULT_BETA:
        return key
    parts = sorted(part.strip() for part in key.split(":"))
    for term in DEFAULT_BETA:
        if sorted(term.split(":")) == parts:
            return term
    return None


def _resolve_beta(beta: Mapping[str, float] | None) -> dict[str, float]:
    """The default fixed effects updated by ``beta``; unknown keys raise ValueError."""
    values = dict(DEFAULT_BETA)
    if beta is None:
        return values
    if not isinstance(beta, Mapping):
        raise ValueError(
            f"beta must be a mapping of term name to coefficient, got {type(beta).__name__}."
        )
    allowed = ", ".join(DEFAULT_BETA)
    terms = {key: _canonical_term(key) for key in beta}
    unknown = [key for key, term in terms.items() if term is None]
    if unknown:
        raise ValueError(f"beta has unknown terms {unknown}; allowed terms are: {allowed}.")
    for key, term in terms.items():
        if term is not None:
            values[term] = _real(f"beta[{key!r}]", beta[key])
    return values


def _levels(prefix: str, n: int) -> list[str]:
    """Zero-padded level names: ``prefix01``, ``prefix02``, ..."""
    width = max(2, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def _balanced_binary(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random 0/1 assignment of ``n`` units, half each (the odd one at random)."""
    arms = np.repeat(np.array([0, 1], dtype=np.int64), n // 2)
    if n % 2:
        arms = np.append(arms, rng.integers(0, 2, size=1, dtype=np.int64))
    return rng.permutation(arms)


def _factor(codes: np.ndarray, levels: list[str]) -> pd.Categorical[str]:
    """A categorical with string ``levels`` (all kept, in order) from integer codes."""
    return pd.Categorical.from_codes(codes, categories=pd.Index(levels, dtype=str))


# --------------------------------------------------------------------------- simulators


def lmm(
    n_clinics: int = 10,
    patients_per_clinic: int = 10,
    n_times: int = 6,
    *,
    beta: Mapping[str, float] | None = None,
    sd_clinic: float = 0.5,
    sd_patient: Sequence[float] = (1.0, 0.3),
    cor_patient: float = 0.2,
    sigma: float = 0.5,
    crossed: int = 0,
    sd_crossed: float = 0.4,
    unbalanced: bool = False,
    missing_response: float = 0.0,
    seed: int | None = None,
) -> SimulatedData:
    """Simulate longitudinal data from a linear mixed model with known parameters.

    Repeated measurements ``y`` of patients nested in clinics, at visits ``time = 0, 1,
    ..., n_times - 1``. Each patient gets a baseline treatment ``trt`` (0/1, randomised and
    balanced within clinic) and a baseline covariate ``age`` (standard normal); ``dose`` is a
    time-varying covariate (a patient-level N(0, 0.5**2) part plus a row-level N(0, 1) part).
    The linear predictor is::

        Intercept + b_time*time + b_trt*trt + b_trt:time*trt*time + b_age*age
        + b_age:time*age*time + b_dose*dose
        + u_clinic + u0_patient + u1_patient*time [+ u_rater]

    with ``u_clinic ~ N(0, sd_clinic**2)``, ``(u0, u1)`` bivariate normal with SDs
    ``sd_patient`` and correlation ``cor_patient``, ``u_rater ~ N(0, sd_crossed**2)``, and
    ``y = eta + N(0, sigma**2)``.

    Parameters
    ----------
    n_clinics : int, default 10
        Number of clinics (>= 1).
    patients_per_clinic : int, default 10
        Number of patients per clinic (>= 1).
    n_times : int, default 6
        Number of visits per patient (>= 1; >= 3 when ``unbalanced``).
    beta : mapping of str to float, optional
        Fixed effects that replace the defaults in :data:`DEFAULT_BETA` (``Intercept``,
        ``time``, ``trt``, ``trt:time``, ``age``, ``age:time``, ``dose``). Interaction parts
        may be given in any order (``"time:trt"``). Unknown terms raise ``ValueError``.
    sd_clinic : float, default 0.5
        SD of the clinic random intercepts (>= 0).
    sd_patient : sequence of two floats, default (1.0, 0.3)
        SDs of the patient random intercepts and random ``time`` slopes (>= 0).
    cor_patient : float, default 0.2
        Correlation of the patient random intercepts and slopes (``|cor_patient| < 1``).
    sigma : float, default 0.5
        Residual SD (>= 0).
    crossed : int, default 0
        If positive, the number of raters: a column ``rater`` (levels ``"r01"``, ...) is
        assigned at random per row (balanced), crossed with patients, with random
        intercepts of SD ``sd_crossed``.
    sd_crossed : float, default 0.4
        SD of the rater random intercepts (>= 0).
    unbalanced : bool, default False
        If true, each patient keeps only its first ``k`` visits, ``k`` drawn uniformly from
        ``2, ..., n_times``, so that patients carry different amounts of data.
    missing_response : float, default 0.0
        Fraction of ``y`` set to NaN, completely at random (``0 <= missing_response < 1``;
        at least one ``y`` stays observed).
    seed : int, optional
        Seed of ``numpy.random.default_rng``; the same seed gives identical data.

    Returns
    -------
    SimulatedData
        ``data`` has columns ``y``, ``time`` (int), ``trt`` (int 0/1), ``age``, ``dose``,
        ``clinic`` (``"c01"``, ...), ``patient`` (``"c01p01"``, ...; unique across clinics)
        and, if ``crossed > 0``, ``rater``; grouping columns are categorical. ``params`` holds
        ``"b"``, ``"sd_clinic"`` (``{"Intercept": ...}``), ``"sd_clinic:patient"``
        (``{"Intercept": ..., "time": ...}``), ``"cor_clinic:patient"``, ``"sd_rater"``
        (if crossed) and ``"sigma"``. ``effects`` holds the realised effects for
        ``"clinic"``, ``"clinic:patient"`` (index ``"c01:c01p01"``, ...) and ``"rater"``.

    Raises
    ------
    ValueError
        If an argument is out of range; the message names the argument.

    Examples
    --------
    >>> sim = lmm(n_clinics=3, patients_per_clinic=4, crossed=5, seed=0)
    >>> sorted(sim.effects)
    ['clinic', 'clinic:patient', 'rater']
    """
    n_clinics = _count("n_clinics", n_clinics)
    patients_per_clinic = _count("patients_per_clinic", patients_per_clinic)
    n_times = _count("n_times", n_times)
    if unbalanced and n_times < 3:
        raise ValueError(
            f"n_times must be at least 3 when unbalanced=True (each patient keeps 2 to "
            f"n_times visits), got {n_times}."
        )
    b = _resolve_beta(beta)
    sd_clinic = _sd("sd_clinic", sd_clinic)
    if isinstance(sd_patient, str) or not isinstance(sd_patient, Sequence):
        raise ValueError(
            f"sd_patient must be a sequence of two SDs (intercept, time), got {sd_patient!r}."
        )
    if len(sd_patient) != 2:
        raise ValueError(
            f"sd_patient must hold two SDs (intercept, time), got {len(sd_patient)} values."
        )
    sd_int = _sd("sd_patient[0]", sd_patient[0])
    sd_slope = _sd("sd_patient[1]", sd_patient[1])
    cor_patient = _real("cor_patient", cor_patient)
    if not -1.0 < cor_patient < 1.0:
        raise ValueError(f"cor_patient must satisfy |cor_patient| < 1, got {cor_patient}.")
    sigma = _sd("sigma", sigma)
    n_raters = _count("crossed", crossed, minimum=0)
    sd_crossed = _sd("sd_crossed", sd_crossed)
    missing_response = _real("missing_response", missing_response)
    if not 0.0 <= missing_response < 1.0:
        raise ValueError(
            f"missing_response must satisfy 0 <= missing_response < 1, got {missing_response}."
        )
    rng = np.random.default_rng(_seed(seed))

    # Design: clinics -> patients -> visits.
    n_patients = n_clinics * patients_per_clinic
    clinic_levels = _levels("c", n_clinics)
    width = max(2, len(str(patients_per_clinic)))
    patient_levels = [
        f"{clinic}p{j:0{width}d}"
        for clinic in clinic_levels
        for j in range(1, patients_per_clinic + 1)
    ]
    clinic_of_patient = np.repeat(np.arange(n_clinics), patients_per_clinic)
    trt_patient = np.concatenate(
        [_balanced_binary(patients_per_clinic, rng) for _ in range(n_clinics)]
    )
    age_patient = rng.standard_normal(n_patients)
    dose_patient = _DOSE_PATIENT_SD * rng.standard_normal(n_patients)
    if unbalanced:
        visits = rng.integers(2, n_times + 1, size=n_patients)
    else:
        visits = np.full(n_patients, n_times)

    # Random effects.
    u_clinic = sd_clinic * rng.standard_normal(n_clinics)
    z = rng.standard_normal((n_patients, 2))
    u_int = sd_int * z[:, 0]
    u_slope = sd_slope * (cor_patient * z[:, 0] + math.sqrt(1.0 - cor_patient**2) * z[:, 1])

    # Rows.
    patient = np.repeat(np.arange(n_patients), visits)
    clinic = clinic_of_patient[patient]
    time = np.concatenate([np.arange(k, dtype=np.int64) for k in visits])
    n = time.size
    trt = trt_patient[patient]
    age = age_patient[patient]
    dose = dose_patient[patient] + rng.standard_normal(n)
    noise = sigma * rng.standard_normal(n)

    eta = (
        b["Intercept"]
        + b["time"] * time
        + b["trt"] * trt
        + b["trt:time"] * trt * time
        + b["age"] * age
        + b["age:time"] * age * time
        + b["dose"] * dose
        + u_clinic[clinic]
        + u_int[patient]
        + u_slope[patient] * time
    )

    rater_levels = _levels("r", n_raters)
    u_rater = sd_crossed * rng.standard_normal(n_raters)
    rater = rng.permutation(np.resize(np.arange(n_raters), n)) if n_raters else None
    if rater is not None:
        eta = eta + u_rater[rater]

    y = eta + noise
    n_missing = min(round(missing_response * n), n - 1)
    if n_missing:
        y[rng.choice(n, size=n_missing, replace=False)] = np.nan

    data = pd.DataFrame(
        {
            "y": y,
            "time": time,
            "trt": trt.astype(np.int64),
            "age": age,
            "dose": dose,
            "clinic": _factor(clinic, clinic_levels),
            "patient": _factor(patient, patient_levels),
        }
    )
    nested_levels = [
        f"{clinic_levels[c]}:{p}" for c, p in zip(clinic_of_patient, patient_levels, strict=True)
    ]
    effects = {
        "clinic": pd.DataFrame(
            {"Intercept": u_clinic}, index=pd.Index(clinic_levels, name="clinic")
        ),
        "clinic:patient": pd.DataFrame(
            {"Intercept": u_int, "time": u_slope},
            index=pd.Index(nested_levels, name="clinic:patient"),
        ),
    }
    params: dict[str, Any] = {
        "b": b,
        "sd_clinic": {"Intercept": sd_clinic},
        "sd_clinic:patient": {"Intercept": sd_int, "time": sd_slope},
        "cor_clinic:patient": cor_patient,
    }
    formula = "y ~ trt * time + age * time + dose + (1 | clinic) + (1 + time | clinic:patient)"
    if rater is not None:
        data["rater"] = _factor(rater, rater_levels)
        effects["rater"] = pd.DataFrame(
            {"Intercept": u_rater}, index=pd.Index(rater_levels, name="rater")
        )
        params["sd_rater"] = {"Intercept": sd_crossed}
        formula += " + (1 | rater)"
    params["sigma"] = sigma
    return SimulatedData(data=data, params=params, effects=effects, formula=formula)


def crossed(
    n_subjects: int = 30,
    n_items: int = 20,
    reps: int = 2,
    *,
    beta0: float = 1.0,
    beta_x: float = 0.5,
    sd_subject: float = 0.6,
    sd_item: float = 0.4,
    sigma: float = 0.5,
    seed: int | None = None,
) -> SimulatedData:
    """Simulate a fully crossed subjects-by-items design with random intercepts.

    Every subject meets every item ``reps`` times;
    ``y = beta0 + beta_x*x + u_subject + u_item + N(0, sigma**2)`` with ``x ~ N(0, 1)`` per
    row, ``u_subject ~ N(0, sd_subject**2)`` and ``u_item ~ N(0, sd_item**2)``.

    Parameters
    ----------
    n_subjects : int, default 30
        Number of subjects (levels ``"s01"``, ...; >= 1).
    n_items : int, default 20
        Number of items (levels ``"i01"``, ...; >= 1).
    reps : int, default 2
        Replicates per ``(subject, item)`` cell (>= 1).
    beta0, beta_x : float, default 1.0, 0.5
        Intercept and slope of ``x``.
    sd_subject : float, default 0.6
        SD of the subject random intercepts (>= 0).
    sd_item : float, default 0.4
        SD of the item random intercepts (>= 0).
    sigma : float, default 0.5
        Residual SD (>= 0).
    seed : int, optional
        Seed of ``numpy.random.default_rng``; the same seed gives identical data.

    Returns
    -------
    SimulatedData
        ``data`` has columns ``y``, ``x``, ``subject``, ``item`` (``subject`` and ``item``
        categorical); ``params`` holds ``"b"`` (``{"Intercept": beta0, "x": beta_x}``),
        ``"sd_subject"``, ``"sd_item"`` (``{"Intercept": ...}``) and ``"sigma"``;
        ``effects`` holds ``"subject"`` and ``"item"``; ``formula`` is
        ``"y ~ x + (1 | subject) + (1 | item)"``.

    Raises
    ------
    ValueError
        If an argument is out of range; the message names the argument.

    Examples
    --------
    >>> sim = crossed(n_subjects=4, n_items=3, reps=2, seed=0)
    >>> sim.data.shape
    (24, 4)
    >>> sim.formula
    'y ~ x + (1 | subject) + (1 | item)'
    """
    n_subjects = _count("n_subjects", n_subjects)
    n_items = _count("n_items", n_items)
    reps = _count("reps", reps)
    beta0 = _real("beta0", beta0)
    beta_x = _real("beta_x", beta_x)
    sd_subject = _sd("sd_subject", sd_subject)
    sd_item = _sd("sd_item", sd_item)
    sigma = _sd("sigma", sigma)
    rng = np.random.default_rng(_seed(seed))

    subject_levels = _levels("s", n_subjects)
    item_levels = _levels("i", n_items)
    subject = np.repeat(np.arange(n_subjects), n_items * reps)
    item = np.tile(np.repeat(np.arange(n_items), reps), n_subjects)
    n = subject.size
    u_subject = sd_subject * rng.standard_normal(n_subjects)
    u_item = sd_item * rng.standard_normal(n_items)
    x = rng.standard_normal(n)
    y = beta0 + beta_x * x + u_subject[subject] + u_item[item] + sigma * rng.standard_normal(n)

    data = pd.DataFrame(
        {
            "y": y,
            "x": x,
            "subject": _factor(subject, subject_levels),
            "item": _factor(item, item_levels),
        }
    )
    return SimulatedData(
        data=data,
        params={
            "b": {"Intercept": beta0, "x": beta_x},
            "sd_subject": {"Intercept": sd_subject},
            "sd_item": {"Intercept": sd_item},
            "sigma": sigma,
        },
        effects={
            "subject": pd.DataFrame(
                {"Intercept": u_subject}, index=pd.Index(subject_levels, name="subject")
            ),
            "item": pd.DataFrame({"Intercept": u_item}, index=pd.Index(item_levels, name="item")),
        },
        formula="y ~ x + (1 | subject) + (1 | item)",
    )
