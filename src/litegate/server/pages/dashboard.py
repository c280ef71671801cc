"""GET /dashboard: cost by feature and tier over time, escalation, latency, cost per success.

One self-contained HTML page (inline SVG, no scripts or external assets), rendered from the
ledger on each request; ``?hours=N`` sets the window (default 24).
"""

from __future__ import annotations

import html
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from litegate.errors import InvalidRequest
from litegate.keys import request_tenant
from litegate.ledger.calls import timeseries

router = APIRouter()

STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#1d2430;background:#f6f7f9}
h1{font-size:20px;margin:0 0 4px} .sub{color:#667;margin-bottom:16px}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.kpi{background:#fff;border-radius:8px;padding:12px 16px;min-width:130px;box-shadow:0 1px 2px #0001}
.kpi .v{font-size:20px;font-weight:600} .kpi .k{color:#667;font-size:12px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.card{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0001}
.card h2{font-size:14px;margin:0 0 8px} .wide{grid-column:1 / span 2}
.legend .key{margin-right:12px;font-size:12px} .legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
table{border-collapse:collapse;font-size:13px;width:100%}
td,th{text-align:left;padding:4px 8px;border-bottom:1px solid #eee}
.empty{color:#889} .alarm{background:#fde8e4;color:#8a2414;border-radius:8px;padding:10px 14px;margin-bottom:12px}
"""

PALETTE = ["#3b6fd4", "#e07b39", "#3aa17e", "#b54fb3", "#d4b23b", "#6d7f94"]


def money(x: float) -> str:
    return f"${x:,.6f}" if x < 0.01 else f"${x:,.4f}"


def _stacked_bars(series: dict[str, Any], width: int = 720, height: int = 220) -> str:
    tiers, cost = series["tiers"], series["cost"]
    n = len(next(iter(cost.values()), []))
    if not tiers or not n:
        return '<p class="empty">No calls in this window yet.</p>'
    totals = [sum(cost[t][i] for t in tiers) for i in range(n)]
    top = max(totals) or 1.0
    pad, bw = 40, (width - 50) / n
    parts = [f'<svg class="chart" width="{width}" height="{height + 30}" role="img" aria-label="cost over time">',
             f'<line x1="{pad}" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>']
    for i in range(n):
        y = float(height)
        for j, t in enumerate(tiers):
            h = cost[t][i] / top * (height - 10)
            if h > 0:
                y -= h
                parts.append(f'<rect class="bar" x="{pad + i * bw + 1:.1f}" y="{y:.1f}" width="{bw - 2:.1f}" '
                             f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}"><title>{html.escape(t)}: '
                             f'{money(cost[t][i])}, {series["calls"][t][i]} calls</title></rect>')
    parts.append(f'<text x="{pad}" y="{height + 20}" font-size="11">{series["bucket_seconds"] / 60:.0f} min per bar'
                 f'</text><text x="2" y="14" font-size="11">{money(top)}</text></svg>')
    legend = "".join(f'<span class="key"><i style="background:{PALETTE[j % len(PALETTE)]}"></i>{html.escape(t)}</span>'
                     for j, t in enumerate(tiers))
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def hbars(rows: list[tuple[str, float, str]], color: str, width: int = 520) -> str:
    if not rows:
        return '<p class="empty">No data yet.</p>'
    top = max(v for _, v, _ in rows) or 1.0
    h = 22 * len(rows) + 6
    parts = [f'<svg class="chart" width="{width}" height="{h}" role="img">']
    for i, (label, value, text) in enumerate(rows):
        w = value / top * (width - 300)
        parts.append(f'<text x="0" y="{i * 22 + 15}" font-size="11">{html.escape(label[:22])}</text>'
                     f'<rect class="bar" x="130" y="{i * 22 + 4}" width="{max(w, 1):.1f}" height="14" fill="{color}"/>'
                     f'<text x="{134 + w:.1f}" y="{i * 22 + 15}" font-size="11">{html.escape(text)}</text>')
    return "".join(parts) + "</svg>"


def _per_success(cost: float, successes: int, failures: int) -> str:
    if successes:
        return money(cost / successes)
    return f"no success yet ({failures} failure{'s' if failures != 1 else ''})" if failures else "no feedback yet"


def _window(hours: float) -> str:
    """'last hour', 'last 24 hours', 'last 7 days': the ?hours= window in words."""
    if hours == 1:
        return "last hour"
    if hours >= 48 and hours % 24 == 0:
        return f"last {hours / 24:g} days"
    return f"last {hours:g} hours"


def render(summary: dict[str, Any], series: dict[str, Any], hours: float,
           alarms: list[dict[str, Any]] | None = None, learning: list[tuple[str, str]] | None = None,
           key: str | None = None) -> str:
    groups = summary["groups"]
    calls = summary["calls"]
    escalated = sum(g["escalation_rate"] * g["calls"] for g in groups)
    successes = sum(g["successes"] for g in groups)
    lat50 = [g["latency_ms_p50"] for g in groups if g["latency_ms_p50"] is not None]
    shadowed = sum(g.get("shadowed", 0) for g in groups)
    agreed = sum((g.get("shadow_agreement") or 0) * g.get("shadowed", 0) for g in groups)
    kpis = [("calls", f"{calls:,}"), ("cost", money(summary["cost_usd"])),
            ("per 1,000 calls", money(summary["cost_per_1000_calls_usd"])),
            ("escalation rate", f"{escalated / calls:.1%}" if calls else "–"),
            ("cost per success", _per_success(summary["cost_usd"], successes,
                                              sum(g["failures"] for g in groups))),
            ("median latency", f"{sorted(lat50)[len(lat50) // 2]:.0f} ms" if lat50 else "–"),
            ("shadow agreement", f"{agreed / shadowed:.0%} of {shadowed}" if shadowed else "no shadow traffic")]
    banner = "".join(
        f'<div class="alarm">Escalation budget exceeded: {html.escape(a["task"])} / '
        f'{html.escape(str(a["feature"] or "(untagged)"))} escalates {a["escalation_rate"]:.0%} of its last '
        f'{a["calls"]} calls (budget {a["budget"]:.0%})</div>' for a in (alarms or []))
    by_feature: dict[str, float] = {}
    for g in groups:
        by_feature[g["feature"] or "(untagged)"] = by_feature.get(g["feature"] or "(untagged)", 0.0) + g["cost_usd"]
    feature_rows = [(f, c, money(c)) for f, c in sorted(by_feature.items(), key=lambda kv: -kv[1])]
    esc_rows = [(f"{g['feature'] or '(untagged)'} · {g['tier']}", g["escalation_rate"], f"{g['escalation_rate']:.1%}")
                for g in groups]
    lat_rows = [(f"{g['feature'] or '(untagged)'} · {g['tier']}", g["latency_ms_p95"] or 0.0,
                 f"p50 {g['latency_ms_p50']:.0f} / p95 {g['latency_ms_p95']:.0f} ms")
                for g in groups if g["latency_ms_p50"] is not None]
    table = "".join(
        f"<tr><td>{html.escape(str(g['feature'] or '–'))}</td><td>{html.escape(g['tier'])}</td><td>{g['calls']}</td>"
        f"<td>{money(g['cost_usd'])}</td><td>{g['escalation_rate']:.1%}</td><td>{g['successes']}/{g['failures']}</td>"
        f"<td>{money(g['cost_per_success_usd']) if g['cost_per_success_usd'] else '–'}</td></tr>" for g in groups)
    cards = "".join(f'<div class="kpi"><div class="v">{v}</div><div class="k">{k}</div></div>' for k, v in kpis)
    from urllib.parse import urlencode

    links = " · ".join(
        f'<a href="/dashboard/learning?{html.escape(urlencode({kind: name, **({"key": key} if key else {})}))}">'
        f'{kind} {html.escape(name)}</a>' for kind, name in learning or [])
    learning_card = (f'<div class="card wide"><h2>Learning from review</h2>{links}</div>' if links else "")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>litegate dashboard</title>
<style>{STYLE}</style></head><body>
<h1>litegate</h1><div class="sub">{_window(hours)} · {time.strftime('%Y-%m-%d %H:%M:%S')}</div>
{banner}<div class="kpis">{cards}</div>
<div class="grid">
<div class="card wide"><h2>Cost over time, by tier</h2>{_stacked_bars(series)}</div>
<div class="card"><h2>Cost by feature</h2>{hbars(feature_rows, '#3b6fd4')}</div>
<div class="card"><h2>Escalation rate</h2>{hbars(esc_rows, '#e07b39')}</div>
<div class="card"><h2>Latency (bar: p95)</h2>{hbars(lat_rows, '#3aa17e')}</div>
<div class="card"><h2>By feature and tier</h2><table><tr><th>feature</th><th>tier</th><th>calls</th><th>cost</th>
<th>escalated</th><th>success/fail</th><th>per success</th></tr>{table}</table></div>
{learning_card}</div></body></html>"""


@router.get("/", include_in_schema=False)
async def home(request: Request) -> RedirectResponse:
    """The server's root opens the dashboard (keeping ?key= for a browser when keys are on)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse("/dashboard" + query, status_code=302)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, hours: float = 24.0) -> HTMLResponse:
    if not 0 < hours <= 24 * 365:

        raise InvalidRequest("'hours' must be between 0 and 8760", param="hours")
    accountant = request.app.state.runtime.accountant
    await run_in_threadpool(accountant.flush)
    until = time.time()
    since = until - hours * 3600
    tenant = request_tenant(request)  # a key sees its own calls; an admin key, everyone's
    summary = await run_in_threadpool(accountant.ledger.summary, since, tenant)
    rows = await run_in_threadpool(accountant.ledger.rows, since, None, tenant)
    runtime = request.app.state.runtime
    learning = await run_in_threadpool(_learning_models, runtime)
    return HTMLResponse(render(summary, timeseries(rows, since, until), hours, list(accountant.alarms.values()),
                               learning, request.query_params.get("key")))


def _learning_models(runtime: Any) -> list[tuple[str, str]]:
    """(kind, name) of every classifier and extractor trained with learn."""
    found = []
    for kind, store in (("classifier", runtime.classifiers), ("extractor", runtime.extractors)):
        for name in store.names():
            try:
                if getattr(store.get(name).info, "learn", False):
                    found.append((kind, name))
            except Exception:  # noqa: BLE001 - an unreadable model is left off the page, not a 500
                continue
    return found
