"""SMS segments: the GSM 03.38 alphabet, its extension, UCS-2, and where parts split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.segments import SmsParts, count_segments, segment_count

pytestmark = pytest.mark.unit

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = "^{}\\[~]|€\f"


def test_the_whole_basic_set_is_gsm7_one_septet_each() -> None:
    assert len(BASIC) == 127  # 128 codes less the escape
    assert count_segments(BASIC) == SmsParts("GSM-7", 127, 1, None)


@pytest.mark.parametrize("character", list(EXTENSION))
def test_every_extension_character_costs_two_septets(character: str) -> None:
    assert count_segments(character) == SmsParts("GSM-7", 2, 1, None)
    assert count_segments("a" + character * 80).segments == 2  # 161 septets


@pytest.mark.parametrize("character", ["`", "ç", "Ж", "á", "\t", "😀", "\x1b"])
def test_a_character_outside_gsm7_forces_ucs2_and_is_named(character: str) -> None:
    parts = count_segments(f"Hello {character} and Ж")
    assert parts.encoding == "UCS-2"
    assert parts.forced_by == character


def test_empty_text_is_one_segment() -> None:
    assert count_segments("") == SmsParts("GSM-7", 0, 1, None)


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm7_boundaries(length: int, segments: int) -> None:
    parts = count_segments("a" * length)
    assert (parts.encoding, parts.units, parts.segments) == ("GSM-7", length, segments)


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_boundaries(length: int, segments: int) -> None:
    parts = count_segments("Ж" * length)
    assert (parts.encoding, parts.units, parts.segments) == ("UCS-2", length, segments)


def test_an_escape_pair_at_the_153rd_septet_moves_to_the_next_part() -> None:
    # 152 septets then '€' (2): the first part cannot hold both, so 152 + 2 + 152 = 306
    # septets need three parts, where dividing 306 by 153 would say two.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text) == SmsParts("GSM-7", 306, 3, None)
    assert count_segments("a" * 151 + "€" + "a" * 153).segments == 2


def test_a_surrogate_pair_at_the_67th_unit_moves_to_the_next_part() -> None:
    text = "Ж" * 66 + "😀" + "Ж" * 66
    assert count_segments(text) == SmsParts("UCS-2", 134, 3, "Ж")
    assert count_segments("Ж" * 65 + "😀" + "Ж" * 67).segments == 2


def test_emoji_count_two_utf16_units() -> None:
    assert count_segments("😀" * 35) == SmsParts("UCS-2", 70, 1, "😀")
    assert count_segments("😀" * 36).segments == 2


def test_extension_characters_count_once_under_ucs2() -> None:
    assert count_segments("Ж" + "€" * 69) == SmsParts("UCS-2", 70, 1, "Ж")


def test_cyrillic_text() -> None:
    assert count_segments("Привет, мир") == SmsParts("UCS-2", 11, 1, "П")


def test_cedilla_capital_is_gsm7_but_not_lowercase() -> None:
    assert count_segments("Ç").encoding == "GSM-7"
    assert count_segments("ç").encoding == "UCS-2"


@given(st.text(max_size=400), st.characters())
def test_appending_a_character_never_saves_a_segment(text: str, extra: str) -> None:
    assert count_segments(text + extra).segments >= count_segments(text).segments


@given(st.text(max_size=400))
def test_parts_hold_the_units(text: str) -> None:
    parts = count_segments(text)
    single, per_part = (160, 153) if parts.encoding == "GSM-7" else (70, 67)
    if parts.segments == 1:
        assert parts.units <= single
    else:
        # Never fewer parts than dividing; at most one unit left empty per full part.
        assert (per_part - 1) * (parts.segments - 1) < parts.units <= per_part * parts.segments
        assert parts.units > single


@given(st.text(alphabet=st.sampled_from(list(BASIC + EXTENSION)), max_size=400))
def test_gsm7_text_never_names_a_forcing_character(text: str) -> None:
    parts = count_segments(text)
    assert (parts.encoding, parts.forced_by) == ("GSM-7", None)


@given(st.text(alphabet=st.sampled_from("ab `{€é\x01\nЖ😀^"), max_size=400))
def test_the_senders_quick_count_always_agrees_with_the_full_count(text: str) -> None:
    assert segment_count(text) == count_segments(text).segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a" * 160, 1), ("a" * 161, 2), ("{" * 80, 1), ("{" * 81, 2), ("`", 1), ("`" * 71, 2)],
)
def test_the_quick_count_at_its_boundaries(text: str, expected: int) -> None:
    assert segment_count(text) == expected
