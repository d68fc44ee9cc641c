"""Settings from environment variables and from an optional KEY=VALUE file.

The deployment renders secrets into a file (a Nomad ``template`` block writes e.g.
``/secrets/app.env``) and points ``APP_CONFIG_FILE`` at it; values in that file override the
environment. Every setting is ``APP_<NAME>``; see ``app/README.md`` for the list.

Secrets (the S3 secret key, the broker password) never appear in ``repr()``, in
:meth:`Settings.summary` or in error messages.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

PREFIX = "APP_"
CONFIG_FILE_VAR = "APP_CONFIG_FILE"
DEFAULT_SIZES = (128, 512, 1024)
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# A 50-megapixel RGBA image is 200 MB decoded; beyond this an upload is refused.
DEFAULT_MAX_PIXELS = 50_000_000
MAX_SIZE_PX = 10_000

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BYTES_RE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?\Z", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting, never its value."""


@dataclass(frozen=True)
class Settings:
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = field(default=None, repr=False)
    s3_bucket: str = "images"
    s3_region: str = "us-east-1"
    # Endpoint the browser can reach, used only to sign redirect URLs (serve_mode=redirect).
    s3_public_endpoint: str | None = None
    broker_url: str = field(default="amqp://guest:guest@127.0.0.1:5672//", repr=False)
    queue: str = "resize"
    sizes: tuple[int, ...] = DEFAULT_SIZES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    serve_mode: str = "stream"
    jpeg_quality: int = 85
    webp_quality: int = 80
    log_level: str = "INFO"
    host: str = "0.0.0.0"  # noqa: S104 - a container listens on all its interfaces
    port: int = 8000
    worker_concurrency: int | None = None
    version: str = "dev"

    def summary(self) -> dict[str, object]:
        """Every setting, safe to log: secrets are masked, credentials cut out of URLs."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "s3_secret_key":
                value = "***" if value else None
            elif f.name == "broker_url":
                value = redact_url(value)
            out[f.name] = value
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.summary().items())
        return f"Settings({inner})"


def parse_env_file(text: str, source: str = "<config>") -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines: blank lines and ``#`` comments skipped, an optional ``export``
    prefix, one pair of matching quotes around the value stripped (no other escaping)."""
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.match(key):
            # The line may hold a secret: say where, not what.
            raise ConfigError(f"{source}:{lineno}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def merged_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment with ``APP_CONFIG_FILE``'s pairs laid over it, then ``APP_X_FILE``
    indirections (Docker-secrets style: the value is the content of that file) resolved."""
    merged = dict(environ)
    path = merged.get(CONFIG_FILE_VAR)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{CONFIG_FILE_VAR}={path}: cannot read it ({exc.strerror})") from exc
        merged.update(parse_env_file(text, source=path))
    for key in [k for k in merged if k.startswith(PREFIX) and k.endswith("_FILE") and k != CONFIG_FILE_VAR]:
        target = key[: -len("_FILE")]
        if target in merged or not merged[key]:
            continue
        try:
            merged[target] = Path(merged[key]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}={merged[key]}: cannot read it ({exc.strerror})") from exc
    return merged


def parse_sizes(value: str) -> tuple[int, ...]:
    """``"512, 128,1024"`` -> ``(128, 512, 1024)``: sorted, duplicates dropped."""
    sizes = set()
    for part in value.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise ConfigError(f"APP_SIZES: {part!r} is not a whole number of pixels")
        size = int(part)
        if not 1 <= size <= MAX_SIZE_PX:
            raise ConfigError(f"APP_SIZES: {size} is outside 1..{MAX_SIZE_PX}")
        sizes.add(size)
    if not sizes:
        raise ConfigError("APP_SIZES: at least one size is required")
    return tuple(sorted(sizes))


def parse_bytes(value: str, name: str = "APP_MAX_UPLOAD_BYTES") -> int:
    """``"20971520"``, ``"20M"``, ``"20MB"``, ``"20MiB"`` -> bytes (K/M/G are powers of 1024)."""
    match = _BYTES_RE.match(value.strip())
    if not match:
        raise ConfigError(f"{name}: {value!r} is not a size such as 20971520 or 20M")
    unit = (match.group(2) or "").lower()[:1]
    result = int(match.group(1)) * _UNITS[unit]
    if result <= 0:
        raise ConfigError(f"{name}: must be positive")
    return result


def _int(value: str, name: str, low: int, high: int) -> int:
    try:
        result = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not an integer") from None
    if not low <= result <= high:
        raise ConfigError(f"{name}: {result} is outside {low}..{high}")
    return result


def with_credentials(url: str, user: str | None, password: str | None) -> str:
    """Put (URL-quoted) credentials into every URL of a ``;``-separated broker list, so the
    URL itself can live in a plain job spec and only the password in the secrets file."""
    if user is None and password is None:
        return url
    out = []
    for one in url.split(";"):
        parts = urlsplit(one.strip())
        host = parts.netloc.rpartition("@")[2]
        old_user, _, old_password = parts.netloc.rpartition("@")[0].partition(":")
        new_user = quote(user, safe="") if user is not None else old_user
        new_password = quote(password, safe="") if password is not None else old_password
        auth = new_user + (f":{new_password}" if new_password else "")
        out.append(urlunsplit(parts._replace(netloc=f"{auth}@{host}" if auth else host)))
    return ";".join(out)


def redact_url(url: str | None) -> str | None:
    """``amqp://user:secret@host:5672/vh`` -> ``amqp://user:***@host:5672/vh`` (each URL of a list)."""
    if not url:
        return url
    out = []
    for one in url.split(";"):
        parts = urlsplit(one.strip())
        auth, at, host = parts.netloc.rpartition("@")
        if at and ":" in auth:
            auth = auth.split(":", 1)[0] + ":***"
        out.append(urlunsplit(parts._replace(netloc=f"{auth}{at}{host}")))
    return ";".join(out)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = merged_environment(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = env.get(PREFIX + name)
        return value if value not in (None, "") else None

    kwargs: dict[str, object] = {}
    for name in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET", "S3_REGION",
                 "S3_PUBLIC_ENDPOINT", "QUEUE", "HOST", "VERSION"):
        value = get(name)
        if value is not None:
            kwargs[name.lower()] = value
    broker = get("BROKER_URL") or Settings.broker_url
    kwargs["broker_url"] = with_credentials(broker, get("BROKER_USER"), get("BROKER_PASSWORD"))
    if (value := get("SIZES")) is not None:
        kwargs["sizes"] = parse_sizes(value)
    if (value := get("MAX_UPLOAD_BYTES")) is not None:
        kwargs["max_upload_bytes"] = parse_bytes(value)
    if (value := get("MAX_PIXELS")) is not None:
        kwargs["max_pixels"] = _int(value, "APP_MAX_PIXELS", 1, 1_000_000_000)
    if (value := get("JPEG_QUALITY")) is not None:
        kwargs["jpeg_quality"] = _int(value, "APP_JPEG_QUALITY", 1, 95)
    if (value := get("WEBP_QUALITY")) is not None:
        kwargs["webp_quality"] = _int(value, "APP_WEBP_QUALITY", 1, 100)
    if (value := get("PORT")) is not None:
        kwargs["port"] = _int(value, "APP_PORT", 1, 65535)
    if (value := get("WORKER_CONCURRENCY")) is not None:
        kwargs["worker_concurrency"] = _int(value, "APP_WORKER_CONCURRENCY", 1, 256)
    if (value := get("SERVE_MODE")) is not None:
        if value not in ("stream", "redirect"):
            raise ConfigError("APP_SERVE_MODE: expected 'stream' or 'redirect'")
        kwargs["serve_mode"] = value
    if (value := get("LOG_LEVEL")) is not None:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError("APP_LOG_LEVEL: expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
        kwargs["log_level"] = value.upper()
    return Settings(**kwargs)  # type: ignore[arg-type]
