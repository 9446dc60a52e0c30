"""Real example data sets bundled with mixedbayes.

Every data set is a CSV file written by R (``NA`` = missing) from an R package as shipped by
Debian, together with a :class:`DatasetInfo` record: what the columns are, where the data
come from (package, original reference, licence) and the factor levels in R's order, so that
the first level is the reference level that published coefficients assume.

Grouping and ID columns, and the columns that are factors in R, are returned as pandas
``Categorical`` with string levels (``"308"`` stays ``"308"``); every other column stays
numeric.

Examples
--------
>>> from mixedbayes import datasets
>>> df = datasets.load("sleepstudy")
>>> df.shape
(180, 3)
>>> datasets.info("cbpp").categorical["period"]
['1', '2', '3', '4']
"""

from __future__ import annotations

import atexit
import contextlib
import copy
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import pandas as pd

from mixedbayes.errors import DataError

__all__ = ["DatasetInfo", "info", "load", "names", "path"]

_NA_VALUES = ["NA"]


@dataclass(frozen=True)
class DatasetInfo:
    """Description of one bundled data set.

    Parameters
    ----------
    name : str
        The name to pass to :func:`load`.
    filename : str
        The CSV file in ``mixedbayes/datasets/data/``.
    title : str
        A one-line title.
    description : str
        What the data are, and the models and published estimates they are used for.
    source : str
        The attribution line: R package, original reference and licence.
    n_rows : int
        The number of rows.
    columns : dict of str to str
        Every column, in file order, with its meaning.
    categorical : dict of str to list of str
        The columns returned as ``pandas.Categorical``, each with its levels in R's order;
        the first level is the reference level.
    """

    name: str
    filename: str
    title: str
    description: str
    source: str
    n_rows: int
    columns: dict[str, str]
    categorical: dict[str, list[str]] = field(default_factory=dict)

    @property
    def reference_levels(self) -> dict[str, str]:
        """The reference (first) level of every categorical column."""
        return {col: levels[0] for col, levels in self.categorical.items()}


def _numbered(n: int) -> list[str]:
    """Levels ``"1"``, ``"2"``, ..., ``str(n)`` in numeric order (R's order for them)."""
    return [str(i) for i in range(1, n + 1)]


_DATASETS: tuple[DatasetInfo, ...] = (
    DatasetInfo(
        name="sleepstudy",
        filename="sleepstudy.csv",
        title="Reaction times in a sleep deprivation study",
        description=(
            "Average reaction time per day of 18 subjects restricted to 3 hours of sleep per "
            "night; 10 days per subject (Days 0-9). Published REML fit of "
            "`Reaction ~ Days + (Days | Subject)` (Bates et al. 2015, J. Stat. Softw. 67(1)): "
            "Intercept 251.405 (SE 6.825), Days 10.467 (1.546); SD(Intercept) 24.741, "
            "SD(Days) 5.922, corr 0.066, residual SD 25.592."
        ),
        source="lme4; Belenky et al. 2003; GPL ≥ 2",
        n_rows=180,
        columns={
            "Reaction": "average reaction time (ms)",
            "Days": "days of sleep deprivation, 0-9",
            "Subject": "subject number (18 subjects)",
        },
        categorical={
            "Subject": [
                "308",
                "309",
                "310",
                "330",
                "331",
                "332",
                "333",
                "334",
                "335",
                "337",
                "349",
                "350",
                "351",
                "352",
                "369",
                "370",
                "371",
                "372",
            ],
        },
    ),
    DatasetInfo(
        name="cbpp",
        filename="cbpp.csv",
        title="Contagious bovine pleuropneumonia in Ethiopian herds",
        description=(
            "New serological cases of contagious bovine pleuropneumonia in 15 zebu herds, "
            "observed over 4 periods. Published binomial GLMM "
            "`cbind(incidence, size - incidence) ~ period + (1 | herd)` (adaptive quadrature, "
            "25 points): -1.399 (0.234), period2 -0.991 (0.307), period3 -1.128 (0.327), "
            "period4 -1.580 (0.428); SD(herd) 0.648."
        ),
        source="lme4; GPL ≥ 2 (original data: Lesnoff et al. 2004)",
        n_rows=56,
        columns={
            "herd": "herd (15 herds)",
            "incidence": "number of new serological cases in the period",
            "size": "herd size at the start of the period",
            "period": "period 1-4 (reference 1)",
        },
        categorical={"herd": _numbered(15), "period": _numbered(4)},
    ),
    DatasetInfo(
        name="epilepsy",
        filename="epilepsy.csv",
        title="Epileptic seizure counts (brms coding)",
        description=(
            "Seizure counts of 59 epilepsy patients at 4 visits in a trial of progabide "
            "against placebo; zAge and zBase are standardised over all rows. Published brms "
            "posterior (default priors) of `count ~ zAge + zBase * Trt + (1|patient)`, "
            "Poisson: Intercept 1.77 (0.11), zAge 0.10 (0.09), zBase 0.70 (0.12), "
            "Trt1 -0.26 (0.16), zBase:Trt1 0.06 (0.17), sd(patient) 0.58 (0.07); elpd_loo "
            "-670.0 (SE 36.0). Adding `(1|obs)`: Intercept 1.72 (0.12), sd(patient) 0.54 "
            "(0.08), sd(obs) 0.37 (0.04); elpd_loo -595.8 (14.0). "
            "`epil_MASS` holds the same data in MASS coding."
        ),
        source="brms; Thall & Vail 1990; GPL-2",
        n_rows=236,
        columns={
            "Age": "age of the patient (years)",
            "Base": "seizure count in the 8-week baseline period",
            "Trt": "treatment, 0 placebo or 1 progabide (reference 0)",
            "patient": "patient number (59 patients)",
            "visit": "visit number, 1-4",
            "count": "seizure count in the 2 weeks before the visit",
            "obs": "observation number, unique per row",
            "zAge": "Age standardised over all rows",
            "zBase": "Base standardised over all rows",
        },
        categorical={
            "Trt": ["0", "1"],
            "patient": _numbered(59),
            "visit": _numbered(4),
            "obs": _numbered(236),
        },
    ),
    DatasetInfo(
        name="epil_mass",
        filename="epil_MASS.csv",
        title="Epileptic seizure counts (MASS coding)",
        description=(
            "The epilepsy data (Thall & Vail 1990) as MASS codes them: 59 patients x 4 "
            "two-week periods, with log baseline and log age centred. Same data as "
            "`epilepsy`. In MASS `subject` is an integer; here it is categorical."
        ),
        source="MASS; Thall & Vail 1990; GPL-2 | GPL-3",
        n_rows=236,
        columns={
            "y": "seizure count in the 2-week period",
            "trt": "treatment, placebo or progabide (reference placebo)",
            "base": "seizure count in the 8-week baseline period",
            "age": "age of the patient (years)",
            "V4": "indicator of the fourth period (0/1)",
            "subject": "patient number (59 patients)",
            "period": "period, 1-4 (numeric)",
            "lbase": "log of the baseline count, centred to zero mean",
            "lage": "log of age, centred to zero mean",
        },
        categorical={"trt": ["placebo", "progabide"], "subject": _numbered(59)},
    ),
    DatasetInfo(
        name="theoph",
        filename="theoph.csv",
        title="Pharmacokinetics of theophylline",
        description=(
            "Serum theophylline concentrations of 12 subjects at 11 times over 25 hours after "
            "one oral dose. One-compartment model with first-order absorption and elimination: "
            "conc = Dose*exp(lKe + lKa - lCl) / (exp(lKa) - exp(lKe)) * "
            "(exp(-exp(lKe)*t) - exp(-exp(lKa)*t)), additive error. nlme ML fit "
            "(Pinheiro & Bates 2000, sec. 8.2), random lKa and lCl: lKe -2.4547 (0.0525), "
            "lKa 0.4657 (0.1986), lCl -3.2272 (0.0600); SD(lKa) 0.644, SD(lCl) 0.167, "
            "sigma 0.709. With a random lKe too, its SD collapses to ~0. "
            "In R `Subject` is an ordered factor, ordered by maximum concentration; its levels "
            "keep that order here, as an unordered categorical."
        ),
        source="R datasets; GPL (original data: Boeckmann, Sheiner & Beal 1994)",
        n_rows=132,
        columns={
            "Subject": "subject (12 subjects)",
            "Wt": "body weight (kg)",
            "Dose": "dose of theophylline (mg/kg)",
            "Time": "time since the dose (h)",
            "conc": "theophylline concentration (mg/L)",
        },
        categorical={
            "Subject": ["6", "7", "8", "11", "3", "2", "4", "9", "12", "10", "1", "5"],
        },
    ),
    DatasetInfo(
        name="nhanes",
        filename="nhanes.csv",
        title="NHANES example with missing values (numeric coding)",
        description=(
            "25 people from the NHANES survey, with missing values in bmi (9 NA), hyp (8 NA) "
            "and chl (10 NA). Published brms one-step imputation posterior "
            "(`bmi | mi() ~ age * mi(chl)` and `chl | mi() ~ age`): bmi ~ chl slope 0.10 "
            "(sd 0.05), chl ~ age 28.51 (13.58), sigma_bmi 3.40 (0.81), sigma_chl 40.57 (7.76)."
        ),
        source="mice; GPL (original data: Schafer 1997)",
        n_rows=25,
        columns={
            "age": "age group, 1 (20-39), 2 (40-59), 3 (60-99)",
            "bmi": "body mass index (kg/m**2)",
            "hyp": "hypertensive, 1 no or 2 yes",
            "chl": "total serum cholesterol (mg/dL)",
        },
    ),
    DatasetInfo(
        name="nhanes2",
        filename="nhanes2.csv",
        title="NHANES example with missing values (factor coding)",
        description=(
            "The `nhanes` data with age group and hypertension as factors; bmi 9 NA, hyp 8 NA, "
            "chl 10 NA."
        ),
        source="mice; GPL (original data: Schafer 1997)",
        n_rows=25,
        columns={
            "age": "age group, 20-39, 40-59 or 60-99 (reference 20-39)",
            "bmi": "body mass index (kg/m**2)",
            "hyp": "hypertensive, no or yes (reference no)",
            "chl": "total serum cholesterol (mg/dL)",
        },
        categorical={"age": ["20-39", "40-59", "60-99"], "hyp": ["no", "yes"]},
    ),
    DatasetInfo(
        name="pbcseq",
        filename="pbcseq.csv",
        title="Mayo Clinic primary biliary cirrhosis, sequential data",
        description=(
            "Repeated laboratory measurements of 312 patients with primary biliary cirrhosis "
            "(1945 visits) with their survival times; the raw source of JM's pbc2 (days instead "
            "of years). Usable as bundled joint-model data: event = status != 0. In survival "
            "`id` is an integer; here it is categorical."
        ),
        source="survival; LGPL ≥ 2 (original data: Murtaugh et al. 1994)",
        n_rows=1945,
        columns={
            "id": "patient id (312 patients)",
            "futime": "follow-up time (days)",
            "status": "status at the end of follow-up: 0 censored, 1 transplant, 2 dead",
            "trt": "treatment arm code, as stored in the source (0/1)",
            "age": "age at entry (years)",
            "sex": "sex, m or f (reference m)",
            "day": "day of the visit since registration",
            "ascites": "presence of ascites (0/1)",
            "hepato": "presence of hepatomegaly (0/1)",
            "spiders": "presence of spiders (0/1)",
            "edema": "edema: 0 none, 0.5 untreated or treated successfully, 1 despite treatment",
            "bili": "serum bilirubin (mg/dL)",
            "chol": "serum cholesterol (mg/dL)",
            "albumin": "albumin (g/dL)",
            "alk.phos": "alkaline phosphatase (U/L)",
            "ast": "aspartate aminotransferase (U/mL)",
            "platelet": "platelet count",
            "protime": "standardised blood clotting time",
            "stage": "histologic stage of disease, 1-4",
        },
        categorical={"id": _numbered(312), "sex": ["m", "f"]},
    ),
)

#: The registry: name -> :class:`DatasetInfo`, built from the records above (the one place).
_REGISTRY: dict[str, DatasetInfo] = {d.name: d for d in _DATASETS}

_files = contextlib.ExitStack()
atexit.register(_files.close)


def names() -> list[str]:
    """Names of the bundled data sets.

    Returns
    -------
    list of str
        The names accepted by :func:`load`, :func:`info` and :func:`path`, sorted.
    """
    return sorted(_REGISTRY)


def _lookup(name: str) -> DatasetInfo:
    """Find a data set by name, ignoring case; raise DataError listing the names if unknown."""
    if isinstance(name, str):
        found = _REGISTRY.get(name) or _REGISTRY.get(name.lower())
        if found is not None:
            return found
    available = ", ".join(names())
    raise DataError(
        f"Unknown data set {name!r}. Available data sets: {available}. "
        "Pass one of these names to mixedbayes.datasets.load()."
    )


def info(name: str) -> DatasetInfo:
    """Describe a bundled data set.

    Parameters
    ----------
    name : str
        The data set name (case-insensitive), one of :func:`names`.

    Returns
    -------
    DatasetInfo
        Title, description, source and licence, columns and categorical levels. The record
        is a copy: changing its dicts does not change what :func:`load` returns.

    Raises
    ------
    DataError
        If ``name`` is not a bundled data set; the message lists the available names.
    """
    return copy.deepcopy(_lookup(name))


def path(name: str) -> Path:
    """Path of a bundled data set's CSV file.

    Parameters
    ----------
    name : str
        The data set name (case-insensitive), one of :func:`names`.

    Returns
    -------
    pathlib.Path
        The CSV file (written by R, ``NA`` = missing). If the package is installed in a zip
        archive, the file is extracted to a temporary file that lives until the interpreter
        exits.

    Raises
    ------
    DataError
        If ``name`` is not a bundled data set; the message lists the available names.
    """
    resource = resources.files(__name__).joinpath("data", _lookup(name).filename)
    if isinstance(resource, Path):
        return resource
    return _files.enter_context(resources.as_file(resource))


@cache
def _read(name: str) -> pd.DataFrame:
    """Read and type one data set (cached; callers must copy)."""
    meta = _REGISTRY[name]
    resource = resources.files(__name__).joinpath("data", meta.filename)
    with resource.open("rb") as handle:
        frame = pd.read_csv(
            handle,
            na_values=_NA_VALUES,
            keep_default_na=False,
            dtype={col: str for col in meta.categorical},
        )
    for col, levels in meta.categorical.items():
        values = frame[col]
        unknown = sorted(set(values.dropna()) - set(levels))
        if unknown:
            raise DataError(
                f"Data set {name!r}: column {col!r} has values {unknown} that are not among "
                f"its registered levels {levels}."
            )
        frame[col] = pd.Categorical(values, categories=levels)
    return frame


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set.

    Parameters
    ----------
    name : str
        The data set name (case-insensitive), one of :func:`names`.

    Returns
    -------
    pandas.DataFrame
        A fresh copy on every call. ``NA`` in the file is missing; the columns listed in
        ``info(name).categorical`` are ``pandas.Categorical`` with string levels in R's order
        (the first level is the reference level); the other columns are numeric.

    Raises
    ------
    DataError
        If ``name`` is not a bundled data set; the message lists the available names.

    Examples
    --------
    >>> from mixedbayes.datasets import load
    >>> cbpp = load("cbpp")
    >>> list(cbpp["period"].cat.categories)
    ['1', '2', '3', '4']
    """
    return _read(_lookup(name).name).copy(deep=True)
