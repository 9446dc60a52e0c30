"""Stage 5: a fit → a :class:`Report` (HTML or Markdown) built from the registered sections."""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mixedbayes._version import __version__
from mixedbayes.errors import MixedBayesError, SpecError
from mixedbayes.report.blocks import Block, Status, spec_line, worst
from mixedbayes.report.registry import (
    SECTIONS,
    ReportableFit,
    ReportContext,
    SectionUnavailable,
    get_section,
)

if TYPE_CHECKING:
    from mixedbayes.results.protocols import FitLike

__all__ = ["FORMATS", "Report", "SectionResult", "build_report", "report_format", "write_report"]

Format = Literal["html", "md"]
FORMATS: dict[str, Format] = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class SectionResult:
    """One section as built.

    Attributes
    ----------
    key, title : str
    blocks : tuple of Block
    status : {"pass", "warn", "fail"} or None
        The badge of the section (convergence, model checks); None for the others.
    unavailable : str
        Why the section could not be produced (empty when it was).
    """

    key: str
    title: str
    blocks: tuple[Block, ...] = ()
    status: Status | None = None
    unavailable: str = ""


@dataclass(frozen=True)
class Report:
    """A posterior report: what an analyst hands to a colleague.

    Attributes
    ----------
    title : str
    subtitle : str
        The model in one line.
    facts : tuple of (str, str)
        Shown under the title (kind, family, rows, draws).
    sections : tuple of SectionResult
        In report order.
    created : str
        When it was built (ISO 8601, UTC).
    version : str
        The mixedbayes version that built it.
    """

    title: str
    subtitle: str
    facts: tuple[tuple[str, str], ...]
    sections: tuple[SectionResult, ...]
    created: str
    version: str

    @classmethod
    def now(
        cls,
        title: str,
        spec: Any,
        facts: tuple[tuple[str, str], ...],
        sections: Iterable[SectionResult],
    ) -> Report:
        """A report of ``spec`` (its one-line model as the subtitle) built now, by this
        version."""
        created = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
        return cls(title, spec_line(spec), facts, tuple(sections), created, __version__)

    @property
    def status(self) -> Status | None:
        """The worst badge over the sections (None when no section has one)."""
        return worst(s.status for s in self.sections)

    @property
    def keys(self) -> list[str]:
        """Keys of the sections, in order."""
        return [s.key for s in self.sections]

    def section(self, key: str) -> SectionResult:
        """The section with ``key``.

        Parameters
        ----------
        key : str

        Returns
        -------
        SectionResult
        """
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"the report has no section {key!r}; it has {self.keys}.")

    def to_html(self) -> str:
        """The report as one self-contained HTML page (images embedded, CSS inline).

        Returns
        -------
        str
        """
        from mixedbayes.report.render import render_html

        return render_html(self)

    def to_markdown(self, image_dir: str | None = None) -> tuple[str, dict[str, bytes]]:
        """The report as Markdown, and its images.

        Parameters
        ----------
        image_dir : str, optional
            Images are linked as ``image_dir/<name>.png`` (relative to the Markdown file);
            without it they are embedded as ``data:`` URIs and no file is returned.

        Returns
        -------
        (str, dict of str to bytes)
            The text, and the PNG files to write (relative path → content).
        """
        from mixedbayes.report.render import render_markdown

        return render_markdown(self, image_dir)

    def write(
        self, path: str | os.PathLike[str], format: str | None = None, *, embed: bool = False
    ) -> Path:
        """Write the report.

        Parameters
        ----------
        path : str or path
            The file to write; missing parent directories are made.
        format : {"html", "md"}, optional
            Default: from the suffix (``.html``, ``.md``; HTML without one); another suffix
            (``.pdf``) is a ``SpecError`` naming the formats.
        embed : bool
            Markdown only: embed the images as ``data:`` URIs instead of writing them as PNG
            files in ``<stem>_files/`` next to the Markdown file.

        Returns
        -------
        Path
            The file written.
        """
        out = Path(path)
        fmt = report_format(out, format)
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "html":
            out.write_text(self.to_html(), encoding="utf-8")
            return out
        image_dir = None if embed else f"{out.stem}_files"
        text, images = self.to_markdown(image_dir)
        if images:
            folder = out.parent / f"{out.stem}_files"
            folder.mkdir(exist_ok=True)
            for old in folder.glob("*.png"):
                old.unlink()
            for name, png in images.items():
                (out.parent / name).write_bytes(png)
        out.write_text(text, encoding="utf-8")
        return out

    def __str__(self) -> str:
        lines = [self.title, self.subtitle]
        for s in self.sections:
            badge = f" [{s.status}]" if s.status else ""
            extra = f" (not available: {s.unavailable})" if s.unavailable else ""
            lines.append(f"  {s.key:<22}{s.title}{badge}{extra}")
        return "\n".join(lines)


def report_format(path: str | os.PathLike[str], format: str | None = None) -> Format:
    """The output format: ``format`` when given, else from the file's suffix (HTML when it
    has none).

    Parameters
    ----------
    path : str or path
    format : {"html", "md", "markdown"}, optional

    Returns
    -------
    {"html", "md"}

    Raises
    ------
    SpecError
        For an unknown format, or a suffix of another format (``report.pdf``): the report is
        written as HTML or Markdown only.
    """
    if format is None:
        suffix = Path(path).suffix.lower()
        if not suffix or suffix in FORMATS:
            return FORMATS.get(suffix, "html")
        raise SpecError(
            f"cannot write a report as {suffix!r} ({str(path)!r}): the formats are "
            f"{_FORMATS_TEXT}.",
            where="path",
            hint=f"write {Path(path).with_suffix('.html').name!r} (print it to PDF from a "
            "browser), or pass format='html' or 'md' to write under this name.",
        )
    key = format.lower().lstrip(".")
    if key in ("html", "htm"):
        return "html"
    if key in ("md", "markdown"):
        return "md"
    raise SpecError(
        f"unknown report format {format!r}; the formats are {_FORMATS_TEXT}.",
        where="format",
        hint="use format='html' or format='md'.",
    )


_FORMATS_TEXT = "HTML (.html, .htm) and Markdown (.md, .markdown)"


def _selected(fit: FitLike, sections: Sequence[str] | None) -> list[str]:
    from mixedbayes.report import sections as _builtin  # noqa: F401  (registers them)

    if sections is None:
        chosen = [s for s in SECTIONS.values() if s.applies(fit)]
    else:
        chosen = [get_section(k) for k in dict.fromkeys(sections)]
    return [s.key for s in sorted(chosen, key=lambda s: s.order)]


def _why(exc: BaseException) -> str:
    if isinstance(exc, SectionUnavailable | MixedBayesError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def _quiet(logger_name: str = "pymc.sampling.forward") -> Iterator[None]:
    """Silence PyMC's INFO lines ("Sampling: [y]") while the sections build.

    The level is set on the module's own logger: importing PyMC resets the level of the
    ``pymc`` logger, not of its children.
    """
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _build_one(key: str, ctx: ReportContext) -> SectionResult:
    section = get_section(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            blocks = tuple(section.build(ctx))
        except Exception as exc:
            return SectionResult(key, section.title, unavailable=_why(exc))
        try:
            status = section.status(ctx)
        except Exception:
            status = None
    return SectionResult(key, section.title, blocks, status)


def _facts(fit: FitLike) -> tuple[tuple[str, str], ...]:
    d = fit.design
    post = fit.idata["posterior"]
    groups = ", ".join(f"{g.name} ({g.n_levels})" for g in d.groups) or "none"
    return (
        ("kind", str(fit.spec.kind)),
        ("family", f"{d.family.name} ({d.link.name} link)"),
        ("rows", f"{d.report.rows_used} used of {d.report.rows_in}"),
        ("groups", groups),
        ("draws", f"{post.sizes['chain']} × {post.sizes['draw']}"),
    )


def build_report(
    fit: ReportableFit,
    *,
    sections: Sequence[str] | None = None,
    n_groups: int = 8,
    seed: int = 1,
    prob: float = 0.95,
    title: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Build the report of a fit; every section that applies to its kind and family.

    Parameters
    ----------
    fit : Fit
        Not modified (the posterior predictive draws the checks need go into a copy).
    sections : sequence of str, optional
        Keys of the sections to include (see :func:`mixedbayes.report.section_keys`);
        default: every registered section that applies to the fit.
    n_groups : int
        How many levels the per-individual plots and tables show (a random sample, fixed by
        ``seed``, when there are more).
    seed : int
        Seed of that sample and of the posterior predictive draws.
    prob : float
        Mass of the central intervals.
    title : str, optional
        Default: the spec's name.
    progress : callable, optional
        Called as ``progress(key, title)`` before each section is built.

    Returns
    -------
    Report
        A section that cannot be produced holds a note saying why (``unavailable``).

    Examples
    --------
    >>> report = build_report(fit, n_groups=6)  # doctest: +SKIP
    >>> report.write("out/report.html")  # doctest: +SKIP
    """
    from mixedbayes.results.summary import check_prob

    check_prob(prob)
    ctx = ReportContext.for_fit(fit, n_groups=n_groups, seed=seed, prob=prob)
    results = []
    with _quiet():
        for key in _selected(fit, sections):
            if progress is not None:
                progress(key, SECTIONS[key].title)
            results.append(_build_one(key, ctx))
    name = getattr(fit.spec, "name", None)
    heading = f"{name}: posterior report" if name else "Posterior report"
    return Report.now(title or heading, fit.spec, _facts(fit), results)


def write_report(
    fit: ReportableFit,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    embed: bool = False,
    **options: object,
) -> Path:
    """Build the report of ``fit`` and write it to ``path``.

    Parameters
    ----------
    fit : Fit
    path : str or path
    format : {"html", "md"}, optional
        Default: from the suffix of ``path``.
    embed : bool
        Markdown: embed images instead of writing PNG files next to it.
    **options
        Passed to :func:`build_report` (``sections``, ``n_groups``, ``seed``, ``prob``,
        ``title``, ``progress``).

    Returns
    -------
    Path
        The file written.
    """
    report_format(path, format)  # fail on a bad format before building anything
    report = build_report(fit, **options)  # type: ignore[arg-type]
    return report.write(path, format, embed=embed)
