"""Test images made in memory (shared by unit and integration tests)."""

from __future__ import annotations

import io

from PIL import Image

ORIENTATION = 0x0112
# Stored quadrant colours; tests check where they end up after EXIF orientation is applied.
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(width: int, height: int, mode: str = "RGB") -> Image.Image:
    im = Image.new("RGB", (width, height))
    w2, h2 = width // 2, height // 2
    im.paste(RED, (0, 0, w2, h2))
    im.paste(GREEN, (w2, 0, width, h2))
    im.paste(BLUE, (0, h2, w2, height))
    im.paste(WHITE, (w2, h2, width, height))
    return im.convert(mode) if mode != "RGB" else im


def encode(im: Image.Image, fmt: str, orientation: int | None = None, **params) -> bytes:
    buf = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        params["exif"] = exif.tobytes()
    if fmt == "JPEG":
        params.setdefault("quality", 95)
    im.save(buf, fmt, **params)
    return buf.getvalue()


def jpeg(width: int = 1600, height: int = 1200, orientation: int | None = None, **params) -> bytes:
    return encode(quadrants(width, height), "JPEG", orientation, **params)


def png(width: int = 1600, height: int = 1200, mode: str = "RGB", **params) -> bytes:
    return encode(quadrants(width, height, mode), "PNG", **params)


def webp(width: int = 1600, height: int = 1200, **params) -> bytes:
    return encode(quadrants(width, height), "WEBP", **params)


def dimensions(data: bytes) -> tuple[str, int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.format, im.width, im.height
