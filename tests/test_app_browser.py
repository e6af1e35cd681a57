"""The app in a real headless browser (Debian's chromium through Playwright): Runs, Classify, Generate, Score, 404.

Screenshots land in each test's tmp folder; with SEQMAMBA_SCREENSHOTS=DIR they are also copied there (the README's
come from `SEQMAMBA_SCREENSHOTS=docs/screenshots pytest tests/test_app_browser.py`).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from apps.server import create_app

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install -e .[test])")
CANDIDATES = (os.environ.get("SEQMAMBA_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium"),
              shutil.which("chromium-browser"))  # Debian's real binary first: /usr/bin/chromium is a shell wrapper
CHROMIUM = next((path for path in CANDIDATES if path and Path(path).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (make system-packages installs it)")
TIMEOUT_MS = 120_000  # the CI machine's 2 cores also train and sample


@pytest.fixture(scope="module")
def server(app_runs):
    """The app on 127.0.0.1, a free port, in a thread of this process."""
    http = make_server("127.0.0.1", 0, create_app(app_runs[0]), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    """Save the whole page; copy it to $SEQMAMBA_SCREENSHOTS when set."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    if folder := os.environ.get("SEQMAMBA_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / f"{name}.png")
    return path


def test_runs_page_shows_a_finished_runs_curve(page, server, tmp_path):
    page.goto(f"{server}/runs")
    curve = page.locator('img.curve[alt="loss curve of pretrain"]')
    curve.wait_for()
    assert page.evaluate("img => img.complete && img.naturalWidth > 100", curve.element_handle())
    assert page.locator("td.status-finished").count() == 4 and page.locator("td.status-stopped").count() == 1
    screenshot(page, tmp_path, "runs")
    page.click("text=finetune")
    assert page.locator("#status").inner_text() == "finished"
    assert page.evaluate("() => Array.from(document.images).every(img => img.naturalWidth > 0)")
    screenshot(page, tmp_path, "run")


def test_upload_a_fastq_and_read_the_table(page, server, tmp_path, app_runs):
    from test_app import fastq_of

    reads = tmp_path / "reads.fastq"
    reads.write_text(fastq_of(app_runs[1], per_species=4))
    page.goto(f"{server}/classify")
    page.select_option("select[name=checkpoint]", "finetune/checkpoints/last.ckpt")
    page.set_input_files("input[name=reads]", str(reads))
    page.click("button[type=submit]")
    page.locator("table#reads").wait_for()
    ids = page.locator("table#reads tbody tr td:first-child").all_inner_texts()
    assert sorted(ids) == sorted(f"sp{s}_{k}" for s in range(2) for k in range(4))
    page.click("table#reads th:first-child")  # sortable: ascending, then descending
    page.click("table#reads th:first-child")
    assert page.locator("table#reads tbody tr td:first-child").all_inner_texts() == sorted(ids, reverse=True)
    assert page.locator("table#species .bar").count() >= 1
    screenshot(page, tmp_path, "classify")


def test_generate_two_clips_and_play_them(page, server, tmp_path):
    page.goto(f"{server}/generate")
    page.fill("input[name=n]", "2")
    page.fill("input[name=seconds]", "0.05")
    page.click("button[type=submit]")
    page.locator("audio").first.wait_for()
    assert page.locator("audio").count() == 2
    page.wait_for_function("() => Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 1)")
    durations = page.evaluate("() => Array.from(document.querySelectorAll('audio')).map(a => a.duration)")
    assert durations == pytest.approx([0.05, 0.05], abs=0.002)
    screenshot(page, tmp_path, "generate")
    page.goto(f"{server}/score")
    folder = page.locator("select[name=samples] option").first.get_attribute("value")
    assert folder.startswith("app/generate/")  # the clips just generated
    page.select_option("select[name=samples]", folder)
    page.click("button[type=submit]")
    page.locator("table#scores").wait_for()
    assert page.locator("table#scores tbody tr").count() == 3
    screenshot(page, tmp_path, "score")


def test_a_traversal_url_gets_404(page, server, tmp_path):
    for url in ("/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/files/..%2f..%2fetc%2fpasswd"):
        response = page.goto(f"{server}{url}")
        assert response.status == 404 and "root:" not in page.content()
    screenshot(page, tmp_path, "not-found")
