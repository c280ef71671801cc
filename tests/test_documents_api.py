"""Files through every way in, against a real server with the real OCR, PDF and speech engines:
the openai SDK (image_url, input_audio, file, Responses input_file), google-genai
(Part.from_bytes, files.upload + fileData), Ollama images, the task API (files, file_id) and
the CLI (--file); and the bad inputs (a lying type, a corrupt file, too large, a forbidden
URL) answered with the right 4xx while the server stays healthy."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import openai
import pytest
from google import genai
from google.genai import types

from conftest import litegate_cmd
from test_documents import png, render_invoice, text_pdf

ESPEAK = shutil.which("espeak-ng")


@pytest.fixture(scope="module")
def invoice_png() -> bytes:
    return png(render_invoice("INV-20931", "$229.96"))


@pytest.fixture(scope="module")
def oai(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def test_openai_image_url_is_read_and_said_so(oai: openai.OpenAI, invoice_png: bytes) -> None:
    r = oai.chat.completions.create(model="lite", max_tokens=20, temperature=0, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is the invoice number? Answer with the number only."},
        {"type": "image_url", "image_url": {"url": _data_url("image/png", invoice_png)}}]}])
    assert "20931" in r.choices[0].message.content
    docs = r.model_extra["litegate"]["documents"]
    assert docs[0]["kind"] == "image" and docs[0]["method"] == "ocr" and docs[0]["ocr_ms"] > 0
    assert any("only the image's text" in n for n in docs[0]["notes"])


def test_openai_file_part_and_file_id(oai: openai.OpenAI) -> None:
    pdf = text_pdf([["Purchase order PO-7781", "Supplier: Birchwood Timber Ltd"], ["Amount due: 4,310.00 EUR"]])
    r = oai.chat.completions.create(model="lite", max_tokens=16, temperature=0, messages=[{"role": "user", "content": [
        {"type": "file", "file": {"file_data": _data_url("application/pdf", pdf), "filename": "po.pdf"}},
        {"type": "text", "text": "Who is the supplier? Answer with the name only."}]}])
    assert "Birchwood" in r.choices[0].message.content
    assert r.model_extra["litegate"]["documents"][0]["pages"] == 2
    stored = oai.files.create(file=("po.pdf", io.BytesIO(pdf)), purpose="user_data")
    r = oai.chat.completions.create(model="lite", max_tokens=16, temperature=0, messages=[{"role": "user", "content": [
        {"type": "file", "file": {"file_id": stored.id}},
        {"type": "text", "text": "What is the purchase order number? Answer with it only."}]}])
    assert "7781" in r.choices[0].message.content


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng (Debian package espeak-ng) makes the speech")
def test_openai_input_audio(oai: openai.OpenAI, tmp_path: Path) -> None:
    wav = tmp_path / "note.wav"
    subprocess.run([ESPEAK, "-w", str(wav), "Please call Martin about the delivery on Thursday."], check=True)
    r = oai.chat.completions.create(model="lite", max_tokens=12, temperature=0, messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav.read_bytes()).decode(),
                                                 "format": "wav"}},
        {"type": "text", "text": "Which day of the week is mentioned? One word."}]}])
    assert "thursday" in r.choices[0].message.content.lower()
    assert r.model_extra["litegate"]["documents"][0]["seconds"] > 1


def test_responses_input_file(oai: openai.OpenAI) -> None:
    pdf = text_pdf([["Ticket 5521: the VPN drops every hour"]])
    r = oai.responses.create(model="lite", max_output_tokens=12, input=[{"role": "user", "content": [
        {"type": "input_file", "filename": "t.pdf", "file_data": _data_url("application/pdf", pdf)},
        {"type": "input_text", "text": "What is the ticket number? Digits only."}]}])
    assert "5521" in r.output_text


def test_gemini_inline_data_and_uploaded_file(server: str, invoice_png: bytes, tmp_path: Path) -> None:
    client = genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=server))
    r = client.models.generate_content(model="lite", contents=[
        types.Part.from_bytes(data=invoice_png, mime_type="image/png"),
        "What is the total amount? Answer with the amount only."],
        config={"max_output_tokens": 12, "temperature": 0})
    assert "229.96" in r.text
    path = tmp_path / "po.pdf"
    path.write_bytes(text_pdf([["Order 66012 ships from Rotterdam"]]))
    uploaded = client.files.upload(file=str(path))
    r = client.models.generate_content(model="lite", contents=[
        types.Part.from_uri(file_uri=uploaded.uri, mime_type="application/pdf"),
        "Which city does the order ship from? One word."], config={"max_output_tokens": 8, "temperature": 0})
    assert "rotterdam" in r.text.lower()


def test_ollama_images(server: str, invoice_png: bytes) -> None:
    import ollama

    r = ollama.Client(host=server).chat(model="lite", options={"temperature": 0, "num_predict": 16}, messages=[
        {"role": "user", "content": "What is the invoice number? Answer with it only.",
         "images": [base64.b64encode(invoice_png).decode()]}])
    assert "20931" in r.message.content


def test_task_files_and_cli(http: httpx.Client, home: Path, invoice_png: bytes, tmp_path: Path) -> None:
    r = http.post("/v1/tasks/extract", json={
        "files": [{"mime_type": "image/png", "data": base64.b64encode(invoice_png).decode()}],
        "fields": {"invoice_number": "the invoice number", "total": "the total amount"}, "tier": "lite"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "20931" in (body["data"]["invoice_number"] or "") and body["documents"][0]["kind"] == "image"
    calls = http.get("/v1/report").json()
    assert calls["calls"] > 0
    img = tmp_path / "invoice.png"
    img.write_bytes(invoice_png)
    env = dict(os.environ, LITEGATE_HOME=str(home))
    out = subprocess.run(litegate_cmd("classify", "--file", str(img), "--labels", "invoice,recipe,poem",
                                      "--tier", "lite"), env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["documents"][0]["filename"] == "invoice.png"


@pytest.mark.parametrize("part, status, needle", [
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"%PDF-1.4 x").decode()}},
     400, "messages.0.content.0"),
    ({"type": "file",
      "file": {"file_data": "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.7\n1 0 obj").decode()}},
     400, "messages.0.content.0"),
    ({"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/meta-data"}}, 400, "fetching URLs"),
    ({"type": "file", "file": {"file_id": "file-nope"}}, 404, "no file"),
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "midi"}}, 400, "format"),
])
def test_bad_files_are_4xx(http: httpx.Client, part: dict, status: int, needle: str) -> None:
    r = http.post("/v1/chat/completions", json={"model": "lite", "max_tokens": 4,
                                                "messages": [{"role": "user", "content": [part]}]})
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    assert http.get("/healthz").status_code == 200


def test_too_large_is_413(http: httpx.Client) -> None:
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * (21 << 20)).decode()
    r = http.post("/v1/chat/completions", json={"model": "lite", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + big}}]}]})
    assert r.status_code == 413
