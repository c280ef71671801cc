"""The docs as a newcomer meets them: a README of one page whose set-up commands are what CI
runs, links that lead somewhere, reference pages that match the code, and every snippet either
run by tests/test_docs.py or marked with the reason it cannot be."""

from __future__ import annotations

import re
import subprocess
import sys

from docs_snippets import ROOT, pages, snippets

from litegate.cli import reference


def test_the_readme_is_one_page_with_the_serve_command_first() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    blocks = snippets(ROOT / "README.md")
    serve = "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && litegate serve"
    assert blocks[0].code.strip() == serve
    assert "test install" in text[:text.index(blocks[1].code.strip())].rsplit("\n\n", 2)[-1]


def test_the_test_install_is_byte_identical_to_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    readme = snippets(ROOT / "README.md")[1].code.strip()
    assert readme == ci, "the README's test command and .ci/run differ: change both"


def test_every_local_link_leads_to_a_file() -> None:
    broken = []
    for page in [*pages(), ROOT / "bench" / "README.md"]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+://", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken


def test_the_readme_links_every_docs_page() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in (ROOT / "docs").glob("*.md") if f"docs/{p.name}" not in text]
    assert not missing and "SECURITY.md" in text and "bench/README.md" in text


def test_the_reference_pages_match_the_code() -> None:
    for name, make in reference.PAGES.items():
        assert (ROOT / "docs" / name).read_text(encoding="utf-8") == make(), \
            f"docs/{name} is out of date: python -m litegate.cli.reference docs/"
    done = subprocess.run([sys.executable, "-m", "litegate.cli.reference", "--check", str(ROOT / "docs")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_mark_is_a_skip_with_its_reason_and_snippets_use_one_port_variable() -> None:
    for page in pages():
        for s in snippets(page):
            assert s.mark is None or s.skip, f"{s.where}: write <!-- docs-test: skip (the reason) -->"
            if s.skip is None:
                # one port variable: the server's address is LITEGATE_URL, 8080 only as its default
                literal = re.sub(r'\$\{LITEGATE_URL:-http://127\.0\.0\.1:8080\}|'
                                 r'os\.environ\.get\("LITEGATE_URL", "http://127\.0\.0\.1:8080"\)', "", s.code)
                assert "8080" not in literal, f"{s.where}: use LITEGATE_URL for the server's address"


def test_bash_snippets_parse() -> None:
    for page in pages():
        for s in snippets(page):
            if s.lang == "bash":
                done = subprocess.run(["bash", "-n"], input=s.code, capture_output=True, text=True)
                assert done.returncode == 0, f"{s.where}: {done.stderr}"
            else:
                compile(s.code, s.where, "exec")
