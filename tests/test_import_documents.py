"""Every fast path's ID check (``columnar.plain_documents``) against the row path's (``identity.normalise``):
a row's document is plain exactly when the row path accepts it and has nothing to rewrite."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.importers.columnar import plain_documents
from connectors.importers.identity import BadId, normalise
from tracer.documents import check_digit

_KINDS = st.sampled_from(["id_card", "passport", "permit", "card", None])
_DIGITS = st.text("0123456789", min_size=17, max_size=17)


@st.composite
def _numbers(draw: st.DrawFn) -> str | None:
    body = draw(_DIGITS)
    return draw(st.one_of(
        st.just(body + check_digit(body)),  # a valid ID card number
        st.just(body + draw(st.sampled_from("0123456789X"))),  # its check character right or wrong
        st.just(body[:15]),  # first generation: valid, but rewritten to 18 digits
        st.just((body + check_digit(body)).lower()),
        st.just(body + check_digit(body) + draw(st.sampled_from("0X "))),  # one character too many
        st.just(body[:draw(st.sampled_from([4, 5, 16]))]),
        st.text("ABCXYZ0123456789", min_size=1, max_size=1).map(lambda c: c * draw(st.sampled_from([4, 5, 32, 33]))),
        st.text("ABCDEFGHXYZ0123456789", min_size=0, max_size=40),  # passports, permits, cards, any length
        st.text("abc 0123456789xX-", max_size=20),  # lower case, spaces, punctuation
        st.text(max_size=20),  # anything, full-width and control characters included
        st.none(),
    ))


def _row_path(kind: str | None, number: str | None) -> bool:
    if kind is None or number is None:
        return False
    try:
        return normalise(kind, number) == number
    except BadId:
        return False


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_KINDS, _numbers()), min_size=1, max_size=30))
def test_a_document_is_plain_exactly_when_the_row_path_takes_it_unchanged(rows: list[tuple[str | None, str | None]]):
    frame = pl.DataFrame({"kind": [kind for kind, _ in rows], "number": [number for _, number in rows]},
                         schema={"kind": pl.String, "number": pl.String})
    assert plain_documents(frame, "kind", "number").to_list() == [_row_path(*row) for row in rows]
