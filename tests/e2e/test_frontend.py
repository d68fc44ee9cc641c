"""The app as a user meets it: a real browser (Debian's chromium, driven by Playwright) opens
the page through the floating IP, uploads an image and sees every size appear.

Runs against a deployed app: CLOUDVIRT_APP_URL (default the lab's http://172.30.0.100/, after
`make lab`); skipped when nothing answers there. CHROMIUM (default /usr/bin/chromium) is the
browser; Playwright downloads none.
"""
import base64
import os
import shutil
import urllib.request

import pytest

playwright = pytest.importorskip("playwright.sync_api")

APP_URL = os.environ.get("CLOUDVIRT_APP_URL", "http://172.30.0.100/")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SIZES = ["128", "512", "1024"]


def app_answers():
    try:
        with urllib.request.urlopen(APP_URL + "api/images?limit=1", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not app_answers(), reason=f"no app answers at {APP_URL} (run make lab)")


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


def make_jpeg(page, width=1600, height=1200):
    """A photo-like JPEG drawn by the browser's own canvas (no image library on the controller)."""
    data_url = page.evaluate(
        """([w, h]) => {
            const c = document.createElement('canvas'); c.width = w; c.height = h;
            const g = c.getContext('2d');
            const grad = g.createLinearGradient(0, 0, w, h);
            grad.addColorStop(0, '#c33'); grad.addColorStop(0.5, '#3c3'); grad.addColorStop(1, '#33c');
            g.fillStyle = grad; g.fillRect(0, 0, w, h);
            return c.toDataURL('image/jpeg', 0.9);
        }""",
        [width, height],
    )
    return base64.b64decode(data_url.split(",", 1)[1])


def test_upload_in_the_browser_shows_every_size(browser, tmp_path):
    page = browser.new_page()
    page.goto(APP_URL)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(make_jpeg(page))

    page.set_input_files("[data-testid=file-input]", str(photo))
    upload = page.locator("[data-testid=upload]").last
    playwright.expect(upload).to_have_attribute("data-state", "done", timeout=30_000)
    image_id = upload.get_attribute("data-image-id")
    assert image_id

    card = page.locator(f"[data-testid=image-card][data-image-id='{image_id}']")
    for size in SIZES:
        figure = card.locator(f"figure[data-testid=size][data-size='{size}']")
        playwright.expect(figure).to_have_attribute("data-ready", "true", timeout=60_000)
        playwright.expect(figure).to_have_attribute("data-loaded", "true", timeout=30_000)
    page.close()
