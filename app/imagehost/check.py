"""``python3 -m imagehost.check``: exit 0 when S3 and the broker are reachable, 1 otherwise.

For the worker, which serves no HTTP: usable as a Nomad ``script`` check."""

from __future__ import annotations

import sys

from .config import ConfigError, load_settings
from .health import readiness
from .store import s3_client


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    result = readiness(settings, s3_client(settings, fast=True))
    for name, state in result.items():
        print(f"{name}: {state}")
    return 0 if all(v == "ok" for v in result.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
