"""The benchmark harness: one result shape, one runner, three reports (JSON, Markdown table, SVG plot).

A benchmark is a function ``run(quick: bool) -> list[Result]``. Each ``Result`` carries the figure, the
reference measured in the same run, their ratio and the budget; the budget applies either to the ratio or to
the figure itself (an absolute limit such as "p99 < 5 ms"). ``main`` runs a registry of benchmarks, writes
``results.json`` / ``results.md`` / ``results.svg`` and returns 1 when any budget is broken or any benchmark
could not be measured (``error``); rows that are ``not available`` (a component not built yet) or ``skipped``
(slow rows in ``--quick``) do not fail the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal
from xml.sax.saxutils import escape

SCHEMA_VERSION = 1
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench"

Status = Literal["pass", "fail", "error", "not available", "skipped"]
Op = Literal["<=", "<", ">=", ">"]
FAILING: frozenset[str] = frozenset({"fail", "error"})
# figures the host's load cannot change: sizes, and the minutes of a cloud timeline on paper (bench_timeline)
LOAD_FREE_UNITS: frozenset[str] = frozenset({"bytes", "min"})


@dataclass(frozen=True)
class Budget:
    """``<on> <op> <limit>``, e.g. ratio <= 2.0 or figure < 5 (ms)."""

    on: Literal["ratio", "figure"]
    op: Op
    limit: float
    unit: str = "x"

    def holds(self, value: float) -> bool:
        return {
            "<=": value <= self.limit,
            "<": value < self.limit,
            ">=": value >= self.limit,
            ">": value > self.limit,
        }[self.op]

    def usage(self, value: float) -> float:
        """Share of the budget used: below 1 is within (for >= budgets the inverse ratio)."""
        if self.op in ("<=", "<"):
            return value / self.limit if self.limit else float("inf")
        return self.limit / value if value else float("inf")

    @property
    def text(self) -> str:
        subject = "ratio" if self.on == "ratio" else "figure"
        return f"{subject} {self.op} {format_value(self.limit, self.unit)}"

    def to_json(self) -> dict[str, Any]:
        return {"on": self.on, "op": self.op, "limit": self.limit, "unit": self.unit, "text": self.text}


@dataclass
class Result:
    """One row of the report."""

    name: str
    status: Status
    budget: Budget | None
    figure: float | None = None
    unit: str = ""
    reference: float | None = None
    reference_label: str = ""
    ratio: float | None = None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def measured(
        cls,
        name: str,
        *,
        figure: float,
        unit: str,
        budget: Budget,
        reference: float | None = None,
        reference_label: str = "",
        ratio: float | None = None,
        problems: Sequence[str] = (),
        note: str = "",
        details: dict[str, Any] | None = None,
    ) -> Result:
        """A measured row; the verdict comes from the budget, and any ``problems`` also fail it."""
        if ratio is None and reference:
            ratio = figure / reference
        checked = ratio if budget.on == "ratio" else figure
        if checked is None:
            raise ValueError(f"{name}: a budget on the ratio needs a reference or a ratio")
        passed = budget.holds(checked) and not problems
        notes = [*problems, note] if note else list(problems)
        return cls(
            name=name,
            status="pass" if passed else "fail",
            budget=budget,
            figure=figure,
            unit=unit,
            reference=reference,
            reference_label=reference_label,
            ratio=ratio,
            note="; ".join(notes),
            details=details or {},
        )

    @property
    def usage(self) -> float | None:
        if self.budget is None:
            return None
        value = self.ratio if self.budget.on == "ratio" else self.figure
        return None if value is None else self.budget.usage(value)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "passed": None if self.status in ("not available", "skipped") else self.status == "pass",
            "figure": self.figure,
            "unit": self.unit,
            "reference": self.reference,
            "reference_label": self.reference_label,
            "ratio": self.ratio,
            "budget": self.budget.to_json() if self.budget else None,
            "budget_usage": self.usage,
            "note": self.note,
            "details": self.details,
        }


class NotAvailable(Exception):
    """Raised by a benchmark whose component does not exist yet: its rows say "not available"."""


def import_optional(module: str) -> ModuleType:
    """Import ``module``; ``NotAvailable`` when the module itself (not one of its imports) is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and (module == error.name or module.startswith(error.name + ".")):
            raise NotAvailable(f"not available yet: {module} does not exist") from error
        raise


@dataclass(frozen=True)
class Benchmark:
    """A registry entry. ``target`` is ``"module:function"`` (imported lazily) or a callable.

    ``full_only`` rows are skipped in ``--quick``; ``budgets`` name the rows reported without running
    (skipped, not available, error).
    """

    name: str
    description: str
    target: str | Callable[[bool], list[Result]]
    budgets: tuple[tuple[str, Budget], ...]
    full_only: bool = False

    def load(self) -> Callable[[bool], list[Result]]:
        if callable(self.target):
            return self.target
        module_name, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module_name), function)  # type: ignore[no-any-return]

    def placeholder(self, status: Status, note: str) -> list[Result]:
        return [Result(name=row, status=status, budget=budget, note=note) for row, budget in self.budgets]


def run_benchmark(benchmark: Benchmark, *, quick: bool) -> list[Result]:
    """Run one benchmark; never raises: failures become ``error`` rows with the exception."""
    if quick and benchmark.full_only:
        return benchmark.placeholder("skipped", "slow: runs only without --quick")
    try:
        function = benchmark.load()
    except Exception as error:  # a half-written module must not hide the other benchmarks
        return benchmark.placeholder("error", f"import failed: {error!r}")
    try:
        results = function(quick)
    except NotAvailable as reason:
        return benchmark.placeholder("not available", str(reason))
    except Exception as error:
        frame = traceback.extract_tb(error.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
        return benchmark.placeholder("error", f"{type(error).__name__}: {error} (at {where})")
    if not results:
        return benchmark.placeholder("error", "the benchmark returned no result")
    return results


def annotate_load(results: list[Result], before: float, after: float, cpus: int | None = None) -> list[Result]:
    """Record the host's 1-minute load around a benchmark; flag timings taken on a busy host.

    Other work on the machine (a parallel test run, a build) slows the figure and its reference unevenly,
    so a row measured with more runnable processes than CPUs says so instead of passing as a clean number.
    """
    cpus = cpus or os.cpu_count() or 1
    busiest = max(before, after)
    for result in results:
        if result.status not in ("pass", "fail"):
            continue
        result.details = {**result.details, "load_before": round(before, 2), "load_after": round(after, 2)}
        if busiest > cpus and result.unit not in LOAD_FREE_UNITS:
            warning = f"busy host (load {busiest:.1f} on {cpus} CPUs): timings are pessimistic"
            result.note = f"{result.note}; {warning}" if result.note else warning
    return results


# ---------------------------------------------------------------- reports


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "bytes":
        return f"{value / 1000:,.1f} kB" if value < 1e6 else f"{value / 1e6:,.2f} MB"
    if unit == "s":
        return f"{value:,.1f} s" if value >= 10 else f"{value:,.2f} s"
    if unit == "ms":
        return f"{value:,.3f} ms" if value < 10 else f"{value:,.1f} ms"
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:.3g} {unit}".strip()


_MARK = {"pass": "pass", "fail": "**FAIL**", "error": "**ERROR**", "not available": "n/a", "skipped": "skipped"}


def host_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()

    return {
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def build_report(results: list[Result], *, quick: bool, seconds: float, selected: list[str]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "quick": quick,
        "selected": selected,
        "seconds": round(seconds, 2),
        "host": host_info(),
        "passed": not any(r.status in FAILING for r in results),
        "counts": {s: sum(r.status == s for r in results) for s in _MARK},
        "results": [r.to_json() for r in results],
    }


def render_markdown(report: dict[str, Any]) -> str:
    host = report["host"]
    lines = [
        f"Benchmarks {report['generated_at']} ({'quick' if report['quick'] else 'full'} run, "
        f"{report['seconds']:.0f} s), commit {host['commit'] or '?'}{' +changes' if host['dirty'] else ''}, "
        f"{host['cpus']} CPUs, load {host['load_average_1m']}",
        "",
        "| benchmark | figure | reference (same run) | ratio | budget | result |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for row in report["results"]:
        budget = row["budget"]
        reference = format_value(row["reference"], row["unit"])
        if row["reference_label"] and row["reference"] is not None:
            reference = f"{reference} ({row['reference_label']})"
        lines.append(
            f"| {row['name']} | {format_value(row['figure'], row['unit'])} | {reference} | "
            f"{format_value(row['ratio'], 'x')} | {budget['text'] if budget else '-'} | {_MARK[row['status']]} |"
        )
        if row["note"]:
            notes.append(f"- {row['name']}: {row['note']}")
    verdict = "all budgets hold" if report["passed"] else "BUDGET BROKEN (or a benchmark failed to run)"
    lines += ["", f"Result: {verdict}."]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def render_svg(report: dict[str, Any]) -> str:
    """Horizontal bars: the share of its budget each row uses (1.0 = at the limit)."""
    rows = report["results"]
    label_w, plot_w, right_w, row_h, top = 230, 420, 250, 24, 46
    scale_max = 2.0
    width = label_w + plot_w + right_w
    height = top + row_h * len(rows) + 30

    def x(usage: float) -> float:
        return label_w + plot_w * min(usage, scale_max) / scale_max

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="18" font-size="14" font-weight="bold">Share of budget used '
        f"({escape(report['generated_at'])}, {'quick' if report['quick'] else 'full'} run)</text>",
        '<text x="10" y="34" fill="#555">bar = figure (or ratio) / limit; for minimum budgets limit / ratio; '
        "left of the line holds</text>",
    ]
    for tick in (0.0, 0.5, 1.0, 1.5, 2.0):
        tx = x(tick)
        colour = "#333" if tick == 1.0 else "#ddd"
        out.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{height - 26}" stroke="{colour}"/>')
        tick_label = "1 = budget" if tick == 1.0 else f"{tick:g}"
        out.append(f'<text x="{tx:.1f}" y="{height - 12}" text-anchor="middle" fill="#555">{tick_label}</text>')
    for index, row in enumerate(rows):
        y = top + index * row_h
        out.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(row["name"])}</text>')
        usage = row["budget_usage"]
        if usage is None:
            out.append(f'<text x="{label_w + 6}" y="{y + 16}" fill="#888">{escape(row["status"])}</text>')
            continue
        colour = "#2e7d32" if row["status"] == "pass" else "#c62828"
        bar = max(x(usage) - label_w, 1.0)
        out.append(f'<rect x="{label_w}" y="{y + 4}" width="{bar:.1f}" height="{row_h - 8}" fill="{colour}"/>')
        clipped = " (clipped)" if usage > scale_max else ""
        checked = row["ratio"] if row["budget"]["on"] == "ratio" else row["figure"]
        text = format_value(checked, row["budget"]["unit"])
        out.append(
            f'<text x="{label_w + plot_w + 8}" y="{y + 16}">{escape(text)} vs {escape(row["budget"]["text"])}'
            f"{clipped}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_reports(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "md": out_dir / "results.md", "svg": out_dir / "results.svg"}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["md"].write_text(render_markdown(report))
    paths["svg"].write_text(render_svg(report))
    return paths


# ---------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None, registry: Sequence[Benchmark]) -> argparse.Namespace:
    names = [b.name for b in registry]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the benchmarks, write results.json/.md/.svg, exit 1 when a budget is broken.",
        epilog="benchmarks: " + "; ".join(f"{b.name} ({b.description})" for b in registry),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"subset to run (default: all): {', '.join(names)}")
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, slow benchmarks skipped")
    parser.add_argument("--skip-suite", action="store_true", help="do not time the full test suite")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory of the reports (default: bench/)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    return args


def main(argv: Sequence[str] | None, registry: Sequence[Benchmark], *, suite_name: str = "test_suite") -> int:
    args = parse_args(argv, registry)
    selected = [b for b in registry if not args.names or b.name in args.names]
    started = time.perf_counter()
    results: list[Result] = []
    for benchmark in selected:
        if args.skip_suite and benchmark.name == suite_name:
            results += benchmark.placeholder("skipped", "--skip-suite")
            continue
        if not (args.quick and benchmark.full_only):
            print(f"[bench] {benchmark.name}: {benchmark.description} ...", file=sys.stderr, flush=True)
        load_before = os.getloadavg()[0]
        results += annotate_load(run_benchmark(benchmark, quick=args.quick), load_before, os.getloadavg()[0])
    report = build_report(
        results, quick=args.quick, seconds=time.perf_counter() - started, selected=[b.name for b in selected]
    )
    paths = write_reports(report, args.out)
    print(render_markdown(report), end="")
    print(f"\nwritten: {', '.join(str(p) for p in paths.values())}")
    return 0 if report["passed"] else 1
