"""GET /playground: a prompt or a task on several tiers side by side (answer, confidence,
tokens, latency, cost) and the same call as curl, Python and CLI to copy. Plain HTML and
JavaScript served as is (no build step); the page calls the server's own public API."""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from litegate.tasks import TASKS

router = APIRouter()

# the inputs each task reads, by the page's field names (the task's request fields are the API's)
TASK_INPUTS = {"classify": ["text", "labels", "trained"], "extract": ["text", "fields", "schema", "trained"],
               "route": ["text", "labels"],
               "summarize": ["text"], "translate": ["text", "to"], "rank": ["query", "items"],
               "answer": ["query", "items"]}

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2433;background:#f6f7fb;max-width:1200px}
h1{font-size:20px;margin:0} .sub{color:#667;margin-bottom:16px} a{color:#3b6fd4}
.panel{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px #0001;margin-bottom:14px}
label{display:block;margin:8px 0 3px;font-weight:600;font-size:13px} .hint{font-weight:400;color:#667}
textarea,input[type=text],select{width:100%;box-sizing:border-box;font:13px ui-monospace,monospace;padding:6px;
border:1px solid #ccd;border-radius:6px} textarea{min-height:70px}
.tiers label{display:inline-block;margin-right:14px;font-weight:400}
button{background:#3b6fd4;color:#fff;border:0;border-radius:6px;padding:7px 14px;font-size:14px;cursor:pointer}
button.ghost{background:#e6ebf6;color:#1d2433} .grid{display:grid;grid-template-columns:repeat(auto-fit,
minmax(260px,1fr));gap:12px}
.result{background:#fff;border-radius:10px;padding:12px;box-shadow:0 1px 2px #0001;border-top:4px solid #3aa17e}
.result.error{border-top-color:#d1453b} .result h3{margin:0 0 6px;font-size:15px}
.answer{font:13px ui-monospace,monospace;white-space:pre-wrap;background:#f3f5fa;padding:8px;border-radius:6px;
max-height:260px;overflow:auto} table.m{font-size:13px;margin-top:6px} table.m td{padding:1px 10px 1px 0}
pre.code{background:#1d2433;color:#e8ecf5;padding:12px;border-radius:8px;white-space:pre-wrap;font-size:12.5px}
.hidden{display:none}
"""

SCRIPT = r"""
const INPUTS = __INPUTS__;
const KEY = new URLSearchParams(location.search).get('key');
const $ = id => document.getElementById(id);
const headers = () => Object.assign({'Content-Type': 'application/json'},
  KEY ? {'Authorization': 'Bearer ' + KEY} : {});
let tiers = [], models = [], view = 'curl';

function lines(v) { return v.split('\n').map(s => s.trim()).filter(Boolean); }
function pairs(v) {  // "a, b" -> [a, b]; "a: desc, b: desc" -> {a: desc, b: desc}
  const items = v.split(/[,\n]/).map(s => s.trim()).filter(Boolean);
  if (!items.some(s => s.includes(':'))) return items;
  return Object.fromEntries(items.map(s => { const i = s.indexOf(':');
    return i < 0 ? [s, ''] : [s.slice(0, i).trim(), s.slice(i + 1).trim()]; }));
}
async function readFiles() {
  const out = [];
  for (const f of $('files').files) {
    const data = await new Promise(ok => { const r = new FileReader();
      r.onload = () => ok(r.result.split(',')[1]); r.readAsDataURL(f); });
    out.push({data, filename: f.name, mime_type: f.type || 'application/octet-stream'});
  }
  return out;
}
function mode() { return $('mode').value; }
function showInputs() {
  const m = mode(), wanted = m === 'chat' ? ['text', 'schema'] : INPUTS[m];
  for (const el of document.querySelectorAll('[data-input]'))
    el.classList.toggle('hidden', !wanted.includes(el.dataset.input));
  $('text-label').firstChild.textContent = m === 'chat' ? 'Prompt ' : 'Text ';
  renderTiers(); renderCode();
}
function renderTiers() {
  const names = mode() === 'chat' ? models : ['auto', ...tiers.filter(t => t.in_cascade !== false).map(t => t.name)];
  const checked = new Set([...document.querySelectorAll('#tiers input:checked')].map(i => i.value));
  $('tiers').innerHTML = names.map((n, i) => `<label><input type="checkbox" value="${n}"
    ${checked.size ? (checked.has(n) ? 'checked' : '') : (i < 2 ? 'checked' : '')}> ${n}</label>`).join('');
  for (const box of document.querySelectorAll('#tiers input')) box.onchange = renderCode;
}
function chosen() { return [...document.querySelectorAll('#tiers input:checked')].map(i => i.value); }

function body(tier, files) {  // [path, request body] for one tier
  const m = mode(), text = $('text').value;
  if (m === 'chat') {
    let content = text;
    if (files.length) content = [{type: 'text', text}, ...files.map(f => f.mime_type.startsWith('image/')
      ? {type: 'image_url', image_url: {url: `data:${f.mime_type};base64,${f.data}`}}
      : {type: 'file', file: {filename: f.filename, file_data: `data:${f.mime_type};base64,${f.data}`}})];
    const b = {model: tier, messages: [{role: 'user', content}], max_tokens: 200, temperature: 0};
    if ($('schema').value.trim()) b.response_format = {type: 'json_schema',
      json_schema: {name: 'answer', schema: JSON.parse($('schema').value)}};
    return ['/v1/chat/completions', b];
  }
  const b = {tier};
  if (INPUTS[m].includes('text') && text.trim()) b.text = text;
  const trained = $('trained').value.trim();
  if (m === 'classify') { if (trained) b.classifier = trained; else b.labels = pairs($('labels').value); }
  if (m === 'route') { const r = pairs($('labels').value);
    b.routes = Array.isArray(r) ? Object.fromEntries(r.map(n => [n, ''])) : r; }
  if (m === 'extract' && trained) b.extractor = trained;
  else if (m === 'extract') { if ($('schema').value.trim()) b.schema = JSON.parse($('schema').value);
    else { const f = pairs($('fields').value);
      b.fields = Array.isArray(f) ? Object.fromEntries(f.map(n => [n, ''])) : f; } }
  if (m === 'translate') b.target_language = $('to').value;
  if (m === 'rank') { b.query = $('query').value; b.candidates = lines($('items').value); }
  if (m === 'answer') { b.query = $('query').value; b.context = lines($('items').value); }
  if (files.length) b.files = files;
  return ['/v1/tasks/' + m, b];
}

function answerOf(m, r) {
  if (m === 'chat') { const msg = r.choices[0].message;
    return msg.content ?? JSON.stringify(msg.tool_calls, null, 1); }
  const key = {classify: r.labels ? 'labels' : 'label', extract: 'data', route: 'route', summarize: 'summary',
               translate: 'translation', rank: 'ranking', answer: 'answer'}[m];
  const v = r[key];
  return typeof v === 'string' ? v : JSON.stringify(v, null, 1);
}
function esc(s) {
  return String(s).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
}

async function runOne(tier, files, card) {
  const m = mode(), started = performance.now();
  let path, b;
  try { [path, b] = body(tier, files); } catch (e) { return fail(card, tier, 'the schema is not JSON: ' + e.message); }
  const res = await fetch(path, {method: 'POST', headers: headers(), body: JSON.stringify(b)});
  const r = await res.json();
  if (!res.ok) return fail(card, tier, (r.error && (r.error.message || r.error)) || res.statusText);
  const usage = r.usage || {}, meta = r.litegate || {};
  const cost = r.cost_usd ?? meta.cost_usd, conf = r.confidence;
  const latency = r.latency_ms ?? meta.latency_ms ?? (performance.now() - started);
  card.innerHTML = `<h3>${esc(tier)}${r.tier && r.tier !== tier ? ' → ' + esc(r.tier) : ''}</h3>
    <div class="answer" data-field="answer">${esc(answerOf(m, r))}</div><table class="m">
    <tr><td>confidence</td><td data-field="confidence">${conf == null ? '–' : conf.toFixed(3)}</td></tr>
    <tr><td>tokens</td><td data-field="tokens">${usage.prompt_tokens ?? 0} in,
      ${usage.completion_tokens ?? 0} out</td></tr>
    <tr><td>latency</td><td data-field="latency">${Math.round(latency)} ms</td></tr>
    <tr><td>cost</td><td data-field="cost">${cost == null ? '–' : '$' + cost.toFixed(6)}</td></tr>
    ${r.outcome ? `<tr><td>outcome</td><td>${esc(r.outcome)}</td></tr>` : ''}</table>`;
}
function fail(card, tier, message) {
  card.classList.add('error');
  card.innerHTML = `<h3>${esc(tier)}</h3><div class="answer" data-field="error">${esc(message)}</div>`;
}
async function run() {
  const files = await readFiles(), out = $('results');
  out.innerHTML = '';
  await Promise.all(chosen().map(tier => {
    const card = document.createElement('div');
    card.className = 'result'; card.dataset.tier = tier;
    card.innerHTML = `<h3>${esc(tier)}</h3><div class="answer">running…</div>`;
    out.appendChild(card);
    return runOne(tier, files, card).catch(e => fail(card, tier, e.message));
  }));
  out.dataset.done = String(Number(out.dataset.done || 0) + 1);
}

function renderCode() {
  const tier = chosen()[0] || 'auto', base = location.origin;
  let path, b;
  try { [path, b] = body(tier, []); } catch (e) { $('code').textContent = 'the schema is not JSON'; return; }
  const json = JSON.stringify(b), auth = KEY ? ` -H 'Authorization: Bearer $LITEGATE_API_KEY'` : '';
  const m = mode(), q = s => "'" + String(s).replace(/'/g, `'\\''`) + "'";
  const py = JSON.stringify(b, null, 4).replace(/\btrue\b/g, 'True').replace(/\bfalse\b/g, 'False')
    .replace(/\bnull\b/g, 'None');
  const code = {
    curl: `curl -s ${base}${path} -H 'Content-Type: application/json'${auth} \\\n  -d ${q(json)}`,
    python: m === 'chat'
      ? `from openai import OpenAI\n\nclient = OpenAI(base_url="${base}/v1", api_key="unused")\n` +
        `reply = client.chat.completions.create(**${py})\nprint(reply.choices[0].message.content)`
      : `import httpx\n\nresult = httpx.post("${base}${path}", json=${py}, timeout=600).json()\nprint(result)`,
    cli: cliLine(m, b, base, q),
  }[view];
  $('code').textContent = code;
}
function cliLine(m, b, base, q) {
  if (m === 'chat')
    return `litegate generate --url ${base} --max-tokens 200 --temperature 0 ${q(b.messages[0].content)}`;
  const opts = [];
  if (b.labels) opts.push('--labels ' + q(Array.isArray(b.labels) ? b.labels.join(',') :
    Object.entries(b.labels).map(([k, v]) => `${k}:${v}`).join(',')));
  if (b.routes) opts.push('--routes ' + q(Object.entries(b.routes).map(([k, v]) => v ? `${k}:${v}` : k).join(',')));
  if (b.fields) opts.push('--fields ' + q(Object.entries(b.fields).map(([k, v]) => v ? `${k}:${v}` : k).join(',')));
  if (b.schema) opts.push('--schema ' + q(JSON.stringify(b.schema)));
  if (b.classifier) opts.push('--classifier ' + q(b.classifier));
  if (b.extractor) opts.push('--extractor ' + q(b.extractor));
  if (b.target_language) opts.push('--to ' + q(b.target_language));
  if (b.query) opts.push('--query ' + q(b.query));
  if (b.candidates) opts.push('--candidates items.txt');
  if (b.context) opts.push('--context items.txt');
  const items = b.candidates || b.context;
  const file = items ? `printf '%s\\n' ${items.map(q).join(' ')} > items.txt\n` : '';
  return `${file}litegate ${m} --url ${base} --tier ${b.tier} ${opts.join(' ')}${b.text ? ' ' + q(b.text) : ''}`;
}

async function start() {
  const health = await (await fetch('/healthz', {headers: headers()})).json();
  tiers = health.tiers || [{name: 'nano'}, {name: 'lite'}];
  try { models = (await (await fetch('/v1/models', {headers: headers()})).json()).data.map(d => d.id); }
  catch (e) { models = ['lite']; }
  $('mode').onchange = showInputs;
  for (const el of document.querySelectorAll('textarea, input[type=text]')) el.oninput = renderCode;
  for (const b of document.querySelectorAll('[data-view]'))
    b.onclick = () => { view = b.dataset.view; renderCode(); };
  $('run').onclick = run;
  $('copy').onclick = () => navigator.clipboard && navigator.clipboard.writeText($('code').textContent);
  showInputs();
  document.body.dataset.ready = '1';
}
start();
"""


def render() -> str:
    options = "".join(f'<option value="{name}">{name}: {spec.summary}</option>' for name, spec in TASKS.items()
                      if name in TASK_INPUTS)
    script = SCRIPT.replace("__INPUTS__", json.dumps(TASK_INPUTS))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>litegate playground</title>
<style>{STYLE}</style></head><body>
<h1>litegate playground</h1><div class="sub">a prompt or a task on several tiers side by side ·
<a href="/dashboard">dashboard</a> · <a href="/docs">API</a></div>
<div class="panel">
<label for="mode">Run</label><select id="mode"><option value="chat">a prompt (chat)</option>{options}</select>
<div data-input="text"><label id="text-label" for="text">Text <span class="hint">(or a file below)</span></label>
<textarea id="text">I was charged twice for one order</textarea></div>
<div data-input="labels"><label for="labels">Labels or routes <span class="hint">(a, b, c or name: description,
...)</span></label><input type="text" id="labels" value="billing, bug, account"></div>
<div data-input="fields"><label for="fields">Fields <span class="hint">(name: description, ...)</span></label>
<input type="text" id="fields" value="vendor: the company that issued it, total: the total amount due"></div>
<div data-input="schema"><label for="schema">JSON schema <span class="hint">(optional; for a prompt, the reply
follows it; for extract, instead of fields)</span></label><textarea id="schema"></textarea></div>
<div data-input="trained"><label for="trained">Trained classifier or extractor <span class="hint">(optional: the
nano tier needs one; the LLM tiers learn from its examples)</span></label><input type="text" id="trained"></div>
<div data-input="to"><label for="to">Target language</label><input type="text" id="to" value="French"></div>
<div data-input="query"><label for="query">Query</label><input type="text" id="query"
value="How long is the warranty?"></div>
<div data-input="items"><label for="items">Candidates or passages <span class="hint">(one per line)</span></label>
<textarea id="items">Every laptop comes with a two-year warranty.
Shipping takes three to five days.</textarea></div>
<label for="files">Files <span class="hint">(images, PDFs, audio: read by the document layer)</span></label>
<input type="file" id="files" multiple>
<label>Tiers <span class="hint">(auto: the cascade)</span></label><div class="tiers" id="tiers"></div>
<p><button id="run">Run on the chosen tiers</button></p></div>
<div class="grid" id="results"></div>
<div class="panel"><label>The same call</label>
<button class="ghost" data-view="curl">curl</button> <button class="ghost" data-view="python">Python</button>
<button class="ghost" data-view="cli">CLI</button> <button class="ghost" id="copy">Copy</button>
<pre class="code" id="code"></pre></div>
<script>{script}</script></body></html>"""


@router.get("/playground", response_class=HTMLResponse)
async def playground() -> HTMLResponse:
    return HTMLResponse(render())
