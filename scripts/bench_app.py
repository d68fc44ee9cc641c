#!/usr/bin/env python3
"""Resizes per second on one core: the worker's resize function against a bare Pillow loop.

    .venv/bin/python scripts/bench_app.py [--images DIR] [--count 8] [--seconds 10] [--json]

Both sides get the same images (synthetic 6-megapixel photo-like JPEGs unless --images points at
real JPEG/PNG/WebP files) and produce the same renditions (APP_SIZES, default 128/512/1024 px
long side, same quality settings), in memory: no S3, no broker. The bare loop is the least code
that does the same job (open, JPEG draft, decode, resize each size, encode); the ratio
``ours / bare`` is therefore what the worker's own logic costs or saves (EXIF orientation, mode
normalisation, ...). The two are interleaved image by image so a busy machine penalises both
alike.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from PIL import Image  # noqa: E402

from imagehost.config import load_settings  # noqa: E402
from imagehost.imaging import renditions, target_size  # noqa: E402

_RESAMPLE = Image.Resampling.LANCZOS


def synthetic_photos(count: int, width: int = 3000, height: int = 2000) -> list[bytes]:
    """Photo-like JPEGs: smooth gradients plus sensor-like noise (compresses like a photo)."""
    out = []
    for i in range(count):
        gx = Image.linear_gradient("L").resize((width, height))
        gy = gx.transpose(Image.Transpose.ROTATE_90).resize((width, height))
        noise = Image.effect_noise((width, height), 18 + i)
        im = Image.merge("RGB", (gx, gy, Image.blend(noise, gx, 0.5)))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def load_images(directory: Path) -> list[bytes]:
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if not files:
        raise SystemExit(f"no .jpg/.png/.webp files in {directory}")
    return [p.read_bytes() for p in files]


def ours(data: bytes, sizes, settings) -> int:
    _, items = renditions(data, sizes, max_pixels=settings.max_pixels,
                          jpeg_quality=settings.jpeg_quality, webp_quality=settings.webp_quality)
    return sum(1 for _ in items)


def bare(data: bytes, sizes, settings) -> int:
    im = Image.open(io.BytesIO(data))
    fmt, original = im.format, im.size
    if fmt == "JPEG":
        im.draft(None, target_size(*original, max(sizes)))
    im.load()
    if im.mode not in ("RGB", "RGBA", "L"):
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    params = {"JPEG": {"quality": settings.jpeg_quality}, "WEBP": {"quality": settings.webp_quality, "method": 4}}
    for size in sizes:
        resized = im.resize(target_size(*original, size), _RESAMPLE, reducing_gap=3.0)
        resized.save(io.BytesIO(), fmt, **params.get(fmt, {}))
    return len(sizes)


def measure(images, sizes, settings, seconds: float) -> dict[str, list[float]]:
    """Run both on every image, interleaved image by image (and alternating which goes first),
    until each has had ``seconds`` of CPU: load from other processes then hits both alike.
    Returns name -> [images, renditions, seconds]."""
    totals = {"ours": [0, 0, 0.0], "bare": [0, 0, 0.0]}
    order = [("ours", ours), ("bare", bare)]
    while min(t[2] for t in totals.values()) < seconds:
        for data in images:
            for name, fn in order:
                start = time.perf_counter()
                made = fn(data, sizes, settings)
                totals[name][2] += time.perf_counter() - start
                totals[name][0] += 1
                totals[name][1] += made
            order.reverse()
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, help="directory of JPEG/PNG/WebP files (default: synthetic)")
    parser.add_argument("--count", type=int, default=8, help="number of synthetic images")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per method")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    settings = load_settings()
    sizes = sorted(settings.sizes)
    images = load_images(args.images) if args.images else synthetic_photos(args.count)
    with Image.open(io.BytesIO(images[0])) as first:
        described = f"{len(images)} images, first {first.format} {first.width}x{first.height}"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, honestly

    for fn in (ours, bare):  # warm up caches and lazy imports
        fn(images[0], sizes, settings)
    totals = measure(images, sizes, settings, args.seconds)
    rate = {name: (t[0] / t[2], t[1] / t[2]) for name, t in totals.items()}
    ratio = rate["ours"][1] / rate["bare"][1]
    if args.json:
        print(json.dumps({
            "images": described, "sizes": sizes,
            "ours_images_per_s": round(rate["ours"][0], 2), "ours_resizes_per_s": round(rate["ours"][1], 2),
            "bare_images_per_s": round(rate["bare"][0], 2), "bare_resizes_per_s": round(rate["bare"][1], 2),
            "ratio": round(ratio, 3),
        }))
    else:
        print(f"inputs: {described}; sizes {','.join(map(str, sizes))}; one core")
        print(f"imagehost worker resize: {rate['ours'][0]:7.2f} images/s = {rate['ours'][1]:7.2f} resizes/s per core")
        print(f"bare Pillow loop:        {rate['bare'][0]:7.2f} images/s = {rate['bare'][1]:7.2f} resizes/s per core")
        print(f"ratio ours/bare:         {ratio:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
