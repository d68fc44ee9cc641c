"""Validation and resizing: dimensions, orientation, formats, draft decoding."""

import io
import tempfile

import pytest
from PIL import Image, ImageCms, JpegImagePlugin

from imagehost.imaging import (CorruptImage, TooManyPixels, UnsupportedImage, inspect_image, oriented_size,
                               renditions, target_size)
from testimages import BLUE, GREEN, RED, WHITE, dimensions, encode, jpeg, png, quadrants, webp

SIZES = (128, 512, 1024)
MAX_PIXELS = 50_000_000


def render(data, sizes=SIZES, **kwargs):
    info, items = renditions(data, sizes, max_pixels=kwargs.pop("max_pixels", MAX_PIXELS), **kwargs)
    return info, list(items)


def close_to(pixel, colour, tolerance=40):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour))


# --- resize arithmetic ---------------------------------------------------------------------------

@pytest.mark.parametrize("w, h, side, expected", [
    (1600, 1200, 128, (128, 96)),
    (1600, 1200, 1024, (1024, 768)),
    (1200, 1600, 512, (384, 512)),
    (1000, 1000, 128, (128, 128)),
    (300, 200, 1024, (300, 200)),  # never upscaled
    (1024, 10, 1024, (1024, 10)),  # already exactly the size
    (10000, 1, 128, (128, 1)),  # a sliver keeps at least one pixel
    (1, 10000, 128, (1, 128)),
    (1001, 333, 100, (100, 33)),  # 33.27 rounds down
    (1000, 335, 100, (100, 34)),  # 33.5 rounds to even... or up: either way within one pixel
])
def test_target_size_keeps_aspect_and_long_side(w, h, side, expected):
    got = target_size(w, h, side)
    assert got == expected
    assert max(got) == min(side, max(w, h))


@pytest.mark.parametrize("args", [(0, 10, 10), (10, 0, 10), (10, 10, 0), (-1, 5, 5)])
def test_target_size_refuses_non_positive_dimensions(args):
    with pytest.raises(ValueError):
        target_size(*args)


@pytest.mark.parametrize("orientation, swapped", [(1, False), (2, False), (3, False), (4, False),
                                                  (5, True), (6, True), (7, True), (8, True)])
def test_orientations_that_swap_axes(orientation, swapped):
    assert oriented_size(400, 300, orientation) == ((300, 400) if swapped else (400, 300))


# --- renditions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make, fmt", [(jpeg, "JPEG"), (png, "PNG"), (webp, "WEBP")])
def test_every_size_in_the_original_format(make, fmt):
    info, items = render(make(1600, 1200))
    assert (info.format, info.width, info.height) == (fmt, 1600, 1200)
    assert [(r.size, r.width, r.height) for r in items] == [(128, 128, 96), (512, 512, 384), (1024, 1024, 768)]
    for r in items:
        assert dimensions(r.data) == (fmt, r.width, r.height)
        assert r.content_type == {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}[fmt]


def test_small_originals_are_not_upscaled():
    _, items = render(png(300, 200))
    assert [(r.width, r.height) for r in items] == [(128, 85), (300, 200), (300, 200)]


def test_renditions_come_smallest_first_whatever_the_order_asked():
    _, items = render(jpeg(800, 600), sizes=(512, 64, 256, 64))
    assert [r.size for r in items] == [64, 256, 512]


# Where the stored top-left (red) quadrant and friends end up once the orientation is applied.
# EXIF 6 means "rotate 90 degrees clockwise to display": the stored bottom-left comes to the top-left.
ORIENTED_CORNERS = {  # orientation: (displayed top-left, displayed top-right)
    1: (RED, GREEN), 2: (GREEN, RED), 3: (WHITE, BLUE), 4: (BLUE, WHITE),
    5: (RED, BLUE), 6: (BLUE, RED), 7: (WHITE, GREEN), 8: (GREEN, WHITE),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTED_CORNERS))
def test_exif_orientation_is_applied(orientation):
    info, items = render(jpeg(1600, 1000, orientation=orientation))
    swapped = orientation >= 5
    assert (info.width, info.height) == ((1000, 1600) if swapped else (1600, 1000))
    for r in items:
        assert (r.width, r.height) == ((r.size * 1000 // 1600, r.size) if swapped else (r.size, r.size * 1000 // 1600))
        with Image.open(io.BytesIO(r.data)) as out:
            assert out.getexif().get(0x0112) is None, "orientation must not be applied twice by viewers"
            rgb = out.convert("RGB")
            top_left = rgb.getpixel((rgb.width // 4, rgb.height // 4))
            top_right = rgb.getpixel((rgb.width * 3 // 4, rgb.height // 4))
        expected_left, expected_right = ORIENTED_CORNERS[orientation]
        assert close_to(top_left, expected_left), (r.size, top_left)
        assert close_to(top_right, expected_right), (r.size, top_right)


def test_jpeg_is_decoded_in_draft_mode_at_no_less_than_the_largest_size(monkeypatch):
    calls = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = real_draft(self, mode, size)
        calls.append((size, self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    # Stored 3000x4000 with orientation 6: displayed 4000x3000, so 1024 displayed is 768x1024 stored.
    info, items = render(jpeg(3000, 4000, orientation=6), sizes=(128, 1024))
    assert len(calls) == 1
    requested, decoded = calls[0]
    assert requested == (768, 1024)
    assert decoded == (1500, 2000), "libjpeg should have decoded at 1/2 scale"
    assert decoded[0] >= requested[0] and decoded[1] >= requested[1]
    assert [(r.width, r.height) for r in items] == [(128, 96), (1024, 768)]


def test_png_transparency_survives():
    im = Image.new("RGBA", (600, 400), (255, 0, 0, 0))
    im.paste((0, 0, 255, 255), (300, 0, 600, 400))
    _, items = render(encode(im, "PNG"), sizes=(128,))
    with Image.open(io.BytesIO(items[0].data)) as out:
        assert out.mode == "RGBA"
        assert out.getpixel((10, 40))[3] == 0
        assert out.getpixel((118, 40))[3] == 255


def test_palette_png_with_transparency_is_resized_with_alpha():
    im = quadrants(400, 400).convert("P")
    _, items = render(encode(im, "PNG", transparency=0), sizes=(100,))
    with Image.open(io.BytesIO(items[0].data)) as out:
        assert out.mode == "RGBA"
        assert out.size == (100, 100)


def test_cmyk_jpeg_becomes_rgb():
    _, items = render(encode(quadrants(400, 300).convert("CMYK"), "JPEG"), sizes=(128,))
    with Image.open(io.BytesIO(items[0].data)) as out:
        assert out.mode == "RGB"
        assert out.size == (128, 96)


def test_sixteen_bit_greyscale_png_is_scaled_not_clipped():
    im = Image.new("I;16", (300, 200), 40000)
    _, items = render(encode(im, "PNG"), sizes=(100,))
    with Image.open(io.BytesIO(items[0].data)) as out:
        assert out.mode == "L"
        assert abs(out.getpixel((50, 30)) - 40000 // 256) <= 1


def test_exif_is_dropped_but_the_icc_profile_kept():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 1
    exif[0x010F] = "CameraMaker"  # Make; stands in for anything private (GPS, serial numbers)
    data = encode(quadrants(800, 600), "JPEG", exif=exif.tobytes(), icc_profile=profile)
    _, items = render(data, sizes=(128,))
    with Image.open(io.BytesIO(items[0].data)) as out:
        assert out.info.get("icc_profile") == profile
        assert b"CameraMaker" not in items[0].data


def test_too_many_pixels_is_refused_before_decoding():
    with pytest.raises(TooManyPixels):
        renditions(png(1000, 1000), SIZES, max_pixels=999_999)


# --- validation of uploads -----------------------------------------------------------------------

@pytest.mark.parametrize("data, fmt", [(jpeg(640, 480), "JPEG"), (png(640, 480), "PNG"), (webp(640, 480), "WEBP")])
def test_accepted_formats(data, fmt):
    info = inspect_image(data, MAX_PIXELS)
    assert (info.format, info.width, info.height) == (fmt, 640, 480)


def test_inspect_reports_displayed_dimensions():
    info = inspect_image(jpeg(640, 480, orientation=8), MAX_PIXELS)
    assert (info.width, info.height, info.orientation) == (480, 640, 8)


@pytest.mark.parametrize("make", [jpeg, png, webp], ids=["jpeg", "png", "webp"])
def test_inspect_rewinds_and_leaves_open_a_file_object(make):
    fp = tempfile.SpooledTemporaryFile()
    fp.write(make(64, 48))
    fp.seek(10)
    inspect_image(fp, MAX_PIXELS)
    assert not fp.closed, "the caller still has to upload it"
    assert fp.tell() == 0


@pytest.mark.parametrize("data", [
    b"",
    b"hello, I am a text file pretending to be a JPEG\n" * 20,
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"0" * 500,
    encode(quadrants(64, 64), "GIF"),
    encode(quadrants(64, 64), "BMP"),
    encode(quadrants(64, 64), "TIFF"),
], ids=["empty", "text", "pdf", "gif", "bmp", "tiff"])
def test_other_content_is_unsupported(data):
    with pytest.raises(UnsupportedImage) as err:
        inspect_image(data, MAX_PIXELS)
    assert err.value.status == 415


@pytest.mark.parametrize("make", [jpeg, png, webp], ids=["jpeg", "png", "webp"])
def test_truncated_images_are_refused(make):
    data = make(800, 600)
    with pytest.raises((CorruptImage, UnsupportedImage)) as err:
        inspect_image(data[: len(data) // 2], MAX_PIXELS)
    assert 400 <= err.value.status < 500


def test_png_with_a_bad_checksum_is_refused():
    data = bytearray(png(200, 200))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # flip bits inside the compressed pixel data: its CRC no longer matches
    with pytest.raises(CorruptImage) as err:
        inspect_image(bytes(data), MAX_PIXELS)
    assert err.value.status == 422


def test_pixel_limit_applies_to_uploads():
    with pytest.raises(TooManyPixels) as err:
        inspect_image(png(2000, 1000), 1_999_999)
    assert err.value.status == 422
    assert inspect_image(png(2000, 1000), 2_000_000).width == 2000
