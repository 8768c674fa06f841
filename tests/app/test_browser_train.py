"""The Train and evaluate screen in a real headless Chromium against a real ``mekit app``: a bad
override is one line, then the synthetic corpus with a fast classical recipe is evaluated with
progress (folds), and the metrics table with confidence intervals and the confusion matrix
appear. A screenshot goes to ``runs/test-artifacts/app/train-screen.png``."""

from __future__ import annotations

import pytest

from .helpers import TINY, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: the fastest classical recipe the evaluation tests use
FAST = "preprocess.landmarks=false\nfeatures.params={grid: 3, bins: 8}\nmodel.params={grid: {}}"


def test_train_screen_evaluates_the_synthetic_corpus(app_page):
    page = app_page
    page.click("#tab-train")
    page.wait_for_selector("#run-evaluate")

    # menus filled from the catalogue: the synthetic corpus, small, and a fast classical recipe
    page.select_option("#train-loader", "synthetic")
    page.click("#train-loader-options summary")
    for k, v in TINY.items():
        page.fill(f"#screen-train input[name=opt-{k}]", v)
    page.select_option("#train-detector", "none")
    page.select_option("#train-flow", "farneback")
    page.fill("#train-size", "64")
    page.select_option("#train-model", "logreg")
    page.select_option("#train-features", "hoof")
    page.select_option("#train-protocol", "loso")
    page.select_option("#train-device", "cpu")

    # a bad override: one line in the page, nothing started
    page.fill("#overrides", "protocol.name=nope")
    page.click("#run-evaluate")
    page.wait_for_selector("#error:not([hidden])")
    message = page.inner_text("#error")
    assert message.startswith("protocol.name: unknown protocol 'nope'") and "\n" not in message
    assert page.is_hidden("[data-role=job]")

    page.fill("#overrides", FAST)
    page.click("#check-config")
    page.wait_for_function("() => document.getElementById('config-summary').textContent.includes('logreg on synthetic')")
    assert page.is_hidden("#error")
    assert "flow: farneback" in page.inner_text("#config-preview")

    page.click("#run-evaluate")
    page.wait_for_selector("#train-progress:not([hidden])")
    page.wait_for_function("() => /Fold [1-4] \\/ 4/.test(document.getElementById('fold-text').textContent)",
                           timeout=90_000)
    page.wait_for_selector("[data-label=Evaluation][data-state=done]", timeout=90_000)
    assert "Fold 4 / 4" in page.inner_text("#fold-text")

    metrics = page.inner_text("#metrics-table")
    assert "UF1" in metrics and "UAR" in metrics and "95% CI" in metrics
    assert metrics.count("–") >= 3  # the CI column: "lo – hi"
    assert "sub04" in page.inner_text("#per-subject")
    img = page.locator("#result-figures figure[data-figure='confusion_matrix.png'] img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 300", arg=img.element_handle())
    zip_href = page.get_attribute("#download-zip", "href")
    assert zip_href.startswith("/api/train/report.zip?run=")
    assert page.locator("#runs-list li").count() >= 1
    screenshot(page, "train-screen")
    assert not page.errors, page.errors
