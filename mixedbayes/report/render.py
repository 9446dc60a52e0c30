"""Rendering a :class:`~mixedbayes.report.builder.Report` to HTML or Markdown (Jinja2).

HTML: one self-contained page: CSS inline, images as base64 PNG ``data:`` URIs, no script
and no external URL. Markdown: GitHub-flavoured (pipe tables); images as PNG files in a
folder next to the Markdown file, or embedded as ``data:`` URIs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from functools import cache
from typing import Any, Protocol

import jinja2

from mixedbayes.report.blocks import Block, Code, Figure, KeyValues, Note, Paragraph, Status, Table

__all__ = [
    "RenderableReport",
    "RenderedSection",
    "data_uri",
    "markdown_table",
    "render_html",
    "render_markdown",
]


class RenderedSection(Protocol):
    """A section as the templates read it (:class:`~mixedbayes.report.builder.SectionResult`)."""

    @property
    def key(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def blocks(self) -> tuple[Block, ...]: ...

    @property
    def status(self) -> Status | None: ...

    @property
    def unavailable(self) -> str: ...


class RenderableReport(Protocol):
    """A report as the templates read it (:class:`~mixedbayes.report.builder.Report`; a
    protocol, so that rendering does not import the builder, which imports it)."""

    @property
    def title(self) -> str: ...

    @property
    def subtitle(self) -> str: ...

    @property
    def facts(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def sections(self) -> Sequence[RenderedSection]: ...

    @property
    def created(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def status(self) -> Status | None: ...


BADGE_TEXT = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "figure"


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes.

    Parameters
    ----------
    png : bytes

    Returns
    -------
    str
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _kind(block: object) -> str:
    for cls, name in (
        (Paragraph, "paragraph"),
        (Note, "note"),
        (KeyValues, "keyvalues"),
        (Table, "table"),
        (Figure, "figure"),
        (Code, "code"),
    ):
        if isinstance(block, cls):
            return name
    raise TypeError(f"not a report block: {block!r}")


@cache
def _environment(markdown: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mixedbayes.report", "templates"),
        autoescape=not markdown,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["data_uri"] = data_uri
    env.filters["block_kind"] = _kind
    env.filters["md_table"] = markdown_table
    env.filters["md_escape"] = _md_escape
    env.globals["badge_text"] = BADGE_TEXT
    return env


def render_html(report: RenderableReport) -> str:
    """The report as a self-contained HTML page.

    Parameters
    ----------
    report : Report

    Returns
    -------
    str
    """
    template = _environment(False).get_template("report.html.j2")
    return template.render(report=report)


def _md_escape(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """A GitHub-flavoured pipe table; status cells in bold capitals.

    Parameters
    ----------
    table : Table

    Returns
    -------
    str
    """
    status = table.status_index
    numeric = table.numeric or (False,) * len(table.columns)
    head = "| " + " | ".join(_md_escape(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    lines = [head, rule]
    for row in table.rows:
        cells = [
            f"**{BADGE_TEXT.get(cell, cell)}**" if i == status else _md_escape(cell)
            for i, cell in enumerate(row)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(
    report: RenderableReport, image_dir: str | None = None
) -> tuple[str, dict[str, bytes]]:
    """The report as Markdown, and the images to write next to it.

    Parameters
    ----------
    report : Report
    image_dir : str, optional
        Folder (relative to the Markdown file) the images are linked from; None embeds
        them as ``data:`` URIs.

    Returns
    -------
    (str, dict of str to bytes)
        The text, and the images: relative path → PNG bytes (empty when embedded).
    """
    images: dict[str, bytes] = {}
    sources: dict[int, str] = {}
    number = 0
    for section in report.sections:
        for block in section.blocks:
            if isinstance(block, Figure):
                number += 1
                if image_dir is None:
                    sources[id(block)] = data_uri(block.png)
                else:
                    name = f"{image_dir}/{number:02d}-{_file_name(block.name)}.png"
                    images[name] = block.png
                    sources[id(block)] = name
    template = _environment(True).get_template("report.md.j2")
    text = template.render(report=report, image_src=lambda block: sources[id(block)])
    return text, images
