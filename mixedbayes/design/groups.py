"""The group structure of a design: grouping factors, their levels, terms and bars.

A grouping factor (``Subject``, ``clinic``, ``clinic:patient``) has levels (the real level
names), a level index per row, and a matrix ``Z`` with one column per term (``Intercept``,
``Days``). Its terms are split into blocks: the terms of one bar ``(x | g)`` form a correlated
block; a double bar ``(x || g)`` gives one independent block per term. Every model kind builds
its group effects from these objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mixedbayes.errors import Problem, SpecError
from mixedbayes.spec.formula import Bar

__all__ = ["GroupBlock", "GroupFactor", "group_factors"]

Param = Literal["centered", "noncentered"]


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class GroupBlock:
    """Terms of one grouping factor that share a covariance structure.

    Attributes
    ----------
    columns : tuple of int
        Positions of the block's terms in the factor's ``terms``.
    correlated : bool
        Whether the terms get an LKJ-correlated multivariate normal (else independent).
    parametrization : {"centered", "noncentered"}
        How the effects are sampled.
    reason : str
        Why that parametrization was chosen (``auto``) or that the spec fixed it.
    """

    columns: tuple[int, ...]
    correlated: bool
    parametrization: Param = "noncentered"
    reason: str = ""


@dataclass(frozen=True)
class GroupFactor:
    """One grouping factor with its levels, terms, blocks and row mapping.

    Attributes
    ----------
    name : str
        As written in the formula (``"Subject"``, ``"clinic:patient"`` for a nested factor).
    levels : tuple of str
        The observed levels, in formulae's order.
    terms : tuple of str
        ``"Intercept"`` and the names of the varying slopes.
    index : ndarray of int, shape (n,)
        Level of each row.
    Z : ndarray, shape (n, len(terms))
        Value of each term at each row (1 for the intercept).
    blocks : tuple of GroupBlock
    formulae_terms : tuple of str
        The formulae group-term names behind the factor (``"1|Subject"``, ``"Days|Subject"``),
        used to evaluate new data.
    level_columns : tuple of int
        For each observed level, its column in formulae's (possibly larger) level set.
    """

    name: str
    levels: tuple[str, ...]
    terms: tuple[str, ...]
    index: np.ndarray
    Z: np.ndarray
    blocks: tuple[GroupBlock, ...]
    formulae_terms: tuple[str, ...]
    level_columns: tuple[int, ...]

    @property
    def n_levels(self) -> int:
        """Number of levels."""
        return len(self.levels)

    @property
    def counts(self) -> np.ndarray:
        """Rows per level."""
        return np.bincount(self.index, minlength=self.n_levels)

    @property
    def correlated(self) -> bool:
        """Whether any block has correlated terms (so the factor has ``cor_<group>``)."""
        return any(b.correlated for b in self.blocks)

    @property
    def dim(self) -> str:
        """Dimension name of the levels (the factor name)."""
        return self.name

    @property
    def term_dim(self) -> str:
        """Dimension name of the terms: ``<group>_term``."""
        return f"{self.name}_term"

    def block_term_dim(self, block: int) -> str:
        """Dimension name of one block's terms when the factor has several blocks:
        ``<group>_term_<block>`` (the dims of ``r_<group>_<block>``)."""
        return f"{self.term_dim}_{block}"

    def coords(self) -> dict[str, list[Any]]:
        """Coordinates of the factor's dimensions: levels, terms and, with several blocks,
        each block's terms."""
        coords: dict[str, list[Any]] = {
            self.dim: list(self.levels),
            self.term_dim: list(self.terms),
        }
        if len(self.blocks) > 1:
            for b, block in enumerate(self.blocks):
                coords[self.block_term_dim(b)] = [self.terms[c] for c in block.columns]
        return coords

    def with_blocks(self, blocks: tuple[GroupBlock, ...]) -> GroupFactor:
        """A copy with other blocks (used to record the parametrization choice)."""
        return GroupFactor(
            self.name,
            self.levels,
            self.terms,
            self.index,
            self.Z,
            blocks,
            self.formulae_terms,
            self.level_columns,
        )


def _expr_labels(term: Any) -> list[str]:
    from formulae.terms.terms import Intercept

    if isinstance(term.expr, Intercept):
        return ["Intercept"]
    return list(term.expr.labels)


def _expr_matrix(term: Any) -> np.ndarray:
    data = np.asarray(term.expr.data, dtype=float)
    return data[:, None] if data.ndim == 1 else data


def group_factors(group_matrix: Any, bars: tuple[Bar, ...], n: int) -> tuple[GroupFactor, ...]:
    """Build the grouping factors from formulae's group-effects matrix and the bars.

    Parameters
    ----------
    group_matrix : formulae.matrices.GroupEffectsMatrix or None
    bars : tuple of Bar
        From :func:`mixedbayes.spec.formula.split_formula`, in formula order.
    n : int
        Number of rows.
    """
    if group_matrix is None or not bars:
        return ()
    terms = group_matrix.terms
    owner: dict[str, int] = {}
    for b, bar in enumerate(bars):
        for name in bar.term_names:
            if name in owner:
                raise SpecError(
                    f"the group term {name!r} is written twice (in {bars[owner[name]].text} and "
                    f"{bar.text}).",
                    where="formula",
                    hint="keep it in one bar.",
                )
            owner[name] = b
    factors: dict[str, dict[str, Any]] = {}
    for b, bar in enumerate(bars):
        for name in bar.term_names:
            term = terms[name]
            fname = term.factor.name
            entry = factors.setdefault(
                fname, {"labels": [], "Z": [], "blocks": [], "fterms": [], "J": None}
            )
            if entry["J"] is None:
                entry["J"] = np.asarray(term.factor.data).argmax(axis=1)
                entry["groups"] = list(term.groups)
            labels = _expr_labels(term)
            start = len(entry["labels"])
            for lab in labels:
                if lab in entry["labels"]:
                    raise SpecError(
                        f"group factor {fname!r} gets the term {lab!r} twice.",
                        where="formula",
                        hint="remove the repeated term (e.g. '(1 | g) + (x | g)' has two "
                        "intercepts; write '(1 | g) + (0 + x | g)').",
                    )
            entry["labels"] += labels
            entry["Z"].append(_expr_matrix(term))
            entry["fterms"].append(name)
            entry["blocks"].append((b, tuple(range(start, start + len(labels)))))
    out = []
    for fname, entry in factors.items():
        observed = np.unique(entry["J"])
        remap = np.full(len(entry["groups"]), -1)
        remap[observed] = np.arange(observed.size)
        # One block per bar; a double bar makes one independent block per term.
        blocks: list[GroupBlock] = []
        merged: dict[int, list[int]] = {}
        for b, cols in entry["blocks"]:
            merged.setdefault(b, []).extend(cols)
        for b, cols in merged.items():
            if bars[b].correlated and len(cols) > 1:
                blocks.append(GroupBlock(tuple(cols), True))
            else:
                blocks.extend(GroupBlock((c,), False) for c in cols)
        out.append(
            GroupFactor(
                name=fname,
                levels=tuple(str(entry["groups"][i]) for i in observed),
                terms=tuple(entry["labels"]),
                index=_frozen(remap[entry["J"]].astype(np.int64)),
                Z=_frozen(np.column_stack(entry["Z"]).astype(float)),
                blocks=tuple(blocks),
                formulae_terms=tuple(entry["fterms"]),
                level_columns=tuple(int(i) for i in observed),
            )
        )
    return tuple(out)


def level_sums(index: np.ndarray, values: np.ndarray, n_levels: int) -> np.ndarray:
    """Per level, the sum of the rows of ``values`` (any trailing shape)."""
    flat = values.reshape(values.shape[0], -1)
    out = np.empty((n_levels, flat.shape[1]))
    for j in range(flat.shape[1]):
        out[:, j] = np.bincount(index, weights=flat[:, j], minlength=n_levels)
    return out.reshape((n_levels, *values.shape[1:]))


def _level_order(frame: pd.DataFrame, name: str, labels: pd.Series) -> list[str]:
    """The observed levels of a (possibly ``a:b``) factor in formulae's order: each
    component's categories (pandas categorical) or sorted values, combined in order."""
    parts = name.split(":")
    keys = []
    for part in parts:
        col = frame[part]
        if isinstance(col.dtype, pd.CategoricalDtype):
            keys.append(col.cat.codes.to_numpy())
        else:
            keys.append(pd.factorize(col, sort=True)[0])
    first = pd.Series(np.arange(len(labels))).groupby(labels.to_numpy()).first()
    rows = first.to_numpy()
    order = np.lexsort([k[rows] for k in reversed(keys)])
    return [str(v) for v in first.index.to_numpy()[order]]


def evaluate_factor(
    factor: GroupFactor, group_matrix: Any, frame: pd.DataFrame, labels: list[str]
) -> GroupFactor:
    """``factor`` (its terms learnt on a few rows) evaluated on all rows of ``frame``: the
    term values from formulae's terms, the levels and each row's level from ``labels``."""
    cols = []
    for t in factor.formulae_terms:
        x = np.asarray(group_matrix.terms[t].expr.eval_new_data(frame), dtype=float)
        cols.append(x[:, None] if x.ndim == 1 else x)
    series = pd.Series(labels)
    levels = _level_order(frame, factor.name, series)
    codes = pd.Categorical(series, categories=levels).codes
    return dataclasses.replace(
        factor,
        levels=tuple(levels),
        index=_frozen(np.asarray(codes, dtype=np.int64)),
        Z=_frozen(np.column_stack(cols).astype(float)),
        level_columns=tuple(range(len(levels))),
    )


def factor_problems(factors: tuple[GroupFactor, ...], n: int) -> list[Problem]:
    """Warnings-worthy structure problems (a factor with a single level cannot vary)."""
    problems = []
    for f in factors:
        if f.n_levels < 2:
            problems.append(
                Problem(
                    f"grouping factor has a single level ({f.levels[0]!r}): its effects cannot "
                    "be told apart from the fixed effects.",
                    f"group '{f.name}'",
                    "remove the term or use data with more than one level.",
                )
            )
    return problems
