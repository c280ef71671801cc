"""SQuAD article pages (the dataset explorer's one HTML page per article: each paragraph in a
<pre>, its questions and answers beside it) to one SQuAD-format JSON file.

The pages carry no answer offsets; each answer is placed at the first occurrence of its text in
the paragraph (case-sensitive, then case-insensitive); a question none of whose answers occur is
dropped and counted. Nothing is downloaded: the pages are read from a directory given by path.

    python bench/squad_pages.py /path/to/explore/1.1/train --out /tmp/train-v1.1-pages.json

Prints one JSON object (the counts) and writes the file.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from pathlib import Path
from typing import Any

PARAGRAPH = re.compile(r'<div class="para-wrap">(.*?)(?=<div class="para-wrap">|$)', re.S)
CONTEXT = re.compile(r"<pre>(.*?)</pre>", re.S)
QA = re.compile(r'<div class="qa-wrap">(.*?)</ol></div>', re.S)
QUESTION = re.compile(r'<strong class="question">(.*?)</strong>', re.S)
ANSWER = re.compile(r'<span class="answer">(.*?)</span>', re.S)
TITLE = re.compile(r'<h1 id="title">(.*?)</h1>', re.S)


def place(context: str, answer: str) -> int:
    at = context.find(answer)
    return at if at >= 0 else context.lower().find(answer.lower())


def article(page: str, name: str) -> tuple[dict[str, Any], int]:
    title = TITLE.search(page)
    paragraphs, dropped = [], 0
    for i, block in enumerate(PARAGRAPH.findall(page)):
        context = CONTEXT.search(block)
        if not context:
            continue
        text = html.unescape(context.group(1))
        qas = []
        for j, qa in enumerate(QA.findall(block)):
            question = QUESTION.search(qa)
            answers = []
            for a in ANSWER.findall(qa):
                a = html.unescape(a).strip()
                at = place(text, a) if a else -1
                if at >= 0:
                    answers.append({"text": text[at:at + len(a)], "answer_start": at})
            if not question or not answers:
                dropped += 1
                continue
            qas.append({"id": f"{name}-{i}-{j}", "question": html.unescape(question.group(1)).strip(),
                        "answers": answers})
        paragraphs.append({"context": text, "qas": qas})
    return {"title": html.unescape(title.group(1)).strip() if title else name, "paragraphs": paragraphs}, dropped


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("pages", type=Path, help="a directory of article pages (*.html)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    files = sorted(p for p in args.pages.glob("*.html") if p.name != "index.html") if args.pages.is_dir() else []
    if not files:
        sys.exit(f"no article pages (*.html) in {args.pages}")
    data, dropped = [], 0
    for path in files:
        art, lost = article(path.read_text(encoding="utf-8"), path.stem)
        if art["paragraphs"]:
            data.append(art)
        dropped += lost
    args.out.write_text(json.dumps({"version": "1.1", "data": data}, ensure_ascii=False))
    print(json.dumps({"articles": len(data), "paragraphs": sum(len(a["paragraphs"]) for a in data),
                      "questions": sum(len(p["qas"]) for a in data for p in a["paragraphs"]),
                      "questions_dropped_answer_not_found": dropped, "out": str(args.out)}))


if __name__ == "__main__":
    main()
