"""Reading the tables users write (CSV and JSON Lines) row by row, with every problem named.

Rules, so that no input changes a verdict without a word:

- Encoding: UTF-8 (a byte-order mark is accepted), or UTF-16 with a byte-order mark. A line that is not valid
  UTF-8 is a bad row naming its line and column; a damaged UTF-16 file is refused naming the line.
- Columns: a column the file type does not know is an error naming it with the closest known name
  (``unknown column 'seler' in listings.csv (did you mean 'seller'?)``). Names are matched exactly: ``Price`` is
  not ``price`` (the message says so). Columns whose name starts with ``x_`` are notes, kept out of the way on
  purpose. A column given twice is an error.
- One row per line: a CSV record must end on the line where it starts. A quote that is not closed (which
  would otherwise swallow the following rows into one field) makes that line a bad row; the next line is read
  as the next row.
- A row with more or fewer fields than the header, a NUL byte, or a field over :data:`MAX_FIELD` characters is
  a bad row; the rest of the file is read. In JSON Lines, a key given twice, or a value that is not text or
  a number, makes its row a bad row.

Rows come out as ``(line number, values)`` or ``(line number, CatalogError)``; the readers decide what a bad row
means (skip and report, or stop in strict mode).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Union

from knockoff.errors import CatalogError, ConfigError

MAX_FIELD = 131_072
"""Longest field, in characters (the csv module's own limit); a longer one makes its row a bad row."""
MAX_FILE_BYTES = 2 << 30
"""Largest table file read (2 GiB)."""
NOTE_PREFIX = "x_"
"""Columns (or JSON keys) starting with this are the user's notes and are ignored on purpose."""

Value = Union[str, int, float]
"""A field's value: text from a CSV; text or a JSON number from JSON Lines."""
Row = dict[str, Value]

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (undecodable bytes kept as surrogate escapes, reported per line), or UTF-16/32
    with a byte-order mark (a damaged one is an error naming the line)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CatalogError(path, f"file is larger than {MAX_FILE_BYTES >> 30} GiB")
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(path, f"cannot read file ({exc.strerror or exc})") from exc
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    if encoding in (None, "utf-8-sig"):
        return data.decode("utf-8-sig", errors="surrogateescape")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        raise CatalogError(path, f"not valid {encoding.upper()} text ({exc.reason})", line=line) from None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line without its end) for \\n, \\r\\n and \\r endings."""
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        yield number, line.rstrip("\r\n")


def _text_problem(line: str) -> str | None:
    """Why a decoded line cannot be used, or None."""
    for column, char in enumerate(line, start=1):
        if "\udc80" <= char <= "\udcff":
            byte = ord(char) - 0xDC00
            return (f"not valid UTF-8 (byte 0x{byte:02x} at column {column}); save the file as UTF-8 "
                    f"(UTF-16 with a byte-order mark is read too)")
        if char == "\x00":
            return "holds a NUL byte (a UTF-16 file without a byte-order mark? save it as UTF-8)"
    return None


def check_columns(
    path: Path, names: Sequence[str], known: Sequence[str], required: Sequence[str], line: int = 1
) -> None:
    """Refuse unknown, repeated and missing columns, naming the closest known name."""
    seen: set[str] = set()
    for name in names:
        if name.startswith(NOTE_PREFIX):
            continue
        if name in seen:
            raise CatalogError(path, f"column {name!r} is given twice", line=line, field=name)
        seen.add(name)
        if name not in known:
            raise CatalogError(path, unknown_column_message(path, name, known), line=line, field=name)
    missing = [name for name in required if name not in seen]
    if missing:
        raise CatalogError(path, f"missing column(s) {', '.join(missing)}; the header is {list(names)}", line=line)


def unknown_column_message(path: Path, name: str, known: Sequence[str], what: str = "column") -> str:
    """``unknown column 'seler' in listings.csv (did you mean 'seller'?)``, with the valid names."""
    close = [k for k in known if k == name.strip().lower()] or difflib.get_close_matches(
        name.strip().lower(), list(known), n=1, cutoff=0.6)
    hint = ""
    if close:
        hint = f" (did you mean {close[0]!r}?" + (" names are lower case)" if close[0] == name.lower() else ")")
    return (f"unknown {what} {name!r} in {path.name}{hint}; known: {', '.join(known)} "
            f"(prefix a note column with {NOTE_PREFIX!r})")


def _parse_line(line: str) -> list[str]:
    """The fields of one CSV line; raises csv.Error when a quote is not closed on it."""
    fields = next(csv.reader([line], strict=True, skipinitialspace=True), [])
    return [f.strip() for f in fields]


def csv_rows(path: Path, known: Sequence[str], required: Sequence[str]) -> Iterator[tuple[int, Row | CatalogError]]:
    """Rows of a CSV file, one per line, after checking the header."""
    header: list[str] | None = None
    for number, line in _lines(read_text(path)):
        if not line.strip():
            continue
        problem = _text_problem(line)
        if header is None:
            if problem is not None:
                raise CatalogError(path, problem, line=number)
            header = _header(path, number, line, known, required)
        elif problem is not None:
            yield number, CatalogError(path, problem, line=number)
        else:
            yield number, _csv_row(path, number, line, header)
    if header is None:
        raise CatalogError(path, "file is empty (no header line)")


def _header(path: Path, number: int, line: str, known: Sequence[str], required: Sequence[str]) -> list[str]:
    try:
        names = _parse_line(line)
    except csv.Error as exc:
        raise CatalogError(path, f"cannot parse the header ({exc})", line=number) from None
    check_columns(path, names, known, required, number)
    return names


def _csv_row(path: Path, number: int, line: str, header: list[str]) -> Row | CatalogError:
    try:
        fields = _parse_line(line)
    except csv.Error as exc:
        if "field limit" in str(exc):
            return CatalogError(path, f"a field is longer than {MAX_FIELD:,} characters; row skipped", line=number)
        return CatalogError(path, f"a quote is not closed on this line, or stray text follows one ({exc}); "
                                  f"a field may not span lines", line=number)
    if any(len(f) > MAX_FIELD for f in fields):
        return CatalogError(path, f"a field is longer than {MAX_FIELD:,} characters; row skipped", line=number)
    if len(fields) != len(header):
        return CatalogError(path, f"has {len(fields)} fields but the header has {len(header)} (a missing or "
                                  f"extra comma, or an unquoted comma in a field?)", line=number)
    return {name: value for name, value in zip(header, fields) if not name.startswith(NOTE_PREFIX)}


def jsonl_rows(path: Path, known: Sequence[str]) -> Iterator[tuple[int, Row | CatalogError]]:
    """Rows of a JSON Lines file: one object a line, keys checked like CSV columns (per line)."""
    for number, line in _lines(read_text(path)):
        if not line.strip():
            continue
        problem = _text_problem(line)
        yield number, CatalogError(path, problem, line=number) if problem else _json_row(path, number, line, known)


class _RepeatedKey(ConfigError):
    pass


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen.add(key)
    return dict(pairs)


def _json_row(path: Path, number: int, line: str, known: Sequence[str]) -> Row | CatalogError:
    if len(line) > MAX_FIELD * 4:
        return CatalogError(path, f"line is longer than {MAX_FIELD * 4:,} characters; row skipped", line=number)
    try:
        data = json.loads(line, object_pairs_hook=_no_repeated_keys)
    except _RepeatedKey as exc:
        return CatalogError(path, f"field {exc.args[0]!r} is given twice", line=number, field=exc.args[0])
    except json.JSONDecodeError as exc:
        return CatalogError(path, f"not valid JSON ({exc.msg}, column {exc.colno})", line=number)
    except RecursionError:
        return CatalogError(path, "not valid JSON (nested too deeply)", line=number)
    if not isinstance(data, dict):
        return CatalogError(path, "a line must be a JSON object", line=number)
    row: Row = {}
    for key, value in data.items():
        if key.startswith(NOTE_PREFIX):
            continue
        if key not in known:
            return CatalogError(path, unknown_column_message(path, key, known, "field"), line=number, field=key)
        if value is None:
            row[key] = ""
        elif isinstance(value, str) and len(value) > MAX_FIELD:
            return CatalogError(path, f"longer than {MAX_FIELD:,} characters; row skipped", line=number, field=key)
        elif isinstance(value, str):
            row[key] = value.strip()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            row[key] = value
        else:
            return CatalogError(path, f"must be text or a number, got {type(value).__name__}", line=number,
                                field=key)
    return row


def table_rows(
    path: str | Path, known: Sequence[str], required: Sequence[str]
) -> Iterator[tuple[int, Row | CatalogError]]:
    """Rows of a CSV or JSON Lines (``.jsonl``, ``.ndjson``) file; file-level problems raise CatalogError."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(path, "file not found")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return jsonl_rows(path, known)
    return csv_rows(path, known, required)


def text(row: Row, name: str) -> str:
    """A field as text ('' when absent); JSON numbers are written the way Python prints them."""
    value = row.get(name, "")
    return value if isinstance(value, str) else repr(value)
