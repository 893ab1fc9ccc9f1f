"""`knockoff policy show/write`, --policy files, and the exit codes of check and scan for review verdicts."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from PIL import Image

from knockoff import Detector, Listing, Policy, ReferenceIndex
from knockoff.cli.app import main
from knockoff.decide.policy import ShortlistSettings
from knockoff.decide.verdict import read_verdicts

from conftest import write_csv


@pytest.fixture
def index_dir(catalog_dir, tmp_path):
    out = tmp_path / "brand.index"
    assert main(["index", "build", str(catalog_dir), "--out", str(out), "--engine", "perceptual"]) == 0
    return out


@pytest.fixture
def copies(catalog_dir, tmp_path):
    out = {}
    for name in ("acme/tote_front.png", "acme/wallet.png", "globex/watch.png"):
        with Image.open(catalog_dir / name) as image:
            path = tmp_path / (name.replace("/", "_") + ".jpg")
            image.convert("RGB").resize((240, 240)).save(path, quality=85)
            out[name] = path
    return out


def test_policy_show_prints_the_defaults_and_a_file_merged_over_them(tmp_path, capsys):
    assert main(["policy", "show"]) == 0
    assert Policy.from_json(capsys.readouterr().out) == Policy()
    (tmp_path / "p.json").write_text(json.dumps({"price_ratio": 0.3, "verifier": {"min_inliers": 20}}))
    assert main(["policy", "show", "--policy", str(tmp_path / "p.json")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["price_ratio"] == 0.3 and shown["verifier"]["min_inliers"] == 20
    assert shown["verifier"]["min_coverage"] == Policy().verifier.min_coverage  # the rest keeps its defaults


def test_policy_write_refuses_to_overwrite_and_bad_keys_name_the_closest(tmp_path, capsys):
    path = tmp_path / "p.json"
    assert main(["policy", "write", str(path)]) == 0
    assert Policy.load(path) == Policy()
    assert main(["policy", "write", str(path)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["policy", "write", str(path), "--force"]) == 0
    path.write_text(json.dumps({"shortlist": {"per_ref": 3}}))
    assert main(["policy", "show", "--policy", str(path)]) == 2
    err = capsys.readouterr().err
    assert "p.json" in err and "'shortlist.per_ref'" in err and "per_reference" in err


def _edit(path):
    data = json.loads(path.read_text())
    data["price_ratio"] = 0.2
    data["min_risk_to_flag"] = 0.75
    data["weights"]["BRAND_MISUSE"] = 0.1
    data["currency_rates"] = {"USD": 1.0, "EUR": 1.1}
    data["verifier"]["min_inliers"] = 12
    data["shortlist"]["size"] = 1
    path.write_text(json.dumps(data, indent=1))


def test_an_edited_policy_file_gives_the_verdicts_of_the_same_policy_in_python(index_dir, copies, tmp_path, capsys):
    path = tmp_path / "policy.json"
    assert main(["policy", "write", str(path)]) == 0
    capsys.readouterr()
    _edit(path)
    same = replace(Policy(), price_ratio=0.2, min_risk_to_flag=0.75, weights={"BRAND_MISUSE": 0.1},
                   currency_rates={"USD": 1.0, "EUR": 1.1},
                   verifier=replace(Policy().verifier, min_inliers=12), shortlist=ShortlistSettings(size=1))
    assert Policy.load(path) == same
    detector = Detector(ReferenceIndex.load(index_dir), same)  # read into memory; `check` maps it: the same scores
    cases = [
        (copies["acme/tote_front.png"], ["--title", "Acme tote", "--price", "100", "--currency", "USD",
                                         "--seller", "shop123"]),
        (copies["acme/wallet.png"], ["--title", "Acme wallet", "--price", "140", "--currency", "USD",
                                     "--seller", "acme_store"]),
        (copies["globex/watch.png"], ["--price", "100", "--currency", "USD"]),
    ]
    verdicts = set()
    for photo, flags in cases:
        code = main(["check", str(photo), "--index", str(index_dir), "--policy", str(path), "--json", *flags])
        from_cli = json.loads(capsys.readouterr().out)
        options = dict(zip(flags[::2], flags[1::2]))
        listing = Listing([photo], title=options.get("--title", ""), seller=options.get("--seller"),
                          price=float(options["--price"]), currency=options.get("--currency"))
        in_python = detector.check(listing).to_dict()
        assert from_cli == in_python
        assert code == (1 if from_cli["verdict"] in ("suspect", "review") else 0)
        verdicts.add(from_cli["verdict"])
    # the edits matter: the default policy decides differently
    assert verdicts != {Detector(ReferenceIndex.load(index_dir)).check(
        Listing([copies["acme/tote_front.png"]], title="Acme tote", price=100, currency="USD", seller="shop123"))
        .verdict}
    assert "review" in verdicts


def test_check_without_a_seller_is_review_and_exits_1(index_dir, copies, capsys):
    code = main(["check", str(copies["acme/wallet.png"]), "--index", str(index_dir), "--title", "Acme wallet",
                 "--price", "140", "--currency", "USD"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("review")
    assert "not checked: the listing names no seller" in out
    code = main(["check", str(copies["acme/wallet.png"]), "--index", str(index_dir), "--title", "Acme wallet",
                 "--price", "140", "--currency", "USD", "--seller", "acme_store"])
    assert code == 0 and capsys.readouterr().out.startswith("authorized")


def test_scan_with_only_review_verdicts_exits_1_and_uses_the_policy_file(index_dir, copies, tmp_path, capsys):
    folder = tmp_path / "dump"
    folder.mkdir()
    Image.open(copies["acme/wallet.png"]).save(folder / "w.jpg")
    write_csv(folder / "listings.csv", ["listing_id", "image", "title", "price", "currency", "seller"],
              [["L1", "w.jpg", "Acme wallet", "140", "USD", ""]])
    out = tmp_path / "scan"
    assert main(["scan", str(folder), "--index", str(index_dir), "--out", str(out), "--workers", "0",
                 "--no-report"]) == 1
    assert [v.verdict for v in read_verdicts(out / "results.jsonl")] == ["review"]
    capsys.readouterr()
