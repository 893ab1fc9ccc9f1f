"""The reviewer's page on a packaging match that names the brand only: the official photo shown is the nearest of the
brand's packages, which may be another product's, and a same-package match is a new photo, not a failed copy check."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from knockoff.catalog.readers import Listing
from knockoff.decide.signals import Signal
from knockoff.decide.verdict import Match, Reason, Verdict
from knockoff.report import write_reports

VERIFICATION = {"inliers": 50, "matches": 73, "inlier_ratio": 0.68, "verified": False,
                "failed_check": "inlier ratio 0.68 below 0.80", "reference_coverage": 0.91, "pixel_agreement": None}


def _page_text(tmp_path, product_id: str, product_name: str) -> tuple[str, str]:
    from test_report import Page, open_chromium, wait_for

    photo, ref = tmp_path / "listing.png", tmp_path / "blueberry.png"
    Image.new("RGB", (200, 160), "white").save(photo)
    Image.new("RGB", (160, 200), "blue").save(ref)
    match = Match("Alpro", product_id, product_name, str(ref), "images/blueberry.png", 0.43, "same-package", str(photo),
                  verification=dict(VERIFICATION))
    visual = Signal("VISUAL_MATCH", "hit", "photo shows the packaging of Alpro, not which of its products")
    verdict = Verdict("L1", "review", 0.37, match, (Reason("VISUAL_MATCH", visual.message),), (visual,), "perceptual",
                      Listing(images=[photo], title="soy yoghurt", listing_id="L1"))
    out = tmp_path / "scan"
    out.mkdir()
    (out / "results.jsonl").write_text(json.dumps({"schema": 2, **verdict.to_dict()}) + "\n", encoding="utf-8")
    write_reports(out)
    browser = open_chromium(tmp_path / "profile")
    try:
        page = Page(browser, (out / "report.html").as_uri())
        page.load()
        row = page.row("L1").text
        browser.execute_script("document.querySelector('#rows tr.row td .frame').click()")
        viewer = browser.find_element(page.By.ID, "viewer")
        wait_for(viewer.is_displayed)
        return row, viewer.text
    finally:
        browser.quit()


@pytest.mark.slow
@pytest.mark.parametrize(("product_id", "product_name", "brand_only"), [
    ("", "", True),  # the brand only: the photo shown is the nearest Alpro package, maybe another product's
    ("alpro-blueberry", "Alpro Blueberry Soyghurt", False),  # the product named: its own official photo
])
def test_brand_only_match_says_its_official_photo_may_be_another_product(tmp_path, product_id, product_name,
                                                                          brand_only):
    row, viewer = _page_text(tmp_path, product_id, product_name)
    caption = "nearest official photo of Alpro (product not named: it may show another one)"
    assert (caption in " ".join(row.split())) is brand_only
    assert (caption in " ".join(viewer.split())) is brand_only
    assert ("official: images/blueberry.png" in row) is not brand_only
    assert ("which product: not named" in row) is brand_only and ("which product: not named" in viewer) is brand_only
    assert "· ·" not in viewer
    # the first reason says why the match is for a person: not a price that could not be checked, but the product
    assert ("the brand only: Alpro, not which of its products" in row) is brand_only
    # a same-package match is a new photo of the package, not a copy check that failed
    assert "geometric check failed" not in row and "geometric check failed" not in viewer
    assert "50 keypoints match the package; a new photo of it, not a copy of the official photo" in " ".join(row.split())
