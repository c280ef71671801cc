"""A page image made ready for OCR: the document found on the scan and cropped to it (a receipt
lying on a flatbed's A4 scan), faded print stretched to full contrast, and an upside-down page
turned the right way up when its text reads better so.

Every step is measured by bench/receipts.py on real scans; each returns where its output sits
in the input (``Placement``), so line boxes are reported in the pixels of the image as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIN_PAGE_SHARE = 0.08  # a bright region smaller than this share of the scan is not the document
MAX_PAGE_SHARE = 0.85  # larger: the scan already is the document; nothing to crop
MARGIN = 0.015  # kept around a found page, as a share of the scan's larger side
EDGE_STEP = 25  # grey levels from paper to background across the sharpest side a crop cuts ...
EDGE_STEP_MIN = 12  # ... and across every side it cuts (a lit paper fades into its shadow instead)
LETTERS_MIN = 10  # fewer letter-like blobs than this: no text height to measure
FADED_RANGE = 150  # grey levels between the darkest and brightest percentiles below which print counts as faded


@dataclass
class Placement:
    """Where the prepared image sits in the original: crop offset and scale (prepared pixels
    per original pixel), and whether it was turned by 180 degrees."""

    x0: float = 0.0
    y0: float = 0.0
    scale: float = 1.0
    width: float = 0.0  # the crop's size in original pixels (for turning boxes back)
    height: float = 0.0
    turned: bool = False

    def to_original(self, box: list[float]) -> list[float]:
        x0, y0, x1, y1 = (v / self.scale for v in box)
        if self.turned:
            x0, y0, x1, y1 = self.width - x1, self.height - y1, self.width - x0, self.height - y0
        return [x0 + self.x0, y0 + self.y0, x1 + self.x0, y1 + self.y0]


def find_page(image: Any) -> tuple[int, int, int, int] | None:
    """The box of the document on a scan whose background is darker than the paper (a
    receipt on a flatbed's lid), or None when the image already is the page."""
    import numpy as np

    gray = np.asarray(image.convert("L"))
    h, w = gray.shape
    step = max(1, round(max(h, w) / 800))
    small = gray[::step, ::step]
    # a scan may hold three levels (the scanner's black edge, its grey lid, the white paper): when
    # the brightest region is nearly the whole scan, split again among the pixels above the cut
    found, floor = None, 0
    for _ in range(2):
        found, floor = _brightest_region(small, floor)
        if found is None or found[4] <= MAX_PAGE_SHARE * small.size:
            break
    if found is None:
        return None
    x, y, bw, bh, area = found
    share = (bw * bh) / (small.shape[0] * small.shape[1])
    if not MIN_PAGE_SHARE <= share <= MAX_PAGE_SHARE or area < 0.6 * bw * bh:
        return None
    inside = small[y:y + bh, x:x + bw]
    outside_mean = (float(small.sum()) - float(inside.sum())) / max(small.size - inside.size, 1)
    if float(np.median(inside)) - outside_mean < 25:  # no clear paper against the background
        return None
    steps = _edge_steps(small, (x, y, bw, bh))
    if steps and (min(steps) < EDGE_STEP_MIN or max(steps) < EDGE_STEP):
        # no sharp paper edge where the crop would cut: the bright region is the lit part of a
        # page in shadow (a photo lit from one side), and cutting there would cut off its print
        return None
    margin = MARGIN * max(h, w)
    return (max(0, int(x * step - margin)), max(0, int(y * step - margin)),
            min(w, int((x + bw) * step + margin)), min(h, int((y + bh) * step + margin)))


def _edge_steps(small: Any, box: tuple[int, int, int, int], band: int = 4, gap: int = 3) -> list[float]:
    """For each side of ``box`` that cuts the scan (is not at its border), how much brighter a
    thin band just inside is than one just outside (median grey levels)."""
    import numpy as np

    x, y, w, h = box
    rows, cols = small.shape
    g = small.astype(np.float32)
    across, down = slice(y, y + h), slice(x, x + w)
    pairs = []  # (inside band, outside band) per cutting side
    if x - gap - band >= 0:
        pairs.append((g[across, x + gap:x + gap + band], g[across, x - gap - band:x - gap]))
    if x + w + gap + band <= cols:
        pairs.append((g[across, x + w - gap - band:x + w - gap], g[across, x + w + gap:x + w + gap + band]))
    if y - gap - band >= 0:
        pairs.append((g[y + gap:y + gap + band, down], g[y - gap - band:y - gap, down]))
    if y + h + gap + band <= rows:
        pairs.append((g[y + h - gap - band:y + h - gap, down], g[y + h + gap:y + h + gap + band, down]))
    steps = [np.median(inner) - np.median(outer) for inner, outer in pairs]
    return [float(v) for v in steps]


def _brightest_region(small: Any, floor: int) -> tuple[tuple[int, int, int, int, int] | None, int]:
    """The largest bright region (x, y, w, h, area) by Otsu's cut among pixels above ``floor``,
    and the cut."""
    import cv2
    import numpy as np

    above = small[small > floor]
    if above.size < 100:
        return None, floor
    cut, _ = cv2.threshold(above.reshape(1, -1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = ((small > cut) * 255).astype(np.uint8)
    # open away the bright specks of a textured lid, then close the paper's print into it, so
    # text does not cut the page into pieces
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    if count < 2:
        return None, int(cut)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh, area = (int(v) for v in stats[best])
    return (x, y, bw, bh, area), int(cut)


def stretch_contrast(image: Any) -> Any:
    """Faded print (thermal paper, a light scan) stretched to the full grey range; a page with
    good contrast is left as it is."""
    import numpy as np
    from PIL import Image

    gray = np.asarray(image.convert("L"))
    lo, hi = np.percentile(gray[::4, ::4], [1, 99])
    if hi - lo >= FADED_RANGE or hi - lo < 10:
        return image
    out = np.clip((gray.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return Image.fromarray(out).convert("RGB")


def letter_height(gray: Any) -> float | None:
    """The typical height in pixels of the letters on a grey page, or None when too few blobs
    look like letters. Blobs count by their ink (a median weighted by area), so the specks,
    dots and broken strokes of thermal print do not pull it down. Measured on a copy at most
    ~1600 pixels long: a few milliseconds for a 300 dpi receipt."""
    import cv2
    import numpy as np

    step = max(1, round(max(gray.shape) / 1600))
    small = np.ascontiguousarray(gray[::step, ::step])
    # ink is what is darker than its neighbourhood, so faded print and shaded paper both count
    ink = cv2.adaptiveThreshold(small, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 15)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    h = stats[1:, cv2.CC_STAT_HEIGHT]
    w = stats[1:, cv2.CC_STAT_WIDTH]
    area = stats[1:, cv2.CC_STAT_AREA]
    # a letter (or a few touching ones) is at least 4 pixels tall, not much wider than tall nor
    # a hairline, fills a tenth of its box, and is far smaller than the page (no frames or logos)
    keep = (h >= 4) & (w <= 2 * h) & (w * 8 >= h) & (area * 10 >= h * w) & (h * 10 < small.shape[0])
    if int(keep.sum()) < LETTERS_MIN:
        return None
    order = np.argsort(h[keep])
    ink_below = np.cumsum(area[keep][order])
    return float(h[keep][order][np.searchsorted(ink_below, ink_below[-1] / 2)]) * step


def prepare(image: Any, max_side: int) -> tuple[Any, Placement]:
    """The image cropped to its document, contrast stretched and scaled to at most ``max_side``."""
    place = Placement(width=float(image.size[0]), height=float(image.size[1]))
    page = find_page(image)
    if page is not None:
        image = image.crop(page)
        place.x0, place.y0 = float(page[0]), float(page[1])
        place.width, place.height = float(image.size[0]), float(image.size[1])
    image = stretch_contrast(image)
    if max(image.size) > max_side:
        place.scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.size[0] * place.scale)), max(1, round(image.size[1] * place.scale))))
    return image, place
