"""The Data screen in a real headless Chromium against a real ``mekit app`` (uvicorn in a
subprocess): check the synthetic corpus, see its table and EDA plots, preview a sample,
preprocess with progress, and see a refused path as one line. Screenshots go to
``runs/test-artifacts/app/``."""

from __future__ import annotations

import pytest

from .helpers import TINY, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _dataset(page, loader: str = "synthetic", root: str = "") -> None:
    page.select_option("#loader", loader)
    page.fill("#root", root)
    if loader == "synthetic":
        if not page.is_visible("input[name=opt-n_subjects]"):
            page.click("#loader-options summary")
        for k, v in TINY.items():
            page.fill(f"input[name=opt-{k}]", v)


def test_data_screen_on_the_synthetic_corpus(app_page):
    page = app_page
    page.wait_for_selector("#run-check")
    assert page.get_attribute("#tab-data", "class") == "tab active"
    planned = [s["id"] for s in page.evaluate("() => fetch('/api/info').then(r => r.json())")["screens"]
               if s.get("planned")]
    assert all(page.is_disabled(f"#tab-{p}") for p in planned)  # screens still to come are shown, not usable

    _dataset(page)
    page.click("#run-check")
    page.wait_for_selector("[data-label='Data check'][data-state=done]", timeout=60_000)
    summary = page.inner_text("#check-summary")
    assert "12 samples, 4 subjects" in summary and "no missing" in summary
    assert page.locator("#check-result table").count() >= 2
    assert "sub04" in page.inner_text("#check-result")
    img = page.locator("#eda-result img").first
    img.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=img.element_handle())

    page.select_option("#samples", "synthetic/sub02/clip01")
    page.select_option("#detector", "none")
    page.select_option("#flow", "farneback")
    page.fill("#workers", "1")
    page.click("#run-preview")
    page.wait_for_selector("[data-label=Preview][data-state=done]", timeout=60_000)
    preview = page.locator("#preview-result img").first
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=preview.element_handle())
    assert "synthetic/sub02/clip01" in page.inner_text("#preview-result")

    page.fill("#size", "96")  # not cached yet: the clips are computed, with progress
    page.click("#run-preprocess")
    page.wait_for_selector("[data-label=Preprocessing][data-state=done]", timeout=60_000)
    assert page.inner_text("[data-role=job]").count("finished in") == 1
    width = page.eval_on_selector("[data-role=job] .bar > div", "d => d.style.width")
    assert width == "100%"
    clips = page.inner_text("#preprocess-result")
    assert "computed" in clips and "12" in clips
    job_id = page.get_attribute("[data-role=job]", "data-job")
    events = page.evaluate("id => fetch('/api/jobs/' + id).then(r => r.json())", job_id)["events"]
    assert [e["done"] for e in events if e["kind"] == "progress" and e["stage"] == "preprocess"][-1] == 12
    screenshot(page, "data-screen")
    assert not page.errors, page.errors


def test_refused_folder_is_one_line_and_the_picker_lists_allowed_folders(app_page, live_server):
    page = app_page
    page.wait_for_selector("#run-check")
    _dataset(page, "image_folder", "../../etc")
    page.click("#run-check")
    page.wait_for_selector("#error:not([hidden])")
    message = page.inner_text("#error")
    assert message.startswith("refused") and "\n" not in message

    page.click("#browse")
    page.wait_for_selector("#folder-list li")
    assert str(live_server["root"]) in page.inner_text("#folder-list")
    page.click(f"#folder-list li:has-text('{live_server['root']}')")
    page.wait_for_selector("#folder-list li:has-text('datasets')")
    page.click("#folder-list li:has-text('datasets')")
    page.wait_for_function("() => document.getElementById('folder-path').textContent.endsWith('datasets')")
    page.click("#folder-choose")
    assert page.input_value("#root") == str(live_server["root"] / "datasets")
    screenshot(page, "data-screen-refused", full_page=False)


def test_a_path_traversal_upload_from_the_page_lands_in_the_uploads_folder(app_page, live_server):
    # what a crafted page script could send: a file name climbing out of the work folder, and a
    # folder outside the allowed roots to browse
    page = app_page
    page.wait_for_selector("#run-check")
    got = page.evaluate("""async () => {
        const body = new Uint8Array([0, 0, 0, 24, 102, 116, 121, 112, 105, 115, 111, 109, 0, 0, 2, 0,
                                     105, 115, 111, 109, 105, 115, 111, 50]);
        const up = await fetch('/api/uploads?kind=video&filename=' + encodeURIComponent('../../../../tmp/evil.mp4'),
                               {method: 'POST', headers: {'X-Mekit': '1'}, body});
        const browse = await fetch('/api/browse?path=' + encodeURIComponent('../../../../etc'));
        const outside = await fetch('/api/browse?path=%2fetc');
        return {up: up.status, saved: (await up.json()).path, browse: browse.status, outside: outside.status};
    }""")
    from pathlib import Path

    saved = Path(got["saved"])
    assert got["up"] == 200 and saved.parent == live_server["workdir"] / "uploads" and saved.is_file(), got
    assert ".." not in saved.parts and got["browse"] == 403 and got["outside"] == 403, got
