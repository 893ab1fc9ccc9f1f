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
