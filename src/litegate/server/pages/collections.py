"""GET /dashboard/collections: the caller's collections; /dashboard/collections/{name}: its
files with their chunk counts and a search box whose hits show their fused, lexical and
dense scores as bars. Server-rendered like ``/dashboard`` (no scripts)."""

from __future__ import annotations

import html
import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from litegate.errors import LitegateError
from litegate.keys import request_tenant
from litegate.server.pages.dashboard import PALETTE, STYLE

router = APIRouter()
EXTRA_STYLE = """.hit{background:#fff;border-radius:8px;padding:10px 14px;margin-bottom:10px;box-shadow:0 1px 2px #0001}
.hit .where{color:#667;font-size:12px;margin-bottom:4px}
.hit pre{white-space:pre-wrap;margin:6px 0 0;font:13px system-ui}
form input[type=text]{width:60%;padding:6px;font-size:14px} .err{color:#8a2414}"""


def _key_suffix(request: Request) -> str:
    key = request.query_params.get("key")
    return f"&key={quote(key)}" if key else ""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}{EXTRA_STYLE}</style></head><body><h1>{html.escape(title)}</h1>
<div class="sub">{time.strftime('%Y-%m-%d %H:%M:%S')} · <a href="/dashboard">calls</a> ·
<a href="/dashboard/collections">collections</a></div>{body}</body></html>""")


def _bar(value: float, top: float, colour: str, label: str) -> str:
    width = int(200 * max(0.0, value) / top) if top > 0 else 0
    return (f'<svg width="210" height="14" role="img" aria-label="{label}"><rect x="0" y="2" width="{width}" '
            f'height="10" fill="{colour}"/></svg> {label} {value:.4f}')


def render_hits(hits: list[Any]) -> str:
    if not hits:
        return '<p class="empty">No chunk matches.</p>'
    tops = {side: max((h.scores.get(side, 0.0) for h in hits), default=0.0) for side in ("lexical", "dense")}
    best = max(h.score for h in hits)
    out = []
    for h in hits:
        bars = [_bar(h.score, best, PALETTE[0], "fused")]
        bars += [_bar(h.scores[side], tops[side], PALETTE[i + 1], side)
                 for i, side in enumerate(("lexical", "dense")) if side in h.scores]
        section = f" · {html.escape(h.section)}" if h.section else ""
        out.append(f'<div class="hit"><div class="where">{html.escape(h.where())}{section}</div>'
                   f'{"<br>".join(bars)}<pre>{html.escape(h.text)}</pre></div>')
    return "".join(out)


def render_files(files: list[dict[str, Any]]) -> str:
    if not files:
        return '<p class="empty">No files yet: litegate collection add NAME PATH, or POST .../files.</p>'
    rows = "".join(f"<tr><td>{html.escape(f['filename'])}</td><td>{html.escape(f['mime_type'] or '')}</td>"
                   f"<td>{f['pages']}</td><td>{f['chunks']}</td><td>{f['bytes']:,}</td></tr>" for f in files)
    return ("<table><tr><th>file</th><th>type</th><th>pages</th><th>chunks</th><th>bytes</th></tr>"
            f"{rows}</table>")


@router.get("/dashboard/collections", response_class=HTMLResponse)
async def collections_page(request: Request) -> HTMLResponse:
    rows = await run_in_threadpool(request.app.state.runtime.collections.list, request_tenant(request).owner)
    suffix = _key_suffix(request).replace("&", "?", 1)
    items = "".join(f'<tr><td><a href="/dashboard/collections/{quote(r["name"])}{suffix}">{html.escape(r["name"])}'
                    f'</a></td><td>{r["files"]}</td><td>{r["chunks"]}</td><td>{r["bytes"]:,}</td></tr>' for r in rows)
    body = (f'<div class="card"><table><tr><th>collection</th><th>files</th><th>chunks</th><th>bytes</th></tr>'
            f"{items}</table></div>" if rows else '<p class="empty">No collections yet.</p>')
    return _page("litegate collections", body)


@router.get("/dashboard/collections/{ref}", response_class=HTMLResponse)
async def collection_page(ref: str, request: Request, q: str | None = None, k: int = 10) -> HTMLResponse:
    coll = request.app.state.runtime.collections
    owner = request_tenant(request).owner
    info = await run_in_threadpool(coll.get, owner, ref)
    files = await run_in_threadpool(coll.files, owner, ref)
    results = ""
    if q:
        try:
            hits = await run_in_threadpool(coll.search, owner, ref, q, top_k=min(max(k, 1), 50))
            results = render_hits(hits)
        except LitegateError as e:  # shown on the page: the files stay visible
            results = f'<p class="err">{html.escape(e.message)}</p>'
    key = request.query_params.get("key")
    hidden = f'<input type="hidden" name="key" value="{html.escape(key)}">' if key else ""
    kpis = "".join(f'<div class="kpi"><div class="v">{v}</div><div class="k">{name}</div></div>'
                   for name, v in (("files", info["files"]), ("chunks", info["chunks"]),
                                   ("bytes", f"{info['bytes']:,}"), ("encoder", html.escape(info["encoder"]))))
    body = (f'<div class="kpis">{kpis}</div><div class="card wide"><h2>Search</h2><form method="get">'
            f'<input type="text" name="q" value="{html.escape(q or "")}" placeholder="a question or keywords">'
            f'{hidden} <button>search</button></form>{results}</div>'
            f'<div class="card wide" style="margin-top:16px"><h2>Files</h2>{render_files(files)}</div>')
    return _page(f"collection {info['name']}", body)
