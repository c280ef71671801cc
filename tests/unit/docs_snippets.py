"""The runnable snippets of README.md and docs/*.md: every ```bash and ```python block, with the
``<!-- docs-test: skip (reason) -->`` mark a block that cannot run in CI carries on the line
before it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ("bash", "python")
MARK = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Snippet:
    page: str  # relative to the repository, e.g. docs/batch.md
    line: int  # the fence's line, 1-based
    lang: str
    code: str
    skip: str | None  # the reason it does not run in CI, or None
    mark: str | None  # the raw mark, to check its form

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def snippets(path: Path) -> list[Snippet]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start, lang = i, fence.group(1)
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        before = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        found = MARK.search(before)
        mark = found.group(1) if found else None
        skip = None
        if mark is not None:
            reason = re.fullmatch(r"skip \((.+)\)", mark)
            skip = reason.group(1) if reason else ""
        if lang in RUN:
            out.append(Snippet(str(path.relative_to(ROOT)), start + 1, lang, "\n".join(body) + "\n", skip, mark))
    return out
