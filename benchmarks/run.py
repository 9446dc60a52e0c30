"""Benchmark mixedbayes against bambi (and lme4 / brms when R has them) on the same models.

    python benchmarks/run.py [--quick] [--cases a,b] [--out benchmarks/results]

Each case fits one model on one data set with every system, each run in a fresh subprocess
(``worker.py`` for Python systems, ``r_worker.R`` for R) with its own empty PyTensor / numba
caches, so that timings and peak memory belong to one system and do not depend on what ran
before. Every run is capped by ``--timeout`` (killed and recorded as timed out). Writes
``<out>/<case>.md`` (runs, posterior means and bulk ESS per parameter), ``<out>/<case>.json``
(the raw numbers) and ``<out>/summary.md`` (machine, versions, min-ESS/s ratios
mixedbayes/bambi). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cases import CASES, PEER_ROW_CAP, QUICK_CASES, Case, Variant  # noqa: E402
from run_settings import (  # noqa: E402
    PACKAGES,
    PYTHON_SYSTEMS,
    R_MISSING,
    R_SYSTEMS,
    Result,
    Settings,
)
from run_tables import _fmt, _fmt_s, case_markdown, summary_markdown  # noqa: E402

# --------------------------------------------------------------------------- environment


def machine_info() -> dict[str, str]:
    """CPU model, cores, RAM, OS, Python and package versions, git commit, date."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "date (UTC)": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "CPU": cpu,
        "cores": f"{usable} usable ({os.cpu_count()} logical)",
        "RAM": f"{total_ram_bytes() / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": platform.python_version(),
    }
    for pkg in PACKAGES:
        try:
            info[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            info[pkg] = "not installed"
    info["git commit"] = _git_commit()
    return info


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":!benchmarks"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" (uncommitted changes outside benchmarks/)" if dirty else "")


def probe_r() -> dict[str, str]:
    """Per R system, "" when it can run, else why not."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return dict.fromkeys(R_SYSTEMS, R_MISSING)

    def loads(libs: str) -> str:
        try:
            proc = subprocess.run(
                [rscript, "-e", libs], capture_output=True, text=True, timeout=180
            )
        except subprocess.TimeoutExpired:
            return "R probe timed out"
        if proc.returncode == 0:
            return ""
        tail = " ".join(proc.stderr.strip().splitlines()[-2:])
        return f"R found but cannot load the package: {tail[:200]}"

    if not loads("library(brms); library(lme4)"):
        return dict.fromkeys(R_SYSTEMS, "")
    return {
        "lme4": loads("library(lme4)"),
        "brms": loads("library(brms); library(posterior); library(rstan)"),
    }


# --------------------------------------------------------------------------- running


def _child_env(cache: Path) -> dict[str, str]:
    """The environment of a run: every on-disk compile cache under ``cache`` — PyTensor's
    (which keeps its numba cache under ``base_compiledir``), numba's, mixedbayes's stored
    programs, JAX's persistent cache, and matplotlib's font cache (``XDG_CACHE_HOME``)."""
    env = dict(os.environ)
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",") if f and "compiledir" not in f]
    env["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={cache / 'pytensor'}"])
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    env["MIXEDBAYES_CACHE_DIR"] = str(cache / "mixedbayes")
    env["JAX_COMPILATION_CACHE_DIR"] = str(cache / "jax")
    env["XDG_CACHE_HOME"] = str(cache / "xdg")
    return env


def _group_rss(pgid: int) -> float:
    """Resident memory of every process in process group ``pgid``, in MiB (from /proc)."""
    total_kib = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # fields after the command: state, ppid, pgrp, ...
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total_kib / 1024.0


def total_ram_bytes() -> int:
    """Physical memory (MemTotal of /proc/meminfo); 0 when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def spawn(cmd: list[str], env: dict[str, str], timeout: float, log: Path) -> Result:
    """Run ``cmd`` in its own process group; kill the group after ``timeout`` seconds.

    Returns ``rc`` (None when timed out), ``wall_s`` and ``polled_rss_mib`` (the largest
    resident memory of its process group seen, polled every 0.2 s).
    """
    with log.open("w") as out:
        t0 = time.perf_counter()
        popen = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        peak = 0.0
        rc: int | None = None
        while True:
            try:
                rc = popen.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                peak = max(peak, _group_rss(popen.pid))
                if time.perf_counter() - t0 > timeout:
                    os.killpg(popen.pid, signal.SIGKILL)
                    popen.wait()
                    rc = None
                    break
    return {"rc": rc, "wall_s": time.perf_counter() - t0, "polled_rss_mib": peak}


def _log_tail(log: Path, n: int = 3) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[:400]


def _failed(proc: Result, log: Path, timeout: float) -> Result:
    if proc["rc"] is None:
        return {
            "status": f"timed out after {timeout:.0f} s",
            "peak_rss_mib": proc["polled_rss_mib"],
        }
    why = f"exit code {proc['rc']}"
    if proc["rc"] < 0:
        why = f"killed by signal {-proc['rc']}" + (" (out of memory?)" if proc["rc"] == -9 else "")
    return {
        "status": f"failed ({why})",
        "error": _log_tail(log),
        "peak_rss_mib": proc["polled_rss_mib"],
    }


def run_python(case: Case, variant: Variant, settings: Settings, tmp: Path) -> Result:
    """One Python system in a fresh ``worker.py`` process."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"{variant.key}-", dir=tmp))
    job = {
        "case": case.name,
        "variant": variant.key,
        "draws": settings.draws,
        "tune": settings.tune,
        "chains": settings.chains,
        "cores": settings.cores,
        "seed": settings.seed,
        "target_accept": settings.target_accept,
    }
    job_path, result_path, log = run_dir / "job.json", run_dir / "result.json", run_dir / "log"
    job_path.write_text(json.dumps(job))
    cmd = [sys.executable, str(HERE / "worker.py"), str(job_path), str(result_path)]
    cache = run_dir
    if settings.cache == "warm":
        cache = tmp / "warm-cache" / f"{case.name}-{variant.key}"
        if not cache.exists():
            spawn(cmd, _child_env(cache), settings.timeout, run_dir / "warm-up.log")
            result_path.unlink(missing_ok=True)
    proc = spawn(cmd, _child_env(cache), settings.timeout, log)
    if proc["rc"] != 0 or not result_path.exists():
        return _failed(proc, log, settings.timeout)
    result: Result = json.loads(result_path.read_text())
    if result["status"] != "ok":
        result["status"] = "failed"
        result["log"] = _log_tail(log)
    result["peak_rss_mib"] = max(result.get("peak_rss_mib", 0.0), proc["polled_rss_mib"])
    return result


def run_r(case: Case, variant: Variant, settings: Settings, tmp: Path) -> Result:
    """lme4 or brms in a fresh ``Rscript`` process, on the case's data written as CSV."""
    csv = tmp / f"{case.name}.csv"
    if not csv.exists():
        case.make_data().to_csv(csv, index=False)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{variant.key}-", dir=tmp))
    out, log = run_dir / "out.tsv", run_dir / "log"
    cmd = [
        shutil.which("Rscript") or "Rscript",
        str(HERE / "r_worker.R"),
        variant.system,
        str(csv),
        variant.formula,
        case.family,
        ",".join(case.factors),
        str(settings.draws),
        str(settings.tune),
        str(settings.chains),
        str(settings.cores),
        str(settings.seed),
        str(out),
    ]
    proc = spawn(cmd, _child_env(run_dir), settings.timeout, log)
    if proc["rc"] != 0 or not out.exists():
        return _failed(proc, log, settings.timeout)
    result: Result = {"status": "ok", "params": {}}
    for line in out.read_text().splitlines():
        fields = line.split("\t")
        if fields[0] == "metric":
            result[fields[1]] = _float(fields[2])
        elif fields[0] == "param":
            result["params"][fields[1]] = {
                "mean": _float(fields[2]),
                "ess_bulk": _float(fields[3]),
                "rhat": _float(fields[4]),
            }
    result["peak_rss_mib"] = max(result.get("peak_rss_mib", 0.0), proc["polled_rss_mib"])
    hyper = {
        k: v
        for k, v in result["params"].items()
        if k.split("[", 1)[0].split("_", 1)[0] in ("b", "sd", "sigma")
    }
    ess = {k: v["ess_bulk"] for k, v in hyper.items() if not math.isnan(v["ess_bulk"])}
    if ess:
        worst = min(ess, key=lambda k: ess[k])
        result["min_ess"], result["min_ess_param"] = ess[worst], worst
        result["max_rhat"] = max(v["rhat"] for v in hyper.values())
    if "sample_s" in result:
        result["compile_s"] = result["total_s"] - result["sample_s"]
    return result


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def run_case(case: Case, settings: Settings, r_status: dict[str, str], tmp: Path) -> list[Result]:
    """Every variant of ``case``: a result per variant, in table order."""
    rows: list[Result] = []
    for variant in case.variants:
        row: Result = {"variant": variant.key, "system": variant.system}
        if variant.system not in settings.systems:
            continue
        if settings.variants and variant.key not in settings.variants:
            continue
        too_large = case.n_rows > PEER_ROW_CAP and not settings.with_peers_large
        if variant.system != "mixedbayes" and too_large:
            row["status"] = (
                f"skipped: {case.n_rows:,} rows > {PEER_ROW_CAP:,} (peer cap; "
                "--with-peers-large runs it)"
            )
            rows.append(row)
            continue
        missing = [m for m in variant.requires if importlib.util.find_spec(m) is None]
        if missing:
            row["status"] = f"not run: {', '.join(missing)} not installed (make bench installs it)"
            rows.append(row)
            continue
        if variant.system in R_SYSTEMS and r_status.get(variant.system):
            why = r_status[variant.system]
            row["status"] = "not run: R not installed" if why == R_MISSING else f"not run: {why}"
            rows.append(row)
            continue
        print(f"  {case.name} / {variant.key} ...", end=" ", flush=True)
        runner = run_python if variant.system in PYTHON_SYSTEMS else run_r
        row.update(runner(case, variant, settings, tmp))
        if row["status"] == "ok":
            total, sample, ess = row.get("total_s"), row.get("sample_s"), row.get("min_ess")
            if ess is not None and total:
                row["ess_per_s_total"] = ess / total
            if ess is not None and sample:
                row["ess_per_s_sample"] = ess / sample
            print(
                f"total {_fmt_s(total)} s, sampling {_fmt_s(sample)} s, "
                f"min ESS {_fmt(ess, '.0f')}, peak RSS {_fmt(row.get('peak_rss_mib'), '.0f')} MiB"
            )
        else:
            print(row["status"], row.get("error", ""))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="draws/tune/chains 300/300/2; two cases")
    p.add_argument("--cases", help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--out", type=Path, default=HERE / "results", help="output directory")
    p.add_argument("--draws", type=int, help="default 1000 (300 with --quick)")
    p.add_argument("--tune", type=int, help="default 1000 (300 with --quick)")
    p.add_argument("--chains", type=int, help="default 4 (2 with --quick)")
    p.add_argument("--cores", type=int, help="peers' parallel chains; default min(chains, CPUs)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--target-accept", type=float, default=0.8)
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds per run (default 20 min)")
    p.add_argument(
        "--with-peers-large",
        action="store_true",
        help=f"also run bambi/lme4/brms on cases above {PEER_ROW_CAP:,} rows",
    )
    p.add_argument(
        "--keep-others",
        action="store_true",
        help="put the cases not run now in the summary from their saved <case>.json",
    )
    p.add_argument(
        "--cache",
        choices=("cold", "warm"),
        default="cold",
        help="cold (default): empty compile caches in every run; warm: each Python variant "
        "runs once untimed to fill its own caches first",
    )
    p.add_argument(
        "--variants",
        default="",
        help="comma-separated variant keys (the rows of a case's table) to run; default all",
    )
    p.add_argument(
        "--systems",
        default=",".join(PYTHON_SYSTEMS + R_SYSTEMS),
        help="comma-separated subset of mixedbayes,bambi,lme4,brms",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases and write the tables."""
    args = parse_args(argv)
    names = args.cases.split(",") if args.cases else list(QUICK_CASES if args.quick else CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown cases {unknown}; choose from {list(CASES)}", file=sys.stderr)
        return 2
    chains = args.chains or (2 if args.quick else 4)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    settings = Settings(
        draws=args.draws or (300 if args.quick else 1000),
        tune=args.tune if args.tune is not None else (300 if args.quick else 1000),
        chains=chains,
        cores=args.cores or min(chains, cpus or 1),
        seed=args.seed,
        target_accept=args.target_accept,
        timeout=args.timeout,
        with_peers_large=args.with_peers_large,
        systems=tuple(s.strip() for s in args.systems.split(",")),
        cache=args.cache,
        variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
    )
    machine = machine_info()
    r_status = probe_r()
    print("R: " + "; ".join(f"{s}: {r_status[s] or 'available'}" for s in R_SYSTEMS))
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="mixedbayes-bench-") as tmp:
        for name in names:
            case = CASES[name]
            print(f"{name} ({case.n_rows:,} rows)")
            rows = run_case(case, settings, r_status, Path(tmp))
            results[name] = rows
            (out_dir / f"{name}.md").write_text(case_markdown(case, rows, settings))
            raw = {"case": name, "settings": settings.__dict__, "machine": machine, "runs": rows}
            (out_dir / f"{name}.json").write_text(json.dumps(raw, indent=1, default=str) + "\n")
    earlier: dict[str, str] = {}
    if args.keep_others:
        for name in CASES:
            saved = out_dir / f"{name}.json"
            if name not in results and saved.exists():
                raw = json.loads(saved.read_text())
                results[name] = raw["runs"]
                info = raw.get("machine", {})
                earlier[name] = (
                    f"{info.get('date (UTC)', '?')}, commit {info.get('git commit', '?')}"
                )
        results = {name: results[name] for name in CASES if name in results}
    summary = summary_markdown(results, settings, machine, r_status, args.quick, earlier)
    (out_dir / "summary.md").write_text(summary)
    print(f"wrote {out_dir}/summary.md and {len(results)} case tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
