"""Carry lone surrogate escapes ("\\ud800") through ijson's C parser, which would mangle them.

yajl turns a lone high surrogate into "?", two high ones into a wrong character, and raises
UnicodeDecodeError on a lone low one; json.loads keeps each as a lone surrogate, which the
schemas then refuse. SurrogateEscapes rewrites each lone escape in the raw bytes into a
marker yajl passes through (NUL, U+FDD0, the four hex digits) and restore_surrogates turns
markers back, so a record reads as json.loads would read it. A marker starts with NUL, so
no text that could be stored is ever changed by either step.
"""

from __future__ import annotations

import re
from typing import IO, Any

# Scanned left to right, an escaped backslash is consumed whole, so every "\u" matched after
# it really starts an escape. A high escape followed by a low one is a pair yajl decodes.
ESCAPES = re.compile(
    rb"\\\\"
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)
LONGEST_ESCAPE = 12  # a pair: what must be in hand before a match can be trusted
MARKER = "\x00\ufdd0"
MARKED = re.compile(MARKER + "([0-9a-fA-F]{4})")
READ_SIZE = 64 * 1024


class SurrogateEscapes:
    """A readable byte stream: the JSON body, lone surrogate escapes replaced by markers."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.held = b""
        self.has_marked = False

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        while True:
            chunk = self.stream.read(size if size > 0 else READ_SIZE)
            data, self.held = self.held + chunk, b""
            if not chunk:
                return self.rewrite(data, len(data))
            end = len(data) - LONGEST_ESCAPE
            rewritten = self.rewrite(data, end)
            if rewritten:
                return rewritten

    def rewrite(self, data: bytes, end: int) -> bytes:
        """Rewrite data up to about `end`; keep what an escape starting later may need."""
        parts, done = [], 0
        for match in ESCAPES.finditer(data):
            if match.start() > end:
                break
            parts += [data[done : match.start()], self.replacement(match.group())]
            done = match.end()
        cut = max(done, end)
        parts.append(data[done:cut])
        self.held = data[cut:]
        return b"".join(parts)

    def replacement(self, escape: bytes) -> bytes:
        if len(escape) != 6:  # an escaped backslash or a pair: yajl reads those right
            return escape
        self.has_marked = True
        return rb"\u0000\ufdd0" + escape[2:]


def restore_surrogates(value: Any) -> Any:
    """The record with every marker turned back into the lone surrogate it stands for."""
    if isinstance(value, str):
        return MARKED.sub(lambda found: chr(int(found[1], 16)), value) if MARKER in value else value
    if isinstance(value, dict):
        return {restore_surrogates(key): restore_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [restore_surrogates(item) for item in value]
    return value
