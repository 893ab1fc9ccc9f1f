"""Property tests (hypothesis): whatever bytes come in, the readers raise only KnockoffError subclasses, and every
good row survives the bad ones around it."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knockoff.catalog import read_listings, read_references
from knockoff.catalog.prices import PriceError, parse_price_text
from knockoff.errors import KnockoffError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = ["listing_id", "image", "title", "price", "currency", "seller"]


def _in_tmp(name: str, data: bytes, read):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        return read(path)


_header_bytes = st.sampled_from([b"", b"image,title,price\n", b"listing_id,image,title,price,currency,seller\n",
                                 b"\xef\xbb\xbfimage,price\n", b"\xff\xfei\x00m\x00"])


@FAST
@given(head=_header_bytes, body=st.binary(max_size=400))
def test_listings_csv_any_bytes_raise_only_knockoff_errors(head, body):
    try:
        rows = _in_tmp("listings.csv", head + body, lambda p: read_listings(p, problems=[]))
    except KnockoffError:
        return
    assert all(r.listing.images for r in rows)


_text_bytes = st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))


@FAST
@given(body=st.binary(max_size=400) | _text_bytes | st.just(b"[" * 100_000))
def test_references_jsonl_any_bytes_raise_only_knockoff_errors(body):
    try:
        _in_tmp("references.jsonl", body, lambda p: read_references(p, strict=False, check_images=False))
    except KnockoffError:
        pass


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=10)


@FAST
@given(rows=st.lists(st.dictionaries(st.sampled_from(["brand", "product_id", "image", "price", "currency", "x"]),
                                     _json, max_size=6), max_size=5))
def test_references_jsonl_any_json_raises_only_knockoff_errors(rows):
    data = "\n".join(json.dumps(r) for r in rows).encode()
    try:
        _in_tmp("references.jsonl", data, lambda p: read_references(p, strict=False, check_images=False))
    except KnockoffError:
        pass


_title = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=30)
_good_row = st.tuples(_title, st.integers(0, 10**7), st.sampled_from(["USD", "EUR", ""]), _title)
_bad_line = st.sampled_from(['Lx,a.jpg,"unclosed,1,USD,s', "Ly,b.jpg,t,1,799,USD", "Lz,c.jpg,t,cheap,USD,s",
                             "only,three,fields", 'Lw,d.jpg,"a"b,1,USD,s'])


@FAST
@given(good=st.lists(_good_row, min_size=1, max_size=8), bad=st.lists(st.tuples(st.integers(0, 8), _bad_line),
                                                                         max_size=4))
def test_every_good_listing_row_survives(good, bad):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    lines = []
    for number, (title, cents, currency, seller) in enumerate(good):
        writer.writerow([f"L{number}", f"p{number}.jpg", title, f"{cents / 100:.2f}", currency, seller])
        lines.append(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    for position, line in sorted(bad, reverse=True):
        lines.insert(min(position, len(lines)), line + "\n")
    data = (",".join(HEADER) + "\n" + "".join(lines)).encode("utf-8")
    problems: list = []
    rows = _in_tmp("listings.csv", data, lambda p: read_listings(p, problems=problems))
    assert len(problems) == len(bad)
    assert [r.listing.listing_id for r in rows] == [f"L{n}" for n in range(len(good))]
    for row, (title, cents, currency, seller) in zip(rows, good):
        assert row.listing.title == title.strip() and row.listing.price == pytest.approx(cents / 100)
        assert row.listing.currency == (currency or None) and row.listing.seller == (seller.strip() or None)


@FAST
@given(st.text(max_size=20))
def test_price_parser_raises_only_price_error(text):
    try:
        value = parse_price_text(text)
    except PriceError:
        return
    assert value >= 0 and value == value and value != float("inf")


@FAST
@given(whole=st.integers(0, 10**9), cents=st.integers(0, 99), style=st.sampled_from(["en", "de", "fr", "plain"]))
def test_unambiguous_price_forms_round_trip(whole, cents, style):
    grouped = f"{whole:,}"
    text = {"en": f"{grouped}.{cents:02d}", "de": grouped.replace(",", ".") + f",{cents:02d}",
            "fr": grouped.replace(",", "\u00a0") + f",{cents:02d}", "plain": f"{whole}.{cents:02d}"}[style]
    assert parse_price_text(text) == pytest.approx(whole + cents / 100)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(change=st.dictionaries(st.sampled_from(["embedder", "count", "dim", "checksums", "index_type", "next_id",
                                               "features", "format_version", "metric", "index_params"]),
                              _json, min_size=1, max_size=3))
def test_manifest_loader_raises_only_knockoff_errors(saved_index, change):
    from knockoff.match.index import ReferenceIndex

    manifest = json.loads((saved_index / "manifest.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "i"
        root.mkdir()
        for file in saved_index.iterdir():
            (root / file.name).write_bytes(file.read_bytes())
        (root / "manifest.json").write_text(json.dumps({**manifest, **change}))
        try:
            ReferenceIndex.load(root)
        except KnockoffError:
            pass


@pytest.fixture(scope="module")
def saved_index(tmp_path_factory):
    from conftest import textured_image, write_csv

    from knockoff import Catalog, build_index

    root = tmp_path_factory.mktemp("catalog")
    for i in range(2):
        textured_image(i).save(root / f"r{i}.png")
    rows = [["A", f"p{i}", f"r{i}.png"] for i in range(2)]
    write_csv(root / "references.csv", ["brand", "product_id", "image"], rows)
    return build_index(Catalog.from_dir(root), "test-pixels").save(tmp_path_factory.mktemp("index") / "i")


_ref_good = st.tuples(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
                      .filter(lambda t: t.strip() != ""), st.integers(0, 10**6) | st.floats(0, 1e6))
_ref_bad = st.sampled_from(['{"brand": "A", "product_id": "x", "image": "i.png", "prcie": 5}', "{not json",
                            '["a list"]', '{"brand": "A", "product_id": "x", "image": "i.png", "price": "1,799"}',
                            '{"brand": "A", "product_id": "x", "image": "../out.png"}', "[" * 5000])


@FAST
@given(good=st.lists(_ref_good, min_size=1, max_size=6), bad=st.lists(st.tuples(st.integers(0, 6), _ref_bad),
                                                                       max_size=4))
def test_every_good_reference_line_survives(good, bad):
    lines = [json.dumps({"brand": "Acme", "product_id": pid, "image": f"r{n}.png", "price": price})
             for n, (pid, price) in enumerate(good)]
    for position, line in sorted(bad, reverse=True):
        lines.insert(min(position, len(lines)), line)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "references.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        refs = read_references(path, strict=False, check_images=False)
    assert [(r.product_id, r.price) for r in refs] == [(pid.strip(), float(price)) for pid, price in good]
