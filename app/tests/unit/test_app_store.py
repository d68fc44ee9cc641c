"""The S3 layout as state: ids, status derivation, listing pages (S3 stubbed)."""

from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from imagehost.imaging import CorruptImage, renditions
from imagehost.store import (NotFound, StorageUnavailable, Store, created_at, describe, is_image_id, key,
                             new_image_id, states_from_keys)
from testimages import jpeg

T0 = 1_763_000_000_000  # ms since the epoch, November 2025


def test_ids_sort_newest_first_and_carry_their_time():
    older = new_image_id(now_ms=T0, rand="ffffffff")
    newer = new_image_id(now_ms=T0 + 1, rand="00000000")
    assert is_image_id(older) and is_image_id(newer)
    assert newer < older
    assert created_at(older) == datetime.fromtimestamp(T0 / 1000, tz=timezone.utc)


def test_random_ids_are_unique():
    assert len({new_image_id(now_ms=T0) for _ in range(1000)}) == 1000


@pytest.mark.parametrize("value", ["", "../../etc/passwd", "A" * 20, "0" * 19, "0" * 21, "0" * 19 + "/",
                                   "0" * 19 + "g"])
def test_only_well_formed_ids_make_keys(value):
    assert not is_image_id(value)
    with pytest.raises(ValueError):
        key(value, "original")


def ids(n):
    return [new_image_id(now_ms=T0 + n - i, rand=f"{i:08x}") for i in range(n)]  # newest first


def test_status_from_the_objects_present():
    a, b, c = ids(3)
    keys = [f"images/{a}/128", f"images/{a}/original",
            f"images/{b}/1024", f"images/{b}/128", f"images/{b}/512", f"images/{b}/manifest.json",
            f"images/{b}/original",
            f"images/{c}/error.json", f"images/{c}/original",
            "images/not-an-id/original", "elsewhere/x"]
    states = states_from_keys(keys)
    assert list(states) == [a, b, c]
    assert (states[a].status, states[a].ready) == ("processing", {128})
    assert (states[b].status, states[b].ready) == ("done", {128, 512, 1024})
    assert states[c].status == "failed"


def test_describe_lists_every_expected_size_with_url_once_ready():
    (a,) = ids(1)
    state = states_from_keys([f"images/{a}/original", f"images/{a}/128"])[a]
    doc = describe(state, (128, 512, 1024))
    assert doc["status"] == "processing"
    assert doc["original_url"] == f"/api/images/{a}/original"
    assert doc["sizes"] == [
        {"size": 128, "ready": True, "url": f"/api/images/{a}/128"},
        {"size": 512, "ready": False, "url": None},
        {"size": 1024, "ready": False, "url": None},
    ]


def test_describe_a_done_image_with_its_manifest():
    (a,) = ids(1)
    state = states_from_keys([f"images/{a}/{n}" for n in ("original", "128", "512", "manifest.json")])[a]
    manifest = {"format": "PNG", "width": 640, "height": 480,
                "sizes": {"128": {"width": 128, "height": 96}, "512": {"width": 512, "height": 384}}}
    doc = describe(state, (128, 512), manifest)
    assert doc["status"] == "done"
    assert (doc["format"], doc["width"], doc["height"]) == ("PNG", 640, 480)
    assert doc["sizes"][1] == {"size": 512, "ready": True, "url": f"/api/images/{a}/512", "width": 512, "height": 384}


class FakeS3:
    """list_objects_v2 over a sorted key set, with small pages to exercise continuation."""

    def __init__(self, keys, page_size=4):
        self.keys = sorted(keys)
        self.page_size = page_size
        self.calls = []

    def list_objects_v2(self, Bucket, Prefix, MaxKeys, StartAfter=None, ContinuationToken=None):
        self.calls.append({"StartAfter": StartAfter, "ContinuationToken": ContinuationToken})
        # Like S3: a continuation token takes precedence over StartAfter.
        after = ContinuationToken or StartAfter
        matching = [k for k in self.keys if k.startswith(Prefix) and (after is None or k > after)]
        page = matching[: self.page_size]
        more = len(matching) > self.page_size
        out = {"Contents": [{"Key": k} for k in page], "IsTruncated": more}
        if more:
            out["NextContinuationToken"] = page[-1]
        return out


def test_listing_pages_newest_first_with_a_cursor():
    all_ids = ids(5)
    keys = [f"images/{i}/{n}" for i in all_ids for n in ("original", "128", "manifest.json")]
    # An image being withdrawn (no original) is not listed.
    keys.append(f"images/{new_image_id(now_ms=T0 + 2, rand='abcdef01')}/128")
    store = Store(FakeS3(keys), "images")
    page1, cursor = store.list_states(limit=2)
    assert [s.id for s in page1] == all_ids[:2] and cursor == all_ids[1]
    page2, cursor = store.list_states(limit=2, after=cursor)
    assert [s.id for s in page2] == all_ids[2:4]
    page3, cursor = store.list_states(limit=2, after=cursor)
    assert [s.id for s in page3] == all_ids[4:] and cursor is None
    assert all(s.status == "done" for s in page1 + page2 + page3)


def test_listing_resumes_after_every_object_of_the_cursor_image():
    all_ids = ids(2)
    keys = [f"images/{i}/{n}" for i in all_ids for n in ("1024", "128", "manifest.json", "original")]
    fake = FakeS3(keys, page_size=100)
    page, _ = Store(fake, "images").list_states(limit=5, after=all_ids[0])
    assert [s.id for s in page] == [all_ids[1]]
    assert fake.calls[0]["StartAfter"] == f"images/{all_ids[0]}/~"


def test_state_of_an_unknown_image_is_not_found():
    with pytest.raises(NotFound):
        Store(FakeS3([]), "images").state(ids(1)[0])


class FailingS3:
    def __init__(self, exc):
        self.exc = exc

    def get_object(self, **kwargs):
        raise self.exc

    put_object = get_object


def client_error(status, code):
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


@pytest.mark.parametrize("exc, expected", [
    (client_error(404, "NoSuchKey"), NotFound),
    (client_error(503, "SlowDown"), StorageUnavailable),
    (client_error(500, "InternalError"), StorageUnavailable),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), StorageUnavailable),
    (client_error(403, "AccessDenied"), ClientError),
])
def test_s3_errors_are_translated(exc, expected):
    store = Store(FailingS3(exc), "images")
    (a,) = ids(1)
    with pytest.raises(expected):
        store.read(a, "original")


def test_a_truncated_original_fails_in_the_worker_as_corrupt():
    data = jpeg(800, 600)
    info, items = renditions(data[: len(data) // 2], (128,), max_pixels=10**8)
    assert info.format == "JPEG"
    with pytest.raises(CorruptImage):
        list(items)
