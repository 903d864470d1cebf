"""storable_text_error(value): why PostgreSQL's UTF8 text would refuse a string, if it would.

A UTF8 database stores every Unicode scalar value but NUL, in text, text[] and jsonb alike.
Python strings can also hold surrogates (json.loads turns an unpaired "\\ud800" escape into
one), which have no UTF-8 form at all. Those two are the whole list.
"""

from __future__ import annotations

import re

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text_error(value: str) -> str | None:
    """The reason PostgreSQL cannot store the text, or None when it can."""
    found = UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain NUL characters"
    return f"must be Unicode text: U+{ord(found.group()):04X} is a lone surrogate"


def storable_text(value: str) -> str:
    """The text with every character PostgreSQL cannot store replaced by U+FFFD.

    For text Herald did not choose and must keep anyway: a gateway's or relay's error reply.
    """
    return UNSTORABLE.sub("\ufffd", value)
