"""GET /dashboard/pipelines: per pipeline, cost per step and per document, the share of runs
that escalated, reached each tier, went to review or failed, and webhooks dead-lettered.

Server-rendered like ``/dashboard`` (inline SVG, no scripts), from the runs tables on each
request; ``?hours=N`` sets the window (default 24).
"""

from __future__ import annotations

import html
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from litegate.errors import InvalidRequest
from litegate.keys import request_tenant
from litegate.pipelines.notify import Outbox
from litegate.pipelines.runner import pipeline_stats
from litegate.pipelines.store import RunStore
from litegate.server.pages.dashboard import PALETTE, STYLE, hbars, money
from litegate.tenancy import Tenant

router = APIRouter()


def _pct(x: float) -> str:
    return f"{x:.1%}"


def render_pipeline(stats: dict[str, Any]) -> str:
    steps = stats["steps"]
    kpis = [("runs", f"{stats['runs']:,}"), ("cost", money(stats["cost_usd"])),
            ("per document", money(stats["cost_per_document_usd"])),
            ("per document p95", money(stats["cost_per_document_p95_usd"] or 0.0)),
            ("escalated", _pct(stats["share_escalated"])), ("to review", _pct(stats["share_to_review"])),
            ("failed", _pct(stats["share_failed"])), ("dead letters", str(stats["dead_letters"]))]
    cards = "".join(f'<div class="kpi"><div class="v">{v}</div><div class="k">{k}</div></div>' for k, v in kpis)
    cost_rows = [(name, s["cost_per_run_usd"], money(s["cost_per_run_usd"])) for name, s in steps.items()]
    tier_rows = [(t, share, _pct(share)) for t, share in stats["share_by_tier"].items()]
    table = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(s['kind'])}</td><td>{s['ran']}</td><td>{s['skipped']}</td>"
        f"<td>{s['failed']}</td><td>{s['to_review']}</td><td>{money(s['cost_usd'])}</td>"
        f"<td>{money(s['cost_per_run_usd'])}</td>"
        f"<td>{html.escape(', '.join(f'{t} {n}' for t, n in s['tiers'].items()) or '–')}</td>"
        f"<td>{s['latency_ms_p50']:.0f} ms</td></tr>" if s["latency_ms_p50"] is not None else
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(s['kind'])}</td><td>0</td><td>{s['skipped']}</td>"
        f"<td>{s['failed']}</td><td>0</td><td>–</td><td>–</td><td>–</td><td>–</td></tr>"
        for name, s in steps.items())
    status = ", ".join(f"{html.escape(k)} {v}" for k, v in sorted(stats["status"].items())) or "no runs yet"
    return f"""<section class="pipeline">
<h2 style="font-size:17px;margin:18px 0 6px">{html.escape(stats['pipeline'])}</h2>
<div class="sub">{status}</div><div class="kpis">{cards}</div><div class="grid">
<div class="card"><h2>Cost per document, by step</h2>{hbars(cost_rows, PALETTE[0])}</div>
<div class="card"><h2>Share of runs reaching each tier</h2>{hbars(tier_rows, PALETTE[1])}</div>
<div class="card wide"><h2>Steps</h2><table><tr><th>step</th><th>kind</th><th>ran</th><th>skipped</th>
<th>failed</th><th>to review</th><th>cost</th><th>per document</th><th>tiers</th><th>p50</th></tr>{table}</table></div>
</div></section>"""


def render(all_stats: list[dict[str, Any]], hours: float) -> str:
    body = "".join(render_pipeline(s) for s in all_stats) or (
        '<p class="empty">No pipeline runs in this window, and no pipelines are loaded '
        '(litegate serve --pipelines FILE|DIR).</p>')
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>litegate pipelines</title>
<style>{STYLE}</style></head><body>
<h1>litegate pipelines</h1><div class="sub">last {hours:g} hours · {time.strftime('%Y-%m-%d %H:%M:%S')} ·
<a href="/dashboard">calls</a></div>{body}</body></html>"""


@router.get("/dashboard/pipelines", response_class=HTMLResponse)
async def pipelines_dashboard(request: Request, hours: float = 24.0) -> HTMLResponse:
    if not 0 < hours <= 24 * 365:
        raise InvalidRequest("'hours' must be between 0 and 8760", param="hours")
    svc = getattr(request.app.state, "pipelines", None)
    since = time.time() - hours * 3600
    tenant = request_tenant(request)
    stats = [await run_in_threadpool(svc.stats, name, since, tenant) for name in svc.pipelines] if svc else []
    stats += await run_in_threadpool(_recorded_only, request.app.state.runtime, svc, since, tenant)
    return HTMLResponse(render(stats, hours))


def _recorded_only(runtime: Any, svc: Any, since: float, tenant: Tenant) -> list[dict[str, Any]]:
    """Pipelines this server does not load whose runs are in its database (``litegate
    pipeline run``, another server): their numbers from the recorded runs and steps."""
    accountant = getattr(runtime, "accountant", None)
    if accountant is None:
        return []
    store, outbox = (svc.store, svc.outbox) if svc else (RunStore(accountant.ledger.engine),
                                                        Outbox(accountant.ledger.engine, "dashboard"))
    loaded = set(svc.pipelines) if svc else set()
    return [pipeline_stats(store, outbox, name, None, since, tenant) for name in store.pipeline_names(since, tenant)
            if name not in loaded]
