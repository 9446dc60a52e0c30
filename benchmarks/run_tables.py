"""The Markdown tables of ``run.py``: one page per case and the summary."""

from __future__ import annotations

import math

from cases import BAMBI_DEFAULT_ROW_CAP, CASES, PEER_ROW_CAP, Case
from run_settings import R_MISSING, R_SYSTEMS, Result, Settings

# --------------------------------------------------------------------------- reporting


def _is_num(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _fmt(x: object, spec: str) -> str:
    return format(x, spec) if _is_num(x) else "—"


def _fmt_s(x: object) -> str:
    if not _is_num(x):
        return "—"
    assert isinstance(x, int | float)
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def _fmt_sig(x: object) -> str:
    if not _is_num(x):
        return "—"
    assert isinstance(x, int | float)
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _table(header: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right if right is not None else set(range(1, len(header)))
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    lines = [header, rule, *rows]
    return "\n".join(
        "| " + " | ".join(cell.replace("|", "\\|") for cell in ln) + " |" for ln in lines
    )


def _label(row: Result) -> str:
    key = str(row["variant"])
    return "mixedbayes (correlated)" if key == "mixedbayes-cor" else key


def _ratio(a: object, b: object) -> str:
    if _is_num(a) and _is_num(b) and b:
        assert isinstance(a, int | float) and isinstance(b, int | float)
        return f"{a / b:.2f}×"
    return "—"


def case_markdown(case: Case, rows: list[Result], settings: Settings) -> str:
    """The case's page: runs, posterior means and bulk ESS per parameter, notes."""
    out = [
        f"# {case.name}",
        "",
        case.description,
        "",
        f"- rows: {case.n_rows:,}; groups: {case.n_groups:,}; family: {case.family}",
        f"- settings: draws {settings.draws}, tune {settings.tune}, chains {settings.chains}, "
        f"target_accept {settings.target_accept}, seed {settings.seed}, timeout "
        f"{settings.timeout:.0f} s per run; machine and versions in `summary.md`",
        "",
        "## Runs",
        "",
    ]
    header = [
        "system",
        "formula",
        "status",
        "total s",
        "compile s",
        "sampling s",
        "after s",
        "min bulk ESS",
        "at",
        "max R-hat",
        "divergences",
        "min-ESS/s (total)",
        "min-ESS/s (sampling)",
        "peak RSS MiB",
        "note",
    ]
    body = []
    for row in rows:
        variant = case.variant(row["variant"])
        status = row["status"] if row["status"] != "ok" else "ok"
        body.append(
            [
                _label(row),
                f"`{variant.formula}`",
                status,
                _fmt_s(row.get("total_s")),
                _fmt_s(row.get("compile_s")),
                _fmt_s(row.get("sample_s")),
                _fmt_s(row.get("post_s")),
                _fmt(row.get("min_ess"), ".0f"),
                f"`{row['min_ess_param']}`" if row.get("min_ess_param") else "—",
                _fmt(row.get("max_rhat"), ".3f"),
                _fmt(row.get("divergences"), ".0f"),
                _fmt_sig(row.get("ess_per_s_total")),
                _fmt_sig(row.get("ess_per_s_sample")),
                _fmt(row.get("peak_rss_mib"), ".0f"),
                variant.note,
            ]
        )
    out += [_table(header, body, right=set(range(3, len(header) - 1))), ""]

    ok = [r for r in rows if r["status"] == "ok" and r.get("params")]
    names: list[str] = []
    for r in ok:
        names += [n for n in r["params"] if n not in names]
    names.sort(key=lambda n: ("b", "sd", "cor", "sigma").index(_param_class(n)))
    if ok:
        truth = bool(case.truth)
        for title, key, spec in (
            (
                "Posterior means"
                + (" (lme4: estimates)" if _find(ok, "lme4")["status"] == "ok" else ""),
                "mean",
                ".4g",
            ),
            ("Bulk ESS per parameter", "ess_bulk", ".0f"),
        ):
            head = ["parameter", *(["truth"] if truth and key == "mean" else [])]
            head += [_label(r) for r in ok]
            body = []
            for n in names:
                cells = [f"`{n}`"]
                if truth and key == "mean":
                    cells.append(_fmt(case.truth.get(n), ".4g"))
                cells += [_fmt(r["params"].get(n, {}).get(key), spec) for r in ok]
                body.append(cells)
            out += [f"## {title}", "", _table(head, body), ""]

    out += ["## Notes", ""]
    notes = [
        "total s: model building, compilation and sampling, imports excluded (wall clock, "
        f"measured inside a fresh process; {settings.cache_phrase()}). mixedbayes' total "
        "is the whole `mb.fit` call: design, compile, sampling, then the pointwise "
        "log-likelihood and the convergence gates; bambi's is `bambi.Model(...)` plus "
        "`.fit(inference_method='nutpie')`, whose compile s is total minus sampling. after s: "
        "what `mb.fit` does after sampling (pointwise log-likelihood, convergence gates).",
        "min bulk ESS over the fixed effects, group SDs and residual SD (`cor` is shown but "
        "not in the minimum), computed from every system's draws with the same arviz-stats "
        "function; max R-hat over the same parameters.",
        f"threads: mixedbayes' nutpie backend runs one thread per chain ({settings.chains}; "
        f"`mb.fit` has no cores setting); bambi is given cores={settings.cores}.",
        "peak RSS: the run's process (ru_maxrss), imports included; at least the largest RSS "
        "of its process group polled every 0.2 s.",
    ]
    if any(str(r["status"]).startswith("not run: R not installed") for r in rows):
        notes.append(f"lme4, brms: {R_MISSING}.")
    for r in rows:
        if r.get("error"):
            notes.append(f"{_label(r)} error: {r['error']}")
    out += [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def _param_class(name: str) -> str:
    cls = name.split("[", 1)[0].split("_", 1)[0]
    return cls if cls in ("b", "sd", "cor", "sigma") else "sigma"


def _find(rows: list[Result], key: str) -> Result:
    return next((r for r in rows if r["variant"] == key), {"status": "not run"})


def _ratio_table(results: dict[str, list[Result]], peer_key: str) -> list[str]:
    """mixedbayes' min-ESS/s against one peer run, total and sampling time, per case."""
    head = [
        "case",
        "rows",
        "mixedbayes min-ESS/s (total)",
        "peer min-ESS/s (total)",
        "ratio (total)",
        "mixedbayes min-ESS/s (sampling)",
        "peer min-ESS/s (sampling)",
        "ratio (sampling)",
    ]
    body = []
    for name, rows in results.items():
        mb, peer = _find(rows, "mixedbayes"), _find(rows, peer_key)
        peer_total = _fmt_sig(peer.get("ess_per_s_total"))
        if peer["status"] != "ok":
            peer_total = peer["status"].split(":")[0].split(" (")[0]
        body.append(
            [
                name,
                f"{CASES[name].n_rows:,}",
                _fmt_sig(mb.get("ess_per_s_total")),
                peer_total,
                _ratio(mb.get("ess_per_s_total"), peer.get("ess_per_s_total")),
                _fmt_sig(mb.get("ess_per_s_sample")),
                _fmt_sig(peer.get("ess_per_s_sample")),
                _ratio(mb.get("ess_per_s_sample"), peer.get("ess_per_s_sample")),
            ]
        )
    return [_table(head, body)]


def summary_markdown(
    results: dict[str, list[Result]],
    settings: Settings,
    machine: dict[str, str],
    r_status: dict[str, str],
    quick: bool,
    earlier: dict[str, str] | None = None,
) -> str:
    """Machine, versions, settings, mixedbayes/bambi ratios and every run in one line.

    ``earlier``: cases taken from a saved earlier run (``--keep-others``), with its date and
    commit."""
    r_line = "; ".join(f"{s}: {r_status[s] or 'available'}" for s in R_SYSTEMS)
    if all(r_status[s] == R_MISSING for s in R_SYSTEMS):
        r_line = R_MISSING
    out = [
        "# Benchmark summary",
        "",
        "`python benchmarks/run.py" + (" --quick" if quick else "") + "`: each case fits the "
        "same model on the same data with mixedbayes (nutpie) and bambi (nutpie), each run in a "
        "fresh process. Per-case tables (posterior means side by side, ESS per parameter) are in "
        "`<case>.md`.",
        "",
        "## Machine",
        "",
        _table(["", ""], [[k, v] for k, v in machine.items()], right=set()),
        "",
        f"- settings: draws {settings.draws}, tune {settings.tune}, chains {settings.chains} "
        f"(bambi cores {settings.cores}; mixedbayes one nutpie thread per chain), "
        f"target_accept {settings.target_accept}, seed {settings.seed}, timeout "
        f"{settings.timeout:.0f} s per run",
        f"- {settings.cache_phrase()} (`--cache {settings.cache}`)",
        f"- R (lme4, brms): {r_line}",
        *(
            [
                "- from earlier runs (`--keep-others`; same settings, see each `<case>.json`): "
                + "; ".join(f"{k} ({v})" for k, v in earlier.items())
            ]
            if earlier
            else []
        ),
        "",
        "## mixedbayes / bambi (nutpie)",
        "",
        "min-ESS/s: the smallest bulk ESS over fixed effects, group SDs and residual SD, per "
        "second of total wall time (build + compile + sample) or of sampling alone. A ratio "
        "above 1 means mixedbayes is faster.",
        "",
    ]
    out += _ratio_table(results, "bambi")
    default = {k: v for k, v in results.items() if _find(v, "bambi-pymc")["status"] != "not run"}
    if default:
        out += [
            "",
            "## mixedbayes / bambi with its default sampler",
            "",
            "bambi's `Model.fit()` as users call it samples with PyMC's NUTS (C backend), not "
            "nutpie; run on the cases up to "
            f"{BAMBI_DEFAULT_ROW_CAP:,} rows.",
            "",
            *_ratio_table(default, "bambi-pymc"),
        ]
    out += ["", "## All runs", ""]
    head = [
        "case",
        "system",
        "status",
        "total s",
        "sampling s",
        "min bulk ESS",
        "min-ESS/s (total)",
        "min-ESS/s (sampling)",
        "peak RSS MiB",
    ]
    body = []
    for name, rows in results.items():
        for r in rows:
            status = "ok" if r["status"] == "ok" else r["status"]
            body.append(
                [
                    name,
                    _label(r),
                    status,
                    _fmt_s(r.get("total_s")),
                    _fmt_s(r.get("sample_s")),
                    _fmt(r.get("min_ess"), ".0f"),
                    _fmt_sig(r.get("ess_per_s_total")),
                    _fmt_sig(r.get("ess_per_s_sample")),
                    _fmt(r.get("peak_rss_mib"), ".0f"),
                ]
            )
    out += [_table(head, body, right={3, 4, 5, 6, 7, 8}), ""]
    out += [
        "## Notes",
        "",
        "- sleepstudy: bambi cannot fit correlated group effects (its `(Days | Subject)` is "
        "lme4's `(Days || Subject)`), so both fit independent intercept and slope; mixedbayes' "
        "correlated `(Days | Subject)` fit is the extra row `mixedbayes (correlated)`.",
        f"- peers (bambi, lme4, brms) are skipped above {PEER_ROW_CAP:,} rows unless "
        "`--with-peers-large`; a run longer than the timeout is killed and recorded as timed "
        "out.",
        "- mixedbayes' total time includes what `mb.fit` does after sampling (pointwise "
        "log-likelihood, convergence gates); bambi's does not compute them.",
        "- With few draws (`--quick`) ESS estimates are noisy; compare orders of magnitude.",
    ]
    return "\n".join(out) + "\n"
