"""Stage 5: the posterior report (HTML or Markdown) of a fit.

:func:`build_report` runs every registered :class:`Section` that applies to the fit's kind and
family (model, data, priors, convergence gates, parameters, forest, trace and rank plots,
posterior predictive check, LOO, and per kind: shrinkage, trajectories and rootograms for
regression fits, typical values and concentration curves for PK fits) and returns a
:class:`Report`; :meth:`Report.write` writes a self-contained HTML page or Markdown.
``fit.report(path)`` does both.

A section that cannot be produced for a fit is replaced by a short note saying why; the rest
of the report is unaffected. New sections are classes registered with
:func:`register_section`.
"""

from mixedbayes.report import sections  # registers the built-in sections
from mixedbayes.report.blocks import (
    Block,
    Code,
    Figure,
    KeyValues,
    Note,
    Paragraph,
    Status,
    Table,
    figure_block,
    table_from_frame,
)
from mixedbayes.report.builder import (
    Report,
    SectionResult,
    build_report,
    report_format,
    write_report,
)
from mixedbayes.report.registry import (
    SECTIONS,
    ReportContext,
    Section,
    SectionUnavailable,
    get_section,
    register_section,
    section_keys,
)

__all__ = [
    "SECTIONS",
    "Block",
    "Code",
    "Figure",
    "KeyValues",
    "Note",
    "Paragraph",
    "Report",
    "ReportContext",
    "Section",
    "SectionResult",
    "SectionUnavailable",
    "Status",
    "Table",
    "build_report",
    "figure_block",
    "get_section",
    "register_section",
    "report_format",
    "section_keys",
    "sections",
    "table_from_frame",
    "write_report",
]
