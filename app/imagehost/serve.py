"""``python3 -m imagehost.serve``: run the backend under uvicorn on APP_HOST:APP_PORT."""

from __future__ import annotations

import uvicorn

from .api import create_app
from .config import load_settings


def main() -> None:
    settings = load_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # Behind HAProxy: trust its X-Forwarded-* (the container is only reachable through it).
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=20,
        server_header=False,
    )


if __name__ == "__main__":
    main()
