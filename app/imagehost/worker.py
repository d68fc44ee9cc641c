"""The resize worker: ``python3 -m imagehost.worker`` (a Celery worker, prefork pool).

A task takes an image id, reads ``images/<id>/original``, writes one object per size (smallest
first) and then ``manifest.json``, which marks the image done. Running it twice, or two copies
at once, is harmless: the same keys get the same content, and a task that finds a complete
manifest returns at once. A transient S3 failure is retried with backoff; an original that cannot
be decoded gets ``error.json`` and is not retried.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any, Iterable

from PIL import Image

from .celeryapp import TASK_RESIZE, make_celery
from .config import Settings, load_settings
from .imaging import InvalidImage, renditions
from .logsetup import configure_logging
from .store import ERROR, MANIFEST, ORIGINAL, NotFound, Store, StorageUnavailable, is_image_id, s3_client

log = logging.getLogger("imagehost.worker")

# Renditions never change once written (an id is never reused), so caches may keep them.
IMMUTABLE = "public, max-age=31536000, immutable"

settings = load_settings()
# Our own limit is checked explicitly; keep Pillow's bomb guard above it, not below.
Image.MAX_IMAGE_PIXELS = max(settings.max_pixels, Image.MAX_IMAGE_PIXELS or 0)
app = make_celery(settings)

_store: Store | None = None
_store_pid: int | None = None


def get_store() -> Store:
    """One S3 client per process: clients must not cross the prefork pool's fork."""
    global _store, _store_pid
    if _store is None or _store_pid != os.getpid():
        _store = Store(s3_client(settings), settings.s3_bucket)
        _store_pid = os.getpid()
    return _store


def process_image(store: Store, image_id: str, sizes: Iterable[int], cfg: Settings) -> dict[str, Any]:
    """Produce every rendition of one image, then its manifest. Returns a short summary."""
    sizes = sorted({int(s) for s in sizes})
    if not is_image_id(image_id):
        log.error("dropping a task with an invalid image id %r", image_id[:40])
        return {"status": "invalid"}
    manifest = store.read_json(image_id, MANIFEST)
    if manifest and {str(s) for s in sizes} <= set(manifest.get("sizes", {})):
        log.info("image %s already has sizes %s; nothing to do", image_id, sizes)
        return {"status": "done", "skipped": True}
    try:
        original = store.read(image_id, ORIGINAL)
    except NotFound:
        # The upload was withdrawn (its task could not be confirmed) or deleted since.
        log.warning("image %s has no original any more; dropping the task", image_id)
        return {"status": "missing"}
    started = time.monotonic()
    done: dict[str, dict[str, int]] = {}
    try:
        info, items = renditions(original, sizes, max_pixels=cfg.max_pixels,
                                 jpeg_quality=cfg.jpeg_quality, webp_quality=cfg.webp_quality)
        for item in items:
            store.put(image_id, item.size, item.data, item.content_type, cache_control=IMMUTABLE)
            done[str(item.size)] = {"width": item.width, "height": item.height, "bytes": len(item.data)}
    except InvalidImage as exc:
        log.warning("image %s cannot be resized: %s", image_id, exc)
        store.write_json(image_id, ERROR, {"id": image_id, "status": "failed", "error": str(exc),
                                           "failed_at": _now()})
        return {"status": "failed"}
    store.delete(image_id, ERROR)  # a success replaces any earlier verdict
    store.write_json(image_id, MANIFEST, {
        "id": image_id,
        "status": "done",
        "format": info.format,
        "content_type": info.content_type,
        "width": info.width,
        "height": info.height,
        "sizes": done,
        "completed_at": _now(),
        "version": cfg.version,
    })
    log.info("image %s: %d sizes in %.0f ms", image_id, len(done), (time.monotonic() - started) * 1000)
    return {"status": "done", "sizes": sorted(int(s) for s in done)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@app.task(name=TASK_RESIZE, bind=True, acks_late=True, reject_on_worker_lost=True,
          autoretry_for=(StorageUnavailable,), retry_backoff=2, retry_backoff_max=60, retry_jitter=True,
          max_retries=100)
def resize(self, image_id: str, sizes: list[int] | None = None) -> dict[str, Any]:
    return process_image(get_store(), image_id, sizes or settings.sizes, settings)


def main(argv: list[str] | None = None) -> None:
    configure_logging(settings.log_level)
    log.info("starting worker %s with %s", settings.version, settings.summary())
    args = ["worker", f"--loglevel={settings.log_level}", "--without-gossip", "--without-mingle",
            f"--queues={settings.queue}"]
    app.worker_main(args + list(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
