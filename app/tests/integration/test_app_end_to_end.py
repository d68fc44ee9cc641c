"""Uploads through the real backend, resized by real Celery workers, stored in a real MinIO,
queued in a real RabbitMQ (all on loopback; see conftest.py)."""

from __future__ import annotations

import io
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from PIL import Image

from imagehost_stack import (BUCKET, HERE, S3_SECRET_KEY, SIZES, expected_dims, free_port, status, unique_queue,
                             upload, wait_done, wait_for)
from imagehost.celeryapp import enqueue_resize, make_celery
from imagehost.config import load_settings
from testimages import dimensions, encode, jpeg, png, quadrants, webp

pytestmark = pytest.mark.integration


def object_keys(s3, prefix: str = "images/") -> dict[str, str]:
    """key -> ETag of every object under the prefix."""
    keys = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            keys[obj["Key"]] = obj["ETag"]
    return keys


def noise_jpeg(min_bytes: int) -> bytes:
    """A valid JPEG of at least ``min_bytes`` (random pixels do not compress)."""
    side = 64
    while True:
        rng = random.Random(side)
        im = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        data = encode(im, "JPEG", quality=95)
        if len(data) >= min_bytes:
            return data
        side = int(side * 1.25) + 1


# --- the happy path ------------------------------------------------------------------------------

@pytest.mark.parametrize("make, fmt, content_type", [
    (lambda: jpeg(1600, 1200), "JPEG", "image/jpeg"),
    (lambda: png(1200, 1600), "PNG", "image/png"),
    (lambda: webp(2000, 900), "WEBP", "image/webp"),
], ids=["jpeg", "png", "webp"])
def test_upload_is_resized_into_every_size(app_stack, s3, make, fmt, content_type):
    backend, _ = app_stack
    data = make()
    _, width, height = dimensions(data)
    response = upload(backend.url, data, f"upload.{fmt.lower()}", content_type)
    assert response.status_code == 201, response.text
    body = response.json()
    image_id = body["id"]
    assert response.headers["Location"] == f"/api/images/{image_id}"
    assert (body["format"], body["width"], body["height"]) == (fmt, width, height)

    doc = wait_done(backend.url, image_id)
    assert [s["size"] for s in doc["sizes"]] == list(SIZES)
    for entry in doc["sizes"]:
        want = expected_dims(width, height, entry["size"])
        assert entry["ready"] and (entry["width"], entry["height"]) == want
        served = requests.get(f"{backend.url}{entry['url']}", timeout=10)
        assert served.status_code == 200
        assert served.headers["content-type"] == content_type
        assert dimensions(served.content) == (fmt, *want)
        head = s3.head_object(Bucket=BUCKET, Key=f"images/{image_id}/{entry['size']}")
        assert head["ContentType"] == content_type
    original = requests.get(f"{backend.url}/api/images/{image_id}/original", timeout=10)
    assert original.content == data


def test_exif_orientation_is_applied_end_to_end(app_stack):
    backend, _ = app_stack
    # Stored landscape 1600x1000, EXIF says "rotate 90 degrees clockwise": a portrait photo.
    response = upload(backend.url, jpeg(1600, 1000, orientation=6))
    assert response.status_code == 201, response.text
    assert (response.json()["width"], response.json()["height"]) == (1000, 1600)
    doc = wait_done(backend.url, response.json()["id"])
    for entry in doc["sizes"]:
        served = requests.get(f"{backend.url}{entry['url']}", timeout=10).content
        assert dimensions(served) == ("JPEG", *expected_dims(1000, 1600, entry["size"]))
        with Image.open(io.BytesIO(served)) as im:
            assert im.getexif().get(0x0112) is None


def test_raw_body_upload_like_curl_data_binary(app_stack):
    backend, _ = app_stack
    response = requests.post(f"{backend.url}/api/images", data=png(300, 200),
                             headers={"Content-Type": "application/octet-stream"}, timeout=30)
    assert response.status_code == 201, response.text
    doc = wait_done(backend.url, response.json()["id"])
    # Never upscaled: 512 and 1024 are the original's 300x200.
    assert [(s["width"], s["height"]) for s in doc["sizes"]] == [(128, 85), (300, 200), (300, 200)]


def test_listing_is_newest_first_and_paginates(app_stack):
    backend, _ = app_stack
    ids = []
    for _ in range(3):
        response = upload(backend.url, jpeg(400, 300))
        assert response.status_code == 201
        ids.append(response.json()["id"])
        time.sleep(0.005)  # distinct milliseconds, so the order is defined
    for image_id in ids:
        wait_done(backend.url, image_id)
    listing = requests.get(f"{backend.url}/api/images", params={"limit": 2}, timeout=10).json()
    assert [i["id"] for i in listing["images"]] == ids[::-1][:2]
    assert all(i["status"] == "done" and all(s["ready"] for s in i["sizes"]) for i in listing["images"])
    following = requests.get(f"{backend.url}/api/images", params={"limit": 2, "after": listing["next"]},
                             timeout=10).json()
    assert following["images"][0]["id"] == ids[0]


def test_objects_are_served_with_validators(app_stack):
    backend, _ = app_stack
    image_id = upload(backend.url, jpeg(800, 600)).json()["id"]
    wait_done(backend.url, image_id)
    url = f"{backend.url}/api/images/{image_id}/128"
    first = requests.get(url, timeout=10)
    assert first.status_code == 200 and "immutable" in first.headers["cache-control"]
    again = requests.get(url, headers={"If-None-Match": first.headers["etag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("path", [
    "/api/images/ffffffffffff00000000",  # well-formed id, no such image
    "/api/images/ffffffffffff00000000/128",
    "/api/images/not-an-id",
    "/api/images/..%2F..%2Fetc/128",
    "/api/images/{id}/999",  # an existing image, a size nobody made
    "/api/images/{id}/manifest.json",  # internal objects are not served
])
def test_unknown_images_and_sizes_are_404(app_stack, path):
    backend, _ = app_stack
    if "{id}" in path:
        image_id = upload(backend.url, jpeg(200, 100)).json()["id"]
        wait_done(backend.url, image_id)
        path = path.format(id=image_id)
    assert requests.get(f"{backend.url}{path}", timeout=10).status_code == 404


def test_redirect_mode_hands_out_presigned_urls(stack, app_stack, request, minio):
    backend, _ = app_stack
    image_id = upload(backend.url, jpeg(640, 480)).json()["id"]
    wait_done(backend.url, image_id)
    redirecting = stack.backend(unique_queue(request), APP_SERVE_MODE="redirect", APP_S3_PUBLIC_ENDPOINT=minio.endpoint)
    response = requests.get(f"{redirecting.url}/api/images/{image_id}/512", allow_redirects=False, timeout=10)
    assert response.status_code == 307
    assert response.headers["location"].startswith(minio.endpoint) and "X-Amz-Signature" in response.headers["location"]
    assert dimensions(requests.get(response.headers["location"], timeout=10).content) == ("JPEG", 512, 384)


# --- what is refused, and leaves nothing behind -------------------------------------------------

@pytest.mark.parametrize("data, filename, content_type, status", [
    (b"this is plain text, not a picture\n" * 100, "notes.jpg", "image/jpeg", 415),
    (b"%PDF-1.7\n" + bytes(range(256)) * 40, "doc.png", "image/png", 415),
    (encode(quadrants(300, 200), "GIF"), "anim.gif", "image/gif", 415),
    (jpeg(800, 600)[:5000], "cut.jpg", "image/jpeg", 422),
    (b"", "empty.jpg", "image/jpeg", 400),
], ids=["text", "pdf", "gif", "truncated-jpeg", "empty"])
def test_non_images_are_refused_and_nothing_is_stored(app_stack, s3, data, filename, content_type, status):
    backend, _ = app_stack
    before = object_keys(s3)
    response = upload(backend.url, data, filename, content_type)
    assert response.status_code == status, response.text
    assert "detail" in response.json()
    time.sleep(0.5)  # anything wrongly stored or enqueued would show up by now
    assert object_keys(s3) == before


@pytest.fixture(scope="module")
def small_limit_backend(stack):
    return stack.backend("resize-small-limit", APP_MAX_UPLOAD_BYTES="256k")


def test_oversize_upload_is_refused_and_nothing_is_stored(small_limit_backend, s3):
    big = noise_jpeg(300 * 1024)
    before = object_keys(s3)
    response = upload(small_limit_backend.url, big)
    assert response.status_code == 413, response.text
    assert "262144" in response.json()["detail"]
    assert object_keys(s3) == before


def test_oversize_chunked_upload_is_refused_and_nothing_is_stored(small_limit_backend, s3):
    """No Content-Length to trust: the body is counted as it arrives."""
    big = noise_jpeg(300 * 1024)
    before = object_keys(s3)

    def chunks():
        for i in range(0, len(big), 16 * 1024):
            yield big[i : i + 16 * 1024]

    try:
        response = requests.post(f"{small_limit_backend.url}/api/images", data=chunks(), timeout=30,
                                 headers={"Content-Type": "image/jpeg"})
        assert response.status_code == 413, response.text
    except requests.ConnectionError:
        pass  # the server may close the connection while we still send: refused all the same
    assert object_keys(s3) == before


def raw_http(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_declared_oversize_is_refused_before_the_body_is_sent(small_limit_backend):
    """A 100 MB Content-Length is answered at once: the server does not wait for the body."""
    with raw_http(small_limit_backend.url) as sock:
        sock.sendall(b"POST /api/images HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\n"
                     b"Content-Length: 104857600\r\n\r\n" + b"\xff\xd8" + b"\0" * 1000)
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")


def test_chunked_upload_is_cut_off_at_the_limit(small_limit_backend):
    """Without a Content-Length the body is counted as it arrives: the answer comes (or the
    connection is closed) long before a 64 MB body has been sent."""
    sent = 0
    answer = b""
    with raw_http(small_limit_backend.url) as sock:
        sock.sendall(b"POST /api/images HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"\0" * 64 * 1024)
        try:
            while sent < 64 * 1024 * 1024:
                if select.select([sock], [], [], 0)[0]:
                    answer = sock.recv(4096)
                    break
                sock.sendall(chunk)
                sent += 64 * 1024
        except (BrokenPipeError, ConnectionResetError):
            pass
        if not answer:
            sock.settimeout(5)
            try:
                answer = sock.recv(4096)
            except (ConnectionResetError, TimeoutError):
                answer = b""
    assert sent < 16 * 1024 * 1024, f"the server read {sent} bytes of a body over a 256 KiB limit"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413 "), answer[:100]


def test_upload_just_under_the_limit_is_accepted(small_limit_backend):
    data = noise_jpeg(100 * 1024)
    assert len(data) < 256 * 1024
    response = upload(small_limit_backend.url, data)
    assert response.status_code == 201, response.text


def test_too_many_pixels_is_refused(stack, request, s3):
    backend = stack.backend(unique_queue(request), APP_MAX_PIXELS="1000000")
    before = object_keys(s3)
    response = upload(backend.url, png(1001, 1000), "big.png", "image/png")
    assert response.status_code == 422, response.text
    assert object_keys(s3) == before


# --- delivery guarantees ----------------------------------------------------------------------

def test_task_is_redelivered_after_the_worker_is_killed_mid_task(stack, request, tmp_path):
    queue = unique_queue(request)
    backend = stack.backend(queue)
    slow = stack.worker(queue, script=HERE / "slow_worker.py", env_extra={"TEST_MARKER_DIR": str(tmp_path)})
    data = jpeg(1600, 1200)
    image_id = upload(backend.url, data).json()["id"]
    wait_for(lambda: (tmp_path / image_id).exists(), 30, "the worker to start the task")

    slow.kill()  # SIGKILL parent and pool: no acknowledgement was ever sent
    assert status(backend.url, image_id)["status"] == "processing"

    stack.worker(queue)
    doc = wait_done(backend.url, image_id)
    assert [(s["width"], s["height"]) for s in doc["sizes"]] == [expected_dims(1600, 1200, n) for n in SIZES]


def test_task_is_requeued_when_its_pool_process_dies(stack, request, tmp_path):
    """task_reject_on_worker_lost: the worker survives, its pool process does not."""
    queue = unique_queue(request)
    backend = stack.backend(queue)
    worker = stack.worker(queue, script=HERE / "slow_worker.py", env_extra={"TEST_MARKER_DIR": str(tmp_path)})
    image_id = upload(backend.url, jpeg(1200, 800)).json()["id"]
    marker = wait_for(lambda: (tmp_path / image_id).exists() and (tmp_path / image_id), 30, "the task to start")
    pool_pid = int(wait_for(lambda: marker.read_text(), 5, "the pool pid"))
    assert pool_pid != worker.proc.pid
    os.kill(pool_pid, signal.SIGKILL)

    doc = wait_done(backend.url, image_id)
    assert doc["status"] == "done"
    assert (tmp_path / f"{image_id}.again").exists(), "the same worker should have run it again"
    assert worker.proc.poll() is None


def test_running_a_task_twice_is_harmless(app_stack, stack, s3):
    backend, worker = app_stack
    image_id = upload(backend.url, png(900, 600), "twice.png", "image/png").json()["id"]
    wait_done(backend.url, image_id)
    before = object_keys(s3, f"images/{image_id}/")
    settings = load_settings(stack.config("resize-main"))
    celery = make_celery(settings)

    # 1. Redelivered after completion: recognised as done, nothing rewritten.
    enqueue_resize(celery, settings, image_id)
    wait_for(lambda: worker.log().count(f"image {image_id} already has sizes") == 1, 30, "the duplicate task")
    assert object_keys(s3, f"images/{image_id}/") == before

    # 2. Redelivered mid-way (no manifest yet): every size is made again, identical, and the
    #    manifest comes back; no object is added or lost.
    s3.delete_object(Bucket=BUCKET, Key=f"images/{image_id}/manifest.json")
    assert status(backend.url, image_id)["status"] == "processing"
    enqueue_resize(celery, settings, image_id)
    enqueue_resize(celery, settings, image_id)  # and a third copy, possibly in parallel
    wait_done(backend.url, image_id)
    # Four runs in all (the first, the duplicate above, these two), each logs how it ended.
    wait_for(lambda: worker.log().count(f"image {image_id}: 3 sizes") + worker.log().count(
        f"image {image_id} already has sizes") == 4, 30, "both copies to finish")
    after = object_keys(s3, f"images/{image_id}/")
    assert set(after) == set(before)
    for size in SIZES:
        key = f"images/{image_id}/{size}"
        assert after[key] == before[key], f"{key} changed content"


def test_an_original_the_worker_cannot_decode_is_marked_failed(app_stack, stack, s3):
    backend, _ = app_stack
    image_id = upload(backend.url, jpeg(300, 200)).json()["id"]
    wait_done(backend.url, image_id)
    # Replace the original behind the API's back, as a damaged disk or a buggy tool might.
    for key in object_keys(s3, f"images/{image_id}/"):
        if not key.endswith("/original"):
            s3.delete_object(Bucket=BUCKET, Key=key)
    damaged = jpeg(300, 200)
    s3.put_object(Bucket=BUCKET, Key=f"images/{image_id}/original", Body=damaged[: len(damaged) // 2])
    settings = load_settings(stack.config("resize-main"))
    enqueue_resize(make_celery(settings), settings, image_id)
    doc = wait_for(lambda: (d := status(backend.url, image_id))["status"] == "failed" and d, 30, "the failure")
    assert "cannot be decoded" in doc["error"]
    listed = requests.get(f"{backend.url}/api/images", params={"limit": 50}, timeout=10).json()["images"]
    assert next(i for i in listed if i["id"] == image_id)["status"] == "failed"


# --- readiness and dependencies down ------------------------------------------------------------

def test_ready_when_s3_and_broker_answer(app_stack):
    backend, _ = app_stack
    response = requests.get(f"{backend.url}/readyz", timeout=10)
    assert response.status_code == 200
    assert response.json()["checks"] == {"s3": "ok", "broker": "ok"}
    assert requests.get(f"{backend.url}/healthz", timeout=10).json() == {"status": "ok", "version": "test"}


def closed_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


@pytest.mark.parametrize("overrides, failing, hint", [
    (lambda: {"APP_S3_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}, "s3", "unreachable"),
    (lambda: {"APP_S3_SECRET_KEY": "wrong-secret-value"}, "s3", "access denied"),
    (lambda: {"APP_BROKER_URL": f"amqp://127.0.0.1:{closed_port()}//"}, "broker", "Connection refused"),
    (lambda: {"APP_BROKER_PASSWORD": "wrong-broker-password"}, "broker", "ACCESS_REFUSED"),
], ids=["s3-down", "s3-bad-secret", "broker-down", "broker-bad-password"])
def test_not_ready_when_a_dependency_fails(stack, request, overrides, failing, hint):
    backend = stack.backend(unique_queue(request), **overrides())
    started = time.monotonic()
    response = requests.get(f"{backend.url}/readyz", timeout=30)
    assert time.monotonic() - started < 10, "a readiness probe must answer quickly"
    assert response.status_code == 503
    checks = response.json()["checks"]
    other = "broker" if failing == "s3" else "s3"
    assert checks[other] == "ok"
    assert hint.lower() in checks[failing].lower(), checks
    assert "wrong-secret-value" not in response.text and "wrong-broker-password" not in response.text
    # Liveness is not readiness: the process itself is fine.
    assert requests.get(f"{backend.url}/healthz", timeout=10).status_code == 200


def test_upload_is_withdrawn_when_the_broker_is_down(stack, request, s3):
    backend = stack.backend(unique_queue(request), APP_BROKER_URL=f"amqp://127.0.0.1:{closed_port()}//")
    before = object_keys(s3)
    response = upload(backend.url, jpeg(400, 300))
    assert response.status_code == 503, response.text
    assert object_keys(s3) == before


def test_upload_is_refused_when_s3_is_down(stack, request):
    backend = stack.backend(unique_queue(request), APP_S3_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    response = upload(backend.url, jpeg(400, 300))
    assert response.status_code == 503, response.text


def test_check_command_for_the_worker(stack, request):
    env = stack.config(unique_queue(request))
    ok = subprocess.run([sys.executable, "-m", "imagehost.check"], env=env, capture_output=True, text=True,
                        timeout=30)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    env = stack.config(unique_queue(request), APP_S3_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    bad = subprocess.run([sys.executable, "-m", "imagehost.check"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 1 and "s3: " in bad.stdout and "broker: ok" in bad.stdout


# Runs last in this module (pytest keeps file order): every service above has logged by now.
def test_secrets_never_reach_the_logs(stack, app_stack):
    assert stack.services, "no service ran"
    for service in stack.services:
        text = service.log()
        assert S3_SECRET_KEY not in text, f"S3 secret key in {service.log_path}"
        assert "guest:guest" not in text, f"broker credentials in {service.log_path}"
        assert "wrong-broker-password" not in text and "wrong-secret-value" not in text
