"""The example intake pipeline (examples/intake.toml) over generated documents with their truth.

    python bench/pipeline.py [--n 100] [--contracts 0.1] [--scanned 0.2] [--concurrency 2]

Documents: invoices and receipts from bench/documents.py's four templates (vendors, numbers,
dates in several formats, four currency styles; fixed seed), most as text PDFs and a share
as rendered PNG pages read by OCR, plus a share of service contracts (text PDFs: parties,
term, fees, renewal, signatures). They run in this process through ``PipelineService``, as
``litegate pipeline run`` does, with the webhook going to a receiver on loopback.

Prints one JSON object: documents per minute (wall time, models loaded first), cost per
document in all and by step, the share of runs reaching the pro tier (contracts, and whatever
the classifier calls one), the share held for review or failed, and field accuracy: a field
is right when the extracted value equals the generator's after collapsing spaces (the total
also when its number matches); doc_type accuracy against the generator's kind.
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
    return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--contracts", type=float, default=0.1)
    ap.add_argument("--scanned", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--dump", type=Path, help="write each document's truth and what the pipeline found (JSONL)")
    ap.add_argument("--summary-tier", default="pro", help="the summary step's tier (the example ships with lite, "
                                                          "so that it runs without the pro extra)")
    args = ap.parse_args()

    from webhooks import Receiver

    from litegate.config import Settings
    from litegate.pipelines import PipelineService, load_pipeline
    from litegate.pipelines.store import public_run
    from litegate.runtime import build

    work = Path(tempfile.mkdtemp(prefix="litegate-bench-pipeline-"))
    docs = work / "docs"
    docs.mkdir()
    truth = generate(args.n, args.contracts, args.scanned, docs)
    receiver = Receiver()
    os.environ.update(INTAKE_WEBHOOK_URL=receiver.url, INTAKE_WEBHOOK_SECRET="bench-secret")
    settings = Settings(home=work / "home", ctx=8192)
    rt = build(settings)
    intake = load_pipeline(ROOT / "examples" / "intake.toml")
    for step in intake.steps:
        if step.name == "summary":
            step.tier = args.summary_tier
    svc = PipelineService(rt, {"intake": intake})
    svc.start()
    from litegate.pipelines import RunInput

    # load both models before the clock starts (what a running server has done already)
    rt.registry.engine("lite")
    if args.summary_tier == "pro":
        rt.registry.engine("pro")
    from concurrent.futures import ThreadPoolExecutor

    done = [0]

    def one(name: str) -> dict:
        p = docs / name
        run = svc.run("intake", RunInput(files=[{"path": str(p), "filename": name}], ref=name))
        done[0] += 1
        print(f"  {done[0]}/{len(truth)} documents", file=sys.stderr, end="\r")
        return run

    started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        runs = list(pool.map(one, sorted(truth)))
    seconds = time.perf_counter() - started
    left = svc.outbox.drain(30)
    load = open("/proc/loadavg").read().split()[:3]
    stats = svc.stats("intake")
    fields = ["vendor", "number", "date", "total"]
    right = {f: 0 for f in fields + ["doc_type"]}
    seen = {f: 0 for f in fields + ["doc_type"]}
    found = []  # per document: its truth beside what the pipeline found (--dump)
    for run in runs:
        t = truth[run["input_ref"]]
        steps = {s["step"]: s for s in run["steps"]}
        data = ((steps.get("extract") or {}).get("output") or {}).get("data") or {}
        label = ((steps.get("doc_type") or {}).get("output") or {}).get("label")
        for f in fields:
            seen[f] += 1
            right[f] += same(f, data.get(f), t[f])
        seen["doc_type"] += 1
        right["doc_type"] += label == t["doc_type"]
        found.append({"document": run["input_ref"], "truth": t, "found": {k: data.get(k) for k in fields},
                      "doc_type": label, "status": run["status"]})
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in found)
    pro_runs = sum(1 for r in runs if "pro" in r["tiers"])
    report = {
        "documents": len(runs), "contracts": sum(1 for t in truth.values() if t["doc_type"] == "contract"),
        "scanned_png": sum(1 for n in truth if n.endswith(".png")),
        "seconds": round(seconds, 1), "documents_per_minute": round(len(runs) / seconds * 60, 2),
        "concurrency": args.concurrency, "load_avg_after": load,
        "status": stats["status"],
        "cost_per_document_usd": stats["cost_per_document_usd"],
        "cost_per_document_by_step_usd": {k: v["cost_per_run_usd"] for k, v in stats["steps"].items()},
        "share_reaching_pro": round(pro_runs / len(runs), 4),
        "share_escalated": stats["share_escalated"], "share_to_review": stats["share_to_review"],
        "share_failed": stats["share_failed"],
        "field_accuracy": {f: round(right[f] / seen[f], 3) for f in right},
        "webhooks_delivered": len(receiver.delivered), "webhooks_pending": left,
        "failed_examples": [public_run(svc.store.get(r["id"]))["error"] for r in runs if r["status"] == "failed"][:3],
    }
    svc.close()
    rt.close()
    receiver.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
