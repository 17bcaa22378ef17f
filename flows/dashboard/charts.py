"""Inline SVG charts, drawn on the server: no JavaScript library, no CDN, nothing to download.
Every label goes through markupsafe.escape (strangers' text)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

from markupsafe import Markup, escape

COLORS = {"asserted": "#2b6cb0", "hedged": "#d69e2e", "unverified": "#805ad5", "denied": "#c53030"}
PALETTE = ["#2b6cb0", "#c53030", "#2f855a", "#d69e2e", "#805ad5", "#dd6b20", "#319795", "#b83280", "#4a5568", "#718096"]


def stacked_bars(rows: list[dict], width: int = 860, height: int = 260) -> Markup:
    """Claims per period stacked by verification; periods with seed-corpus claims are marked."""
    if not rows:
        return Markup('<p class="empty">No dated claims yet.</p>')
    buckets = sorted({r["bucket"] for r in rows})
    stacks: dict[str, dict[str, int]] = {b: defaultdict(int) for b in buckets}
    seeded = {r["bucket"] for r in rows if r["seed"]}
    for r in rows:
        stacks[r["bucket"]][r["verification"]] += r["count"]
    peak = max(sum(s.values()) for s in stacks.values()) or 1
    left, bottom, top = 40, 40, 16
    plot_w, plot_h = width - left - 10, height - bottom - top
    bar_w = max(2.0, plot_w / len(buckets) * 0.8)
    parts = [
        f'<svg class="chart" data-chart="claims-over-time" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Claims over time">'
    ]
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{int(peak * frac)}</text>'
        )
    for i, b in enumerate(buckets):
        x = left + plot_w * i / len(buckets) + (plot_w / len(buckets) - bar_w) / 2
        y = top + plot_h
        for status in ("asserted", "hedged", "unverified", "denied"):
            n = stacks[b].get(status, 0)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLORS[status]}"><title>{escape(b)}: {n} {status}</title></rect>'
            )
        if b in seeded:
            parts.append(
                f'<text class="seed-mark" x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">'
                f"◆<title>seed corpus</title></text>"
            )
        if len(buckets) <= 12 or i % max(1, len(buckets) // 8) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle">{escape(b)}</text>'
            )
    parts.append("</svg>")
    legend = " ".join(f'<span class="key" style="--c:{c}">{s}</span>' for s, c in COLORS.items())
    return Markup("".join(parts) + f'<div class="legend">{legend} <span class="key seed">◆ seed corpus</span></div>')


def scatter(points: list[dict], width: int = 860, height: int = 280) -> Markup:
    """Values over time, one colour per claimant, log scale when values span orders of magnitude."""
    dated = [p for p in points if p["date"] is not None]
    if not dated:
        return Markup('<p class="empty">No dated figures for this group.</p>')
    times = [p["date"].timestamp() for p in dated]
    values = [max(p["value"], 1e-9) for p in dated]
    t0, t1 = min(times), max(times)
    log = max(values) / max(min(values), 1e-9) > 50
    scale = (lambda v: math.log10(v)) if log else (lambda v: v)
    v0, v1 = min(scale(v) for v in values), max(scale(v) for v in values)
    if v1 == v0:
        v0, v1 = v0 - 1, v1 + 1
    if t1 == t0:
        t0, t1 = t0 - 86400, t1 + 86400
    left, bottom, top, right = 70, 40, 16, 160
    plot_w, plot_h = width - left - right, height - bottom - top
    claimants = sorted({p["claimant"] or "(outlet)" for p in dated})
    color = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(claimants)}
    parts = [
        f'<svg class="chart" data-chart="quantities" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Figures over time">'
    ]
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        raw = v0 + (v1 - v0) * frac
        label = f"{10**raw:,.0f}" if log else f"{raw:,.4g}"
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    for frac in (0, 1):
        when = datetime.fromtimestamp(t0 + (t1 - t0) * frac).strftime("%Y-%m-%d")
        parts.append(
            f'<text x="{left + plot_w * frac:.1f}" y="{height - bottom + 16}" text-anchor="middle">{when}</text>'
        )
    for p, t, v in zip(dated, times, values, strict=True):
        x = left + plot_w * (t - t0) / (t1 - t0)
        y = top + plot_h * (1 - (scale(v) - v0) / (v1 - v0))
        who = p["claimant"] or "(outlet)"
        parts.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{color[who]}">'
            f"<title>{escape(who)}: {escape(p['text'])} ({p['date']:%Y-%m-%d})</title></circle>"
        )
    for i, who in enumerate(claimants[:12]):
        y = top + 14 * i + 8
        parts.append(
            f'<circle cx="{left + plot_w + 16}" cy="{y}" r="5" fill="{color[who]}"/>'
            f'<text x="{left + plot_w + 26}" y="{y + 4}">{escape(who[:22])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
