"""Design of the ``compositional`` kind: the counts (samples × taxa) checked, filtered and
aligned with the sample metadata, whose right-hand-side formula gives the fixed effects and
grouping factors of every taxon's log-ratio.

The metadata's formula is designed by the regression core (a placeholder response), so
contrasts, interactions, nested and crossed factors, dropped rows and their report work as
for any regression; the counts follow the samples the metadata keeps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.design.data import DataWarning
from mixedbayes.errors import DataError, Problem, SpecError, format_rows

if TYPE_CHECKING:
    from mixedbayes.compositional import Transform
    from mixedbayes.design.data import DataReport
    from mixedbayes.design.design import Design
    from mixedbayes.design.groups import GroupFactor
    from mixedbayes.families import Family, Link
    from mixedbayes.spec.compositional import CompositionalSpec

__all__ = [
    "SAMPLE_DIM",
    "TABLES",
    "TAXON_DIM",
    "CompositionalDesign",
    "make_compositional_design",
]

#: The two tables a compositional model is fitted to.
TABLES = ("counts", "samples")
#: The dimensions of samples and taxa.
SAMPLE_DIM, TAXON_DIM = "sample_id", "taxon"  # ArviZ stacks (chain, draw) as "sample"


@dataclass(frozen=True, eq=False)
class CompositionalDesign:
    """A compositional spec applied to its counts and sample metadata.

    Attributes
    ----------
    spec : CompositionalSpec
    samples : Design
        The metadata's regression design (fixed effects ``X``, ``groups``); its rows are the
        samples used.
    counts : ndarray, shape (samples, taxa)
        Counts (or proportions for ``logratio_normal``) of the taxa kept.
    taxa : tuple of str
    totals : ndarray
        Each sample's total over the taxa kept (its library size for counts).
    is_counts : bool
    transform : Transform
        Set up on the taxa kept (the ALR reference chosen).
    outcome : ndarray or None
        ``logratio_normal``: the zero-replaced compositions' coordinates (samples ×
        coordinates).
    centre : ndarray
        CLR of the pooled composition (the intercepts' prior centre).
    dropped_taxa : dict of str to str
        Taxa left out and why.
    """

    spec: CompositionalSpec
    samples: Design
    counts: np.ndarray
    taxa: tuple[str, ...]
    totals: np.ndarray
    is_counts: bool
    transform: Transform
    outcome: np.ndarray | None
    centre: np.ndarray
    dropped_taxa: dict[str, str]
    source_tables: dict[str, pd.DataFrame] = field(repr=False)

    @property
    def family(self) -> Family:
        """Placeholder of the protocol (the likelihood is ``spec.likelihood``)."""
        return self.samples.family

    @property
    def link(self) -> Link:
        """Placeholder of the protocol (identity)."""
        return self.samples.link

    @property
    def response(self) -> str:
        """``counts`` or ``logratio`` (the observed variable)."""
        return "logratio" if self.spec.likelihood == "logratio_normal" else "counts"

    @property
    def y(self) -> np.ndarray:
        """The observed values (counts, or the log-ratio coordinates)."""
        return self.outcome if self.outcome is not None else self.counts

    @property
    def groups(self) -> tuple[GroupFactor, ...]:
        """The metadata's grouping factors."""
        return self.samples.groups

    def group(self, name: str) -> GroupFactor:
        """The grouping factor ``name``."""
        return self.samples.group(name)

    @property
    def data(self) -> pd.DataFrame:
        """The metadata rows used."""
        return self.samples.data

    @property
    def source(self) -> pd.DataFrame:
        """The metadata as given (``source_tables`` holds both tables)."""
        return self.source_tables["samples"]

    @property
    def report(self) -> DataReport:
        """Samples in, used and dropped (missing metadata)."""
        return self.samples.report

    @property
    def n(self) -> int:
        """Samples used."""
        return int(self.counts.shape[0])

    @property
    def obs_index(self) -> pd.Index:
        """The sample ids used."""
        return self.samples.obs_index

    @property
    def slopes(self) -> list[str]:
        """The fixed-effect terms other than the intercept."""
        return [t for t in self.samples.fixed_terms if t != "Intercept"]

    def coords(self) -> dict[str, list[Any]]:
        """Coordinates of every dimension of the model."""
        from mixedbayes.naming import Names

        names = Names()
        coords: dict[str, list[Any]] = {
            SAMPLE_DIM: list(self.obs_index),
            TAXON_DIM: list(self.taxa),
            names.term_dim: list(self.samples.fixed_terms),
            names.slope_dim: self.slopes,
            "coordinate": list(self.transform.coordinates()),
        }
        for g in self.groups:
            coords.update(g.coords())
        return coords


def _tables(data: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    from mixedbayes.design.data import named_tables

    counts, samples = named_tables(
        data,
        TABLES,
        "compositional",
        'pass {"counts": samples × taxa (sample ids as index), "samples": metadata}.',
        load="pd.read_csv(..., index_col=0)",
    )
    return counts, samples


def _sample_ids(samples: pd.DataFrame, spec: CompositionalSpec) -> pd.Index:
    if spec.sample is None:
        ids = samples.index.astype(str)
    elif spec.sample not in samples.columns:
        raise DataError(
            f"the sample column {spec.sample!r} is not in the samples table.",
            where="sample",
            hint=f"use one of {list(samples.columns)[:8]}, or leave it out to use the index.",
        )
    else:
        ids = pd.Index(samples[spec.sample].astype(str))
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise DataError(
            f"sample ids {format_rows(list(dup))} appear more than once in the samples table.",
            where="data.samples",
            hint="give one metadata row per sample.",
        )
    return pd.Index(ids)


def _count_problems(
    counts: pd.DataFrame, ids: pd.Index, spec: CompositionalSpec
) -> tuple[list[Problem], bool]:
    problems: list[Problem] = []
    cids = counts.index.astype(str)
    only_counts = sorted(set(cids) - set(ids))
    only_meta = sorted(set(ids) - set(cids))
    if only_counts:
        problems.append(
            Problem(
                f"samples {format_rows(only_counts)} are in the counts but not in the metadata.",
                "data.samples",
                "add their metadata rows or drop them from the counts.",
            )
        )
    if only_meta:
        problems.append(
            Problem(
                f"samples {format_rows(only_meta)} are in the metadata but not in the counts.",
                "data.counts",
                "the counts table's index must hold every sample id of the metadata.",
            )
        )
    if cids.duplicated().any():
        problems.append(
            Problem(
                f"sample ids {format_rows(list(cids[cids.duplicated()].unique()))} appear more "
                "than once in the counts.",
                "data.counts",
                "give one row per sample.",
            )
        )
    non_numeric = [c for c in counts.columns if not pd.api.types.is_numeric_dtype(counts[c])]
    if non_numeric:
        problems.append(
            Problem(
                f"taxa columns {format_rows(non_numeric)} are not numeric.",
                "data.counts",
                "the counts table holds only taxa (sample ids as the index, not a column).",
            )
        )
        return problems, True
    values = counts.to_numpy(dtype=float)
    bad = counts.index[~np.isfinite(values).all(axis=1)]
    if len(bad):
        problems.append(
            Problem(
                f"samples {format_rows(list(bad))} have missing or infinite counts.",
                "data.counts",
                "use 0 for a taxon not seen.",
            )
        )
    negative = counts.index[(values < 0).any(axis=1)]
    if len(negative):
        problems.append(
            Problem(
                f"samples {format_rows(list(negative))} have negative counts.",
                "data.counts",
                "counts and proportions are >= 0.",
            )
        )
    finite = values[np.isfinite(values)]
    integer = bool(np.all(finite == np.round(finite)))
    if spec.likelihood != "logratio_normal" and not integer:
        rows = counts.index[(np.abs(values - np.round(values)) > 0).any(axis=1)]
        problems.append(
            Problem(
                f"the {spec.likelihood} likelihood takes integer counts; samples "
                f"{format_rows(list(rows))} have fractions.",
                "data.counts",
                "give the read counts, or use likelihood: logratio_normal for proportions.",
            )
        )
    if spec.likelihood == "logratio_normal" and not integer:
        sums = np.nansum(values, axis=1)
        off = counts.index[np.abs(sums - 1.0) > 1e-6]
        if len(off):
            problems.append(
                Problem(
                    f"proportions must sum to 1 per sample; samples {format_rows(list(off))} "
                    "do not.",
                    "data.counts",
                    "give every taxon of the sample (or the read counts), or renormalise.",
                )
            )
    return problems, integer


def _keep_taxa(counts: pd.DataFrame, spec: CompositionalSpec) -> dict[str, str]:
    """Taxa to drop, and why (a list or filter in the spec; all-zero taxa always)."""
    from mixedbayes.spec.compositional import TaxaFilter

    dropped: dict[str, str] = {}
    columns = [str(c) for c in counts.columns]
    if isinstance(spec.taxa, list):
        unknown = [t for t in spec.taxa if t not in columns]
        if unknown:
            raise DataError(
                f"taxa {format_rows(unknown)} are not columns of the counts.",
                where="taxa",
                hint=f"use column names such as {columns[:5]}.",
            )
        dropped.update({t: "not listed in taxa" for t in columns if t not in spec.taxa})
    values = counts.to_numpy(dtype=float)
    present = np.mean(values > 0, axis=0)
    total = values.sum(axis=0)
    for j, t in enumerate(columns):
        if t in dropped:
            continue
        if total[j] == 0:
            dropped[t] = "no reads in any sample"
        elif isinstance(spec.taxa, TaxaFilter):
            if present[j] < spec.taxa.min_prevalence:
                dropped[t] = f"prevalence {present[j]:.3g} < {spec.taxa.min_prevalence:g}"
            elif total[j] < spec.taxa.min_count:
                dropped[t] = f"{total[j]:g} reads < {spec.taxa.min_count:g}"
    return dropped


def make_compositional_design(spec: CompositionalSpec, data: Any) -> CompositionalDesign:
    """Apply a compositional spec to ``{"counts": counts, "samples": metadata}``.

    Raises
    ------
    DataError
        Naming every problem: a missing table, samples in one table only, negative,
        missing or (for count likelihoods) fractional counts, proportions that do not sum to
        1, unknown taxa, fewer than two taxa left.
    """
    from mixedbayes.compositional import get_transform, replace_zeros
    from mixedbayes.design.design import make_regression_design
    from mixedbayes.spec.compositional import RESPONSE
    from mixedbayes.spec.model import LMMSpec

    counts, samples = _tables(data)
    if spec.sample is not None and spec.sample in counts.columns:
        counts = counts.set_index(spec.sample)  # a CSV read without index_col
    ids = _sample_ids(samples, spec)
    problems, integer = _count_problems(counts, ids, spec)
    DataError.collect(problems)
    dropped = _keep_taxa(counts, spec)
    if dropped:
        reasons = pd.Series(dropped).value_counts()
        warnings.warn(
            f"{len(dropped)} of {counts.shape[1]} taxa dropped ("
            + "; ".join(f"{n}: {why}" for why, n in reasons.items())
            + "); design.dropped_taxa lists them.",
            DataWarning,
            stacklevel=3,
        )
    taxa = tuple(str(c) for c in counts.columns if str(c) not in dropped)
    if len(taxa) < 2:
        raise DataError(
            f"{len(taxa)} taxa are left after the filters; a composition needs at least 2.",
            where="taxa",
            hint="lower min_prevalence / min_count, or list more taxa.",
        )
    meta = samples.copy()
    meta.index = ids
    meta[RESPONSE] = 0.0
    regression = LMMSpec(
        formula=f"{RESPONSE} {spec.formula}",
        contrasts=spec.contrasts,
        parametrization=spec.parametrization,
        group_effects=spec.group_effects,
    )
    samples_design = make_regression_design(regression, meta, formula=regression.formula)
    if list(samples_design.fixed_terms)[:1] != ["Intercept"]:
        raise SpecError(
            "a compositional model needs an intercept: each taxon's baseline log-ratio.",
            where="formula",
            hint="remove '0 +' or '- 1' from the formula.",
        )
    used = [str(i) for i in samples_design.obs_index]
    table = counts.copy()
    table.index = table.index.astype(str)
    table.columns = [str(c) for c in table.columns]
    values = table.loc[used, list(taxa)].to_numpy(dtype=float)
    transform = get_transform(spec.transform, **spec.transform_options()).setup(taxa, values)
    outcome = None
    if spec.likelihood == "logratio_normal":
        outcome = transform.forward(replace_zeros(values, spec.zeros, spec.zero_parameter()))
    samples_design = _parametrize_groups(samples_design, values, outcome, spec)
    pooled = values.sum(axis=0) + 0.5
    log_p = np.log(pooled / pooled.sum())
    return CompositionalDesign(
        spec=spec,
        samples=samples_design,
        counts=values,
        taxa=taxa,
        totals=values.sum(axis=1),
        is_counts=integer,
        transform=transform,
        outcome=outcome,
        centre=log_p - log_p.mean(),
        dropped_taxa=dropped,
        source_tables={"counts": counts.copy(), "samples": samples.copy()},
    )


def _parametrize_groups(
    design: Design, values: np.ndarray, outcome: np.ndarray | None, spec: CompositionalSpec
) -> Design:
    """Each factor's blocks parametrized by the regression core's ``auto`` rule, applied to
    every taxon's log-ratios at once (CLR of the counts plus ½, or the transformed outcome):
    centred when the median data weight over taxa exceeds 1, so subjects seen in several
    samples get centred effects (their latent log-abundances pin them down)."""
    import dataclasses

    from mixedbayes.design.parametrization import choose_parametrization, one_centred_intercept

    y = outcome if outcome is not None else np.log(values + 0.5)
    y = y - y.mean(axis=1, keepdims=True)
    groups = tuple(
        choose_parametrization(f, y, design.X, spec.group_options(f.name).parametrization)
        for f in design.groups
    )
    auto = {f.name for f in groups if spec.group_options(f.name).parametrization == "auto"}
    return dataclasses.replace(design, groups=one_centred_intercept(groups, auto))
