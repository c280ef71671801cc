"""Page preparation and line layout before and after OCR: a page in shadow is not cut, a tilted
or bent photo's rows stay rows, and the rapidocr settings the engine is built with."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from litegate.documents import ocr, preprocess

pytestmark = pytest.mark.unit


def _shaded_receipt() -> Image.Image:
    """A receipt photographed filling the frame, lit from the right: the paper fades from grey on
    the left to white on the right, with print across the whole width."""
    ramp = np.linspace(95, 245, 600, dtype=np.float32)
    page = Image.fromarray(np.tile(ramp, (1000, 1)).astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(page)
    for y in range(40, 960, 48):
        draw.rectangle([30, y, 300, y + 14], fill=(20, 20, 20))  # a word on the shaded side
        draw.rectangle([420, y, 560, y + 14], fill=(20, 20, 20))  # its price on the lit side
    return page


def test_a_page_in_shadow_is_not_cropped_to_its_lit_part() -> None:
    page = _shaded_receipt()
    assert preprocess.find_page(page) is None
    prepared, place = preprocess.prepare(page, 4000)
    assert prepared.size == page.size and place.x0 == 0


def test_a_receipt_on_a_lid_is_still_cropped_with_print_on_it() -> None:
    scan = Image.new("RGB", (1200, 1700), (150, 145, 140))
    draw = ImageDraw.Draw(scan)
    draw.rectangle([700, 100, 1100, 1500], fill=(245, 245, 245))
    for y in range(160, 1440, 60):
        draw.rectangle([730, y, 1060, y + 16], fill=(20, 20, 20))
    box = preprocess.find_page(scan)
    assert box is not None and abs(box[0] - 700) < 60 and abs(box[2] - 1100) < 60


def test_a_line_is_cut_from_the_page_straight_and_at_the_recognisers_height() -> None:
    page = np.full((400, 900, 3), 255, dtype=np.uint8)
    page[100:196, 100:700] = 0  # a line 96 pixels tall: twice the recogniser's input
    crop = ocr.line_crop(page, [(100, 100), (700, 100), (700, 196), (100, 196)], 48)
    assert crop.shape[0] == 48 and crop.shape[1] == pytest.approx(300, abs=2)
    assert crop.mean() < 40  # the ink, not the paper around it
    tilted = [(100, 130), (700, 100), (700, 196), (100, 226)]  # a quad following a tilted line
    assert ocr.line_crop(page, tilted, 48).shape[0] == 48
    small = ocr.line_crop(page, [(100, 100), (400, 100), (400, 120), (100, 120)], 48)
    assert small.shape[:2] == (20, 300)  # smaller print is left for the recogniser to scale up
    upright = ocr.line_crop(page, [(10, 10), (40, 10), (40, 310), (10, 310)], 48)
    assert upright.shape[1] > upright.shape[0]  # a vertical run of text is turned to be read


MONO = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"


def _printed(size: int, lines: int = 12) -> Image.Image:
    """A receipt-like page: lines of capitals and digits in a monospaced font of ``size`` points."""
    font = ImageFont.truetype(MONO, size)
    page = Image.new("L", (size * 24, size * 2 * (lines + 1)), 250)
    draw = ImageDraw.Draw(page)
    for i in range(lines):
        draw.text((size, size * (1 + 2 * i)), f"MILK 1L BIO {i:02d} ...... 1,{i:02d} EUR", font=font, fill=30)
    return page


@pytest.mark.parametrize("size", [14, 40])
def test_the_letters_height_is_measured_whatever_the_print_size(size: int) -> None:
    page = _printed(size)
    capitals = ImageDraw.Draw(page).textbbox((0, 0), "MILK", font=ImageFont.truetype(MONO, size))
    cap_height = capitals[3] - capitals[1]
    measured = preprocess.letter_height(np.asarray(page))
    assert measured is not None and 0.7 * cap_height <= measured <= 1.3 * cap_height


def test_a_blank_or_speckled_page_has_no_letters_height() -> None:
    assert preprocess.letter_height(np.full((800, 600), 250, dtype=np.uint8)) is None
    specks = np.full((800, 600), 250, dtype=np.uint8)
    specks[::97, ::89] = 0  # single dark pixels: too small to be letters
    assert preprocess.letter_height(specks) is None


def test_printed_rules_are_left_out_of_the_lines_and_text_next_to_them_is_kept() -> None:
    words = [ocr.Word("TOTAL", [10, 100, 80, 120]), ocr.Word("12,50", [200, 100, 260, 120]),
             ocr.Word("*****************", [10, 130, 260, 150]), ocr.Word("-----=----", [10, 160, 260, 178]),
             ocr.Word("**ORDER#0011**", [10, 190, 200, 210]), ocr.Word("...", [10, 220, 40, 236])]
    assert [text for text, _ in ocr.layout(words)] == ["TOTAL 12,50", "**ORDER#0011**", "..."]
    assert ocr.is_rule("*学****************") and not ocr.is_rule("12.50") and not ocr.is_rule("-5.00")


def test_a_rule_misread_as_ideographs_is_left_out_and_cjk_text_is_kept() -> None:
    # the recogniser reads CJK too: a row of asterisks comes out as a few ideographs repeated
    words = [ocr.Word("THANK YOU", [10, 100, 200, 120]), ocr.Word("本本车车本本车本*本本车车本本", [10, 130, 300, 150]),
             ocr.Word("FUEL TOTAL 55.19 本车本本车车", [10, 160, 300, 180]),
             ocr.Word("十二十二十二十=十二", [10, 190, 300, 210]),
             ocr.Word("谢谢惠顾 欢迎再来", [10, 220, 200, 240]), ocr.Word("水鸡面 1 $10.80", [10, 250, 200, 270]),
             ocr.Word("*** 本店 ***", [10, 280, 200, 300])]
    assert [text for text, _ in ocr.layout(words)] == [
        "THANK YOU", "FUEL TOTAL 55.19", "谢谢惠顾 欢迎再来", "水鸡面 1 $10.80", "*** 本店 ***"]


def _sloped(text: str, x0: float, x1: float, y_left: float, slope: float, h: float = 40.0) -> ocr.Word:
    """A word as the engine gives it on a tilted line: the upright box around its slanted run,
    its baseline's slope and its letters' height."""
    y_right = y_left + slope * (x1 - x0)
    return ocr.Word(text, [x0, min(y_left, y_right), x1, max(y_left, y_right) + h], slope=slope, height=h)


def test_a_bent_photo_keeps_each_label_with_its_own_amount() -> None:
    # the receipt's head slopes down to the right, its foot up: one slope for the page (the
    # head's, where most words are) put each amount at the foot beside the next line's label
    head = [_sloped(f"ITEM {k} ..... 1.00", 50, 1650, 100 + 80 * k, 0.06) for k in range(8)]
    foot_y, rise = 900.0, -0.05
    foot = []
    for k, (label, amount) in enumerate([("Tender:", "504.00"), ("Balance Return:", "150.00"),
                                          ("Pay Mode: Cash 504.00 thank you", "")]):
        y = foot_y + 75 * k
        foot.append(_sloped(label, 60, 60 + 40 * len(label), y, rise))
        if amount:
            foot.append(_sloped(amount, 1500, 1700, y + rise * 1440, rise))
    lines = [text for text, _ in ocr.layout(head + foot)]
    assert lines[8:] == ["Tender: 504.00", "Balance Return: 150.00", "Pay Mode: Cash 504.00 thank you"]
    assert lines[:2] == ["ITEM 0 ..... 1.00", "ITEM 1 ..... 1.00"]
    # where the page has no slope to go by, nothing is turned
    assert ocr.tilts_at([ocr.Word("a", [0, 0, 10, 10])], [5.0]) == [0.0]


def _decoded(readings: list[list[tuple[str, float]]], ratio: float = 0.03, words: frozenset[str] | None = None,
             word_ratio: float = 0.05) -> str:
    """What ``ShapeDecode`` reads from one line: each time step's characters and their
    probabilities (the rest of the step's mass on the CTC blank)."""
    chars = ["blank", *"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,", " "]
    preds = np.zeros((1, len(readings), len(chars)), dtype=np.float32)
    for t, step in enumerate(readings):
        for c, p in step:
            preds[0, t, chars.index(c)] = p
        preds[0, t, 0] = max(0.0, 1.0 - sum(p for _, p in step))
    text, score = ocr.ShapeDecode(chars, ratio, words, word_ratio)(preds)[0][0]
    assert 0.0 <= score <= 1.0
    return text


def test_a_character_that_breaks_its_words_shape_is_read_as_the_likeliest_one_that_keeps_it() -> None:
    sure = [[("L", 0.99)], [("e", 0.99)], [("w", 0.99)]]
    # a 1 between letters, where the recogniser also saw an i: Lewis
    assert _decoded([*sure, [("1", 0.6), ("i", 0.3)], [("s", 0.99)]]) == "Lewis"
    # ... but not when the i was only a trace (a code such as EC1N keeps its digit)
    assert _decoded([*sure, [("1", 0.95), ("i", 0.01)], [("s", 0.99)]]) == "Lew1s"
    # a letter O between digits: 2019
    assert _decoded([[("2", 0.99)], [("O", 0.5), ("0", 0.4)], [("1", 0.99)], [("9", 0.99)]]) == "2019"
    # a digit ending a word after two letters (Mal1), a letter O starting one before two letters
    assert _decoded([[("M", 0.99)], [("a", 0.99)], [("l", 0.99)], [("1", 0.7), ("l", 0.2)]]) == "Mall"
    assert _decoded([[("0", 0.6), ("O", 0.3)], [("c", 0.99)], [("h", 0.99)], [("a", 0.99)]]) == "Ocha"
    # a letter after digits is a unit or an ordinal, kept: 12TH, 30ml
    assert _decoded([[("1", 0.99)], [("2", 0.99)], [("T", 0.6), ("7", 0.3)], [("H", 0.99)]]) == "12TH"
    assert _decoded([[("3", 0.99)], [("0", 0.99)], [("m", 0.5), ("8", 0.4)]]) == "30m"
    # words apart keep their own shapes: a price beside a word
    assert _decoded([[("a", 0.99)], [(" ", 0.99)], [("1", 0.9), ("l", 0.08)], [(".", 0.99)], [("5", 0.99)]]) == "a 1.5"


def _steps(text: str, alternatives: dict[int, tuple[str, float]] | None = None) -> list[list[tuple[str, float]]]:
    """One sure time step per character of ``text``, each followed by a blank; at the given
    places a second letter the recogniser also saw, with its probability."""
    alternatives = alternatives or {}
    steps: list[list[tuple[str, float]]] = []
    for i, c in enumerate(text):
        # a blank step between characters, as the recogniser puts between a letter and its double
        steps += [[(c, 0.9), *([alternatives[i]] if i in alternatives else [])], []]
    return steps


def test_a_word_that_is_no_word_is_read_as_the_word_one_letter_away_the_recogniser_also_saw() -> None:
    words = frozenset({"received", "visit", "with", "cashier", "blackpool"})
    # Recelved: the recogniser also saw an i where it read the l
    assert _decoded(_steps("Recelved", {4: ("i", 0.2)}), words=words) == "Received"
    assert _decoded(_steps("RECELVED", {4: ("I", 0.2)}), words=words) == "RECEIVED"
    # the case of the word is kept when the other letter came in the other case
    assert _decoded(_steps("Uisit", {0: ("v", 0.3)}), words=words) == "Visit"
    # only a trace of the other letter (under the share): left as read
    assert _decoded(_steps("Recelved", {4: ("i", 0.01)}), words=words) == "Recelved"
    # a letter the recogniser did not see there is never put in, though the word is one away
    assert _decoded(_steps("Blackpoal"), words=words) == "Blackpoal"
    assert _decoded(_steps("Blackpoal", {7: ("o", 0.1)}), words=words) == "Blackpool"
    # words in the lexicon, short words, and words touching a digit (codes) are left alone
    assert _decoded(_steps("With", {0: ("v", 0.5)}), words=words | {"vith"}) == "With"
    assert _decoded(_steps("Wit", {2: ("n", 0.5)}), words=frozenset({"win"})) == "Wit"
    assert _decoded(_steps("Cashter2", {4: ("i", 0.5)}), words=words) == "Cashter2"
    assert _decoded(_steps("12 Cashter", {7: ("i", 0.5)}), words=words) == "12 Cashier"
    # off without a lexicon or a share
    assert _decoded(_steps("Recelved", {4: ("i", 0.2)})) == "Recelved"
    assert _decoded(_steps("Recelved", {4: ("i", 0.2)}), words=words, word_ratio=0.0) == "Recelved"


def test_the_lexicon_comes_from_the_installed_packages_words_and_places() -> None:
    from litegate.documents import lexicon

    words = lexicon.words()
    # common words of several languages, a place, and a word written with accents, known without them
    assert {"received", "cashier", "vielen", "blackpool", "philadelphia", "cafe", "café"} <= words
    assert not {"recelved", "philadelphta", "cashter"} & words
    assert all(len(w) >= lexicon.MIN_LETTERS and w == w.lower() for w in list(words)[:1000])


def test_digits_in_a_run_of_letters_are_read_as_letters_when_that_makes_a_word() -> None:
    words = frozenset({"hill", "willow", "sale"})
    # Signal H111: the recogniser also saw an l at each 1
    assert _decoded(_steps("H111", {1: ("i", 0.3), 2: ("l", 0.3), 3: ("l", 0.3)}), words=words) == "Hill"
    assert _decoded(_steps("W1LLOW", {1: ("I", 0.3)}), words=words) == "WILLOW"
    assert _decoded(_steps("5ALE", {0: ("S", 0.4)}), words=words) == "SALE"
    # every digit must have its letter: one without leaves the run as read
    assert _decoded(_steps("H111", {1: ("i", 0.3), 2: ("l", 0.3)}), words=words) == "H111"
    # a run that does not become a word (a code, an amount) stays
    assert _decoded(_steps("B100", {1: ("l", 0.3), 2: ("o", 0.3), 3: ("o", 0.3)}), words=words) == "B100"
    assert _decoded(_steps("1100", {0: ("l", 0.3)}), words=words | {"lloo"}) == "1100"
