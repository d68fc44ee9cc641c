"""Readiness checks shared by the backend's /readyz and ``python3 -m imagehost.check``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from kombu import Connection

from .config import Settings, redact_url


def check_s3(settings: Settings, client) -> str | None:
    """None when the bucket answers; otherwise why not (endpoint and bucket named, no secrets)."""
    where = f"S3 bucket {settings.s3_bucket!r} at {settings.s3_endpoint or 'the AWS default endpoint'}"
    try:
        client.head_bucket(Bucket=settings.s3_bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code") or exc.response.get(
            "ResponseMetadata", {}).get("HTTPStatusCode")
        hint = {"403": "access denied: check APP_S3_ACCESS_KEY / APP_S3_SECRET_KEY",
                "404": "the bucket does not exist"}.get(str(code), f"error {code}")
        return f"{where}: {hint}"
    except NoCredentialsError:
        return f"{where}: no credentials: set APP_S3_ACCESS_KEY and APP_S3_SECRET_KEY"
    except BotoCoreError as exc:
        return f"{where}: unreachable ({exc.__class__.__name__})"
    return None


def check_broker(settings: Settings, timeout: float = 2.0) -> str | None:
    """None when the broker accepts a connection with our credentials; otherwise why not."""
    hosts = ", ".join(urlsplit(u.strip()).netloc.rpartition("@")[2] for u in settings.broker_url.split(";"))
    conn = Connection(settings.broker_url, connect_timeout=timeout)
    try:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - kombu surfaces socket, auth and protocol errors alike
        text = str(exc)
        if settings.broker_url and redact_url(settings.broker_url) != settings.broker_url:
            # An error text could echo the URL; never let the password out.
            text = text.replace(settings.broker_url, redact_url(settings.broker_url) or "")
        return f"broker at {hosts}: {exc.__class__.__name__}: {text}"[:300]
    finally:
        conn.release()
    return None


def readiness(settings: Settings, s3_client) -> dict[str, str]:
    """Both checks in parallel; ``{"s3": "ok" | reason, "broker": "ok" | reason}``."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        s3 = pool.submit(check_s3, settings, s3_client)
        broker = pool.submit(check_broker, settings)
        return {"s3": s3.result() or "ok", "broker": broker.result() or "ok"}
