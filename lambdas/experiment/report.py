"""An A/B experiment's report as one self-contained HTML page: the design, the decision and its reason, the outcome
per variant over time with its always-valid band, the challenger's improvement over time with its interval
against 0 and the minimum detectable effect, and every look's numbers. Inline SVG, every text escaped, nothing
loaded from anywhere (as ``lambdas/drift_monitor/report.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from lambdas.experiment.models import ExperimentRecord, Look

COLORS = {"champion": "#4c78a8", "challenger": "#f58518", "improvement": "#54a24b"}
WIDTH, HEIGHT, PAD = 760, 220, 48

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px}.meta{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin-top:8px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}td.text{text-align:left}
.verdict{display:inline-block;padding:3px 10px;border-radius:4px;font-weight:bold;color:#fff;background:#999}
.verdict.PROMOTE{background:#2ca02c}.verdict.STOP_WORSE{background:#d62728}.verdict.STOP_FUTILE{background:#8c6d31}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
svg text{font-size:10px;fill:#333}
"""


def _num(value: Any, digits: int = 4) -> str:
    return "&#8211;" if value is None else f"{float(value):.{digits}g}"


def _chart(
    series: Sequence[tuple[str, str, list[tuple[float, float | None, float | None]]]], lines: dict[str, float]
) -> str:
    """Series of (name, color, [(mean, low, high) per look]) as lines with shaded bands; ``lines``: labelled
    horizontal references (0, the MDE)."""
    values = [v for _, _, points in series for p in points for v in p if v is not None]
    values += list(lines.values())
    if not values:
        return "<p class='meta'>no labelled outcomes yet</p>"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    looks = max((len(points) for _, _, points in series), default=1)

    def x(i: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * (i / max(1, looks - 1))

    def y(v: float) -> float:
        return HEIGHT - PAD / 2 - (HEIGHT - PAD) * (v - low) / span

    parts = [f'<svg width="{WIDTH}" height="{HEIGHT}" role="img">']
    for label, value in lines.items():
        parts.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#999" '
            f'stroke-dasharray="4 3"/><text x="{WIDTH - PAD + 4}" y="{y(value) + 3:.1f}">{escape(label)}</text>'
        )
    for name, color, points in series:
        banded = [(i, lo, hi) for i, (_, lo, hi) in enumerate(points) if lo is not None and hi is not None]
        if banded:
            outline = [f"{x(i):.1f},{y(hi):.1f}" for i, _, hi in banded]
            outline += [f"{x(i):.1f},{y(lo):.1f}" for i, lo, _ in reversed(banded)]
            parts.append(f'<polygon points="{" ".join(outline)}" fill="{color}" fill-opacity="0.18" stroke="none"/>')
        path = " ".join(f"{x(i):.1f},{y(mean):.1f}" for i, (mean, _, _) in enumerate(points))
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"><title>{escape(name)}'
            "</title></polyline>"
        )
    parts.append(
        f'<text x="4" y="{y(high) + 3:.1f}">{high:.4g}</text><text x="4" y="{y(low) + 3:.1f}">{low:.4g}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _variant_series(record: ExperimentRecord) -> list[tuple[str, str, list[tuple[float, float | None, float | None]]]]:
    series = []
    for role, side in (("champion", record.champion), ("challenger", record.challenger)):
        points = []
        for look in record.looks:
            band = look.variants.get(side.variant) or {}
            points.append((float(band.get("mean", 0.0)), band.get("low"), band.get("high")))
        series.append((f"{role} ({side.variant})", COLORS[role], points))
    return series


def _improvement_series(looks: list[Look]) -> list[tuple[str, str, list[tuple[float, float | None, float | None]]]]:
    points = [
        (float(look.decision["improvement"]), look.decision["interval"][0], look.decision["interval"][1])
        for look in looks
    ]
    return [("improvement", COLORS["improvement"], points)]


def render(record: ExperimentRecord) -> str:
    last = record.final or (record.looks[-1] if record.looks else None)
    decision = last.decision if last else {"verdict": "CONTINUE", "reason": "no look yet"}
    ab = record.design
    rows = "".join(
        "<tr>"
        f"<td class='text'>{escape(look.at)}</td><td>{look.decision['n_champion']}</td>"
        f"<td>{look.decision['n_challenger']}</td><td>{_num(look.decision['mean_champion'])}</td>"
        f"<td>{_num(look.decision['mean_challenger'])}</td><td>{_num(look.decision['improvement'])}</td>"
        f"<td>[{_num(look.decision['interval'][0])}, {_num(look.decision['interval'][1])}]</td>"
        f"<td>{_num(look.decision['statistic'])}</td><td class='text'>{escape(look.decision['verdict'])}</td>"
        "</tr>"
        for look in record.looks
    )
    legend = "".join(f"<span style='background:{COLORS[role]}'></span>{role}" for role in ("champion", "challenger"))
    challenger, champion = record.challenger, record.champion
    verdict = escape(str(decision["verdict"]))
    sent = f"; endpoint sent to {escape(record.target_config_name)}" if record.target_config_name else ""
    header = (
        f"<h1>A/B experiment: {escape(record.dataset)} <span class='verdict {verdict}'>{verdict}</span></h1>"
        f"<p class='meta'>endpoint {escape(record.endpoint_name)}, config {escape(record.experiment_config_name)}, "
        f"started {escape(record.started_at)}; challenger {escape(challenger.model_version)} "
        f"({escape(challenger.variant)}, {ab.challenger_share:.0%} of requests) vs champion "
        f"{escape(champion.model_name)} ({escape(champion.variant)})</p>"
        f"<p><b>Why:</b> {escape(str(decision['reason']))}</p>"
        f"<p class='meta'>outcome {escape(record.outcome)} per labelled request; minimum detectable effect "
        f"{ab.minimum_detectable_effect:g}; {ab.confidence:.0%} always-valid confidence (mSPRT: every look counted); "
        f"power {ab.power:.0%}; at most {ab.max_duration_hours} h, labels within {ab.label_delay_hours} h{sent}</p>"
    )
    table = (
        "<table><tr><th>at</th><th>n champion</th><th>n challenger</th><th>mean champion</th>"
        "<th>mean challenger</th><th>improvement</th><th>interval</th><th>likelihood ratio</th><th>decision</th></tr>"
        f"{rows}</table>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>A/B experiment "
        f"{escape(record.experiment_config_name)}</title><style>{_CSS}</style></head><body>{header}"
        f"<h2>Outcome per variant, with always-valid bands</h2><div class='legend'>{legend}</div>"
        f"{_chart(_variant_series(record), {})}"
        "<h2>Challenger's improvement (positive: better in the outcome's direction), with its interval</h2>"
        f"{_chart(_improvement_series(record.looks), {'0': 0.0, 'MDE': ab.minimum_detectable_effect})}"
        f"<h2>Looks</h2>{table}</body></html>\n"
    )
