"""Typed results: Verdict.from_dict is the inverse of to_dict, for verdicts of a real Detector run."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from knockoff import Catalog, Detector, Listing, Verdict, build_index, needs_person, read_verdicts
from knockoff.decide.verdict import VERDICTS, Match, Reason
from knockoff.errors import KnockoffError, ResultError

from conftest import textured_image


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """Verdicts of every kind from a real run (with geometric verification when OpenCV is there)."""
    from conftest import write_csv

    root = tmp_path_factory.mktemp("verdicts")
    refs = root / "refs"
    (refs / "acme").mkdir(parents=True)
    for name, seed in (("acme/tote.png", 1), ("acme/wallet.png", 3)):
        textured_image(seed).save(refs / name)
    write_csv(refs / "brands.csv", ["brand", "aliases", "authorized_sellers"], [["Acme", "Akme", "acme_store"]])
    write_csv(refs / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"],
              [["Acme", "tote", "Acme Tote", "acme/tote.png", "399", "USD"],
               ["Acme", "wallet", "Acme Wallet", "acme/wallet.png", "150", "USD"]])
    detector = Detector(build_index(Catalog.from_dir(refs), "perceptual"))
    with Image.open(refs / "acme/tote.png") as image:
        image.convert("RGB").rotate(90, expand=True).save(root / "copy.jpg", quality=85)
    textured_image(50).save(root / "other.png")
    (root / "broken.jpg").write_bytes(b"\x89PNG broken")
    listings = [
        Listing([root / "copy.jpg"], title="Acme tote 1:1", price=45, currency="USD", seller="shop123",
                listing_id="suspect"),
        Listing([root / "copy.jpg"], title="Acme tote", price=390, currency="USD", seller="acme_store",
                listing_id="authorized"),
        Listing([root / "copy.jpg"], listing_id="review"),
        Listing([root / "other.png"], title="Akme wallet replica", price=5, currency="USD", listing_id="title"),
        Listing([root / "other.png"], title="garden chair", listing_id="no_match"),
        Listing([root / "broken.jpg"], listing_id="error"),
        Listing([root / "broken.jpg", root / "copy.jpg"], seller="x", listing_id="skipped"),
    ]
    return [detector.check(listing) for listing in listings]


def test_the_run_gave_every_verdict(verdicts):
    assert [v.verdict for v in verdicts] == ["suspect", "authorized", "review", "review", "no_match", "error",
                                             "suspect"]
    assert verdicts[-1].skipped_images


def test_from_dict_inverts_to_dict(verdicts):
    for verdict in verdicts:
        data = verdict.to_dict()
        assert Verdict.from_dict(data) == verdict
        through_json = json.loads(json.dumps(data))
        assert Verdict.from_dict(through_json).to_dict() == through_json
        assert Verdict.from_dict({**through_json, "schema": 2}).to_dict() == through_json  # a results line


def test_read_verdicts_reads_a_results_file(verdicts, tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps({**v.to_dict(), "schema": 2}) + "\n" for v in verdicts) + "\n")
    assert [v.to_dict() for v in read_verdicts(path)] == [json.loads(json.dumps(v.to_dict())) for v in verdicts]


@pytest.mark.parametrize(
    "line, message",
    [("{oops", "line 2"), ("[1]", "not a JSON object"), ('{"listing_id": "a", "verdict": "suspect"}', "risk"),
     ('{"listing_id": "a", "verdict": "maybe", "risk": 0, "match": null, "reasons": []}', "verdict must be one of"),
     ('{"listing_id": "a", "verdict": "no_match", "risk": 0, "match": null, "reasons": [], "colour": 1}',
      "unknown field(s) colour")],
)
def test_a_bad_results_line_names_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "results.jsonl"
    good = Verdict("g", "no_match", 0.0, None, (Reason("VISUAL_MATCH", "none"),))
    path.write_text(json.dumps(good.to_dict()) + "\n" + line + "\n")
    with pytest.raises(ResultError) as info:
        read_verdicts(path)
    assert "results.jsonl" in str(info.value) and message in str(info.value)
    assert isinstance(info.value, KnockoffError)


def test_match_and_reason_round_trip():
    match = Match("Acme", "tote", "Acme Tote", "refs/a.png", "refs/a.png", 0.91, "near-copy", "x.jpg", 399.0, "USD",
                  {"verified": True, "inliers": 40})
    assert Match.from_dict(match.to_dict()) == match
    assert Reason.from_dict(Reason("A", "b").to_dict()) == Reason("A", "b")


@pytest.mark.parametrize("name, person", [(v, v in ("suspect", "review")) for v in VERDICTS])
def test_needs_person(name, person):
    assert needs_person(name) is person
    assert needs_person(Verdict("x", name, 0.0, None, ())) is person
