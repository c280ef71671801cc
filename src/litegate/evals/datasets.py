"""JSONL in and out, and loaders that turn the public sets into that format.

Classification records are ``{"text", "label"}``; extraction records are
``{"text", "data": {field: value}}`` (a field that is absent means "not stated").
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from litegate.errors import InvalidRequest

OUT_OF_SCOPE = "oos"


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise InvalidRequest(f"{path}: no such file")
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InvalidRequest(f"{path}: not UTF-8 text (byte {e.start}); convert it to UTF-8") from None
    return list(parse_jsonl(lines, str(path)))


def parse_jsonl(lines: Iterable[str], where: str = "input") -> Iterator[dict[str, Any]]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            # a number too long to convert is a ValueError without a JSONDecodeError's msg
            raise InvalidRequest(f"{where}:{n}: not valid JSON ({e.msg if isinstance(e, json.JSONDecodeError) else e})"
                                 ) from None
        if not isinstance(obj, dict):
            raise InvalidRequest(f"{where}:{n}: each line must be a JSON object")
        yield obj


def write_jsonl(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for rec in records:
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        count += 1
    return count


def shared_data_dir() -> Path:
    """The public sets shipped inside the package (``evals/data``, with their licenses), or
    the folder ``LITEGATE_DATA`` names."""
    import os

    if os.environ.get("LITEGATE_DATA"):
        return Path(os.environ["LITEGATE_DATA"])
    return Path(__file__).resolve().parent / "data"


def clinc150(split: str = "test", domain: str | None = None, include_oos: bool = False,
             per_label: int | None = None, seed: int = 0, data_dir: Path | None = None) -> list[dict[str, Any]]:
    """CLINC150 as classification records; ``domain`` keeps one domain's intents."""
    base = (data_dir or shared_data_dir()) / "clinc150"
    if split not in ("train", "val", "test"):
        raise InvalidRequest("split must be train, val or test")
    data = json.loads((base / "data_full.json").read_text())
    items = [{"text": t, "label": label} for t, label in data[split]]
    if domain:
        domains = json.loads((base / "domains.json").read_text())
        if domain not in domains:
            raise InvalidRequest(f"unknown CLINC150 domain {domain!r}; domains: {', '.join(domains)}")
        keep = set(domains[domain])
        items = [it for it in items if it["label"] in keep]
    if per_label:
        rng = random.Random(seed)
        by_label: dict[str, list[dict[str, Any]]] = {}
        for it in items:
            by_label.setdefault(it["label"], []).append(it)
        items = [it for label in sorted(by_label) for it in rng.sample(by_label[label], min(per_label,
                                                                                          len(by_label[label])))]
    if include_oos:
        items += [{"text": t, "label": OUT_OF_SCOPE} for t, _ in data["oos_" + split]]
    return items


def clinc150_domains(data_dir: Path | None = None) -> dict[str, list[str]]:
    path = (data_dir or shared_data_dir()) / "clinc150" / "domains.json"
    domains: dict[str, list[str]] = json.loads(path.read_text())
    return domains


def nlupp_banking(folds: Iterable[int] = range(20), data_dir: Path | None = None) -> list[dict[str, Any]]:
    """NLU++ banking as extraction records: ``{"text", "data": {field: value as written in the
    text}}`` (what ``litegate train --task extract`` and ``eval --task extract`` read)."""
    base = (data_dir or shared_data_dir()) / "nlupp_banking"
    out = []
    for fold in folds:
        for item in json.loads((base / f"fold{fold}.json").read_text()):
            data = {name: s["text"] for name, s in (item.get("slots") or {}).items() if s.get("text")}
            out.append({"text": item["text"], "data": data})
    return out


def nlupp_fields(data_dir: Path | None = None, domains: tuple[str, ...] = ("general", "banking")) -> dict[str, str]:
    ontology = json.loads(((data_dir or shared_data_dir()) / "nlupp_banking" / "ontology.json").read_text())
    return {name: s["description"] for name, s in ontology["slots"].items()
            if set(s.get("domain", [])) & set(domains)}
