"""The reference metadata in columns: a mapping that reads like the dict it replaced, saved and memory-mapped."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from knockoff.catalog.readers import ReferenceImage
from knockoff.errors import IndexStateError, UnknownReferenceError
from knockoff.match.reftable import ReferenceTable

REFS = [
    ReferenceImage("Acme", "tote", "Tote bag", Path("/c/acme/tote.jpg"), price=49.5, currency="EUR"),
    ReferenceImage("Acme", "tote", "Tote bag", Path("/c/acme/tote_back.jpg")),
    ReferenceImage("Zébra", "cap-1", "Casquette « été »", Path("/c/zébra/cap.png"), price=0.0, currency="",
                   label="zébra/front"),
]


def _table(ids=(0, 3, 7), views=(1, 2, 5)) -> ReferenceTable:
    table = ReferenceTable()
    for ref_id, ref, count in zip(ids, REFS, views):
        table.add(ref_id, ref, count)
    return table


@pytest.mark.parametrize("reload", [False, True])
def test_round_trip_keeps_every_field_and_view_count(tmp_path, reload):
    table = _table()
    if reload:
        table.save(tmp_path)
        table = ReferenceTable.load(tmp_path)
    assert dict(table) == {0: REFS[0], 3: REFS[1], 7: REFS[2]}
    assert [table.views(i) for i in (0, 3, 7)] == [1, 2, 5]
    assert table.total_views() == 8 and table.max_views() == 5 and len(table) == 3
    assert table.ids().tolist() == [0, 3, 7]
    assert 1 not in table and "0" not in table and table.get(4) is None
    with pytest.raises(UnknownReferenceError):
        table.views(4)


def test_changes_after_a_load_overlay_the_columns(tmp_path):
    _table().save(tmp_path)
    table = ReferenceTable.load(tmp_path)
    del table[7]
    table.add(9, REFS[2], 3)
    assert list(table) == [0, 3, 9] and table.total_views() == 6 and table.max_views() == 3
    assert table.find("ACME", "tote") == [0, 3] and table.find("zébra", "cap-1") == [9]
    with pytest.raises(IndexStateError):
        table.add(0, REFS[0], 1)
    with pytest.raises(UnknownReferenceError):
        del table[7]
    (tmp_path / "again").mkdir()
    table.save(tmp_path / "again")
    again = pickle.loads(pickle.dumps(ReferenceTable.load(tmp_path / "again")))
    assert dict(again) == {0: REFS[0], 3: REFS[1], 9: REFS[2]} and again.views(9) == 3


def _prices_from_objects(table: ReferenceTable) -> dict:
    """What the detector computed before: every ReferenceImage built, the first priced photo of a product."""
    out: dict = {}
    for ref in table.values():
        if ref.price is not None:
            out.setdefault((ref.brand, ref.product_id), (ref.price, ref.currency))
    return out


PRICED = [
    ReferenceImage("Acme", "tote", "Tote", Path("/c/a/1.jpg")),  # no price: the next photo's counts
    ReferenceImage("Acme", "tote", "Tote", Path("/c/a/2.jpg"), price=49.5, currency="EUR"),
    ReferenceImage("Acme", "tote", "Tote", Path("/c/a/3.jpg"), price=60.0, currency="USD"),  # not the first
    ReferenceImage("acme", "tote", "Tote", Path("/c/a/4.jpg"), price=7.0, currency=None),  # another brand key
    ReferenceImage("Zébra", "cap-1", "Cap", Path("/c/z/cap.png"), price=0.0, currency=""),
    ReferenceImage("Zébra", "", "No id", Path("/c/z/x.png"), price=12.25, currency="CHF"),
    ReferenceImage("Zébra", "cap-10", "Cap ten", Path("/c/z/cap10.png"), price=3.0, currency="GBP"),
]


@pytest.mark.parametrize("change", ["none", "reload", "reload+remove+add", "remove the first priced photo"])
def test_product_prices_from_the_columns_equal_those_of_the_objects(tmp_path, change):
    table = ReferenceTable()
    for ref_id, ref in enumerate(PRICED):
        table.add(ref_id, ref, 1)
    if change != "none":
        table.save(tmp_path)
        table = ReferenceTable.load(tmp_path)
    if change == "reload+remove+add":
        del table[6]
        table.add(10, ReferenceImage("Zébra", "cap-10", "Cap ten", Path("/c/z/n.png"), price=4.0, currency="GBP"), 1)
        table.add(11, ReferenceImage("New", "n", "N", Path("/c/n.png"), price=1.5, currency="EUR"), 1)
    if change == "remove the first priced photo":
        del table[1]
    expected = _prices_from_objects(table)
    assert table.product_prices() == expected
    assert expected[("Acme", "tote")] == ((60.0, "USD") if change == "remove the first priced photo" else (49.5, "EUR"))


def test_product_prices_of_an_empty_or_unpriced_table(tmp_path):
    assert ReferenceTable().product_prices() == {}
    table = ReferenceTable()
    table.add(0, REFS[1], 1)  # no price
    table.save(tmp_path)
    assert ReferenceTable.load(tmp_path).product_prices() == {}
