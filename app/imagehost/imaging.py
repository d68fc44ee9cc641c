"""Image validation and resizing: pure functions over bytes or file objects, no I/O elsewhere.

Rules:
- accepted formats are JPEG, PNG and WebP, decided by Pillow from the content (never from the
  file name or the client's Content-Type); renditions keep the original's format;
- a rendition's long side is the requested size, the aspect ratio is kept, images are never
  upscaled (a size larger than the original yields the original's dimensions);
- EXIF orientation is applied, then EXIF is dropped (it may hold GPS positions); the ICC
  profile is kept so colours stay right;
- JPEGs are decoded in draft mode (libjpeg's DCT scaling) at the smallest scale that is still at
  least as large as the largest rendition: most of the speed of the worker comes from this.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow format name -> (Content-Type, file extension)
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
ORIENTATION_TAG = 0x0112
# EXIF orientations that swap width and height when applied.
_SWAPS_AXES = {5, 6, 7, 8}
_RESAMPLE = Image.Resampling.LANCZOS
# resize() first reduces by an integer factor with a box filter while the image stays at least
# this many times larger than the target, then finishes with LANCZOS: near-identical quality
# for a fraction of the work on large PNG/WebP inputs.
_REDUCING_GAP = 3.0


class InvalidImage(ValueError):
    """The upload is not an image we accept. ``status`` is the HTTP status to answer with."""

    status = 422


class UnsupportedImage(InvalidImage):
    status = 415


class CorruptImage(InvalidImage):
    status = 422


class TooManyPixels(InvalidImage):
    status = 422


@dataclass(frozen=True)
class ImageInfo:
    format: str  # Pillow's name: JPEG, PNG, WEBP
    width: int  # as displayed, i.e. after EXIF orientation
    height: int
    orientation: int

    @property
    def content_type(self) -> str:
        return FORMATS[self.format][0]

    @property
    def extension(self) -> str:
        return FORMATS[self.format][1]


@dataclass(frozen=True)
class Rendition:
    size: int  # the requested long side
    width: int
    height: int
    content_type: str
    data: bytes


def target_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Dimensions of a rendition whose long side is ``long_side``; never larger than the source."""
    if width <= 0 or height <= 0 or long_side <= 0:
        raise ValueError("dimensions must be positive")
    longest = max(width, height)
    if longest <= long_side:
        return width, height
    scale = long_side / longest
    if width >= height:
        return long_side, max(1, round(height * scale))
    return max(1, round(width * scale)), long_side


def oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """Displayed dimensions of a stored ``width`` x ``height`` image with that EXIF orientation."""
    return (height, width) if orientation in _SWAPS_AXES else (width, height)


class _Borrowed:
    """The caller's file object, lent to Pillow: Pillow may close what it opened (a PNG does,
    after verify()), but the caller still needs it (to rewind it and upload it)."""

    def __init__(self, fp: BinaryIO):
        self._fp = fp

    def read(self, *args):
        return self._fp.read(*args)

    def seek(self, *args):
        return self._fp.seek(*args)

    def tell(self):
        return self._fp.tell()

    def close(self):
        pass


def _open(source: bytes | BinaryIO) -> Image.Image:
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else _Borrowed(source)
    try:
        # formats= restricts the decoders Pillow tries: a GIF or a TIFF is "not an image we accept".
        return Image.open(fp, formats=list(FORMATS))
    except UnidentifiedImageError:
        raise UnsupportedImage("not a JPEG, PNG or WebP image") from None
    except Image.DecompressionBombError:
        raise TooManyPixels("the image has too many pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImage(f"the image cannot be read: {exc}") from None


def _orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(ORIENTATION_TAG, 1))
    except (TypeError, ValueError, SyntaxError, OSError):
        return 1
    return value if 1 <= value <= 8 else 1


def _check_pixels(im: Image.Image, max_pixels: int) -> None:
    width, height = im.size
    if width * height > max_pixels:
        raise TooManyPixels(f"the image has {width}x{height} pixels; at most {max_pixels} are accepted")


def inspect_image(source: bytes | BinaryIO, max_pixels: int) -> ImageInfo:
    """Prove the upload is a complete JPEG, PNG or WebP image of at most ``max_pixels`` pixels.

    The check decodes the image (a JPEG at 1/8 scale, which still reads every byte of the
    entropy-coded data), so a truncated or corrupted file is refused here and not in the worker.
    Raises an :class:`InvalidImage` subclass.
    """
    rewind = not isinstance(source, (bytes, bytearray, memoryview))
    if rewind:
        source.seek(0)
    im = _open(source)
    try:
        fmt = im.format
        if fmt not in FORMATS:  # pragma: no cover - formats= already restricts this
            raise UnsupportedImage("not a JPEG, PNG or WebP image")
        _check_pixels(im, max_pixels)
        try:
            im.verify()  # chunk CRCs for PNG, structure elsewhere; must come straight after open
        except Exception as exc:  # noqa: BLE001 - Pillow raises a variety of types here
            raise CorruptImage(f"the image is damaged: {exc}") from None
    finally:
        im.close()
    if rewind:
        source.seek(0)
    im = _open(source)
    try:
        orientation = _orientation(im)  # before draft(): reading a PNG's EXIF may load it
        width, height = oriented_size(*im.size, orientation)
        if im.format == "JPEG":
            im.draft(None, (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
        im.load()
    except InvalidImage:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated data surfaces as OSError, SyntaxError, ...
        raise CorruptImage(f"the image cannot be decoded: {exc}") from None
    finally:
        im.close()
        if rewind:
            source.seek(0)
    return ImageInfo(format=fmt, width=width, height=height, orientation=orientation)


def _normalise_mode(im: Image.Image) -> tuple[Image.Image, bool]:
    """A mode that resizes with LANCZOS and saves in the source format. Returns the image and
    whether the ICC profile still applies (it does not after a CMYK -> RGB conversion)."""
    if im.mode in ("RGB", "RGBA", "L"):
        return im, True
    if im.mode == "CMYK":
        return im.convert("RGB"), False
    has_alpha = im.mode in ("LA", "PA", "RGBa", "La") or "transparency" in im.info
    if im.mode.startswith("I"):
        # 16-bit greyscale PNG: scale down to 8 bits; convert("L") would clip to white.
        return im.convert("I").point(lambda v: v * (1 / 256)).convert("L"), True
    if im.mode == "F":  # pragma: no cover - none of the accepted formats decodes to float
        return im.convert("L"), True
    return im.convert("RGBA" if has_alpha else "RGB"), True


def _encode(im: Image.Image, fmt: str, icc_profile: bytes | None, jpeg_quality: int, webp_quality: int) -> bytes:
    buf = io.BytesIO()
    params: dict[str, object] = {}
    if icc_profile:
        params["icc_profile"] = icc_profile
    if fmt == "JPEG":
        params.update(quality=jpeg_quality)
    elif fmt == "WEBP":
        params.update(quality=webp_quality, method=4)
    im.save(buf, fmt, **params)
    return buf.getvalue()


def renditions(
    source: bytes | BinaryIO,
    sizes: Iterable[int],
    *,
    max_pixels: int,
    jpeg_quality: int = 85,
    webp_quality: int = 80,
) -> tuple[ImageInfo, Iterator[Rendition]]:
    """Read the header now (raising :class:`InvalidImage` for what is not an accepted image) and
    return its :class:`ImageInfo` with an iterator that decodes once, then yields one
    :class:`Rendition` per size, smallest first (so the smallest can be stored, and shown, while
    the larger ones are still being encoded)."""
    im = _open(source)
    try:
        fmt = im.format
        if fmt not in FORMATS:  # pragma: no cover - formats= already restricts this
            raise UnsupportedImage("not a JPEG, PNG or WebP image")
        _check_pixels(im, max_pixels)
        orientation = _orientation(im)
    except BaseException:
        im.close()
        raise
    width, height = oriented_size(*im.size, orientation)
    info = ImageInfo(format=fmt, width=width, height=height, orientation=orientation)
    return info, _render(im, info, sorted(set(sizes)), jpeg_quality, webp_quality)


def _render(im: Image.Image, info: ImageInfo, sizes: list[int], jpeg_quality: int,
            webp_quality: int) -> Iterator[Rendition]:
    try:
        if not sizes:
            return
        if info.format == "JPEG":
            largest = target_size(info.width, info.height, sizes[-1])
            # draft() works on stored (unrotated) axes.
            im.draft(None, oriented_size(*largest, info.orientation))
        icc_profile = im.info.get("icc_profile")
        try:
            im.load()
        except Exception as exc:  # noqa: BLE001 - truncated data surfaces as OSError, SyntaxError, ...
            raise CorruptImage(f"the image cannot be decoded: {exc}") from None
        if info.orientation != 1:
            ImageOps.exif_transpose(im, in_place=True)
        work, keep_icc = _normalise_mode(im)
        for size in sizes:
            tw, th = target_size(info.width, info.height, size)
            resized = work if work.size == (tw, th) else work.resize((tw, th), _RESAMPLE, reducing_gap=_REDUCING_GAP)
            data = _encode(resized, info.format, icc_profile if keep_icc else None, jpeg_quality, webp_quality)
            yield Rendition(size=size, width=tw, height=th, content_type=info.content_type, data=data)
    finally:
        im.close()
