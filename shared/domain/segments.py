"""How many SMS segments a text costs, by the rules of GSM 03.38 and the UCS-2 fallback.

A text whose every character is in the GSM 7-bit alphabet travels as septets: 160 in one
part, 153 per part once split (the user-data header takes the rest). Any other character
switches the whole text to UCS-2: 70 UTF-16 code units in one part, 67 per part. The
extension characters cost two septets (an escape, then the character) and a character
outside the BMP two code units; neither pair may be split across parts, so parts are packed
greedily instead of dividing the length.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The basic set of GSM 03.38 (0x1B is the escape itself, not a character one can send).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Sent as an escape plus one septet.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

# (units in a single part, units per part once split)
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True, slots=True)
class SmsParts:
    """What a text costs: its encoding, its length in that encoding's units, its parts."""

    encoding: str
    units: int
    segments: int
    forced_by: str | None


def count_segments(text: str) -> SmsParts:
    """Encoding, units and segments of `text` as it will be sent; empty text is 1 segment."""
    forced_by = next((c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION), None)
    encoding = GSM7 if forced_by is None else UCS2
    costs = [unit_cost(c, encoding) for c in text]
    single, per_part = LIMITS[encoding]
    units = sum(costs)
    segments = 1 if units <= single else packed_parts(costs, per_part)
    return SmsParts(encoding=encoding, units=units, segments=segments, forced_by=forced_by)


# ASCII characters outside GSM-7: the backtick and control characters but LF, CR and FF.
ASCII_OUTSIDE_GSM7 = frozenset(
    chr(c) for c in range(128) if chr(c) not in GSM7_BASIC and chr(c) not in GSM7_EXTENSION
)
ASCII_EXTENSION = tuple(c for c in GSM7_EXTENSION if c.isascii())


def segment_count(text: str) -> int:
    """count_segments(text).segments, without a pass in Python over a short ASCII text.

    The sender counts every message it sends: most are short GSM-7 texts in ASCII.
    """
    if text.isascii() and ASCII_OUTSIDE_GSM7.isdisjoint(text):
        septets = len(text) + sum(text.count(c) for c in ASCII_EXTENSION)
        if septets <= LIMITS[GSM7][0]:
            return 1
    return count_segments(text).segments


def unit_cost(character: str, encoding: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) one character takes."""
    if encoding == GSM7:
        return 2 if character in GSM7_EXTENSION else 1
    return 2 if ord(character) > 0xFFFF else 1


def packed_parts(costs: list[int], per_part: int) -> int:
    """Parts needed when each character's units must stay within one part."""
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return parts


def limit_reason(parts: SmsParts, limit: int, recipients: int | None = None) -> str:
    """Why a text is refused: "renders to 12 segments (UCS-2, forced by 'Ж'); at most 10".

    `recipients`: how many recipients it renders so for, when the text varies by recipient.
    """
    return limit_reason_for(str(parts.segments), parts, limit, recipients)


def limit_reason_for(count: str, parts: SmsParts, limit: int, recipients: int | None) -> str:
    """limit_reason with the count spelled by the caller ("11 to 12" over an audience)."""
    encoding = parts.encoding
    if parts.forced_by is not None:
        encoding += f", forced by {parts.forced_by!r}"
    whom = ""
    if recipients is not None:
        whom = f" for {recipients} recipient{'' if recipients == 1 else 's'}"
    return f"renders to {count} segments{whom} ({encoding}); at most {limit}"
