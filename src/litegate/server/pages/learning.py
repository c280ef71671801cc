"""GET /dashboard/learning?classifier=NAME (or extractor=NAME): a learning model's page.

The learning curve (held-back score per version; per day the share of calls unsure, escalated
and reviewed) and the review queue, most informative call first, each with a form to label it
(plain HTML forms, no scripts: the label goes in as a correction, exactly as POST /v1/feedback
takes it) and a button to distill now. Every form carries a CSRF token (``csrf``): a post
without this browser's token is refused.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from litegate.errors import InvalidRequest, LitegateError
from litegate.server.native.learning import learner, which
from litegate.server.native.tasks import apply_feedback
from litegate.server.pages import csrf
from litegate.server.pages.dashboard import STYLE, hbars

router = APIRouter()

PAGE_STYLE = """.item{border-top:1px solid #eee;padding:10px 0}.item .t{font-size:15px;margin-bottom:4px}
.item .m{color:#667;font-size:12px;margin-bottom:6px} form.inline{display:inline}
select,input[type=text]{font-size:13px;padding:3px 6px;margin-right:6px} button{font-size:13px;padding:3px 10px;
background:#3b6fd4;color:#fff;border:0;border-radius:4px} .ok{background:#e3f4ea;color:#1d5a35;border-radius:8px;
padding:10px 14px;margin-bottom:12px} label.f{display:inline-block;min-width:90px;color:#445;font-size:12px}
"""


def _query(kind: str, name: str, request: Request, **extra: str) -> str:
    """The page's own query (the model, the queue's bounds, the API key) plus ``extra``."""
    params = {kind: name}
    for keep in ("below", "limit", "key"):
        if request.query_params.get(keep):
            params[keep] = request.query_params[keep]
    return urlencode({**params, **extra})


def _item_form(kind: str, name: str, item: dict[str, Any], options: dict[str, Any], request: Request) -> str:
    action = f"/dashboard/learning?{html.escape(_query(kind, name, request))}"
    prediction = item["prediction"] or {}
    hidden = f'<input type="hidden" name="id" value="{html.escape(item["id"])}">'
    if kind == "classifier":
        predicted = prediction.get("label") or (prediction.get("labels") or [None])[0]
        choices = "".join(f'<option{" selected" if lab == predicted else ""}>{html.escape(lab)}</option>'
                          for lab in options["labels"])
        controls = (f'<select name="label">{choices}</select>'
                    '<input type="text" name="new_label" placeholder="or a new label" size="16">')
    else:
        data = prediction.get("data") or {}
        controls = "".join(
            f'<div><label class="f">{html.escape(f)}</label><input type="text" name="field.{html.escape(f)}" '
            f'value="{html.escape(data.get(f) or "")}" size="30"></div>' for f in options["fields"])
    return (f'<form method="post" action="{action}">{hidden}{csrf.hidden_field(request)}{controls}'
            '<button type="submit">Save label</button></form>')


def _score(v: dict[str, Any]) -> float:
    """A version's bar: its held-back score when distilled, else its cross-validated estimate."""
    return v["candidate_score"] if v["candidate_score"] is not None else (v["cv_score"] or 0.0)


def _score_text(v: dict[str, Any]) -> str:
    if v["candidate_score"] is not None:
        n = v["held_back"]
        return f"{v['candidate_score']:.3f} on {n} new label{'s' if n != 1 else ''} (before: {v['previous_score']:.3f})"
    return f"{v['cv_score']:.3f} cross-validated" if v["cv_score"] is not None else "no estimate"


def render(kind: str, name: str, curve: dict[str, Any], queue: dict[str, Any], request: Request,
           notice: str = "", error: str = "") -> str:
    versions = curve["versions"]
    kpis = [("active version", f"v{curve['active_version']}"), ("calls kept", f"{curve['calls']:,}"),
            ("human labels", f"{curve['human_labels']:,}"), ("teacher labels", f"{curve['teacher_labels']:,}"),
            ("not yet trained on", f"{curve['new_labels']:,}"), ("to review", f"{queue['pending']:,}")]
    cards = "".join(f'<div class="kpi"><div class="v">{v}</div><div class="k">{k}</div></div>' for k, v in kpis)
    score_rows = [(f"v{v['version']}" + (" (active)" if v["active"] else ""), _score(v), _score_text(v))
                  for v in versions]
    day_rows = [(d["day"], d["unsure_share"], f"{d['unsure_share']:.1%} of {d['calls']}") for d in curve["days"]]
    day_table = "".join(
        f"<tr><td>{d['day']}</td><td>{d['calls']}</td><td>{d['unsure_share']:.1%}</td><td>{d['escalated_share']:.1%}"
        f"</td><td>{d['reviewed_share']:.1%}</td><td>{d['corrected']}</td></tr>" for d in curve["days"])
    options = {"labels": queue.get("labels", []), "fields": list(queue.get("fields", {}))}
    items = "".join(
        f'<div class="item"><div class="t">{html.escape(item["text"])}</div><div class="m">answered '
        f'{html.escape(json.dumps(item["prediction"], ensure_ascii=False))} at confidence {item["confidence"]:.2f} '
        f'(margin {item["margin"]:.2f}) by {html.escape(str(item["tier"]))}, v{item["version"]}'
        f'{" · sent to human review" if item["outcome"] == "human_review" else ""}</div>'
        f'{_item_form(kind, name, item, options, request)}</div>' for item in queue["data"]) \
        or '<p class="empty">Nothing to review: no unlabeled call fell under the confidence bound.</p>'
    distill = (f'<form class="inline" method="post" action="/dashboard/learning/distill?'
               f'{html.escape(_query(kind, name, request))}">{csrf.hidden_field(request)}'
               '<button type="submit">Distill now</button></form>')
    banner = (f'<div class="ok">{html.escape(notice)}</div>' if notice else "") + \
             (f'<div class="alarm">{html.escape(error)}</div>' if error else "")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>litegate learning: {html.escape(name)}</title>
<style>{STYLE}{PAGE_STYLE}</style></head><body>
<h1>Learning: {kind} {html.escape(name)}</h1>
<div class="sub">labels from review and stronger tiers train the next version · {distill}</div>
{banner}<div class="kpis">{cards}</div>
<div class="grid">
<div class="card"><h2>Score per version</h2>{hbars(score_rows, '#3aa17e')}</div>
<div class="card"><h2>Calls under {curve['below']:g} confidence, per day</h2>{hbars(day_rows, '#e07b39')}
<table><tr><th>day</th><th>calls</th><th>unsure</th><th>escalated</th><th>reviewed</th><th>corrected</th></tr>
{day_table}</table></div>
<div class="card wide"><h2>Review queue: {queue['pending']} calls, most informative first</h2>{items}</div>
</div></body></html>"""


async def _page(request: Request, kind: str, name: str, notice: str = "", error: str = "",
                status: int = 200) -> HTMLResponse:
    lr = learner(request)
    try:
        below = float(request.query_params.get("below", 0.5))
        limit = int(request.query_params.get("limit", 25))
    except ValueError:
        raise InvalidRequest("'below' is a number in (0, 1] and 'limit' a whole number", param="below") from None
    curve = await run_in_threadpool(lr.curve, kind, name, below)
    queue = await run_in_threadpool(lr.review, kind, name, limit, below)
    page = HTMLResponse(render(kind, name, curve, queue, request, notice, error), status_code=status)
    return csrf.with_cookie(request, page)


@router.get("/dashboard/learning", response_class=HTMLResponse)
async def learning_page(request: Request, classifier: str | None = None, extractor: str | None = None,
                        saved: str | None = None, message: str | None = None) -> HTMLResponse:
    """``?below=`` (default 0.5) and ``?limit=`` (default 25) bound the review queue shown."""
    kind, name = which(classifier, extractor)
    notice = message or (f"Saved the label for {saved}." if saved else "")
    return await _page(request, kind, name, notice=notice)


def _correction(kind: str, form: dict[str, list[str]]) -> dict[str, Any]:
    if kind == "classifier":
        new = (form.get("new_label") or [""])[0].strip()
        label = new or (form.get("label") or [""])[0].strip()
        if not label:
            raise InvalidRequest("choose a label or type a new one", param="label")
        return {"label": label}
    data = {k[len("field."):]: (v[0].strip() or None) for k, v in form.items() if k.startswith("field.")}
    return {"data": data}


async def _form(request: Request) -> dict[str, list[str]]:
    raw = await request.body()
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise InvalidRequest("the form is not UTF-8") from None


@router.post("/dashboard/learning", response_class=HTMLResponse)
async def save_label(request: Request, classifier: str | None = None, extractor: str | None = None) -> Any:
    """A label from the review page, applied as a correction; back to the page."""
    kind, name = which(classifier, extractor)
    form = await _form(request)
    csrf.check(request, form)
    call_id = (form.get("id") or [""])[0]
    try:
        await run_in_threadpool(apply_feedback, request.app.state.runtime, call_id, None, _correction(kind, form))
    except LitegateError as e:
        return await _page(request, kind, name, error=e.message, status=e.status_code)
    return RedirectResponse(f"/dashboard/learning?{_query(kind, name, request, saved=call_id)}", status_code=303)


@router.post("/dashboard/learning/distill", response_class=HTMLResponse)
async def distill_now(request: Request, classifier: str | None = None, extractor: str | None = None) -> Any:
    kind, name = which(classifier, extractor)
    csrf.check(request, await _form(request))
    try:
        result = await run_in_threadpool(learner(request).distill, kind, name)
    except LitegateError as e:
        return await _page(request, kind, name, error=e.message, status=e.status_code)
    return RedirectResponse(f"/dashboard/learning?{_query(kind, name, request, message=result['message'])}",
                            status_code=303)
