"""The Build-a-dataset screen in a real headless Chromium against a real ``mekit app``: open a
synthetic recording, scrub it with the keyboard, mark two clips with emotions, see the flow and
the frames a sampler picks, export, and load the dataset back with the CASME II loader.
Screenshots go to ``runs/test-artifacts/app/``."""

from __future__ import annotations

import pytest

from .helpers import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _press(page, key: str, times: int = 1) -> None:
    for _ in range(times):
        page.keyboard.press(key)


def _at(page, index: int) -> None:
    page.wait_for_selector(f"#frame-img[data-index='{index}']", timeout=10_000)


def test_build_a_two_clip_dataset_from_a_recording(app_page, live_server):
    from mekit.data.casme2 import load_casme2
    from mekit.data.synthetic_long import generate_long_video
    from mekit.preprocess.temporal import window_sparse

    root = live_server["root"]
    truth = generate_long_video(root / "videos" / "rec.avi", seconds=6, fps=30, width=320, height=240, seed=1,
                                n_micro=1, n_macro=0)
    page = app_page
    page.click("#tab-build")
    page.wait_for_selector("#open-video")
    page.fill("#video", str(truth.path))
    page.click("#open-video")
    _at(page, 0)
    assert "180 frames at 30 fps" in page.inner_text("#video-info")

    page.click("#frame-img")  # the focus leaves the text field: keys now scrub
    _press(page, "Shift+ArrowRight", 5)
    _press(page, "ArrowRight", 4)
    _at(page, 54)
    page.keyboard.press("o")
    _press(page, "ArrowRight", 5)
    page.keyboard.press("a")
    _press(page, "ArrowRight", 7)
    _at(page, 66)
    page.keyboard.press("f")
    flow = page.wait_for_selector("#flow-img[data-onset='54'][data-apex='59']:not([hidden])", timeout=10_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=flow)
    assert "fastest motion" in page.inner_text("#flow-note")
    page.fill("#emotion", "disgust")
    page.fill("#aus", "AU4")
    page.keyboard.press("Enter")  # in the AU field: adds the clip, and the keys scrub again
    page.wait_for_selector("#clips-table tbody tr")

    _press(page, "Shift+ArrowRight", 3)
    _press(page, "ArrowRight", 4)
    _at(page, 100)
    page.keyboard.press("o")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("a")
    _press(page, "Shift+ArrowRight", 2)
    _at(page, 130)
    page.keyboard.press("f")
    page.fill("#emotion", "happy")
    page.click("#add-clip")
    page.wait_for_selector("#clips-table tbody tr:nth-child(2)")
    rows = page.locator("#clips-table tbody tr").all_inner_texts()
    assert "54" in rows[0] and "disgust" in rows[0] and "130" in rows[1] and "happy" in rows[1]

    # editing the first clip shows the frames the window sampler picks from it
    page.locator("#clips-table tbody tr").first.get_by_role("button", name="Edit").click()
    page.fill("input[name=sp-window]", "3")
    page.fill("input[name=sp-stride]", "4")
    want = window_sparse(54, 59, 66, 3, 4).tolist()
    page.wait_for_function(f"() => document.querySelectorAll('#sample-thumbs img').length === {len(want)}")
    assert page.locator("#sample-thumbs figcaption").all_inner_texts()[0].startswith("54")
    page.wait_for_selector("#flow-img[data-onset='54'][data-apex='59']:not([hidden])")

    out = root / "datasets" / "built"
    page.fill("#out", str(out))
    page.fill("#subject", "2")
    page.click("#run-export")
    page.wait_for_selector("[data-label=Export][data-state=done]", timeout=60_000)
    summary = page.inner_text("#export-summary")
    assert "2 samples" in summary and "no missing" in summary
    screenshot(page, "build-screen")
    page.click("#new-clip")
    assert page.inner_text("#add-clip").startswith("Add clip")
    page.wait_for_selector("#flow-img", state="hidden")  # no marks, no flow

    page.click("#open-in-data")
    page.wait_for_function("() => document.querySelector('#screen-data #loader')?.value === 'casme2'")
    assert page.input_value("#screen-data #root") == str(out)
    assert not page.errors, page.errors

    df = load_casme2(out).df.sort_values("onset")
    assert [(r.onset, r.apex, r.offset, r.emotion) for r in df.itertuples()] == [
        (54, 59, 66, "disgust"), (100, 110, 130, "happy")]
