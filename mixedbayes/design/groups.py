"""The group structure of a design: grouping factors, their levels, terms and bars.

A grouping factor (``Subject``, ``clinic``, ``clinic:patient``) has levels (the real level
names), a level index per row, and a matrix ``Z`` with one column per term (``Intercept``,
``Days``). Its terms are split into blocks: the terms of one bar ``(x | g)`` form a correlated
block; a double bar ``(x || g)`` gives one independent block per term. Every model kind builds
its group effects from these objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mixedbayes.design.contrasts import display_label
from mixedbayes.errors import Problem, SpecError
from mixedbayes.naming import Names
from mixedbayes.spec.formula import Bar

__all__ = [
    "GroupBlock",
    "GroupFactor",
    "GroupStructure",
    "RowMap",
    "frozen",
    "group_factors",
    "merge_factors",
]

Param = Literal["centered", "noncentered"]


def frozen(a: np.ndarray, dtype: Any = None) -> np.ndarray:
    """A read-only, contiguous copy of ``a`` (design arrays are immutable)."""
    a = np.ascontiguousarray(a, dtype=dtype)
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
class GroupStructure:
    """What one grouping factor's covariance is about: its levels, terms and blocks.

    Apart from any rows: several parts of a model (the parameters of a nonlinear model, the
    outcomes and the hazard of a joint model) can read one structure through their own
    :class:`RowMap`.

    Attributes
    ----------
    name : str
        As written in the formula (``"Subject"``, ``"clinic:patient"`` for a nested factor).
    levels : tuple of str
        The levels, with their real names.
    terms : tuple of str
        ``"Intercept"`` and the names of the varying slopes (prefixed by part after a merge).
    blocks : tuple of GroupBlock
    part : str
        ``""``, or the part whose effects these are when they have a covariance of their own
        (``"zi"`` for the group terms of a ``zi`` formula): their variables and term
        dimensions are then named after :attr:`key` (``sd_Subject_zi``), the levels keep
        the factor's dimension.
    """

    name: str
    levels: tuple[str, ...]
    terms: tuple[str, ...]
    blocks: tuple[GroupBlock, ...]
    part: str = ""

    @property
    def key(self) -> str:
        """What the factor's variable names are built on: ``<g>`` or ``<g>_<part>``
        (:meth:`~mixedbayes.naming.Names.group_key`)."""
        return Names.group_key(self.name, self.part)

    @property
    def n_levels(self) -> int:
        """Number of levels."""
        return len(self.levels)

    @property
    def correlated(self) -> bool:
        """Whether any block has correlated terms (so the factor has ``cor_<group>``)."""
        return any(b.correlated for b in self.blocks)

    @property
    def dim(self) -> str:
        """Dimension name of the levels (the factor name)."""
        return Names.level_dim(self.name)

    @property
    def term_dim(self) -> str:
        """Dimension name of the terms: ``<key>_term`` (``<group>_term`` for the plain part)."""
        return Names.group_term_dim(self.key)

    def block_term_dim(self, block: int) -> str:
        """Dimension name of one block's terms when the factor has several blocks:
        ``<key>_term_<block>`` (the dims of ``r_<key>_<block>``)."""
        return Names.block_term_dim(self.key, block)

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


@dataclass(frozen=True)
class RowMap:
    """How one set of rows reads a grouping factor's effects.

    Row ``i`` adds ``sum_k Z[i, k] · r[index[i], columns[k]]`` to its linear predictor.

    Attributes
    ----------
    index : ndarray of int, shape (n,)
        The level of each row (a position in the structure's ``levels``).
    Z : ndarray, shape (n, len(columns))
        The value of each term the rows read (1 for an intercept).
    columns : tuple of int
        The structure's terms these rows read, in ``Z``'s column order.
    """

    index: np.ndarray
    Z: np.ndarray
    columns: tuple[int, ...]

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.index.shape[0])


@dataclass(frozen=True)
class GroupFactor:
    """One grouping factor of one set of rows: a :class:`GroupStructure` read by a
    :class:`RowMap` over all its terms.

    Attributes
    ----------
    structure : GroupStructure
    rows : RowMap
    formulae_terms : tuple of str
        The formulae group-term names behind the factor (``"1|Subject"``, ``"Days|Subject"``),
        used to evaluate new data.
    level_columns : tuple of int
        For each observed level, its column in formulae's (possibly larger) level set.
    """

    structure: GroupStructure
    rows: RowMap
    formulae_terms: tuple[str, ...] = ()
    level_columns: tuple[int, ...] = ()

    @classmethod
    def make(
        cls,
        name: str,
        levels: tuple[str, ...],
        terms: tuple[str, ...],
        index: np.ndarray,
        Z: np.ndarray,
        blocks: tuple[GroupBlock, ...],
        formulae_terms: tuple[str, ...] = (),
        level_columns: tuple[int, ...] = (),
    ) -> GroupFactor:
        """A factor from its parts: structure (name, levels, terms, blocks), rows (index, Z)."""
        return cls(
            GroupStructure(name, levels, terms, blocks),
            RowMap(frozen(index), frozen(Z), tuple(range(len(terms)))),
            formulae_terms,
            level_columns,
        )

    name = property(lambda self: self.structure.name, doc="The factor's name.")
    part = property(lambda self: self.structure.part, doc="The part with its own effects.")
    key = property(lambda self: self.structure.key, doc="What its variables are named after.")
    levels = property(lambda self: self.structure.levels, doc="The observed levels.")
    terms = property(lambda self: self.structure.terms, doc="The terms.")
    blocks = property(lambda self: self.structure.blocks, doc="The blocks.")
    index = property(lambda self: self.rows.index, doc="Level of each row.")
    Z = property(lambda self: self.rows.Z, doc="Value of each term at each row.")
    n_levels = property(lambda self: self.structure.n_levels, doc="Number of levels.")
    correlated = property(lambda self: self.structure.correlated, doc="Any correlated block.")
    dim = property(lambda self: self.structure.dim, doc="Dimension name of the levels.")
    term_dim = property(lambda self: self.structure.term_dim, doc="Dimension of the terms.")

    @property
    def counts(self) -> np.ndarray:
        """Rows per level."""
        return np.bincount(self.index, minlength=self.n_levels)

    def block_term_dim(self, block: int) -> str:
        """Dimension name of one block's terms (see :meth:`GroupStructure.block_term_dim`)."""
        return self.structure.block_term_dim(block)

    def coords(self) -> dict[str, list[Any]]:
        """Coordinates of the factor's dimensions (see :meth:`GroupStructure.coords`)."""
        return self.structure.coords()

    def with_blocks(self, blocks: tuple[GroupBlock, ...]) -> GroupFactor:
        """A copy with other blocks (used to record the parametrization choice)."""
        structure = dataclasses.replace(self.structure, blocks=blocks)
        return dataclasses.replace(self, structure=structure)

    def take_rows(self, rows: np.ndarray) -> GroupFactor:
        """The factor read by some of its rows only (``rows``: a mask or positions); the
        structure (levels, terms, blocks) is unchanged."""
        index, Z = self.index[rows], self.Z[rows]
        return dataclasses.replace(self, rows=RowMap(frozen(index), frozen(Z), self.rows.columns))

    def with_part(self, part: str) -> GroupFactor:
        """A copy whose effects belong to ``part`` with a covariance of their own
        (:attr:`GroupStructure.part`)."""
        structure = dataclasses.replace(self.structure, part=part)
        return dataclasses.replace(self, structure=structure)


MergeCorrelation = Literal["block", "diagonal", "parts"]


def merge_factors(
    parts: Mapping[str, Sequence[GroupFactor]],
    *,
    correlation: MergeCorrelation = "parts",
    label: Callable[[str, str], str] = lambda part, term: f"{part}:{term}",
    parametrization: Param | Mapping[str, Param] | None = None,
    reason: str | Mapping[str, str] = "",
) -> tuple[tuple[GroupStructure, ...], dict[tuple[str, str], RowMap]]:
    """Merge the grouping factors of several parts, each over its own rows, into one
    structure per factor name.

    Parameters
    ----------
    parts : mapping of str to sequence of GroupFactor
        By part name, the part's factors (each over the part's own rows; row counts may
        differ between parts).
    correlation : {"parts", "block", "diagonal"}
        ``"parts"`` keeps each part's own blocks (no correlation across parts); ``"block"``
        makes one correlated block over every merged term (e.g. all PK parameters, or all
        outcomes of a joint model: LKJ across parts); ``"diagonal"`` makes every term
        independent.
    label : callable
        ``label(part, term)``: the merged term's name (``"log_CL:Intercept"``...).
    parametrization : {"centered", "noncentered"} or mapping, optional
        Set every merged block's parametrization (with ``reason``), or by factor name those
        of the factors it names; else the parts' own (``"parts"``) or non-centred.
    reason : str or mapping of str to str

    Returns
    -------
    structures : tuple of GroupStructure
        One per factor name, in order of first appearance; the levels are the union of the
        parts' levels in order of first appearance.
    rows : dict
        ``(part, factor name)`` → the :class:`RowMap` of that part's rows, its ``index``
        into the merged levels and its ``columns`` the merged terms it reads.
    """
    merged: dict[str, dict[str, Any]] = {}
    for part, factors in parts.items():
        for f in factors:
            entry = merged.setdefault(f.name, {"levels": [], "terms": [], "blocks": [], "by": []})
            start = len(entry["terms"])
            entry["terms"] += [label(part, t) for t in f.terms]
            entry["blocks"] += [
                dataclasses.replace(b, columns=tuple(start + c for c in b.columns))
                for b in f.blocks
            ]
            seen = set(entry["levels"])
            entry["levels"] += [lv for lv in f.levels if lv not in seen]
            entry["by"].append((part, f, tuple(range(start, start + len(f.terms)))))
    structures = []
    rows: dict[tuple[str, str], RowMap] = {}
    for name, entry in merged.items():
        k = len(entry["terms"])
        chosen = (
            parametrization.get(name) if isinstance(parametrization, Mapping) else parametrization
        )
        why = reason.get(name, "") if isinstance(reason, Mapping) else reason
        param: Param = chosen or "noncentered"
        blocks: tuple[GroupBlock, ...]
        if correlation == "block" and k > 1:
            blocks = (GroupBlock(tuple(range(k)), True, param, why),)
        elif correlation == "diagonal" or (correlation == "block" and k == 1):
            blocks = tuple(GroupBlock((c,), False, param, why) for c in range(k))
        elif chosen is not None:
            blocks = tuple(
                dataclasses.replace(b, parametrization=chosen, reason=why) for b in entry["blocks"]
            )
        else:
            blocks = tuple(entry["blocks"])
        levels = tuple(entry["levels"])
        structures.append(GroupStructure(name, levels, tuple(entry["terms"]), blocks))
        position = {lv: i for i, lv in enumerate(levels)}
        for part, f, cols in entry["by"]:
            remap = np.array([position[lv] for lv in f.levels], dtype=np.int64)
            rows[(part, name)] = RowMap(frozen(remap[f.index]), f.Z, cols)
    return tuple(structures), rows


def _expr_labels(term: Any) -> list[str]:
    from formulae.terms.terms import Intercept

    if isinstance(term.expr, Intercept):
        return ["Intercept"]
    return [display_label(lab) for lab in term.expr.labels]


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
            GroupFactor.make(
                name=fname,
                levels=tuple(str(entry["groups"][i]) for i in observed),
                terms=tuple(entry["labels"]),
                index=remap[entry["J"]].astype(np.int64),
                Z=np.column_stack(entry["Z"]).astype(float),
                blocks=tuple(blocks),
                formulae_terms=tuple(entry["fterms"]),
                level_columns=tuple(int(i) for i in observed),
            )
        )
    return tuple(out)


def find_factor(factors: Sequence[GroupFactor], name: str) -> GroupFactor:
    """The factor called ``name``; a ``SpecError`` naming the model's factors otherwise."""
    names = [f.name for f in factors]
    if name not in names:
        raise SpecError(
            f"the model has no grouping factor {name!r}.",
            where="group",
            hint=f"use one of {names}." if names else "the model has no grouping factors.",
        )
    return factors[names.index(name)]


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
    return GroupFactor.make(
        factor.name,
        tuple(levels),
        factor.terms,
        np.asarray(codes, dtype=np.int64),
        np.column_stack(cols).astype(float),
        factor.blocks,
        factor.formulae_terms,
        tuple(range(len(levels))),
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
