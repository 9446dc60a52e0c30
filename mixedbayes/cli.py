"""Command line: ``mixedbayes fit|report|demo|validate|datasets``.

Exit codes: 0 success; 2 bad spec or data, or bad command-line usage (the message names the
key/column/row/level); 1 any other failure.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mixedbayes.errors import DataError, MixedBayesError
from mixedbayes.report.blocks import spec_line

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.results.fit import Fit
    from mixedbayes.spec import ModelSpec

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Bayesian mixed-effects models: fit a YAML model spec, check it, report the posterior.",
)
console = Console(stderr=True)
out_console = Console()

EXIT_INPUT = 2

SPEC_ARG = typer.Argument(help="YAML model spec.")
DATA_OPT = typer.Option(help="CSV data (default: the spec's 'data').")
DRAWS_OPT = typer.Option(help="Draws per chain (default: the spec's).")
TUNE_OPT = typer.Option(help="Tuning draws per chain (default: the spec's).")
CHAINS_OPT = typer.Option(help="Number of chains (default: the spec's).")
SEED_OPT = typer.Option(help="Random seed (default: the spec's).")
SAMPLER_OPT = typer.Option(help="auto (default: numpyro, else nutpie), numpyro, nutpie or pymc.")
PROGRESS_OPT = typer.Option(help="Show progress bars while sampling and reporting.")
GROUPS_OPT = typer.Option("--groups", help="Individuals shown in per-individual plots/tables.")
FORMAT_OPT = typer.Option("--format", help="html (default) or md.")


def _spec_and_frame(spec_path: Path, data: Path | None) -> tuple[ModelSpec, pd.DataFrame]:
    import mixedbayes as mb

    spec = mb.load_spec(spec_path)
    if data is not None:
        return spec, mb.load_data(data)
    if spec.data is None:
        raise DataError(
            "no data given and the spec names none.",
            where="data",
            hint="pass --data FILE.csv, or set 'data:' in the spec.",
        )
    return spec, mb.load_data(spec.data, base=spec_path.parent)


def _show_data_warnings(caught: list[warnings.WarningMessage]) -> None:
    import mixedbayes as mb

    for w in caught:
        if issubclass(w.category, mb.DataWarning):
            console.print(f"warning: {w.message}", style="yellow", markup=False)


def _fit(
    spec_path: Path,
    data: Path | None,
    *,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    progress: bool = True,
) -> Fit:
    import mixedbayes as mb

    spec, frame = _spec_and_frame(spec_path, data)
    console.print(f"mixedbayes {spec.kind}: {spec_line(spec)}", highlight=False, markup=False)
    console.print(
        "building and compiling the model (the first fit of a model structure compiles it; "
        "later ones, in any session, reuse it)..."
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", mb.DataWarning)
        fit = mb.fit(
            spec,
            frame,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            sampler=sampler,
            progressbar=progress,
        )
    _show_data_warnings(caught)
    for w in caught:
        if issubclass(w.category, mb.ConvergenceWarning):
            console.print(f"convergence: {w.message}", style="yellow", markup=False)
    from mixedbayes.results.summary import timing_text

    console.print(timing_text(fit.timings), soft_wrap=True)
    return fit


def _section_list(sections: str | None) -> list[str] | None:
    """Comma-separated section keys → list (checked against the registry); None for all."""
    if sections is None:
        return None
    from mixedbayes.report import get_section

    keys = [k.strip() for k in sections.split(",") if k.strip()]
    for key in keys:
        get_section(key)
    return keys


def _write_report(
    fit: Fit,
    path: Path,
    fmt: str | None,
    n_groups: int,
    seed: int,
    progress: bool,
    sections: list[str] | None = None,
) -> Path:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from mixedbayes.report import Report, build_report, report_format

    fmt = report_format(path, fmt)
    if fmt == "md" and path.suffix.lower() not in (".md", ".markdown"):
        path = path.with_suffix(".md")

    def build(step: Callable[[str, str], None] | None) -> Report:
        return build_report(fit, n_groups=n_groups, seed=seed, sections=sections, progress=step)

    if not progress:
        report = build(None)
    else:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True
        ) as bar:
            task = bar.add_task("report", total=None)

            def step(key: str, title: str) -> None:
                bar.update(task, description=f"report: {title}")

            report = build(step)
    for s in report.sections:
        if s.unavailable:
            console.print(
                f"report: {s.title} not available: {s.unavailable}",
                style="dim",
                markup=False,
                highlight=False,
            )
    return report.write(path, fmt)


def _write_fit_outputs(fit: Fit, out: Path) -> None:
    import pandas as pd

    summary = fit.summary()
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        out_console.print(repr(fit), markup=False, highlight=False, soft_wrap=True)
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "priors.txt").write_text(str(fit.priors) + "\n")
    fit.save(out / "fit")
    out_console.print(
        f"\nwrote {out / 'summary.csv'}, {out / 'priors.txt'} and the fit in {out / 'fit'}",
        markup=False,
        soft_wrap=True,
    )
    out_console.print(
        f"reload it with mixedbayes.load({str(out / 'fit')!r})", markup=False, soft_wrap=True
    )


@app.command()
def fit(
    spec: Annotated[Path, SPEC_ARG],
    data: Annotated[Path | None, DATA_OPT] = None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out/fit"),
    draws: Annotated[int | None, DRAWS_OPT] = None,
    tune: Annotated[int | None, TUNE_OPT] = None,
    chains: Annotated[int | None, CHAINS_OPT] = None,
    seed: Annotated[int | None, SEED_OPT] = None,
    sampler: Annotated[str | None, SAMPLER_OPT] = None,
    progress: Annotated[bool, PROGRESS_OPT] = True,
    report: Annotated[
        bool, typer.Option(help="Also write the HTML report to OUT/report.html.")
    ] = False,
) -> None:
    """Fit SPEC and write the summary, the prior table and the saved fit to OUT."""
    result = _fit(
        spec,
        data,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=sampler,
        progress=progress,
    )
    _write_fit_outputs(result, out)
    if report:
        path = _write_report(result, out / "report.html", None, 8, 1, progress)
        out_console.print(f"report: {path}", markup=False, soft_wrap=True)


def _saved_fit_dir(source: Path) -> Path | None:
    """The saved fit in ``source``: itself, or its ``fit/`` (a ``mixedbayes fit --out`` dir)."""
    for candidate in (source, source / "fit"):
        if (candidate / "spec.yaml").is_file() and (candidate / "meta.json").is_file():
            return candidate
    return None


@app.command()
def report(
    source: Annotated[
        Path,
        typer.Argument(
            help="A saved fit (a directory from fit.save or `mixedbayes fit --out`) or a YAML "
            "spec (fitted first)."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Report file (default: SOURCE/report.html for a directory, "
            "out/<spec name>/report.html for a spec)."
        ),
    ] = None,
    format: Annotated[str | None, FORMAT_OPT] = None,
    data: Annotated[Path | None, DATA_OPT] = None,
    groups: Annotated[int, GROUPS_OPT] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the sample of individuals and PPC.")] = 1,
    draws: Annotated[int | None, DRAWS_OPT] = None,
    tune: Annotated[int | None, TUNE_OPT] = None,
    chains: Annotated[int | None, CHAINS_OPT] = None,
    fit_seed: Annotated[int | None, typer.Option(help="Sampler seed (spec only).")] = None,
    sections: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated section keys (default: all that apply), e.g. model,loo."
        ),
    ] = None,
    progress: Annotated[bool, PROGRESS_OPT] = True,
) -> None:
    """Write the posterior report (HTML, or Markdown with --format md) of a fit or a spec."""
    import mixedbayes as mb
    from mixedbayes.report import report_format

    # cheap checks first: the format and the section keys, before loading or fitting
    ext = report_format(out or Path("report.html"), format)
    keys = _section_list(sections)
    if not source.exists():
        raise DataError(
            f"no saved fit or spec at {str(source)!r}.",
            where=str(source),
            hint="give a directory written by fit.save / `mixedbayes fit --out`, or a YAML spec.",
        )
    if source.is_dir():
        saved = _saved_fit_dir(source)
        if saved is None:
            raise DataError(
                f"{str(source)!r} is a directory but not a saved fit (no spec.yaml and "
                "meta.json in it or in its fit/).",
                where=str(source),
                hint="give the directory written by fit.save(path) or `mixedbayes fit --out`.",
            )
        console.print(f"loading the fit in {saved} ...", markup=False, soft_wrap=True)
        result = mb.load(saved)
        default = source / f"report.{ext}"
    else:
        result = _fit(
            source, data, draws=draws, tune=tune, chains=chains, seed=fit_seed, progress=progress
        )
        name = getattr(result.spec, "name", None) or source.stem
        default = Path("out") / str(name) / f"report.{ext}"
    path = _write_report(result, out or default, format, groups, seed, progress, keys)
    out_console.print(f"report: {path}", markup=False, soft_wrap=True)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out/demo"),
    spec: Annotated[Path, typer.Option(help="Spec to fit.")] = Path("models/sleepstudy.yaml"),
    draws: Annotated[int | None, DRAWS_OPT] = None,
    tune: Annotated[int | None, TUNE_OPT] = None,
    chains: Annotated[int | None, CHAINS_OPT] = None,
    progress: Annotated[bool, PROGRESS_OPT] = True,
) -> None:
    """Fit the sleepstudy example (models/sleepstudy.yaml) and write its report to OUT."""
    result = _fit(spec, None, draws=draws, tune=tune, chains=chains, progress=progress)
    _write_fit_outputs(result, out)
    path = _write_report(result, out / "report.html", "html", 8, 1, progress)
    out_console.print(f"report: {path.resolve()}", markup=False, soft_wrap=True)


@app.command()
def validate(
    spec: Annotated[Path, SPEC_ARG],
    data: Annotated[Path | None, DATA_OPT] = None,
) -> None:
    """Check SPEC and its data without fitting: print the data report and the prior table."""
    import mixedbayes as mb
    from mixedbayes.kinds import build_prior_table

    model_spec, frame = _spec_and_frame(spec, data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", mb.DataWarning)
        design = mb.design(model_spec, frame)
    _show_data_warnings(caught)
    priors = build_prior_table(design, model_spec.priors)
    out_console.print(
        f"{model_spec.kind}: {spec_line(model_spec)}  "
        f"(family {design.family.name}, link {design.link.name})",
        highlight=False,
        markup=False,
    )
    out_console.print(f"data: {design.report}", highlight=False, markup=False)
    for g in design.groups:
        params = ", ".join(b.parametrization for b in g.blocks)
        out_console.print(
            f"group {g.name}: {g.n_levels} levels, terms {list(g.terms)} [{params}]",
            highlight=False,
            markup=False,
        )
    table = Table(title="priors", title_justify="left")
    frame_p = priors.to_frame()
    if not (frame_p["nlpar"] != "").any():
        frame_p = frame_p.drop(columns=["nlpar"])
    for col in frame_p.columns:
        table.add_column(str(col), overflow="fold")
    for row in frame_p.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    out_console.print(table)
    out_console.print("[green]OK[/green]: the spec and the data are valid (nothing was fitted).")


@app.command()
def datasets(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Show one data set.")] = None,
) -> None:
    """List the bundled example data sets, or describe one (columns, levels, source)."""
    from mixedbayes import datasets as ds

    if name is None:
        table = Table(title="bundled data sets (mixedbayes.datasets.load(NAME))")
        for col in ("name", "rows", "columns", "title", "source"):
            table.add_column(col, overflow="fold")
        for n in ds.names():
            info = ds.info(n)
            table.add_row(n, str(info.n_rows), str(len(info.columns)), info.title, info.source)
        out_console.print(table)
        return
    info = ds.info(name)
    out_console.print(f"{info.name}: {info.title}", highlight=False, markup=False)
    out_console.print(info.description, highlight=False, markup=False)
    out_console.print(f"source: {info.source}", highlight=False, markup=False)
    out_console.print(f"rows: {info.n_rows}; in a spec: data: dataset:{info.name}")
    table = Table(title="columns", title_justify="left")
    for col in ("column", "meaning", "levels"):
        table.add_column(col, overflow="fold")
    for col, meaning in info.columns.items():
        levels = info.categorical.get(col)
        shown = "" if levels is None else ", ".join(levels[:12]) + (" ..." * (len(levels) > 12))
        table.add_row(col, meaning, shown)
    out_console.print(table)


def main() -> None:
    """Entry point: run the app, turning bad input into exit code 2 with a clear message."""
    try:
        app(standalone_mode=False)
    except MixedBayesError as exc:
        console.print(
            f"[bold red]{type(exc).__name__}:[/bold red] {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(EXIT_INPUT)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
