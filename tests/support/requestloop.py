"""A client's view of an outage: requests at a fixed rate, each on a new connection, until
stopped; which failed, and for how long. Shared by Molecule tests and the benchmarks."""
import threading
import time

import requests


def get(url, timeout=2.0):
    """(status, body) of one request on a fresh connection; (None, error name) when it fails."""
    try:
        r = requests.get(url, timeout=timeout, headers={"Connection": "close"})
        return r.status_code, r.text
    except requests.RequestException as e:
        return None, type(e).__name__


class RequestLoop(threading.Thread):
    """GETs the URLs in turn every `interval` seconds (one at a time) until stop(). A request
    fails when it gets no 200 within `timeout`: generous by default, since a 2-core machine
    running a cluster is slow at times, and a slow answer is not an outage."""

    def __init__(self, urls, interval=0.05, timeout=5.0):
        super().__init__(daemon=True)
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.interval, self.timeout = interval, timeout
        self.results = []  # (monotonic time, url, status or error)
        self._halt = threading.Event()

    def run(self):
        i = 0
        while not self._halt.is_set():
            start = time.monotonic()
            url = self.urls[i % len(self.urls)]
            status, body = get(url, timeout=self.timeout)
            self.results.append((start, url, status if status is not None else body))
            i += 1
            self._halt.wait(max(0.0, self.interval - (time.monotonic() - start)))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._halt.set()
        self.join()

    def failed(self):
        return [(url, outcome) for dummy, url, outcome in self.results if outcome != 200]

    def window(self):
        """Seconds from the first failed request to the first success after the last failure."""
        failed = [t for t, dummy, outcome in self.results if outcome != 200]
        if not failed:
            return 0.0
        after = [t for t, dummy, outcome in self.results if outcome == 200 and t > failed[-1]]
        return (after[0] if after else self.results[-1][0]) - failed[0]

    def summary(self):
        return f"{len(self.failed())} of {len(self.results)} requests failed"
