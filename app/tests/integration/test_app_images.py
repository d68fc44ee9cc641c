"""The built images (scripts/app-images.sh), run as an orchestrator runs them: secrets in a
mounted APP_CONFIG_FILE, the port in APP_PORT, against the session's MinIO and RabbitMQ (host
network, so loopback is shared). Skipped, saying why, when Docker or the images are missing;
app/tests/run.sh builds them first."""

from __future__ import annotations

import subprocess
import uuid

import pytest
import requests

from imagehost_stack import APP_DIR, S3_SECRET_KEY, SIZES, expected_dims, free_port, upload, wait_done, wait_for
from testimages import dimensions, jpeg

pytestmark = pytest.mark.integration

VERSION = (APP_DIR / "VERSION").read_text().strip()
IMAGES = {name: f"cloudvirt/app-{name}:{VERSION}" for name in ("backend", "worker", "frontend")}
LABEL = "cloudvirt.test=imagehost"


def docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="module")
def containers(stack, request, tmp_path_factory):
    try:
        docker("info", timeout=20)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("no Docker engine answers")
    missing = [image for image in IMAGES.values() if docker("image", "inspect", image, check=False).returncode]
    if missing:
        pytest.skip(f"images not built: {', '.join(missing)} (run scripts/app-images.sh)")

    queue = f"resize-images-{uuid.uuid4().hex[:6]}"
    env = stack.config(queue)
    secrets_file = tmp_path_factory.mktemp("images") / "app.env"
    secrets_file.write_text(open(env["APP_CONFIG_FILE"]).read())
    secrets_file.chmod(0o644)  # read by the images' unprivileged users
    public = {k: v for k, v in env.items() if k.startswith("APP_") and k not in ("APP_CONFIG_FILE", "APP_VERSION")}
    ports = {"backend": free_port(), "frontend": free_port()}
    names = []

    def run(name: str, extra: dict[str, str]) -> str:
        cname = f"imagehost-test-{name}-{uuid.uuid4().hex[:6]}"
        args = ["run", "-d", "--name", cname, "--label", LABEL, "--network", "host",
                "-v", f"{secrets_file}:/secrets/app.env:ro", "-e", "APP_CONFIG_FILE=/secrets/app.env"]
        for k, v in {**public, **extra}.items():
            args += ["-e", f"{k}={v}"]
        docker(*args, IMAGES[name])
        names.append(cname)
        return cname

    try:
        backend = run("backend", {"APP_HOST": "127.0.0.1", "APP_PORT": str(ports["backend"])})
        worker = run("worker", {"APP_WORKER_CONCURRENCY": "1"})
        frontend = run("frontend", {"APP_PORT": str(ports["frontend"])})
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for name in ("backend", "frontend"):
            wait_for(lambda n=name: requests.get(f"{urls[n]}/healthz", timeout=1).ok, 60, f"the {name} container")
        wait_for(lambda: " ready." in docker("logs", worker).stderr, 60, "the worker container")
        yield {"names": {"backend": backend, "worker": worker, "frontend": frontend}, "urls": urls}
    finally:
        for cname in names:
            if request.session.testsfailed:
                print(f"--- docker logs {cname}\n{docker('logs', cname, check=False).stderr[-3000:]}")
            docker("rm", "-f", cname, check=False)


def test_images_run_unprivileged(containers):
    names = containers["names"]
    assert docker("exec", names["backend"], "id", "-u").stdout.strip() == "10001"
    assert docker("exec", names["worker"], "id", "-u").stdout.strip() == "10001"
    assert docker("exec", names["frontend"], "id", "-u").stdout.strip() == "33"


def test_backend_image_reports_its_version_and_is_ready(containers):
    url = containers["urls"]["backend"]
    assert requests.get(f"{url}/healthz", timeout=10).json() == {"status": "ok", "version": VERSION}
    ready = requests.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text


def test_upload_through_the_images_is_resized(containers):
    url = containers["urls"]["backend"]
    response = upload(url, jpeg(1600, 1200))
    assert response.status_code == 201, response.text
    doc = wait_done(url, response.json()["id"])
    for entry in doc["sizes"]:
        served = requests.get(f"{url}{entry['url']}", timeout=10).content
        assert dimensions(served) == ("JPEG", *expected_dims(1600, 1200, entry["size"]))
    assert [s["size"] for s in doc["sizes"]] == list(SIZES)


def test_frontend_image_serves_the_page(containers):
    url = containers["urls"]["frontend"]
    page = requests.get(f"{url}/", timeout=10)
    assert page.status_code == 200 and 'data-testid="file-input"' in page.text
    script = requests.get(f"{url}/app.js", timeout=10)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert requests.get(f"{url}/healthz", timeout=10).text == "ok\n"
    # The API belongs to the backend; a frontend reached on /api says the routing is wrong.
    assert requests.get(f"{url}/api/images", timeout=10).status_code == 502


def test_container_logs_hold_no_secrets(containers):
    for cname in containers["names"].values():
        logs = docker("logs", cname)
        assert S3_SECRET_KEY not in logs.stdout + logs.stderr
        assert "guest:guest" not in logs.stdout + logs.stderr
