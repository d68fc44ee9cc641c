"""The backend: HTTP API in front of S3 and the task queue. ``python3 -m imagehost.serve``.

    POST /api/images                 upload (multipart field "file", or a raw image body)
    GET  /api/images?limit=&after=   newest first, with the status of each
    GET  /api/images/<id>            status and the URL of every size
    GET  /api/images/<id>/<size>     the stored object (<size> is a pixel size or "original")
    GET  /healthz                    liveness: the process answers
    GET  /readyz                     readiness: S3 bucket and broker reachable (503 otherwise)
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from typing import BinaryIO

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from .celeryapp import enqueue_resize, make_celery
from .config import Settings, load_settings
from .health import readiness
from .imaging import InvalidImage, inspect_image
from .logsetup import configure_logging
from .store import (ORIGINAL, SIZE_RE, NotFound, StorageUnavailable, Store, describe, is_image_id,
                    new_image_id, s3_client)

log = logging.getLogger("imagehost.api")

UPLOAD_PATH = "/api/images"
# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
IMMUTABLE = "public, max-age=31536000, immutable"


class BodyTooLarge(Exception):
    pass


class UploadLimit:
    """ASGI middleware: refuse an upload larger than the limit before reading it all.

    A declared Content-Length over the limit is answered 413 at once (curl, which sends
    ``Expect: 100-continue`` for large files, then never sends the body); a chunked body is
    counted as it arrives and cut off at the limit. Either way nothing reaches S3."""

    def __init__(self, app, limit: int, slack: int = 0):
        self.app = app
        self.limit = limit  # what the user is told
        self.max_body = limit + slack  # what is enforced on the raw body (multipart framing)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != UPLOAD_PATH:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return await _too_large(send, self.limit)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.limit)


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": f"the upload exceeds the limit of {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    Image.MAX_IMAGE_PIXELS = max(settings.max_pixels, Image.MAX_IMAGE_PIXELS or 0)
    presign = s3_client(settings, endpoint=settings.s3_public_endpoint) if settings.s3_public_endpoint else None
    store = Store(s3_client(settings), settings.s3_bucket, presign_client=presign)
    probe_client = s3_client(settings, fast=True)
    celery = make_celery(settings)
    log.info("backend %s starting with %s", settings.version, settings.summary())

    app = FastAPI(title="imagehost", version=settings.version, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.settings = settings
    app.state.store = store
    app.add_middleware(UploadLimit, limit=settings.max_upload_bytes, slack=MULTIPART_OVERHEAD)

    @app.exception_handler(StorageUnavailable)
    async def storage_unavailable(request: Request, exc: StorageUnavailable):
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "storage is unavailable; try again shortly"}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": settings.version}

    @app.get("/readyz")
    async def readyz():
        checks = await run_in_threadpool(readiness, settings, probe_client)
        ok = all(v == "ok" for v in checks.values())
        if not ok:
            log.warning("not ready: %s", checks)
        return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks,
                             "version": settings.version}, status_code=200 if ok else 503)

    @app.post(UPLOAD_PATH, status_code=201)
    async def upload(request: Request):
        spool, filename = await _receive_upload(request)
        try:
            size = spool.seek(0, 2)
            if size == 0:
                raise HTTPException(400, "the upload is empty")
            if size > settings.max_upload_bytes:
                raise HTTPException(413, f"the upload exceeds the limit of {settings.max_upload_bytes} bytes")
            try:
                info = await run_in_threadpool(inspect_image, spool, settings.max_pixels)
            except InvalidImage as exc:
                raise HTTPException(exc.status, str(exc)) from None
            image_id = new_image_id()
            metadata = {"format": info.format, "width": str(info.width), "height": str(info.height)}
            if filename:
                metadata["filename"] = _SAFE_NAME.sub("_", filename)[-100:]
            spool.seek(0)
            await run_in_threadpool(store.put, image_id, ORIGINAL, spool, info.content_type, metadata, IMMUTABLE)
        finally:
            spool.close()
        try:
            await run_in_threadpool(enqueue_resize, celery, settings, image_id)
        except Exception as exc:  # noqa: BLE001 - any publish failure means the same to the client
            log.error("cannot enqueue image %s (%s: %s); withdrawing the upload", image_id,
                      exc.__class__.__name__, exc)
            try:
                await run_in_threadpool(store.delete_image, image_id)
            except Exception:  # noqa: BLE001
                log.exception("cannot withdraw image %s; its original stays without a task", image_id)
            return JSONResponse({"detail": "the task queue is unavailable; try again shortly"}, status_code=503,
                                headers={"Retry-After": "5"})
        log.info("accepted image %s (%s %dx%d, %d bytes)", image_id, info.format, info.width, info.height, size)
        body = {"id": image_id, "status": "processing", "url": f"{UPLOAD_PATH}/{image_id}",
                "format": info.format, "width": info.width, "height": info.height,
                "sizes": list(settings.sizes)}
        return JSONResponse(body, status_code=201, headers={"Location": f"{UPLOAD_PATH}/{image_id}"})

    @app.get(UPLOAD_PATH)
    async def list_images(limit: int = Query(30, ge=1, le=200), after: str | None = None):
        if after is not None and not is_image_id(after):
            raise HTTPException(400, "after: not an image id")
        states, cursor = await run_in_threadpool(store.list_states, limit, after)
        return JSONResponse({"images": [describe(s, settings.sizes) for s in states], "next": cursor},
                            headers={"Cache-Control": "no-cache"})

    @app.get(UPLOAD_PATH + "/{image_id}")
    async def image_status(image_id: str):
        if not is_image_id(image_id):
            raise HTTPException(404, "no such image")
        try:
            state = await run_in_threadpool(store.state, image_id)
        except NotFound:
            raise HTTPException(404, "no such image") from None
        manifest = None
        if state.done:
            manifest = await run_in_threadpool(store.read_json, image_id, "manifest.json")
        elif state.failed:
            manifest = await run_in_threadpool(store.read_json, image_id, "error.json")
        return JSONResponse(describe(state, settings.sizes, manifest), headers={"Cache-Control": "no-cache"})

    @app.get(UPLOAD_PATH + "/{image_id}/{size}")
    async def image_object(image_id: str, size: str, request: Request):
        if not is_image_id(image_id) or not (size == ORIGINAL or SIZE_RE.match(size)):
            raise HTTPException(404, "no such image or size")
        if settings.serve_mode == "redirect":
            try:
                await run_in_threadpool(store.head, image_id, size)
            except NotFound:
                raise HTTPException(404, "no such image or size") from None
            url = await run_in_threadpool(store.presigned_url, image_id, size)
            return RedirectResponse(url, status_code=307)
        try:
            obj = await run_in_threadpool(store.get, image_id, size, request.headers.get("if-none-match"))
        except NotFound:
            raise HTTPException(404, "no such image or size") from None
        headers = {"ETag": obj.get("ETag", ""), "Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"}
        if obj.get("NotModified"):
            return Response(status_code=304, headers=headers)
        headers["Content-Length"] = str(obj["ContentLength"])
        return StreamingResponse(_chunks(obj["Body"]), media_type=obj.get("ContentType"), headers=headers)

    return app


def _chunks(body, chunk_size: int = 64 * 1024):
    try:
        yield from body.iter_chunks(chunk_size)
    finally:
        body.close()


async def _receive_upload(request: Request) -> tuple[BinaryIO, str | None]:
    """The uploaded file as a seekable spool (memory up to 1 MiB, then disk) and its name."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            await form.close()
            raise HTTPException(400, 'expected a multipart field named "file" holding the image')
        # The form's spool is closed by its owner; hand over the file object itself.
        return upload.file, upload.filename
    spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
    try:
        async for chunk in request.stream():
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    return spool, request.headers.get("x-filename")
