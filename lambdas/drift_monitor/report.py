"""The drift report as one self-contained HTML page: summary, PSI/KS table with threshold highlighting, per
feature an inline SVG of baseline vs current bin proportions (plus both CDFs for numeric features), and the
model's output (the captured answers against the model's answers on its test split), drawn the same way.

No plotting library: the SVG is generated here from ``report.json``'s content, every text is escaped, and the
page loads nothing from anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

BASELINE_COLOR = "#4c78a8"
CURRENT_COLOR = "#f58518"
WARN_PSI = 0.1  # conventional "moderate shift" level, below the alarm threshold

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px}
.meta{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin-top:8px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}
td.name,th.name{text-align:left}
.breach{background:#f8d0d0;font-weight:bold}.warn{background:#fdeccb}
.verdict{display:inline-block;padding:3px 10px;border-radius:4px;font-weight:bold}
.verdict.drift{background:#d62728;color:#fff}.verdict.no_drift{background:#2ca02c;color:#fff}
.verdict.insufficient_data,.verdict.skipped{background:#999;color:#fff}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
svg text{font-size:10px;fill:#333}
"""


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "&#8211;"
    return f"{float(value):.{digits}f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def bar_chart(title: str, bins: Sequence[str], baseline: Sequence[float], current: Sequence[float]) -> str:
    """Grouped bars (baseline, current) per bin; proportions on the y axis."""
    width, height, left, bottom, top = 660, 230, 48, 70, 14
    plot_w, plot_h = width - left - 10, height - top - bottom
    peak = max([*baseline, *current, 0.01]) * 1.1
    n = max(len(bins), 1)
    group = plot_w / n
    bar = group * 0.38
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888"/>',
    ]
    for tick in (0.0, peak / 2, peak):
        y = top + plot_h - tick / peak * plot_h
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{_pct(tick)}</text>')
    for i, label in enumerate(bins):
        x0 = left + i * group + group * 0.12
        for j, (values, color, side) in enumerate(
            ((baseline, BASELINE_COLOR, "baseline"), (current, CURRENT_COLOR, "current"))
        ):
            value = values[i] if i < len(values) else 0.0
            h = value / peak * plot_h
            x = x0 + j * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(label)} {side}: {_pct(value)}</title></rect>"
            )
        cx = left + (i + 0.5) * group
        parts.append(
            f'<text x="{cx:.1f}" y="{top + plot_h + 12}" text-anchor="end" '
            f'transform="rotate(-35 {cx:.1f} {top + plot_h + 12})">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def cdf_chart(title: str, xs: Sequence[float], baseline: Sequence[float], current: Sequence[float]) -> str:
    """Both empirical CDFs as step lines over the knots (the KS statistic is their largest vertical gap)."""
    width, height, left, bottom, top = 660, 200, 48, 30, 10
    plot_w, plot_h = width - left - 10, height - top - bottom
    lo, hi = min(xs), max(xs)
    span = (hi - lo) or 1.0

    def sx(x: float) -> float:
        return left + (x - lo) / span * plot_w

    def sy(p: float) -> float:
        return top + plot_h - p * plot_h

    def steps(values: Sequence[float]) -> str:
        points = [f"{sx(lo):.1f},{sy(0.0):.1f}"]
        previous = 0.0
        for x, p in zip(xs, values, strict=True):
            points.append(f"{sx(x):.1f},{sy(previous):.1f}")
            points.append(f"{sx(x):.1f},{sy(p):.1f}")
            previous = p
        return " ".join(points)

    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(title)}">',
            f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888"/>',
            f'<text x="{left - 4}" y="{top + 3}" text-anchor="end">1</text>',
            f'<text x="{left - 4}" y="{top + plot_h + 3}" text-anchor="end">0</text>',
            f'<text x="{left}" y="{top + plot_h + 14}">{escape(f"{lo:.4g}")}</text>',
            f'<text x="{left + plot_w}" y="{top + plot_h + 14}" text-anchor="end">{escape(f"{hi:.4g}")}</text>',
            f'<polyline fill="none" stroke="{BASELINE_COLOR}" stroke-width="1.5" points="{steps(baseline)}"/>',
            f'<polyline fill="none" stroke="{CURRENT_COLOR}" stroke-width="1.5" points="{steps(current)}"/>',
            "</svg>",
        ]
    )


def _cell(value: Any, threshold: float | None, warn: float | None = None) -> str:
    css = ""
    if value is not None and threshold is not None and float(value) > threshold:
        css = ' class="breach"'
    elif value is not None and warn is not None and float(value) > warn:
        css = ' class="warn"'
    return f"<td{css}>{_num(value)}</td>"


def render_html(report: Mapping[str, Any]) -> str:
    """The page for one ``report.json`` document (see ``logic.build_report``)."""
    thresholds = report.get("thresholds", {})
    psi_threshold = thresholds.get("psi")
    ks_threshold = thresholds.get("ks")
    window = report.get("window", {})
    verdict = str(report.get("verdict", ""))
    title = f"Drift report: {report.get('endpoint', '')} at {window.get('end', '')}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p><span class="verdict {escape(verdict)}">{escape(verdict.replace("_", " "))}</span> '
        f"{escape(str(report.get('reason', '')))}</p>",
        '<p class="meta">',
        f"window {escape(str(window.get('start', '')))} to {escape(str(window.get('end', '')))}; ",
        f"{int(report.get('rows', 0)):,} captured rows from {int(report.get('objects', 0))} capture files "
        f"(minimum {int(report.get('min_rows', 0)):,}); ",
        f"{int(report.get('rejected', 0)):,} rejected; ",
        f"baseline {escape(str(report.get('baseline', {}).get('report_uri', '')))}<br>",
        f"PSI threshold {_num(psi_threshold, 3)} (highlighted above it, shaded above {WARN_PSI}); "
        f"KS threshold {_num(ks_threshold, 3)}; overall PSI (max over features) "
        f"<b>{_num(report.get('overall_psi'))}</b>; empty bins get epsilon {report.get('epsilon', '')}",
        "</p>",
    ]
    features = list(report.get("features", []))
    if features:
        out += [
            "<h2>Features</h2><table><thead><tr>",
            '<th class="name">feature</th><th class="name">kind</th><th>rows</th><th>missing</th>'
            "<th>PSI</th><th>KS</th><th class='name'>status</th>",
            "</tr></thead><tbody>",
        ]
        for f in features:
            status = "drift (PSI)" if f.get("drifted") else "shift (KS)" if f.get("ks_breach") else "ok"
            out.append(
                f'<tr><td class="name"><a href="#f-{escape(f["name"])}">{escape(f["name"])}</a></td>'
                f'<td class="name">{escape(f["kind"])}</td><td>{int(f["rows"]):,}</td><td>{int(f["missing"]):,}</td>'
                f"{_cell(f.get('psi'), psi_threshold, WARN_PSI)}{_cell(f.get('ks'), ks_threshold)}"
                f'<td class="name">{status}</td></tr>'
            )
        out.append("</tbody></table>")
        out.append(
            f'<p class="legend"><span style="background:{BASELINE_COLOR}"></span>baseline (training data)'
            f'<span style="background:{CURRENT_COLOR}"></span>current (captured requests)</p>'
        )
        for f in features:
            name = str(f["name"])
            ks = "" if f.get("ks") is None else f", KS {_num(f.get('ks'))}"
            out.append(f'<h2 id="f-{escape(name)}">{escape(name)} <small>PSI {_num(f.get("psi"))}{ks}</small></h2>')
            out += _charts(name, f)
    out += _output_section(report.get("output") or {}, psi_threshold, ks_threshold)
    out.append("</body></html>")
    return "\n".join(out)


def _charts(name: str, entry: Mapping[str, Any]) -> list[str]:
    charts = [bar_chart(f"{name}: proportions per bin", entry["bins"], entry["baseline"], entry["current"])]
    cdf = entry.get("cdf")
    if cdf and cdf.get("x"):
        charts += ["<br>", cdf_chart(f"{name}: cumulative distributions", cdf["x"], cdf["baseline"], cdf["current"])]
    return charts


def _output_section(output: Mapping[str, Any], psi_threshold: float | None, ks_threshold: float | None) -> list[str]:
    """The model's output: its status and reason, the PSI/KS row and the charts when it was compared."""
    if not output:
        return []
    what = str(output.get("output") or "output")
    status = str(output.get("status", ""))
    baseline = output.get("baseline") or {}
    parts = [
        f'<h2 id="output">Model output ({escape(what)})</h2>',
        f'<p><span class="verdict {escape(status)}">{escape(status.replace("_", " "))}</span> '
        f"{escape(str(output.get('reason', '')))}</p>",
    ]
    if baseline:
        parts.append(
            f'<p class="meta">baseline: the answers of model {escape(str(baseline.get("model_version")))} on its '
            f"test split ({escape(str(baseline.get('evaluation_uri', '')))}); "
            f"{int(output.get('rows') or 0):,} captured answers of that model compared, "
            f"{int(output.get('other_versions') or 0):,} of other models left out, "
            f"{int(output.get('undecodable') or 0):,} undecodable responses</p>"
        )
    comparison = output.get("comparison")
    if comparison:
        parts += [
            "<table><thead><tr><th class='name'>output</th><th>rows</th><th>PSI</th><th>KS</th></tr></thead><tbody>",
            f'<tr><td class="name">{escape(what)}</td><td>{int(comparison["rows"]):,}</td>'
            f"{_cell(comparison.get('psi'), psi_threshold, WARN_PSI)}{_cell(comparison.get('ks'), ks_threshold)}</tr>",
            "</tbody></table>",
            *_charts(f"model output ({what})", comparison),
        ]
    return parts
