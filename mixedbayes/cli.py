"""Command line: ``mixedbayes fit SPEC``, ``mixedbayes demo``.

Exit codes: 0 success; 2 bad spec or data (the message names the key/column/row/level);
1 any other failure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mixedbayes.errors import MixedBayesError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Bayesian mixed-effects models: fit a YAML model spec and write the posterior.",
)
console = Console(stderr=True)
out_console = Console()

EXIT_INPUT = 2


def _run_fit(
    spec_path: Path,
    data: Path | None,
    out: Path,
    draws: int | None,
    chains: int | None,
    seed: int | None,
    sampler: str | None,
    progress: bool,
) -> None:
    import warnings

    import pandas as pd

    import mixedbayes as mb

    spec = mb.load_spec(spec_path)
    frame = mb.load_data(data) if data is not None else None
    if frame is None and spec.data is not None:
        frame = mb.load_data(spec.data, base=spec_path.parent)
    console.print(f"[bold]mixedbayes[/bold] {spec.kind}: {getattr(spec, 'formula', '')}")
    console.print("building and compiling the model (numba; first fits take a while)...")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", mb.DataWarning)
        fit = mb.fit(
            spec,
            frame,
            draws=draws,
            chains=chains,
            seed=seed,
            sampler=sampler,
            progressbar=progress,
        )
    for w in caught:
        if issubclass(w.category, mb.DataWarning):
            console.print(f"[yellow]warning:[/yellow] {w.message}")
    t = fit.timings
    console.print(
        f"compiled in {t['compile_seconds']:.1f} s, sampled in {t['sample_seconds']:.1f} s"
    )
    summary = fit.summary()
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        out_console.print(repr(fit), markup=False, highlight=False, soft_wrap=True)
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "priors.txt").write_text(str(fit.priors) + "\n")
    fit.save(out / "fit")
    out_console.print(
        f"\nwrote {out / 'summary.csv'}, {out / 'priors.txt'} and the fit in {out / 'fit'}"
    )
    out_console.print(f"reload it with mixedbayes.load({str(out / 'fit')!r})")


@app.command()
def fit(
    spec: Annotated[Path, typer.Argument(help="YAML model spec.")],
    data: Annotated[
        Path | None, typer.Option(help="CSV data (default: the spec's 'data').")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out/fit"),
    draws: Annotated[int | None, typer.Option(help="Draws per chain.")] = None,
    chains: Annotated[int | None, typer.Option(help="Number of chains.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    sampler: Annotated[str | None, typer.Option(help="nutpie (default), pymc or numpyro.")] = None,
    progress: Annotated[bool, typer.Option(help="Show sampling progress.")] = True,
) -> None:
    """Fit SPEC and write the summary, the prior table and the saved fit to OUT."""
    _run_fit(spec, data, out, draws, chains, seed, sampler, progress)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out/demo"),
    spec: Annotated[Path, typer.Option(help="Spec to fit.")] = Path("models/sleepstudy.yaml"),
    progress: Annotated[bool, typer.Option(help="Show sampling progress.")] = True,
) -> None:
    """Fit the sleepstudy example (models/sleepstudy.yaml) on the bundled data."""
    _run_fit(spec, None, out, None, None, None, None, progress)


def main() -> None:
    """Entry point: run the app, turning bad input into exit code 2 with a clear message."""
    try:
        app(standalone_mode=False)
    except MixedBayesError as exc:
        console.print(f"[bold red]{type(exc).__name__}:[/bold red] {exc}", highlight=False)
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
