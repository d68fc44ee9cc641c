"""The S3 layout, which is also the application's whole state (no database).

Objects of an image, all under ``images/<id>/``:

``original``
    the upload as received (Content-Type from the detected format);
``<size>`` (``128``, ``512``, ...)
    each rendition, written by the worker smallest first;
``manifest.json``
    written last by the worker: the image is done; holds the dimensions of every rendition;
``error.json``
    written instead when the original cannot be decoded: the image failed for good.

So one ``ListObjectsV2`` under ``images/<id>/`` tells the status of an image and which sizes are
ready, and one listing under ``images/`` gives the status of a whole page of images.

Ids sort newest first: 12 hex digits of ``0xffffffffffff - milliseconds since the epoch``
followed by 8 random hex digits, so S3's lexicographic listing is already the gallery's order and
``StartAfter`` paginates it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO, Iterable, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .config import Settings

PREFIX = "images/"
ORIGINAL = "original"
MANIFEST = "manifest.json"
ERROR = "error.json"
_MAX_MS = 0xFFFFFFFFFFFF
ID_RE = re.compile(r"[0-9a-f]{20}\Z")
SIZE_RE = re.compile(r"[1-9][0-9]{0,4}\Z")
# Sorts after every object name an image has ("original", "manifest.json", digits), so
# StartAfter=images/<id>/~ resumes a listing at the next image.
_AFTER_ALL = "~"


class StorageUnavailable(RuntimeError):
    """S3 could not be reached or answered with a server error; worth retrying."""


class NotFound(LookupError):
    pass


def new_image_id(now_ms: int | None = None, rand: str | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{_MAX_MS - ms:012x}{rand if rand is not None else secrets.token_hex(4)}"


def is_image_id(value: str) -> bool:
    return bool(ID_RE.match(value))


def created_at(image_id: str) -> datetime:
    ms = _MAX_MS - int(image_id[:12], 16)
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def key(image_id: str, name: str | int) -> str:
    if not is_image_id(image_id):
        raise ValueError("invalid image id")
    return f"{PREFIX}{image_id}/{name}"


@dataclass
class ImageState:
    """What the objects under ``images/<id>/`` say about one image."""

    id: str
    has_original: bool = False
    ready: set[int] = field(default_factory=set)
    done: bool = False
    failed: bool = False

    @property
    def status(self) -> str:
        if self.failed:
            return "failed"
        if self.done:
            return "done"
        return "processing"

    def add(self, name: str) -> None:
        if name == ORIGINAL:
            self.has_original = True
        elif name == MANIFEST:
            self.done = True
        elif name == ERROR:
            self.failed = True
        elif SIZE_RE.match(name):
            self.ready.add(int(name))


def states_from_keys(keys: Iterable[str]) -> dict[str, ImageState]:
    """Group object keys by image id, in first-seen order (S3 lists in key order)."""
    states: dict[str, ImageState] = {}
    for k in keys:
        if not k.startswith(PREFIX):
            continue
        image_id, sep, name = k[len(PREFIX) :].partition("/")
        if not sep or not is_image_id(image_id):
            continue
        states.setdefault(image_id, ImageState(image_id)).add(name)
    return states


def describe(state: ImageState, sizes: Iterable[int], manifest: dict[str, Any] | None = None,
             base_url: str = "/api/images") -> dict[str, Any]:
    """The API's view of one image: status, and per size whether it is ready and its URL."""
    dims = (manifest or {}).get("sizes", {}) if state.done else {}
    entries = []
    for size in sorted(set(sizes) | state.ready):
        ready = size in state.ready
        entry: dict[str, Any] = {"size": size, "ready": ready,
                                 "url": f"{base_url}/{state.id}/{size}" if ready else None}
        if str(size) in dims:
            entry["width"] = dims[str(size)].get("width")
            entry["height"] = dims[str(size)].get("height")
        entries.append(entry)
    out: dict[str, Any] = {
        "id": state.id,
        "status": state.status,
        "created_at": created_at(state.id).isoformat().replace("+00:00", "Z"),
        "url": f"{base_url}/{state.id}",
        "original_url": f"{base_url}/{state.id}/{ORIGINAL}" if state.has_original else None,
        "sizes": entries,
    }
    if manifest and state.done:
        out["format"] = manifest.get("format")
        out["width"] = manifest.get("width")
        out["height"] = manifest.get("height")
    if manifest and state.failed:
        out["error"] = manifest.get("error")
    return out


def s3_client(settings: Settings, *, endpoint: str | None = None, fast: bool = False):
    """A boto3 S3 client for MinIO or any S3: path-style addressing, SigV4, bounded timeouts.
    ``fast`` is for health checks: one attempt, two-second timeouts."""
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=2 if fast else 5,
        read_timeout=2 if fast else 30,
        retries={"mode": "standard", "max_attempts": 1 if fast else 3},
        # MinIO and other S3 implementations do not all support the newer default checksums.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or settings.s3_endpoint,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        region_name=settings.s3_region,
        config=config,
    )


def _is_missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def _translate(exc: Exception, what: str) -> Exception:
    """Missing objects -> NotFound; unreachable S3 or 5xx -> StorageUnavailable; else unchanged."""
    if isinstance(exc, ClientError):
        if _is_missing(exc):
            return NotFound(what)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "RequestTimeout"):
            return StorageUnavailable(f"S3 answered {code or status} to {what}")
        return exc
    if isinstance(exc, BotoCoreError):
        return StorageUnavailable(f"S3 unreachable during {what}: {exc.__class__.__name__}")
    return exc


class Store:
    def __init__(self, client, bucket: str, presign_client=None):
        self.client = client
        self.bucket = bucket
        self.presign_client = presign_client or client

    def _call(self, what: str, fn, **kwargs):
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, what) from exc

    def put(self, image_id: str, name: str | int, body: bytes | BinaryIO, content_type: str,
            metadata: dict[str, str] | None = None, cache_control: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Key": key(image_id, name), "Body": body, "ContentType": content_type}
        if metadata:
            kwargs["Metadata"] = metadata
        if cache_control:
            kwargs["CacheControl"] = cache_control
        self._call(f"PUT {kwargs['Key']}", self.client.put_object, **kwargs)

    def get(self, image_id: str, name: str | int, if_none_match: str | None = None) -> dict[str, Any]:
        """GetObject; raises NotFound. A matching If-None-Match returns ``{"NotModified": True}``."""
        kwargs: dict[str, Any] = {"Key": key(image_id, name)}
        if if_none_match:
            kwargs["IfNoneMatch"] = if_none_match
        try:
            return self.client.get_object(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 304:
                return {"NotModified": True, "ETag": if_none_match}
            raise _translate(exc, f"GET {kwargs['Key']}") from exc
        except BotoCoreError as exc:
            raise _translate(exc, f"GET {kwargs['Key']}") from exc

    def read(self, image_id: str, name: str | int) -> bytes:
        obj = self.get(image_id, name)
        with obj["Body"] as body:
            return body.read()

    def head(self, image_id: str, name: str | int) -> dict[str, Any]:
        return self._call(f"HEAD {key(image_id, name)}", self.client.head_object, Key=key(image_id, name))

    def read_json(self, image_id: str, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.read(image_id, name))
        except NotFound:
            return None

    def write_json(self, image_id: str, name: str, doc: dict[str, Any]) -> None:
        self.put(image_id, name, json.dumps(doc, sort_keys=True).encode(), "application/json",
                 cache_control="no-cache")

    def delete(self, image_id: str, name: str | int) -> None:
        self._call(f"DELETE {key(image_id, name)}", self.client.delete_object, Key=key(image_id, name))

    def delete_image(self, image_id: str) -> None:
        for k in list(self._keys(f"{PREFIX}{image_id}/")):
            self._call(f"DELETE {k}", self.client.delete_object, Key=k)

    def _keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        kwargs: dict[str, Any] = {"Prefix": prefix, "MaxKeys": 1000}
        if start_after:
            kwargs["StartAfter"] = start_after
        while True:
            page = self._call(f"LIST {prefix}", self.client.list_objects_v2, **kwargs)
            for obj in page.get("Contents", []):
                yield obj["Key"]
            if not page.get("IsTruncated"):
                return
            kwargs.pop("StartAfter", None)
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def state(self, image_id: str) -> ImageState:
        """Raises NotFound when the image has no original."""
        state = states_from_keys(self._keys(f"{PREFIX}{image_id}/")).get(image_id)
        if state is None or not state.has_original:
            raise NotFound(image_id)
        return state

    def list_states(self, limit: int, after: str | None = None) -> tuple[list[ImageState], str | None]:
        """Up to ``limit`` images, newest first, after the id ``after``; and the cursor of the
        next page (None at the end). Images without an original (being deleted) are skipped."""
        start = f"{PREFIX}{after}/{_AFTER_ALL}" if after else None
        states: dict[str, ImageState] = {}
        complete: list[str] = []  # ids whose keys have all been seen and that have an original
        current: str | None = None
        for k in self._keys(PREFIX, start_after=start):
            image_id, sep, name = k[len(PREFIX) :].partition("/")
            if not sep or not is_image_id(image_id):
                continue
            if image_id != current:
                # Keys are listed in order: a new id means the previous image is complete.
                if current is not None and states[current].has_original:
                    complete.append(current)
                    if len(complete) == limit:
                        return [states[i] for i in complete], complete[-1]
                current = image_id
                states[image_id] = ImageState(image_id)
            states[image_id].add(name)
        if current is not None and states[current].has_original:
            complete.append(current)
        return [states[i] for i in complete], None

    def ping(self) -> None:
        self._call("HEAD bucket", self.client.head_bucket)

    def presigned_url(self, image_id: str, name: str | int, expires: int = 300) -> str:
        return self.presign_client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key(image_id, name)}, ExpiresIn=expires)
