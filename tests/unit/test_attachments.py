"""Media parts of every shape to document Parts; the URL guard; task files; the limit."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from litegate.documents.attachments import Attachments, public_address
from litegate.errors import InvalidRequest, NotFound, PayloadTooLarge
from litegate.jobs.files import FileStore

pytestmark = pytest.mark.unit


@pytest.fixture()
def att(tmp_path: Path) -> Attachments:
    return Attachments(FileStore(create_engine(f"sqlite:///{tmp_path / 'db'}"), tmp_path), max_request_mb=0.01)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_part_shapes(att: Attachments) -> None:
    p = att.part({"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(b"\x89PNGxx")}}, "m.0")
    assert (p.mime_type, p.data, p.name) == ("image/png", b"\x89PNGxx", "m.0")
    p = att.part({"type": "input_audio", "input_audio": {"data": b64(b"RIFF"), "format": "wav"}}, "m.1")
    assert p.mime_type == "audio/wav" and p.data == b"RIFF"
    p = att.part({"type": "file", "file": {"file_data": b64(b"%PDF-1.4"), "filename": "a.pdf"}}, "m.2")
    assert p.mime_type is None and p.filename == "a.pdf"  # the type comes from the bytes
    p = att.part({"type": "input_image", "image_url": "data:text/plain,hello%20there"}, "m.3")
    assert p.data == b"hello there"
    urlsafe = base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode()
    assert att.part({"type": "file", "file": {"file_data": urlsafe}}, "m.4").data == b"\xfb\xff\xfe"
    stored = att.files.put(b"%PDF-1.4 x", api="openai", purpose="user_data", filename="po.pdf",
                           mime_type="application/pdf")
    p = att.part({"type": "file", "file": {"file_id": stored.id}}, "m.5")
    assert p.data == b"%PDF-1.4 x" and p.filename == "po.pdf" and p.mime_type == "application/pdf"
    assert att.task_part({"file_id": f"files/{stored.id}"}, "files.0").data == b"%PDF-1.4 x"


@pytest.mark.parametrize("part, error, needle", [
    ({"type": "image_url", "image_url": {}}, InvalidRequest, "url"),
    ({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}, InvalidRequest, "fetching URLs is off"),
    ({"type": "image_url", "image_url": {"url": "ftp://x/y"}}, InvalidRequest, "data: URL"),
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "midi"}}, InvalidRequest, "format"),
    ({"type": "input_audio", "input_audio": {"format": "wav"}}, InvalidRequest, "base64"),
    ({"type": "file", "file": {}}, InvalidRequest, "file_data"),
    ({"type": "file", "file": {"file_id": "file-nope"}}, NotFound, "no file"),
    ({"type": "video_url"}, InvalidRequest, "not supported"),
])
def test_bad_parts(att: Attachments, part: dict, error: type, needle: str) -> None:
    with pytest.raises(error, match=needle) as e:
        att.part(part, "messages.0.content.0")
    assert e.value.param.startswith("messages.0.content.0")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1",
                                  "0.0.0.0", "224.0.0.1", "100.64.0.1"])
def test_url_guard_refuses_non_public_addresses(host: str) -> None:
    with pytest.raises(InvalidRequest, match="not a public address"):
        public_address(host, 80, "messages.0.content.0")


def test_fetch_through_guard_refuses_loopback(tmp_path: Path) -> None:
    att = Attachments(None, fetch_urls=True)
    with pytest.raises(InvalidRequest, match="not a public address"):
        att.part({"type": "image_url", "image_url": {"url": "http://127.0.0.1:1/x.png"}}, "m.0")
    with pytest.raises(InvalidRequest, match="does not resolve"):
        att.part({"type": "image_url", "image_url": {"url": "http://no-such-host.invalid/x.png"}}, "m.0")


def test_request_size_limit_and_messages(att: Attachments) -> None:
    parts = [att.task_part({"mime_type": "text/plain", "data": b64(b"x" * 8000)}, f"files.{i}") for i in range(2)]
    with pytest.raises(PayloadTooLarge):
        att.read(parts)
    messages = [{"role": "user", "content": [{"type": "text", "text": "Summarize:"},
                                             {"type": "file", "file": {"file_data": "data:text/plain,alpha"}},
                                             {"type": "file", "file": {"file_data": "data:text/csv,a%2Cb"}}]}]
    read = att.resolve_messages(messages)
    content = messages[0]["content"]
    assert [p["type"] for p in content] == ["text", "text", "text"]
    assert "[file 1: text/plain" in content[1]["text"] and "alpha" in content[1]["text"]
    assert "[file 2: text/csv" in content[2]["text"]
    assert read.usage()["files"] == 2 and read.cost_usd == 0.0
    assert att.resolve_messages([{"role": "user", "content": "no files"}]).documents == []


def test_images_stay_images_for_a_model_with_a_projector(att: Attachments, tmp_path: Path) -> None:
    import io

    from PIL import Image

    from litegate.errors import ConfigError
    from litegate.runtime import check_mmproj

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, format="PNG")
    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(buf.getvalue())}},
        {"type": "file", "file": {"file_data": "data:text/plain,notes"}}]}]
    read = att.resolve_messages(messages, keep_images=True)
    assert messages[0]["content"][0]["type"] == "image_url"  # for the model itself
    assert messages[0]["content"][1]["type"] == "text" and len(read.documents) == 1
    with pytest.raises(ConfigError, match="No such file"):
        check_mmproj(tmp_path / "missing.gguf")
    (tmp_path / "x.gguf").write_bytes(b"nope")
    with pytest.raises(ConfigError, match="not a GGUF"):
        check_mmproj(tmp_path / "x.gguf")
    (tmp_path / "m.gguf").write_bytes(b"GGUF\x03\x00")
    assert check_mmproj(tmp_path / "m.gguf") == tmp_path / "m.gguf"
