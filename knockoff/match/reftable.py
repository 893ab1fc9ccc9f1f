"""The reference photos' metadata in columns: loaded in a blink, memory-mapped, an object built only when asked.

An index of 10^6 reference photos kept one ``ReferenceImage`` a photo, parsed from JSON lines at every load
(about 55 s and several GB). :class:`ReferenceTable` is a mapping from reference id to ``ReferenceImage`` over
three memory-mapped arrays, with the photos added or removed since the load kept beside them:

- ``references_rows.npy``: int64 ``(n, 2 + 2 * len(STRING_COLUMNS))``: reference id (strictly increasing),
  view count, then the start and length (bytes) of each string column in the text blob; length -1 is None;
- ``references_price.npy``: float64 ``(n,)``, NaN where there is no price;
- ``references_text.npy``: uint8, every string, UTF-8, one after the other.

``table[ref_id]`` builds the ``ReferenceImage`` on demand (a few microseconds); iterating a million of them
takes seconds, so code that scans every reference should do it once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from knockoff.catalog.readers import ReferenceImage
from knockoff.errors import IndexCorruptError, IndexStateError, UnknownReferenceError

STRING_COLUMNS = ("brand", "product_id", "product_name", "image", "currency", "label")
TABLE_FILES = ("references_rows.npy", "references_price.npy", "references_text.npy")
MAX_VIEWS = 256
_NULLABLE = {"currency"}


class ReferenceTable(Mapping[int, ReferenceImage]):
    """Reference id -> ``ReferenceImage`` (and its view count): columns loaded from disk plus a dict of the
    photos added since, minus those removed. Iteration is in increasing id order for the loaded ones, then in
    the order of addition."""

    def __init__(self) -> None:
        self._rows = np.zeros((0, 2 + 2 * len(STRING_COLUMNS)), np.int64)
        self._price = np.zeros(0, np.float64)
        self._text = np.zeros(0, np.uint8)
        self._bytes = memoryview(b"")
        self._removed: set[int] = set()
        self._added: dict[int, tuple[ReferenceImage, int]] = {}

    # -- the mapping ----------------------------------------------------------------------------------

    def _row(self, ref_id: int) -> int:
        """The row of a loaded, not removed reference id, or -1."""
        ids = self._rows[:, 0]
        row = int(np.searchsorted(ids, ref_id))
        if row < len(ids) and int(ids[row]) == ref_id and ref_id not in self._removed:
            return row
        return -1

    def __getitem__(self, ref_id: int) -> ReferenceImage:
        added = self._added.get(ref_id)
        if added is not None:
            return added[0]
        row = self._row(int(ref_id)) if isinstance(ref_id, (int, np.integer)) else -1
        if row < 0:
            raise UnknownReferenceError(ref_id)
        return self._build(row)

    def __contains__(self, ref_id: object) -> bool:
        if not isinstance(ref_id, (int, np.integer)):
            return False
        return ref_id in self._added or self._row(int(ref_id)) >= 0

    def __len__(self) -> int:
        return len(self._rows) - len(self._removed) + len(self._added)

    def __iter__(self) -> Iterator[int]:
        for ref_id in self._rows[:, 0].tolist():
            if ref_id not in self._removed:
                yield ref_id
        yield from list(self._added)

    def _string(self, row: int, column: int) -> str | None:
        start, length = self._rows[row, 2 + 2 * column : 4 + 2 * column].tolist()
        return self._decode(row, start, length)

    def _decode(self, row: int, start: int, length: int) -> str | None:
        if length < 0:
            return None
        try:
            return str(self._bytes[start : start + length], "utf-8")
        except UnicodeDecodeError as exc:
            raise IndexCorruptError(f"references_text.npy is damaged (reference {int(self._rows[row, 0])}: "
                                    f"{exc})") from None

    def _build(self, row: int) -> ReferenceImage:
        cells = self._rows[row].tolist()
        brand, product_id, name, image, currency, label = (
            self._decode(row, cells[2 + 2 * c], cells[3 + 2 * c]) for c in range(len(STRING_COLUMNS)))
        price = float(self._price[row])
        return ReferenceImage(brand=brand or "", product_id=product_id or "", product_name=name or "",
                              image=Path(image or ""), price=None if price != price else price,
                              currency=currency, label=label or "")

    def values(self) -> Iterator[ReferenceImage]:  # type: ignore[override]
        """Every reference, built row by row (no lookup per id)."""
        for _, reference in self.items():
            yield reference

    def items(self) -> Iterator[tuple[int, ReferenceImage]]:  # type: ignore[override]
        """Every (id, reference), built row by row (no lookup per id)."""
        for row, ref_id in enumerate(self._rows[:, 0].tolist()):
            if ref_id not in self._removed:
                yield ref_id, self._build(row)
        yield from [(r, ref) for r, (ref, _) in self._added.items()]

    def product_prices(self) -> dict[tuple[str, str], tuple[float, str | None]]:
        """(brand, product id) -> (price, currency) of the product's first photo with a price, in iteration
        order, read from the columns without building a ``ReferenceImage`` a photo (10^6 photos: about a
        second instead of many)."""
        rows = np.arange(len(self._rows))
        if self._removed:
            rows = rows[~np.isin(self._rows[:, 0], np.fromiter(self._removed, np.int64))]
        rows = rows[~np.isnan(np.asarray(self._price)[rows])]
        brands, products, currencies = (self._column(rows, name) for name in ("brand", "product_id", "currency"))
        out: dict[tuple[str, str], tuple[float, str | None]] = {}
        for brand, product, price, currency in zip(brands, products, np.asarray(self._price)[rows].tolist(),
                                                   currencies):
            out.setdefault((brand or "", product or ""), (price, currency))
        for ref, _ in self._added.values():
            if ref.price is not None:
                out.setdefault((ref.brand, ref.product_id), (ref.price, ref.currency))
        return out

    def _column(self, rows: np.ndarray, name: str) -> list[str | None]:
        """One string column's values at ``rows``, each distinct value decoded once."""
        column = STRING_COLUMNS.index(name)
        starts, lengths = self._rows[rows, 2 + 2 * column], self._rows[rows, 3 + 2 * column]
        width = int(lengths.max(initial=0))
        if len(rows) == 0 or width <= 0:
            return [None if length < 0 else "" for length in lengths.tolist()]
        text = np.asarray(self._text)
        inside = np.arange(width) < np.maximum(lengths, 0)[:, None]
        cells = np.where(inside, text[np.minimum(starts[:, None] + np.arange(width), len(text) - 1)], 0)
        if np.any(inside & (cells == 0)):  # a NUL byte in a string: a fixed-width view would drop it
            return [self._decode(int(r), int(a), int(n)) for r, a, n in zip(rows, starts, lengths)]
        unique, inverse = np.unique(np.ascontiguousarray(cells, np.uint8).view(f"S{width}").ravel(),
                                    return_inverse=True)
        try:
            decoded = [value.decode("utf-8") for value in unique.tolist()]
        except UnicodeDecodeError as exc:
            raise IndexCorruptError(f"references_text.npy is damaged (column {name}: {exc})") from None
        return [None if length < 0 else decoded[i] for i, length in zip(inverse.ravel().tolist(), lengths.tolist())]

    # -- views and changes ----------------------------------------------------------------------------

    def views(self, ref_id: int) -> int:
        """How many vectors (views) the index holds for a reference; KeyError for an id it lacks."""
        added = self._added.get(ref_id)
        if added is not None:
            return added[1]
        row = self._row(int(ref_id))
        if row < 0:
            raise UnknownReferenceError(ref_id)
        return int(self._rows[row, 1])

    def _live_views(self) -> np.ndarray:
        """The view counts of the loaded references not removed."""
        if not self._removed:
            return self._rows[:, 1]
        return self._rows[~np.isin(self._rows[:, 0], np.fromiter(self._removed, np.int64)), 1]

    def total_views(self) -> int:
        return int(self._live_views().sum()) + sum(count for _, count in self._added.values())

    def max_views(self) -> int:
        return max([int(self._live_views().max(initial=0)), *(count for _, count in self._added.values())])

    def ids(self) -> np.ndarray:
        """Every reference id held, sorted (int64)."""
        loaded = self._rows[:, 0]
        if not self._removed and not self._added:
            return loaded  # increasing, checked at load
        if self._removed:
            loaded = loaded[~np.isin(loaded, np.fromiter(self._removed, np.int64))]
        return np.sort(np.concatenate([loaded, np.fromiter(self._added, np.int64, len(self._added))]))

    def add(self, ref_id: int, reference: ReferenceImage, views: int) -> None:
        if ref_id in self:
            raise IndexStateError(f"reference id {ref_id} is already in the table")
        self._added[int(ref_id)] = (reference, int(views))

    def __delitem__(self, ref_id: int) -> None:
        if self._added.pop(ref_id, None) is None:
            if self._row(int(ref_id)) < 0:
                raise UnknownReferenceError(ref_id)
            self._removed.add(int(ref_id))

    def find(self, brand: str, product_id: str | None = None) -> list[int]:
        """The ids of a brand's photos (brand compared case-insensitively), of one product when ``product_id``
        is given, without building every object."""
        folded, found = brand.casefold(), []
        brand_col, product_col = STRING_COLUMNS.index("brand"), STRING_COLUMNS.index("product_id")
        rows = np.arange(len(self._rows))
        if product_id is not None:  # only rows whose product id has the right length are decoded
            rows = np.flatnonzero(self._rows[:, 3 + 2 * product_col] == len(product_id.encode("utf-8")))
        for row in rows.tolist():
            ref_id = int(self._rows[row, 0])
            if (product_id is None or self._string(row, product_col) == product_id) and ref_id not in \
                    self._removed and (self._string(row, brand_col) or "").casefold() == folded:
                found.append(ref_id)
        found += [r for r, (ref, _) in self._added.items()
                  if ref.brand.casefold() == folded and product_id in (None, ref.product_id)]
        return found

    # -- disk -----------------------------------------------------------------------------------------

    def save(self, folder: Path) -> tuple[str, ...]:
        """Write the table's three files (every reference, in increasing id order); returns their names."""
        ids = sorted(self)
        rows = np.zeros((len(ids), self._rows.shape[1]), np.int64)
        price = np.full(len(ids), np.nan)
        blob = bytearray()
        for i, ref_id in enumerate(ids):
            ref = self[ref_id]
            rows[i, :2] = (ref_id, self.views(ref_id))
            data = ref.to_dict()
            for column, name in enumerate(STRING_COLUMNS):
                value = data[name]
                encoded = b"" if value is None else str(value).encode("utf-8")
                rows[i, 2 + 2 * column : 4 + 2 * column] = (len(blob), -1 if value is None else len(encoded))
                blob += encoded
            if ref.price is not None:
                price[i] = ref.price
        np.save(folder / TABLE_FILES[0], rows)
        np.save(folder / TABLE_FILES[1], price)
        np.save(folder / TABLE_FILES[2], np.frombuffer(bytes(blob), np.uint8))
        return TABLE_FILES

    @classmethod
    def load(cls, folder: Path) -> ReferenceTable:
        """Memory-map the table's files, checked for shape and consistency (IndexCorruptError otherwise)."""
        table = cls()
        try:
            rows, price, text = (np.load(folder / name, mmap_mode="r", allow_pickle=False) for name in TABLE_FILES)
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read the reference table ({exc})") from exc
        problem = _table_problem(rows, price, text)
        if problem:
            raise IndexCorruptError(f"the reference table is damaged: {problem}")
        table._rows, table._price, table._text = rows, price, text
        table._bytes = memoryview(np.asarray(text).data)
        return table

    # -- pickling: plain arrays, not maps of a file that may be gone where the table is unpickled ----------

    def __getstate__(self) -> dict[str, Any]:
        return {"rows": np.array(self._rows), "price": np.array(self._price), "text": np.array(self._text),
                "removed": set(self._removed), "added": dict(self._added)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._rows, self._price, self._text = state["rows"], state["price"], state["text"]
        self._bytes = memoryview(np.asarray(self._text).data)
        self._removed, self._added = state["removed"], state["added"]


def _table_problem(rows: np.ndarray, price: np.ndarray, text: np.ndarray) -> str | None:
    """What is wrong with the loaded columns, in words (None: nothing)."""
    width = 2 + 2 * len(STRING_COLUMNS)
    if rows.dtype != np.int64 or rows.ndim != 2 or rows.shape[1] != width:
        return f"references_rows.npy must be int64 with {width} columns"
    if price.dtype != np.float64 or price.shape != (len(rows),) or text.dtype != np.uint8 or text.ndim != 1:
        return "references_price.npy or references_text.npy has the wrong type or length"
    ids, views = rows[:, 0], rows[:, 1]
    if len(rows) and (ids[0] < 0 or np.any(np.diff(ids) <= 0)):
        return "reference ids are not increasing"
    if len(rows) and (views.min() < 1 or views.max() > MAX_VIEWS):
        return f"a view count is outside 1..{MAX_VIEWS}"
    starts, lengths = rows[:, 2::2], rows[:, 3::2]
    nullable = np.array([name in _NULLABLE for name in STRING_COLUMNS])
    if np.any(starts < 0) or np.any(lengths < -1) or np.any((lengths == -1) & ~nullable) \
            or np.any(starts + np.maximum(lengths, 0) > len(text)):
        return "a string lies outside references_text.npy"
    if np.any(price < 0) or np.any(np.isinf(price)):
        return "a price is negative or infinite"
    return None
