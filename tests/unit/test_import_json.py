"""The import's JSON reader reads what json.loads reads, lone surrogate escapes included.

yajl, ijson's C parser, mangles lone surrogate escapes; SurrogateEscapes carries them through
in markers. Records are compared with json.loads whatever sizes the body arrives in.
"""

from __future__ import annotations

import json
from typing import IO, Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.api.core.importer import json_records
from shared.errors import InvalidInput
from tests.support.strategies import any_text


class Trickle:
    """A body that arrives in the given read sizes, as a slow client's would."""

    def __init__(self, body: bytes, sizes: list[int]) -> None:
        self.body, self.sizes, self.at = body, sizes, 0

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # ijson probes with read(0) whether the body is bytes
        step = self.sizes[self.at % len(self.sizes)] if self.sizes else size
        wanted = min(step, size) if size > 0 else step
        chunk = self.body[self.at : self.at + wanted]
        self.at += len(chunk)
        return chunk


def read_all(body: bytes, sizes: list[int] | None = None) -> list[Any]:
    return list(json_records(cast(IO[bytes], Trickle(body, sizes or []))))


@pytest.mark.parametrize(
    "value",
    [
        "\ud800",
        "a\udc00b",
        "\ud800\ud800",
        "\udbff\udfff",
        "😀",
        "\\ud800 written out",
        "\\\ud800",
        "x\\\\\udbff",
        "\ud83d\\ude00",
        "\x00\ufdd0d800",
    ],
)
def test_a_string_reads_as_json_loads_reads_it(value: str) -> None:
    body = json.dumps([{"v": value, value: [value]}]).encode()

    for sizes in ([], [1], [5, 2, 11, 13]):
        assert read_all(body, sizes) == json.loads(body)


record = st.dictionaries(
    any_text(8), st.one_of(any_text(), st.lists(any_text(), max_size=3)), max_size=4
)


@settings(max_examples=200)
@given(
    records=st.lists(record, max_size=4),
    ascii_only=st.booleans(),
    sizes=st.lists(st.integers(1, 40), max_size=6),
)
def test_any_records_read_as_json_loads_reads_them(
    records: list[dict[str, Any]], ascii_only: bool, sizes: list[int]
) -> None:
    # Non-ASCII written raw, surrogates as escapes: how a UTF-8 JSON encoder writes them.
    body = json.dumps(records, ensure_ascii=ascii_only).encode("utf-8", "backslashreplace")

    assert read_all(body, sizes) == json.loads(body)


def test_encoded_surrogates_are_not_utf8_json() -> None:
    body = '[{"v": "\ud800"}]'.encode("utf-8", "surrogatepass")

    with pytest.raises(InvalidInput, match="not valid JSON: not UTF-8"):
        read_all(body)
