"""Collections retrieval: nDCG@10 and recall@100 of hybrid search against plain BM25 (bm25s)
and plain dense retrieval with the same encoder, on a BEIR set read from a local folder;
search p50 at N synthetic chunks; ingest pages/s of a text PDF. Prints JSON.

    python bench/retrieval.py --beir /path/to/nfcorpus --split dev,test
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, insert, select

from litegate.collections import Collections
from litegate.collections.chunking import chunk_document
from litegate.collections.fusion import FUSIONS, Fusion
from litegate.collections.service import MAX_FILE_BYTES, MAX_PAGES
from litegate.collections.store import chunks_table, collection_files_table
from litegate.collections.vectors import build
from litegate.documents import read
from litegate.documents.types import Limits, Part
from litegate.nano.encoder import MiniLMEncoder

sys.path.insert(0, str(Path(__file__).parent))
from common import pct, pdf_file  # noqa: E402


def load_beir(folder: Path, split: str) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    corpus = {}
    for line in (folder / "corpus.jsonl").open(encoding="utf-8"):
        d = json.loads(line)
        corpus[d["_id"]] = (d.get("title") or "").strip() + "\n\n" + d["text"]
    queries = {json.loads(x)["_id"]: json.loads(x)["text"] for x in (folder / "queries.jsonl").open(encoding="utf-8")}
    qrels: dict[str, dict[str, int]] = {}
    for i, line in enumerate((folder / "qrels" / f"{split}.tsv").open(encoding="utf-8")):
        q, d, rel = line.rstrip("\n").split("\t")[:3]
        if i == 0 and not rel.isdigit():
            continue  # the header
        if int(rel) > 0:
            qrels.setdefault(q, {})[d] = int(rel)
    return corpus, {q: queries[q] for q in qrels if q in queries}, qrels


def ndcg_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sum(r / math.log2(i + 2) for i, r in enumerate(sorted(rel.values(), reverse=True)[:k]))
    return dcg / ideal if ideal else 0.0


def recall_at(ranked: list[str], rel: dict[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(rel)) / len(rel) if rel else 0.0


def score(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    qs = list(runs)
    return {"ndcg@10": round(float(np.mean([ndcg_at(runs[q], qrels[q]) for q in qs])), 4),
            "recall@10": round(float(np.mean([recall_at(runs[q], qrels[q], 10) for q in qs])), 4),
            "recall@100": round(float(np.mean([recall_at(runs[q], qrels[q], 100) for q in qs])), 4)}


def chunk_documents(coll: Collections, name: str) -> tuple[dict[int, str], np.ndarray, np.ndarray]:
    """Each chunk's BEIR document id, and every chunk's exact float32 vector (ids, matrix)."""
    cid = coll.get(None, name)["id"]
    c, f = chunks_table.c, collection_files_table.c
    with coll.engine.connect() as conn:
        rows = conn.execute(select(c.id, f.metadata, c.vector).join(collection_files_table, f.id == c.file_row)
                            .where(c.collection_id == cid).order_by(c.id)).all()
    docs = {r[0]: json.loads(r[1])["doc"] for r in rows}
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    return docs, ids, np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)


def collection_lists(coll: Collections, name: str, queries: dict[str, str]
                     ) -> tuple[dict[str, list[list[tuple[int, float]]]], list[float]]:
    """Each query's [lexical, dense] chunk lists as hybrid search fuses them, and the time of
    one whole hybrid search per query (the first: its query vector is not cached yet)."""
    lists, times = {}, []
    for qid, text in queries.items():
        started = time.perf_counter()
        coll.search(None, name, text, top_k=100)
        times.append((time.perf_counter() - started) * 1000)
        lists[qid] = coll.ranked_lists(None, name, text)
    return lists, times


def to_documents(ranked: list[tuple[int, float]], docs: dict[int, str]) -> list[str]:
    """A document ranks where its best chunk does."""
    return list(dict.fromkeys(docs[i] for i, _ in ranked))


def bit_pass_recall(coll: Collections, queries: dict[str, str], ids: np.ndarray, matrix: np.ndarray
                    ) -> dict[str, float]:
    """The share of the exact top 100 that the sign-bit pass keeps when it hands on 4% or 10%
    of the chunks (4% is what a 100,000-chunk collection gets), forced even where the collection
    is small enough to be scanned whole."""
    index = build(0, ((int(i), "f", v.tobytes()) for i, v in zip(ids, matrix)))
    out = {}
    for share in (0.04, 0.10):
        depth, found = max(100, int(len(ids) * share)), []
        for text in queries.values():
            q = coll.embed_query(text)
            exact = {int(ids[i]) for i in np.argsort(-(matrix @ q))[:100]}
            found.append(len(exact & {i for i, _ in index.search(q, 100, depth=depth)}) / 100)
        out[f"depth_{share:.0%}"] = round(float(np.mean(found)), 4)
    return out


def fusion_grid() -> dict[str, Fusion]:
    """The fusions tried on the development split: both kinds, the dense side's weight in steps
    of 0.1 (RRF's constant stays Cormack et al.'s 60)."""
    grid = dict(FUSIONS)
    for kind in ("rrf", "sum"):
        for w in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            grid[f"{kind}_dense{w:.1f}"] = Fusion(kind, dense_weight=w)
    return grid


def bm25s_runs(corpus: dict[str, str], queries: dict[str, str]) -> dict[str, list[str]]:
    import bm25s

    ids = list(corpus)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([corpus[i] for i in ids], stopwords="en", show_progress=False),
                    show_progress=False)
    qids = list(queries)
    docs, _ = retriever.retrieve(bm25s.tokenize([queries[q] for q in qids], stopwords="en", show_progress=False),
                                 k=100, show_progress=False)
    return {q: [ids[j] for j in docs[i]] for i, q in enumerate(qids)}


def document_vectors(encoder: Any, corpus: dict[str, str], workdir: Path, name: str) -> np.ndarray:
    """One vector per document (the encoder reads its first 128 word pieces), kept in the
    work folder for the next run."""
    cached = workdir / f"{name}-document-vectors.npy"
    if cached.exists():
        return np.load(cached)
    docs = encoder.encode(list(corpus.values()))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    np.save(cached, docs)
    return docs


def dense_runs(encoder: Any, corpus: dict[str, str], docs: np.ndarray, queries: dict[str, str]
               ) -> dict[str, list[str]]:
    """The peer: whole-document vectors, cosine."""
    ids = list(corpus)
    qids = list(queries)
    qv = encoder.encode([queries[q] for q in qids])
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    sims = qv @ docs.T
    return {q: [ids[j] for j in np.argsort(-sims[i])[:100]] for i, q in enumerate(qids)}


def quality(args: argparse.Namespace, encoder: Any, workdir: Path) -> dict[str, Any]:
    """One index, scored on each split (choose on dev, report test)."""
    corpus = load_beir(Path(args.beir), args.split.split(",")[0])[0]
    if args.docs and args.docs < len(corpus):  # a fixed random subset; qrels keep only its documents
        keep = sorted(random.Random(0).sample(sorted(corpus), args.docs))
        corpus = {d: corpus[d] for d in keep}
    db = workdir / f"beir-{Path(args.beir).name}-{args.docs or 'all'}.db"
    done = db.with_suffix(".built.json")  # a database built by an earlier run (--workdir) is reused
    coll = Collections(create_engine(f"sqlite:///{db}"), lambda: encoder)
    if done.exists():
        ingest_s = json.loads(done.read_text())["ingest_s"]
    else:
        if coll.list(None):
            coll.delete(None, "beir")
        coll.create(None, "beir")
        started = time.perf_counter()
        items = [{"text": t, "source": d, "attributes": {"doc": d}} for d, t in corpus.items()]
        for at in range(0, len(items), 512):
            coll.add_texts(None, "beir", items[at:at + 512])
        ingest_s = time.perf_counter() - started
        done.write_text(json.dumps({"ingest_s": ingest_s, "load": os.getloadavg()}))
    chunks = coll.get(None, "beir")["chunks"]
    out: dict[str, Any] = {"dataset": Path(args.beir).name, "documents": len(corpus), "chunks": chunks,
                           "document_subset": bool(args.docs),
                           "ingest_docs_per_s": round(len(corpus) / ingest_s, 1)}
    docs, *matrix = chunk_documents(coll, "beir")
    exact = (matrix[0], matrix[1])
    doc_vectors = document_vectors(encoder, corpus, workdir, db.stem)
    for split in args.split.split(","):
        _, queries, qrels = load_beir(Path(args.beir), split)
        qrels = {q: kept for q, rel in qrels.items() if (kept := {d: r for d, r in rel.items() if d in corpus})}
        queries = {q: t for q, t in queries.items() if q in qrels}
        if args.queries:
            keep = sorted(random.Random(0).sample(sorted(queries), min(args.queries, len(queries))))
            queries = {q: queries[q] for q in keep}
        out[split] = {"queries": len(queries),
                      "systems": systems_on(coll, encoder, corpus, queries, qrels, docs, exact, doc_vectors)}
        print(json.dumps({split: out[split]}), file=sys.stderr)
    return out


def systems_on(coll: Collections, encoder: Any, corpus: dict[str, str], queries: dict[str, str],
               qrels: dict[str, dict[str, int]], docs: dict[int, str], exact: tuple[np.ndarray, np.ndarray],
               doc_vectors: np.ndarray) -> dict[str, Any]:
    lists, times = collection_lists(coll, "beir", queries)
    systems: dict[str, Any] = {"search_p50_ms": round(pct(times, 50), 2)}
    for label, fuse in fusion_grid().items():
        systems[f"hybrid_{label}"] = score({q: to_documents(fuse(ls), docs) for q, ls in lists.items()}, qrels)
    systems["lexical_fts5"] = score({q: to_documents(ls[0], docs) for q, ls in lists.items()}, qrels)
    systems["dense_chunks"] = score({q: to_documents(ls[1], docs) for q, ls in lists.items()}, qrels)
    ids, matrix = exact
    recall, exact_runs = [], {}
    for qid, text in queries.items():  # the in-memory index against an exact float32 scan of the same vectors
        top = np.argsort(-(matrix @ coll.embed_query(text)))[:100]
        exact_runs[qid] = to_documents([(int(ids[i]), 0.0) for i in top], docs)
        got = {i for i, _ in lists[qid][1][:100]}
        recall.append(len(got & {int(ids[i]) for i in top}) / 100)
    systems["dense_chunks_exact_float32"] = score(exact_runs, qrels)
    systems["dense_index_recall@100_vs_exact"] = round(float(np.mean(recall)), 4)
    systems["bit_pass_recall@100_vs_exact"] = bit_pass_recall(coll, queries, ids, matrix)
    systems["peer_bm25s"] = score(bm25s_runs(corpus, queries), qrels)
    systems["peer_dense_minilm"] = score(dense_runs(encoder, corpus, doc_vectors, queries), qrels)
    return systems


def synthetic_search(n: int, encoder: Any, workdir: Path, queries: int = 60,
                     numpy_encoder: Any = None) -> dict[str, Any]:
    """Search latency at ``n`` chunks: random English-like text and random unit vectors
    (timing only; what they say is not scored). Peers in the same run, query by query: the same
    search encoding the query with the float32 NumPy encoder instead of the 8-bit one, the same
    vectors as one float32 matrix scanned exactly by NumPy, and the query's encoding alone."""
    rng = np.random.default_rng(0)
    words = [w for w in Path(__file__).read_text().split() if w.isalpha() and len(w) > 3]
    words += [f"term{i}" for i in range(20000)]
    db = workdir / f"synthetic-{n}.db"
    coll = Collections(create_engine(f"sqlite:///{db}"), lambda: encoder)
    numpy_encoder = numpy_encoder or MiniLMEncoder(runtime="numpy")
    numpy_coll = Collections(coll.engine, lambda: numpy_encoder)  # the peer: the float32 NumPy encoder
    if not db.with_suffix(".built").exists():
        build_synthetic(coll, n, encoder.encode(["x"]).shape[1], words, rng)
        db.with_suffix(".built").touch()
    started = time.perf_counter()
    coll.search(None, "synthetic", "warm the vector cache", top_k=10)
    load_s = time.perf_counter() - started
    numpy_coll.search(None, "synthetic", "warm the vector cache", top_k=10)
    cid = coll.get(None, "synthetic")["id"]
    with coll.engine.connect() as conn:
        exact = np.frombuffer(b"".join(r[0] for r in conn.execute(
            select(chunks_table.c.vector).where(chunks_table.c.collection_id == cid).order_by(chunks_table.c.id))),
            dtype=np.float32).reshape(n, -1)
    times: dict[str, list[float]] = {"hybrid": [], "lexical": [], "dense": [], "hybrid_numpy_encoder": []}
    cpu: list[float] = []
    peer_scan: list[float] = []
    peer_encode: dict[str, list[float]] = {"int8": [], "numpy": []}
    for _ in range(queries):
        q = " ".join(rng.choice(words, 6))
        for mode in times:
            q_mode = f"{q} {mode}"  # a new text each time: no query vector is reused
            started, cpu_started = time.perf_counter(), time.process_time()
            if mode == "hybrid_numpy_encoder":
                numpy_coll.search(None, "synthetic", q_mode, top_k=10)
            else:
                coll.search(None, "synthetic", q_mode, top_k=10, mode=mode)
            times[mode].append((time.perf_counter() - started) * 1000)
            if mode == "hybrid":
                cpu.append((time.process_time() - cpu_started) * 1000)
        for name, enc in (("int8", coll.encoder()), ("numpy", numpy_encoder)):
            started = time.perf_counter()
            v = enc.encode([f"{q} peer {name}"])[0]
            peer_encode[name].append((time.perf_counter() - started) * 1000)
        v /= np.linalg.norm(v)
        started = time.perf_counter()
        scores = exact @ v
        top = np.argpartition(-scores, 99)[:100]
        top[np.argsort(-scores[top])]
        peer_scan.append((time.perf_counter() - started) * 1000)
    return {"chunks": coll.get(None, "synthetic")["chunks"], "query_encoder": type(coll.encoder()).__name__,
            **{f"{m}_p50_ms": round(pct(t, 50), 2) for m, t in times.items()},
            "hybrid_p95_ms": round(pct(times["hybrid"], 95), 2),
            "hybrid_cpu_p50_ms": round(pct(cpu, 50), 2),
            "peer_numpy_float32_scan_p50_ms": round(pct(peer_scan, 50), 2),
            **{f"peer_query_encoding_{k}_p50_ms": round(pct(t, 50), 2) for k, t in peer_encode.items()},
            "dense_index_bytes": coll.vectors.nbytes, "float32_matrix_bytes": int(exact.nbytes),
            "index_build_s": round(load_s, 2)}


def build_synthetic(coll: Collections, n: int, dim: int, words: list[str], rng: np.random.Generator) -> None:
    if coll.list(None):
        coll.delete(None, "synthetic")
    cid = coll.create(None, "synthetic")["id"]
    per_file = 1000
    for f in range(n // per_file):
        row = {"id": f"vsf_{f:08d}", "collection_id": cid, "source": f"s{f}", "filename": f"f{f}.txt",
               "mime_type": "text/plain", "sha256": "0", "bytes": 0, "pages": 0, "chunks": per_file,
               "metadata": "{}", "created_at": time.time()}
        texts = [" ".join(rng.choice(words, 90)) for _ in range(per_file)]
        vecs = rng.standard_normal((per_file, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        with coll.engine.begin() as conn:
            conn.execute(insert(collection_files_table).values(**row))
            ids = conn.execute(insert(chunks_table).returning(chunks_table.c.id, sort_by_parameter_order=True), [
                {"collection_id": cid, "file_row": row["id"], "ord": i, "text": t, "kind": "text",
                 "vector": v.tobytes()} for i, (t, v) in enumerate(zip(texts, vecs))]).scalars().all()
            coll.lexical.add(conn, cid, list(zip(ids, texts)))
            coll._bump(conn, cid)


def text_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with a real text layer (Helvetica, one line per text object)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    kids = []
    for lines in pages:
        ops = b"\n".join(b"BT /F1 10 Tf 50 %d Td (%s) Tj ET" % (770 - 14 * i, line.encode("cp1252", "replace")
                                                                  .replace(b"(", b"").replace(b")", b""))
                         for i, line in enumerate(lines))
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(ops), ops))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % len(objects))
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    return pdf_file(objects)


def pdf_ingest(pages: int, encoder: Any, workdir: Path, source: Path | None, peer_pages: int = 8) -> dict[str, Any]:
    """Pages per second for a text PDF of ``pages`` pages of 50 lines (prose from the BEIR
    corpus when given, else this file's words): read, chunk, write and index the words (then
    searchable), and until every chunk's vector is in (encoded behind, collections/backfill.py);
    with the 8-bit onnxruntime encoder and, the peer, the float32 NumPy one."""
    if source is not None:
        words = " ".join(json.loads(x)["text"] for _, x in zip(range(3000), (source / "corpus.jsonl").open())).split()
    else:
        words = Path(__file__).read_text().split()
    lines, at = [], 0
    for _ in range(pages * 50):
        lines.append(" ".join(words[at % len(words):at % len(words) + 14]))
        at += 14
    data = text_pdf([lines[p * 50:(p + 1) * 50] for p in range(pages)])
    part = Part("application/pdf", data, "manual.pdf", filename="manual.pdf")
    started = time.perf_counter()
    doc = read(part, Limits(max_pages=MAX_PAGES, max_bytes=MAX_FILE_BYTES))
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    texts = [c.indexed_text() for c in chunk_document(doc)]
    chunk_s = time.perf_counter() - started
    out: dict[str, Any] = {"read_s": round(read_s, 2), "chunk_s": round(chunk_s, 3), "chunks_total": len(texts)}
    # the file through the 8-bit encoder, then (the peer) its first pages with the float32 NumPy one
    # (the whole file would take it an hour on a busy machine)
    first = Part("application/pdf", text_pdf([lines[p * 50:(p + 1) * 50] for p in range(min(pages, peer_pages))]),
                 "manual.pdf", filename="manual.pdf")
    numpy_encoder = MiniLMEncoder(runtime="numpy")
    for name, enc, pdf in (("int8", encoder, part), ("numpy", numpy_encoder, first)):
        coll = Collections(create_engine(f"sqlite:///{workdir / f'pdf-{name}.db'}"), lambda e=enc: e)
        if coll.list(None):
            coll.delete(None, "pdf")
        coll.create(None, "pdf")
        coll.encoder()  # loading the model is not ingest
        load = os.getloadavg()
        started, cpu_started = time.perf_counter(), time.process_time()
        added = coll.add_file(None, "pdf", pdf)
        seconds = time.perf_counter() - started  # searchable by its words from here on
        coll.backfill.wait(coll.get(None, "pdf")["id"])
        with_vectors = time.perf_counter() - started
        out[name] = {"pages": added["pages"], "chunks": added["chunks"], "seconds": round(seconds, 2),
                     "cpu_seconds": round(time.process_time() - cpu_started, 2),
                     "load_at_start": [round(x, 2) for x in load], "pages_per_s": round(added["pages"] / seconds, 2),
                     "seconds_until_every_vector": round(with_vectors, 2),
                     "pages_per_s_with_vectors": round(added["pages"] / with_vectors, 2),
                     "chunks_per_s_with_vectors": round(added["chunks"] / with_vectors, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beir", help="a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    ap.add_argument("--split", default="dev,test", help="qrels splits to score, comma-separated")
    ap.add_argument("--queries", type=int, default=0, help="a fixed random sample of this many queries (0: all)")
    ap.add_argument("--docs", type=int, default=0, help="a fixed random subset of this many documents (0: all); "
                                                         "queries keep the judged documents in it")
    ap.add_argument("--chunks", type=int, default=100_000, help="synthetic chunks for the latency run (0: skip)")
    ap.add_argument("--pdf-pages", type=int, default=40, help="pages of the ingest PDF (0: skip)")
    ap.add_argument("--peer-pages", type=int, default=8, help="pages the NumPy-encoder peer ingests")
    ap.add_argument("--workdir", type=Path, help="keep the databases here and reuse them in the next run "
                                                   "(default: a temporary folder)")
    ap.add_argument("--skip-quality", action="store_true", help="with --beir: only take the PDF's text from it")
    args = ap.parse_args()
    encoder = MiniLMEncoder()
    report: dict[str, Any] = {"load_before": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="litegate-retrieval-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.beir and not args.skip_quality:
            report["quality"] = quality(args, encoder, work)
        if args.chunks:
            report["search_at_scale"] = synthetic_search(args.chunks, encoder, work)
        if args.pdf_pages:
            report["pdf_ingest"] = pdf_ingest(args.pdf_pages, encoder, work, Path(args.beir) if args.beir else None,
                                              args.peer_pages)
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
