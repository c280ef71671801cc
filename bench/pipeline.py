"""The example intake pipeline (examples/intake.toml) over generated documents with their truth.

    python bench/pipeline.py [--n 100] [--contracts 0.1] [--scanned 0.2] [--concurrency 2] [--peer FILE]

Documents: invoices and receipts from bench/documents.py's four templates (vendors, numbers,
dates in several formats, four currency styles; fixed seed), most as text PDFs and a share
as rendered PNG pages read by OCR, plus a share of service contracts (text PDFs: parties,
term, fees, renewal, signatures). They run in this process through ``PipelineService``, as
``litegate pipeline run`` does, with the webhook going to a receiver on loopback.

Prints one JSON object: documents per minute (wall time, models loaded first), cost per
document in all and by step, the share of runs reaching the pro tier (contracts, and whatever
the classifier calls one), the share held for review or failed, and field accuracy of the row
the pipeline writes (its vendor, number, date and total columns; for a run held for review, the
row its approval writes), in all and by document type:
a field is right when the stored value equals the generator's after collapsing spaces (the
total also when its number matches, the date when it is the same day); doc_type accuracy
against the generator's kind. ``--peer FILE`` runs another version of the pipeline over the
same documents first, in the same process, and reports it beside (``"peer"``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "unit"))
sys.path.insert(0, str(ROOT / "tests"))

PARTIES = ["Orchid Facilities Ltd", "Granite Peak Software", "Harbor Lane Cleaning Co", "Saffron Catering Group",
           "Ironwood Security Services", "Cobalt Data Systems"]
CLIENTS = ["Northwind Traders", "Blue Harbor Logistics", "Maple & Finch Bakery", "Kestrel Office Supply"]


def contract_pdf(rng: random.Random) -> tuple[bytes, dict[str, str]]:
    """A two-page service agreement with a text layer, and its fields."""
    from documents import MONTHS
    from test_documents import text_pdf

    vendor, client = rng.choice(PARTIES), rng.choice(CLIENTS)
    number = f"SA-{rng.randint(2021, 2025)}-{rng.randint(100, 999)}"
    y, m, d = rng.randint(2021, 2025), rng.randint(1, 12), rng.randint(1, 28)
    date = f"{MONTHS[m - 1]} {d}, {y}"
    fee = rng.randint(8, 240) * 100
    total = f"${fee * 12:,.2f}"
    pages = [[f"MASTER SERVICES AGREEMENT No. {number}", f"This Agreement is made on {date}",
              f"between {vendor} (the Provider) and {client} (the Client).",
              "1. Services. The Provider shall deliver the services in Schedule A.",
              f"2. Term. The initial term is {rng.choice([12, 24, 36])} months and renews automatically",
              f"for successive one-year terms unless either party gives {rng.choice([30, 60, 90])} days notice.",
              f"3. Fees. The Client shall pay a monthly fee of ${fee:,.2f}, a total of {total} per year.",
              "4. Liability. Neither party is liable for indirect or consequential damages.",
              "5. Termination. Either party may terminate for material breach not cured in 30 days."],
             ["6. Confidentiality. Each party keeps the other's information confidential.",
              "7. Governing law. This Agreement is governed by the laws of the State of New York.",
              f"Signed for {vendor}: ____________________", f"Signed for {client}: ____________________"]]
    return text_pdf(pages), {"vendor": vendor, "number": number, "date": date, "total": total,
                             "doc_type": "contract"}


def generate(n: int, contracts: float, scanned: float, folder: Path, seed: int = 7) -> dict[str, dict[str, str]]:
    """Documents in ``folder``; returns {file name: truth}."""
    from documents import TEMPLATES, make_invoice, png_bytes, render, text_pdf

    rng = random.Random(seed)
    truth = {}
    n_contracts = round(n * contracts)
    kinds = ["contract"] * n_contracts + ["invoice"] * (n - n_contracts)
    rng.shuffle(kinds)
    for i, kind in enumerate(kinds):
        if kind == "contract":
            data, fields = contract_pdf(rng)
            name = f"doc{i:03d}.pdf"
        else:
            inv = make_invoice(rng, rng.choice(TEMPLATES))
            fields = {**inv.fields(), "doc_type": "receipt" if inv.template == "receipt" else "invoice",
                      "template": inv.template}
            if rng.random() < scanned:
                data, name = png_bytes(render(inv)), f"doc{i:03d}.png"
            else:
                data, name = text_pdf(inv), f"doc{i:03d}.pdf"
        (folder / name).write_bytes(data)
        truth[name] = fields
    return truth


def same(field: str, got: object, want: str) -> bool:
    from litegate.documents import fieldtypes
    from litegate.pipelines.expr import as_number

    if got is None:
        return False
    a, b = " ".join(str(got).split()), " ".join(want.split())
    if a == b:
        return True
    if field == "total":
        x, y = as_number(a.replace("€", "").replace("£", "").replace("EUR", "")), \
            as_number(b.replace("€", "").replace("£", "").replace("EUR", ""))
        return x is not None and x == y
    if field == "date":  # the same day, printed or as ISO 8601 ("March 3, 2024" is "2024-03-03")
        x, y = fieldtypes.normalize("date", a), fieldtypes.normalize("date", b)
        return x is not None and y is not None and x.value == y.value
    return False


FIELDS = ["vendor", "number", "date", "total"]


def columns(pipeline, run: dict) -> dict:
    """The row the pipeline's write step makes of a run's step outputs: the row it wrote, or,
    for a run held for review, the row it writes when a person approves it unchanged."""
    store = next(s for s in pipeline.steps if s.kind == "write")
    scope = {"input": {"text": None, "metadata": {}, "filename": run["input_ref"]}, "run": {"id": run["id"]},
             "steps": {s["step"]: s["output"] if s["status"] in ("ok", "human_review") else None
                       for s in run["steps"]}}
    return {c.name: c.value(scope) for c in store.prepared.columns}


def measure(svc, name: str, docs: Path, truth: dict[str, dict[str, str]], concurrency: int) -> dict:
    """One pipeline over every document: speed, cost, and each stored column against the truth."""
    from concurrent.futures import ThreadPoolExecutor

    from litegate.pipelines import RunInput
    from litegate.pipelines.store import public_run

    done = [0]

    def one(doc: str) -> dict:
        run = svc.run(name, RunInput(files=[{"path": str(docs / doc), "filename": doc}], ref=doc))
        done[0] += 1
        print(f"  {name}: {done[0]}/{len(truth)} documents", file=sys.stderr, end="\r")
        return run

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        runs = list(pool.map(one, sorted(truth)))
    seconds = time.perf_counter() - started
    load = open("/proc/loadavg").read().split()[:3]
    stats = svc.stats(name)
    kinds = ["invoice", "receipt", "contract"]
    right = {k: {f: 0 for f in FIELDS + ["doc_type"]} for k in ["all"] + kinds}
    seen = {k: 0 for k in ["all"] + kinds}
    found = []  # per document: its truth beside the row the pipeline wrote (--dump)
    for run in runs:
        t = truth[run["input_ref"]]
        steps = {s["step"]: s for s in run["steps"]}
        row = columns(svc.pipelines[name], run)
        label = ((steps.get("doc_type") or {}).get("output") or {}).get("label")
        for k in ("all", t["doc_type"]):
            seen[k] += 1
            for f in FIELDS:
                right[k][f] += same(f, row.get(f), t[f])
            right[k]["doc_type"] += label == t["doc_type"]
        found.append({"document": run["input_ref"], "truth": t, "found": {f: row.get(f) for f in FIELDS},
                      "doc_type": label, "status": run["status"]})
    pro_runs = sum(1 for r in runs if "pro" in r["tiers"])
    return {
        "pipeline": str(svc.pipelines[name].source),
        "seconds": round(seconds, 1), "documents_per_minute": round(len(runs) / seconds * 60, 2),
        "load_avg_after": load, "status": stats["status"],
        "cost_per_document_usd": stats["cost_per_document_usd"],
        "cost_per_document_by_step_usd": {k: v["cost_per_run_usd"] for k, v in stats["steps"].items()},
        "share_reaching_pro": round(pro_runs / len(runs), 4),
        "share_escalated": stats["share_escalated"], "share_to_review": stats["share_to_review"],
        "share_failed": stats["share_failed"],
        "field_accuracy": {f: round(right["all"][f] / seen["all"], 3) for f in right["all"]},
        "field_accuracy_by_type": {k: {"documents": seen[k], **{f: round(right[k][f] / seen[k], 3)
                                                                for f in right[k]}} for k in kinds if seen[k]},
        "failed_examples": [public_run(svc.store.get(r["id"]))["error"] for r in runs if r["status"] == "failed"][:3],
        "rows": found,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--contracts", type=float, default=0.1)
    ap.add_argument("--scanned", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--dump", type=Path, help="write each document's truth and the row each pipeline wrote (JSONL)")
    ap.add_argument("--summary-tier", default="pro", help="the summary step's tier (the example ships with lite, "
                                                          "so that it runs without the pro extra)")
    ap.add_argument("--pipeline", type=Path, default=ROOT / "examples" / "intake.toml",
                    help="the pipeline file measured (default: the shipped example)")
    ap.add_argument("--peer", type=Path, help="another intake pipeline file (an earlier version of the example), "
                                              "run first over the same documents in the same process")
    args = ap.parse_args()

    from webhooks import Receiver

    from litegate.config import Settings
    from litegate.pipelines import PipelineService, load_pipeline
    from litegate.runtime import build

    work = Path(tempfile.mkdtemp(prefix="litegate-bench-pipeline-"))
    docs = work / "docs"
    docs.mkdir()
    truth = generate(args.n, args.contracts, args.scanned, docs)
    receiver = Receiver()
    os.environ.update(INTAKE_WEBHOOK_URL=receiver.url, INTAKE_WEBHOOK_SECRET="bench-secret")
    settings = Settings(home=work / "home", ctx=8192)
    rt = build(settings)
    pipelines = {"intake": load_pipeline(args.pipeline)}
    if args.peer is not None:
        peer = load_pipeline(args.peer)
        peer.name = "peer"
        for step in peer.steps:
            if step.kind == "write" and step.prepared.table:
                step.prepared.table = "peer_documents"  # its own table: the two may differ in columns
        pipelines["peer"] = peer
    for p in pipelines.values():
        for step in p.steps:
            if step.name == "summary":
                step.tier = args.summary_tier
    svc = PipelineService(rt, pipelines)
    svc.start()
    # load both models before the clock starts (what a running server has done already)
    rt.registry.engine("lite")
    if args.summary_tier == "pro":
        rt.registry.engine("pro")
    reports = {name: measure(svc, name, docs, truth, args.concurrency) for name in ["peer", "intake"]
               if name in pipelines}
    left = svc.outbox.drain(30)
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as f:
            for name, r in reports.items():
                f.writelines(json.dumps({"pipeline": name, **row}, ensure_ascii=False) + "\n" for row in r["rows"])
    for r in reports.values():
        r.pop("rows")
    report = {
        "documents": len(truth), "contracts": sum(1 for t in truth.values() if t["doc_type"] == "contract"),
        "receipts": sum(1 for t in truth.values() if t["doc_type"] == "receipt"),
        "scanned_png": sum(1 for n in truth if n.endswith(".png")), "concurrency": args.concurrency,
        **reports.pop("intake"), **({"peer": reports["peer"]} if "peer" in reports else {}),
        "webhooks_delivered": len(receiver.delivered), "webhooks_pending": left,
    }
    svc.close()
    rt.close()
    receiver.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
