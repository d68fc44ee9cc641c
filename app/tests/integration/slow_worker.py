"""A worker whose first attempt at each image blocks until it is killed (test helper).

It announces the attempt by writing ``$TEST_MARKER_DIR/<id>`` (holding the pid of the pool
process running it); any later attempt at the same image runs normally and writes
``<id>.again``. Usage: python slow_worker.py [celery worker options]."""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import imagehost.worker as worker  # noqa: E402

MARKERS = Path(os.environ["TEST_MARKER_DIR"])
_real = worker.process_image


def slow_process_image(store, image_id, sizes, cfg):
    marker = MARKERS / image_id
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(3600)
    else:
        (MARKERS / f"{image_id}.again").write_text(str(os.getpid()))
    return _real(store, image_id, sizes, cfg)


worker.process_image = slow_process_image

if __name__ == "__main__":
    worker.main()
