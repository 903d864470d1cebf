"""Stream a CSV or JSON array of clients in chunks; one upsert per chunk; reasons for rejects.

The body is parsed incrementally, so memory stays bounded by the chunk size, not the body size.
All chunks share one transaction: a body that turns out to be broken halfway stores nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import ijson
from sqlalchemy import Connection, Engine

from services.api.core.surrogates import SurrogateEscapes, restore_surrogates
from shared.db.queries.clients import upsert_clients
from shared.domain.text import storable_text_error
from shared.errors import InvalidInput

CHUNK_ROWS = 2_000
MAX_REPORTED_ERRORS = 1_000
MAX_DEPTH = 32  # of one record; a client is 3 deep at most
CSV_COLUMNS = ("phone", "operator_code", "tags", "timezone", "email")
TAG_SEPARATORS = str.maketrans({"|": ";"})

BodyKind = Literal["json", "csv"]
# Turns one raw record into column values, or raises InvalidInput with per-field reasons.
RowValidator = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record that cannot be a client whatever its values: not an object, too many cells."""

    phone: Any
    reasons: dict[str, Any]


Record = Mapping[str, Any] | Unreadable
NOT_AN_OBJECT = Unreadable(None, {"_schema": ["must be a JSON object"]})


@dataclass(slots=True)
class ImportReport:
    created: int = 0
    updated: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, row: int, phone: Any, reasons: Mapping[str, Any]) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": row, "phone": phone, "errors": dict(reasons)})


@dataclass(slots=True)
class Chunk:
    """Valid rows waiting for their upsert, keyed by phone so the last duplicate wins."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    superseded: int = 0

    def add(self, row: dict[str, Any]) -> None:
        if row["phone"] in self.rows:
            self.superseded += 1
        self.rows[row["phone"]] = row

    def __len__(self) -> int:
        return len(self.rows) + self.superseded


def import_clients(
    engine: Engine,
    stream: IO[bytes],
    kind: BodyKind,
    validate: RowValidator,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Upsert every valid record by phone; report counts and the reasons for rejected ones."""
    report = ImportReport()
    body = buffered(stream)
    records = json_records(body) if kind == "json" else csv_records(body)
    with engine.begin() as conn:
        chunk = Chunk()
        for number, record in enumerate(records, start=1):
            if isinstance(record, Unreadable):
                report.reject(number, record.phone, record.reasons)
                continue
            try:
                chunk.add(validate(record))
            except InvalidInput as exc:
                report.reject(number, record.get("phone"), exc.field_errors)
            if len(chunk) >= chunk_rows:
                store(conn, chunk, report)
                chunk = Chunk()
        store(conn, chunk, report)
    return report


def buffered(stream: IO[bytes]) -> IO[bytes]:
    """A buffered reader over a raw request stream.

    Werkzeug's input stream reads a zero-byte read(0) as a client disconnect, and the JSON
    parser probes with read(0); a BufferedReader answers that probe itself.
    """
    if isinstance(stream, io.RawIOBase):
        return io.BufferedReader(stream, buffer_size=64 * 1024)
    return stream


def store(conn: Connection, chunk: Chunk, report: ImportReport) -> None:
    created, updated = upsert_clients(conn, list(chunk.rows.values()))
    report.created += created
    # A phone repeated within the body updates what its earlier occurrence created.
    report.updated += updated + chunk.superseded


def json_records(stream: IO[bytes]) -> Iterator[Record]:
    """Yield each element of a top-level JSON array, parsed incrementally.

    Built from ijson's basic events rather than its prefixed ones: prefixes grow with the
    nesting, so a small, deeply nested body would cost memory quadratic in its depth.
    """
    escaped = SurrogateEscapes(stream)
    events = ijson.basic_parse(escaped, use_float=True)
    try:
        first = next(events, None)
        if first is None or first[0] != "start_array":
            raise InvalidInput("the body must be a JSON array of client objects")
        for record in array_items(events):
            yield restore_surrogates(record) if escaped.has_marked else record
    except ijson.JSONError as exc:
        reason = str(exc).splitlines()[0]
        raise InvalidInput(f"the body is not valid JSON: {reason}") from exc
    except UnicodeDecodeError as exc:
        # yajl checks only the shape of UTF-8: encoded surrogates pass it, then fail here.
        raise InvalidInput(f"the body is not valid JSON: not UTF-8: {exc.reason}") from exc


def array_items(events: Iterator[tuple[str, Any]]) -> Iterator[Record]:
    """Assemble the items of an array whose start_array has been read; cap their depth."""
    builder, depth = ijson.ObjectBuilder(), 0
    for event, value in events:
        if depth == 0 and event not in ("start_map", "start_array"):
            if event != "end_array":
                yield NOT_AN_OBJECT  # a scalar item
            continue
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidInput(f"the body nests deeper than {MAX_DEPTH} levels")
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                yield builder.value if isinstance(builder.value, dict) else NOT_AN_OBJECT
                builder = ijson.ObjectBuilder()


def csv_records(stream: IO[bytes]) -> Iterator[Record]:
    """Yield one client-shaped record per CSV row; unknown columns become attributes.

    Encoded surrogates (as CESU-8 exports write) decode to lone surrogates, so they cost only
    their row, as a "\\ud800" escape does in JSON; other bytes that are not UTF-8 refuse the body.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogatepass", newline="")
    try:
        reader = csv.reader(text)
        header = read_header(reader)
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            yield csv_record(header, cells)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid UTF-8 CSV: {exc}") from exc
    finally:
        text.detach()


def read_header(reader: Iterator[list[str]]) -> list[str]:
    header = next(reader, None)
    if header is None:
        raise InvalidInput("the CSV body is empty; it needs a header row naming a phone column")
    names = [normalise_column(name) for name in header]
    if "phone" not in names:
        raise InvalidInput("the CSV header must name a phone column")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates or "" in names:
        raise InvalidInput(f"the CSV header has empty or repeated columns: {duplicates}")
    # Other columns are stored as attribute names: one that cannot be would fail every row.
    for number, name in enumerate(names, start=1):
        reason = storable_text_error(name)
        if reason is not None:
            raise InvalidInput(f"the CSV header's column {number} {reason}")
    return names


def normalise_column(name: str) -> str:
    stripped = name.strip()
    return stripped.lower() if stripped.lower() in CSV_COLUMNS else stripped


def csv_record(header: list[str], cells: list[str]) -> Record:
    """Map a row onto client fields: empty cells mean 'not given'."""
    if len(cells) > len(header):
        phone = cells[header.index("phone")]
        return Unreadable(phone, {"_schema": [f"{len(cells)} cells for {len(header)} columns"]})
    record: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for name, cell in zip(header, cells, strict=False):
        value = cell.strip()
        if name == "phone":
            record["phone"] = value
        elif name == "tags":
            record["tags"] = [tag.strip() for tag in value.translate(TAG_SEPARATORS).split(";")]
            record["tags"] = [tag for tag in record["tags"] if tag]
        elif name == "email":
            record["email"] = value or None
        elif name in CSV_COLUMNS:
            if value:
                record[name] = value
        elif value:
            attributes[name] = value
    record["attributes"] = attributes
    return record
