"""Hypothesis strategies: any text a JSON body can carry, lone surrogates and NUL included."""

from __future__ import annotations

from hypothesis import strategies as st

# st.text() folds several character strategies into one alphabet by code point, where the
# 2,048 surrogates are lost among 1.1 million; drawing characters one by one keeps them common.
CHARACTERS = st.one_of(
    st.characters(exclude_categories=()),  # any code point, category Cs included
    st.characters(categories=["Cs"]),
    st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "😀", "\u202e", "\ufeff"]),
)


def any_text(max_size: int = 24) -> st.SearchStrategy[str]:
    """Strings of any code points: surrogates, NUL, controls, astral and unassigned ones."""
    return st.lists(CHARACTERS, max_size=max_size).map("".join)
