import json

import pytest
from PIL import Image

from knockoff.cli.app import main

from conftest import textured_image, write_csv


@pytest.fixture
def index_dir(catalog_dir, tmp_path):
    out = tmp_path / "brand.index"
    assert main(["index", "build", str(catalog_dir), "--out", str(out), "--engine", "perceptual"]) == 0
    return out


def test_engines(capsys):
    assert main(["engines"]) == 0
    out = capsys.readouterr().out
    assert "perceptual" in out and "clip" in out and "auto" in out


def test_check_exit_codes(index_dir, catalog_dir, tmp_path, capsys):
    with Image.open(catalog_dir / "acme" / "tote_front.png") as image:
        image.convert("RGB").save(tmp_path / "copy.jpg")
    code = main(["check", str(tmp_path / "copy.jpg"), "--index", str(index_dir), "--title", "Acme tote 1:1",
                 "--price", "45", "--currency", "USD", "--seller", "shop123"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("suspect") and "seller shop123 is not an authorized Acme seller" in out
    textured_image(77).save(tmp_path / "other.png")
    assert main(["check", str(tmp_path / "other.png"), "--index", str(index_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "no_match"
    (tmp_path / "bad.jpg").write_bytes(b"")
    assert main(["check", str(tmp_path / "bad.jpg"), "--index", str(index_dir)]) == 2


def test_scan_and_report(index_dir, catalog_dir, tmp_path, capsys):
    folder = tmp_path / "dump"
    folder.mkdir()
    with Image.open(catalog_dir / "acme" / "wallet.png") as image:
        image.convert("RGB").save(folder / "w.jpg")
    write_csv(folder / "listings.csv", ["listing_id", "image", "title", "price", "currency", "seller"],
              [["L1", "w.jpg", "Akme wallet AAA", "20", "USD", "shop9"]])
    out = tmp_path / "scan"
    assert main(["scan", str(folder), "--index", str(index_dir), "--out", str(out), "--workers", "0"]) == 1
    assert (out / "results.csv").exists() and (out / "report.html").exists()
    (out / "results.csv").unlink()
    assert main(["report", str(out)]) == 0
    assert "L1" in (out / "results.csv").read_text()
    assert "1 suspect" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["index", "build", "{missing}", "--out", "{tmp}/x"], "catalog directory not found"),
        (["check", "a.jpg", "--index", "{tmp}/nope"], "index directory not found"),
        (["demo", "--engine", "nonsense"], "unknown embedder 'nonsense'"),
        (["scan", "{tmp}", "--index", "{tmp}/nope", "--out", "{tmp}/o"], "index directory not found"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_usage_and_input_exit_2_with_one_clear_line(argv, message, tmp_path, capsys):
    argv = [a.format(missing=tmp_path / "missing", tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_catalog_rows_are_reported_and_the_rest_indexed(catalog_dir, tmp_path, capsys):
    with (catalog_dir / "references.csv").open("a") as handle:
        handle.write("Acme,bag,Bag,acme/none.png,10,USD\n")
    assert main(["index", "build", str(catalog_dir), "--out", str(tmp_path / "i"), "--engine", "perceptual"]) == 0
    captured = capsys.readouterr()
    assert "indexed 4 reference images" in captured.out and "1 bad catalog rows" in captured.out
    assert main(["index", "build", str(catalog_dir), "--out", str(tmp_path / "j"), "--strict"]) == 2
    assert "line 6, field 'image'" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_all_listings_as_labeled(tmp_path, capsys):
    assert main(["demo", "--engine", "perceptual", "--workdir", str(tmp_path), "--json", str(tmp_path / "d.json")]) == 0
    out = capsys.readouterr().out
    assert "engine: perceptual" in out and "confusion" in out
    result = json.loads((tmp_path / "d.json").read_text())
    assert result["correct"] == result["total"] == 52, out[-3000:]  # 46 listings, 6 printed-brand ones (text on)


def test_a_failed_demo_leaves_no_temporary_folder(tmp_path, monkeypatch, capsys):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["demo", "--engine", "nonsense"]) == 2
    assert "unknown embedder 'nonsense'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
