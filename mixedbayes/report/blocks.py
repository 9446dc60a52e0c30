"""The content of a report section: paragraphs, notes, key-value lists, tables, figures, code.

Sections build these plain objects; :mod:`mixedbayes.report.render` turns them into HTML or
Markdown. Tables keep their cells as text (numbers formatted once, here), so both formats
show the same values.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

__all__ = [
    "STATUSES",
    "Block",
    "Code",
    "Figure",
    "KeyValues",
    "Note",
    "Paragraph",
    "Status",
    "Table",
    "figure_block",
    "format_value",
    "spec_line",
    "table_from_frame",
    "worst",
]

Status = Literal["pass", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail")


def spec_line(spec: Any) -> str:
    """A model spec in one line: its formula, or its structural model and parameters.

    Parameters
    ----------
    spec : ModelSpec

    Returns
    -------
    str
    """
    from mixedbayes.kinds import kind_of

    return kind_of(spec).describe(spec)


def worst(statuses: Iterable[Status | None]) -> Status | None:
    """The worst of some statuses (``fail`` > ``warn`` > ``pass``); None when none is given.

    Parameters
    ----------
    statuses : iterable of {"pass", "warn", "fail", None}
        None entries are ignored.

    Returns
    -------
    {"pass", "warn", "fail"} or None
    """
    found = [s for s in statuses if s is not None]
    if not found:
        return None
    return max(found, key=STATUSES.index)


def format_value(value: Any, digits: int = 4) -> str:
    """Text of one table cell: ``digits`` significant digits for floats, '–' for missing.

    Parameters
    ----------
    value : object
        A number, string, or anything with a ``str``.
    digits : int
        Significant digits of a float.

    Returns
    -------
    str
    """
    if value is None:
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        v = float(value)
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v == int(v) and abs(v) < 1e6:
            return str(int(v))
        return f"{v:.{digits}g}"
    text = str(value)
    return text


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of text (plain text; it is escaped when rendered)."""

    text: str


@dataclass(frozen=True)
class Note:
    """A highlighted remark: why something is missing, or a warning with its remedy.

    Attributes
    ----------
    text : str
    tone : {"info", "warn", "fail"}
    """

    text: str
    tone: Literal["info", "warn", "fail"] = "info"


@dataclass(frozen=True)
class KeyValues:
    """A short list of labelled facts (rendered as a definition list)."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """A table of text cells.

    Attributes
    ----------
    columns : tuple of str
    rows : tuple of tuple of str
    caption : str
    status_column : str, optional
        A column holding ``pass`` / ``warn`` / ``fail``, drawn as coloured badges.
    numeric : tuple of bool
        Per column, whether it is right-aligned.
    note : str
        Shown under the table (e.g. how many rows were left out).
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    status_column: str | None = None
    numeric: tuple[bool, ...] = ()
    note: str = ""

    @property
    def status_index(self) -> int | None:
        """Position of ``status_column`` (None without one)."""
        if self.status_column is None or self.status_column not in self.columns:
            return None
        return self.columns.index(self.status_column)


@dataclass(frozen=True)
class Figure:
    """A PNG image with its alternative text and caption."""

    png: bytes = field(repr=False)
    alt: str
    caption: str = ""
    name: str = "figure"


@dataclass(frozen=True)
class Code:
    """Preformatted text (the spec as YAML, a printed object)."""

    text: str
    language: str = ""


Block = Paragraph | Note | KeyValues | Table | Figure | Code


def table_from_frame(
    frame: pd.DataFrame,
    *,
    caption: str = "",
    status_column: str | None = None,
    max_rows: int | None = None,
    digits: int = 4,
    columns: Sequence[str] | None = None,
) -> Table:
    """A :class:`Table` from a DataFrame (index dropped; cells formatted as text).

    Parameters
    ----------
    frame : DataFrame
    caption : str
    status_column : str, optional
        Column with ``pass`` / ``warn`` / ``fail`` values, shown as badges.
    max_rows : int, optional
        Show at most this many rows; a note says how many were left out.
    digits : int
        Significant digits of floats.
    columns : sequence of str, optional
        Columns to keep, in this order (default: all).

    Returns
    -------
    Table
    """
    shown = frame if columns is None else frame.loc[:, list(columns)]
    total = len(shown)
    note = ""
    if max_rows is not None and total > max_rows:
        shown = shown.iloc[:max_rows]
        note = f"First {max_rows} of {total} rows."
    numeric = tuple(
        bool(pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c]))
        for c in shown.columns
    )
    rows = tuple(
        tuple(format_value(v, digits) for v in record)
        for record in shown.itertuples(index=False, name=None)
    )
    return Table(
        columns=tuple(str(c) for c in shown.columns),
        rows=rows,
        caption=caption,
        status_column=status_column,
        numeric=numeric,
        note=note,
    )


def figure_block(
    fig: MplFigure, alt: str, caption: str = "", *, name: str = "figure", dpi: int = 96
) -> Figure:
    """Render a matplotlib figure to PNG and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    alt : str
        Alternative text (what the figure shows).
    caption : str
    name : str
        A short name, used for the file name in Markdown output.
    dpi : int
        Resolution.

    Returns
    -------
    Figure
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)
    return Figure(png=buffer.getvalue(), alt=alt, caption=caption, name=name)
