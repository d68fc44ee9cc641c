"""Make ``imagehost`` (and the test helpers) importable whatever directory pytest is started from."""

import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
APP_DIR = TESTS_DIR.parent
for path in (APP_DIR, TESTS_DIR):  # imagehost, and the shared testimages helper
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: needs the real MinIO and RabbitMQ started by the fixtures")
