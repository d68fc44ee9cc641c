#!/usr/bin/env python3
"""Uploads through the floating IP of the lab (`make lab`), with 1 and then 2 worker
allocations, in one run:

  uploads/s          how fast the backend accepts uploads (stored in S3, task queued)
  ready p50 / p95    from the start of an upload until the API lists every size of it

Each round uploads the same --count synthetic photo-like JPEGs (default 20, 3000x2000) with
--parallel concurrent clients, then polls every image until it is done. The worker job is
scaled through Nomad's API between rounds and set back to its count at the end.

  scripts/bench_uploads.py [--count 20] [--parallel 4] [--workers 1,2]

Nomad is reached as the lab's controller reaches it (scripts/lablib.py: HTTPS with its client
certificate and the deploy token, namespace app); NOMAD_ADDR, NOMAD_TOKEN, ... override.
"""
import argparse
import concurrent.futures
import io
import json
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lablib  # noqa: E402

JOB, GROUP = "imagehost-worker", "worker"


def log(msg):
    print(f"[bench_uploads {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def photos(count, width=3000, height=2000):
    out = []
    for i in range(count):
        gx = Image.linear_gradient("L").resize((width, height))
        noise = Image.effect_noise((width, height), 20 + i)
        im = Image.merge("RGB", (gx, gx.transpose(Image.Transpose.ROTATE_90).resize((width, height)),
                                 Image.blend(noise, gx, 0.5)))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=88)
        out.append(buf.getvalue())
    return out


def upload(base, data):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base}api/images", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.load(r)["id"]


def status(base, image_id):
    with urllib.request.urlopen(f"{base}api/images/{image_id}", timeout=10) as r:
        return json.load(r)["status"]


def percentile(values, p):
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def scale(nomad, count):
    nomad.request("POST", f"/v1/job/{JOB}/scale",
                  body={"Count": count, "Target": {"Group": GROUP}, "Message": "bench_uploads"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        allocs = nomad.get(f"/v1/job/{JOB}/allocations")
        running = [a for a in allocs if a["ClientStatus"] == "running" and a["DesiredStatus"] == "run"]
        if len(running) == count:
            time.sleep(5)  # let the new workers connect to the broker
            return
        time.sleep(1)
    raise SystemExit(f"bench_uploads: {JOB} did not reach {count} running allocations in 300 s")


def round_(base, images, parallel):
    started, ids = {}, []
    t0 = time.monotonic()

    def one(data):
        start = time.monotonic()
        image_id = upload(base, data)
        started[image_id] = start
        return image_id

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        ids = list(pool.map(one, images))
    upload_wall = time.monotonic() - t0
    ready, pending = {}, set(ids)
    deadline = time.monotonic() + 600
    while pending and time.monotonic() < deadline:
        for image_id in list(pending):
            if status(base, image_id) == "done":
                ready[image_id] = time.monotonic() - started[image_id]
                pending.discard(image_id)
        time.sleep(0.1)
    if pending:
        raise SystemExit(f"bench_uploads: {len(pending)} uploads not done within 600 s")
    latencies = list(ready.values())
    return len(images) / upload_wall, percentile(latencies, 50), percentile(latencies, 95), max(latencies)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    _, _, group_vars = lablib.inventory()
    base = f"http://{group_vars['keepalived_vip']}/"
    nomad = lablib.nomad()
    job = nomad.get(f"/v1/job/{JOB}")
    original = next(g["Count"] for g in job["TaskGroups"] if g["Name"] == GROUP)
    log(f"making {args.count} synthetic 6-megapixel JPEGs")
    images = photos(args.count)
    rows = []
    try:
        for workers in [int(w) for w in args.workers.split(",")]:
            log(f"scaling {JOB} to {workers}")
            scale(nomad, workers)
            log(f"{workers} worker(s): uploading {args.count} images, {args.parallel} at a time, then waiting for every size")
            rows.append((workers,) + round_(base, images, args.parallel))
    finally:
        log(f"scaling {JOB} back to {original}")
        scale(nomad, original)

    print()
    print(f"Uploads through {base} ({args.count} JPEGs of 3000x2000, {args.parallel} parallel clients, "
          f"sizes ready = all renditions listed)")
    print(f"{'workers':>8}{'uploads/s':>11}{'ready p50':>11}{'ready p95':>11}{'slowest':>10}")
    for workers, rate, p50, p95, slowest in rows:
        print(f"{workers:>8}{rate:>11.2f}{p50:>10.2f}s{p95:>10.2f}s{slowest:>9.2f}s")
    if len(rows) == 2:
        print(f"p95 with {rows[1][0]} workers / with {rows[0][0]}: {rows[1][3] / rows[0][3]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
