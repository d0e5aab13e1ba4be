"""Properties of the value objects: ISRC, catalogue id, user id, library item id."""

from __future__ import annotations

import re
import string
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidCatalogId, InvalidIsrc, InvalidLibraryItemId, InvalidUserId
from domain.library import LibraryItemKind
from domain.values import CatalogId, CatalogIdForm, Isrc, parse_library_item_id, parse_user_id

# Huge generated strings make single examples slow, never wrong: no deadline.
properties = settings(max_examples=150, deadline=None)

UPPER = string.ascii_uppercase
ALNUM = string.ascii_uppercase + string.digits
DIGITS = string.digits

# Characters that tempt a lax parser: other scripts' digits, letters whose upper case is ASCII
# (sharp s -> "SS", dotless i -> "I", long s -> "S", ligature ff -> "FF"), fullwidth forms,
# controls, odd spaces and hyphens.
TRICKY = (
    "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660"  # Arabic-Indic digits
    "\uff10\uff11\uff12\uff13\uff21\uff22\uff23"  # fullwidth 0-3, A-C
    "\u00df\u0131\u017f\ufb00\u212a"  # sharp s, dotless i, long s, ff, Kelvin sign
    "\u00a0\u2009\u3000\t\n\r\x00\x1c\x7f\u200b\ufeff"  # spaces and controls
    "\uff0d\u2010"  # fullwidth hyphen-minus, hyphen
)

# Strings built from ISRC-ish pieces and tricky characters find far more edge cases than st.text().
isrcish_text = st.text(alphabet=st.sampled_from(ALNUM + "- " + TRICKY + "abcxyz"), max_size=30)
any_text = st.one_of(
    st.text(),
    isrcish_text,
    st.text(alphabet=st.characters(codec="utf-8"), min_size=60, max_size=5000),
)


def _chars(alphabet: str, n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=n, max_size=n)


valid_isrc = st.builds(
    lambda cc, reg, yy, nnnnn: cc + reg + yy + nnnnn,
    _chars(UPPER, 2),
    _chars(ALNUM, 3),
    _chars(DIGITS, 2),
    _chars(DIGITS, 5),
)


@st.composite
def decorated(draw: st.DrawFn, normal: str) -> str:
    """The ISRC with random case, and hyphens or spaces before, between and after its characters."""
    out = []
    for ch in normal:
        out.append(draw(st.text(alphabet="- ", max_size=2)))
        out.append(ch.lower() if draw(st.booleans()) else ch)
    out.append(draw(st.text(alphabet="- ", max_size=2)))
    return "".join(out)


@st.composite
def valid_and_decorated(draw: st.DrawFn) -> tuple[str, str]:
    normal = draw(valid_isrc)
    return normal, draw(decorated(normal))


def _is_isrc_after_normalising(raw: str) -> bool:
    """The oracle: the rule of design.md section 2 written a second, independent way."""
    if len(raw) > 64 or not raw.isascii():
        return False
    stripped = raw.replace("-", "").replace(" ", "").upper()
    return re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}", stripped) is not None


# -- Isrc --------------------------------------------------------------------------------------


@properties
@given(valid_and_decorated())
def test_every_decorated_valid_isrc_parses_to_its_plain_upper_case_form(
    pair: tuple[str, str],
) -> None:
    normal, raw = pair
    assert Isrc.parse(raw).value == normal
    assert str(Isrc.parse(raw)) == normal


@properties
@given(st.one_of(valid_and_decorated().map(lambda pair: pair[1]), any_text))
def test_parsing_is_idempotent(raw: str) -> None:
    try:
        once = Isrc.parse(raw)
    except InvalidIsrc:
        return
    assert Isrc.parse(str(once)) == once
    assert len(once.value) == 12


@properties
@given(st.one_of(any_text, valid_and_decorated().map(lambda pair: pair[1])))
def test_any_string_either_parses_per_the_grammar_or_raises_invalid_isrc(raw: str) -> None:
    # Anything other than InvalidIsrc escaping here fails the test.
    try:
        parsed: Isrc | None = Isrc.parse(raw)
    except InvalidIsrc as error:
        assert error.raw == raw
        parsed = None
    assert (parsed is not None) == _is_isrc_after_normalising(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "USRC1760783",  # 11 characters
        "USRC176078390",  # 13 characters
        "1SRC17607839",  # country must be letters
        "USRC1A607839",  # year must be digits
        "USRC17607B39",  # designation must be digits
        "USRC17607839\n",
        "US\tRC17607839",
        "USRC1760783\u0661",  # Arabic-Indic digit
        "USRC176078\uff13\uff19",  # fullwidth digits
        "\u00dfRC17607839",  # sharp s upper-cases to "SS", which would make a valid ISRC
        "\u0131SRC17607839",  # dotless i upper-cases to 'I'
        "-" * 60 + "USRC17607839",  # longer than the 64 characters accepted
        "\u0661\u0662\u0663",
        "\x00" * 12,
    ],
)
def test_a_malformed_isrc_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidIsrc):
        Isrc.parse(raw)


@pytest.mark.parametrize("raw", ["A" * 1_000_000, "\u0661" * 100_000, "\ud800" * 20])
def test_a_huge_or_unencodable_string_is_rejected_as_an_isrc(raw: str) -> None:
    with pytest.raises(InvalidIsrc):
        Isrc.parse(raw)


def test_constructing_an_isrc_directly_requires_the_normal_form() -> None:
    with pytest.raises(InvalidIsrc):
        Isrc("usrc17607839")
    assert Isrc("USRC17607839").value == "USRC17607839"


def test_the_point_id_is_uuid5_of_the_namespaced_isrc() -> None:
    expected = str(uuid.uuid5(uuid.NAMESPACE_URL, "isrc:USRC17607839"))
    assert Isrc.parse("USRC17607839").point_id == expected
    assert Isrc.parse("us-rc1-76-07839").point_id == expected
    assert Isrc.parse(" US RC1 76 07839 ").point_id == expected


@properties
@given(valid_and_decorated())
def test_every_spelling_of_an_isrc_has_the_same_point_id(pair: tuple[str, str]) -> None:
    normal, raw = pair
    expected = str(uuid.uuid5(uuid.NAMESPACE_URL, "isrc:" + normal))
    assert Isrc.parse(raw).point_id == expected


@properties
@given(valid_isrc, valid_isrc)
def test_distinct_isrcs_have_distinct_point_ids(a: str, b: str) -> None:
    assert (Isrc(a).point_id == Isrc(b).point_id) == (a == b)


# -- CatalogId ---------------------------------------------------------------------------------


@properties
@given(st.text(alphabet=DIGITS, min_size=1, max_size=20))
def test_one_to_twenty_ascii_digits_are_a_catalog_id(raw: str) -> None:
    assert CatalogId.parse(raw).value == raw
    assert str(CatalogId(raw)) == raw


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "1" * 21,
        "12a4",
        "abc",
        "\u0661\u0662\u0663",
        "\uff11\uff12\uff13",
        "12 34",
        "12\t34",
        "-1",
        "+1",
        "1.0",
        "0x1F",
        "1_000",
        "\x00",
    ],
)
def test_anything_but_ascii_digits_is_not_a_catalog_id(raw: str) -> None:
    with pytest.raises(InvalidCatalogId):
        CatalogId.parse(raw)


@properties
@given(st.one_of(st.text(), st.text(alphabet=DIGITS + TRICKY + "-+ ab", max_size=25)))
def test_any_string_either_parses_as_its_digits_or_raises_invalid_catalog_id(raw: str) -> None:
    # The parser tolerates surrounding whitespace (str.strip); nothing else.
    try:
        parsed: CatalogId | None = CatalogId.parse(raw)
    except InvalidCatalogId:
        parsed = None
    expected = len(raw) <= 64 and re.fullmatch(r"[0-9]{1,20}", raw.strip()) is not None
    assert (parsed is not None) == expected
    if parsed is not None:
        assert parsed.value == raw.strip()


@pytest.mark.parametrize("raw", ["\r", " abc ", "\t12 34\n", "\u3000x"])
def test_an_invalid_catalog_id_is_reported_as_the_caller_sent_it(raw: str) -> None:
    # Clients match the error against what they sent; the stripped form would not match.
    with pytest.raises(InvalidCatalogId) as refused:
        CatalogId.parse(raw)
    assert refused.value.raw == raw


def test_a_huge_string_is_not_a_catalog_id() -> None:
    with pytest.raises(InvalidCatalogId):
        CatalogId.parse("1" * 1_000_000)


# -- a playlist's catalogue id: a UUID (ADRs 0027, 0029) ----------------------------------------

CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@properties
@given(st.uuids(), st.booleans(), st.sampled_from(["", " ", "\t", "\n "]))
def test_a_uuid_in_any_case_with_blanks_around_is_a_playlist_id_stored_in_lower_case(
    value: uuid.UUID, upper: bool, blank: str
) -> None:
    text = str(value).upper() if upper else str(value)

    parsed = CatalogId.parse(blank + text + blank, CatalogIdForm.UUID)

    assert parsed.value == str(value)
    assert CatalogId(parsed.value) == parsed


@properties
@given(st.one_of(st.text(), st.text(alphabet="0123456789abcdefABCDEF-{} " + TRICKY, max_size=40)))
def test_any_string_either_parses_as_a_canonical_uuid_or_raises_invalid_catalog_id(
    raw: str,
) -> None:
    try:
        parsed: CatalogId | None = CatalogId.parse(raw, CatalogIdForm.UUID)
    except InvalidCatalogId as refused:
        assert refused.raw == raw
        parsed = None
    stripped = raw.strip()
    expected = (
        len(raw) <= 64
        and stripped.isascii()
        and CANONICAL_UUID.fullmatch(stripped.lower()) is not None
    )
    assert (parsed is not None) == expected
    if parsed is not None:
        assert parsed.value == stripped.lower()


@pytest.mark.parametrize(
    "raw",
    [
        "396698918",  # an album's id is not a playlist's
        "5a3b1e000000400080000000000000001",  # no hyphens
        "5a3b1e00000040008000000000000001",
        "{5a3b1e00-0000-4000-8000-000000000001}",
        "urn:uuid:5a3b1e00-0000-4000-8000-000000000001",
        "5a3b1e00-0000-4000-8000-00000000000g",
        "5a3b1e00-0000-4000-8000-0000000000001",
        "\uff15a3b1e00-0000-4000-8000-000000000001",
    ],
)
def test_anything_but_a_hyphenated_uuid_is_not_a_playlist_id(raw: str) -> None:
    with pytest.raises(InvalidCatalogId) as refused:
        CatalogId.parse(raw, CatalogIdForm.UUID)
    assert refused.value.raw == raw


def test_a_playlist_id_is_not_a_track_or_album_id() -> None:
    with pytest.raises(InvalidCatalogId):
        CatalogId.parse("5a3b1e00-0000-4000-8000-000000000001")


def test_each_kind_sets_the_form_of_its_ids() -> None:
    assert {kind: kind.id_form for kind in LibraryItemKind} == {
        LibraryItemKind.TRACK: CatalogIdForm.DIGITS,
        LibraryItemKind.ALBUM: CatalogIdForm.DIGITS,
        LibraryItemKind.PLAYLIST: CatalogIdForm.UUID,
    }


@properties
@given(st.text(max_size=40))
def test_a_catalog_id_holds_only_characters_safe_in_a_url_path(raw: str) -> None:
    # ADR 0027: the TIDAL adapter puts ids into paths unescaped.
    for form in CatalogIdForm:
        try:
            value = CatalogId.parse(raw, form).value
        except InvalidCatalogId:
            continue
        assert set(value) <= set("0123456789abcdef-")


# -- user id and library item id ---------------------------------------------------------------


@properties
@given(
    st.text(
        alphabet=string.ascii_letters + string.digits + "|@.-_ \u00e9", min_size=1, max_size=128
    )
)
def test_a_printable_subject_of_at_most_128_characters_is_a_user_id(raw: str) -> None:
    assert parse_user_id(raw) == raw


@pytest.mark.parametrize("raw", ["", "a" * 129, "auth0|x\n", "tab\there", "nul\x00", "\u2028"])
def test_an_empty_long_or_control_laden_subject_is_not_a_user_id(raw: str) -> None:
    with pytest.raises(InvalidUserId):
        parse_user_id(raw)


@properties
@given(any_text)
def test_any_string_either_is_a_user_id_or_raises_invalid_user_id(raw: str) -> None:
    try:
        parsed: str | None = parse_user_id(raw)
    except InvalidUserId:
        parsed = None
    expected = 0 < len(raw) <= 128 and all(ch == " " or ch.isprintable() for ch in raw)
    assert (parsed is not None) == expected


@properties
@given(st.uuids())
def test_a_library_item_id_round_trips_through_its_string_forms(value: uuid.UUID) -> None:
    assert parse_library_item_id(str(value)) == value
    assert parse_library_item_id(str(value).upper()) == value
    assert parse_library_item_id(value.hex) == value


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not-a-uuid",
        "0" * 31,
        "0" * 33,
        "0x" + "0" * 30,  # int(..., 16) takes a 0x prefix
        "0_" + "0" * 30,  # ... underscores
        "+" + "0" * 31,  # ... a sign
        " " + "0" * 31,  # ... surrounding whitespace
        "\u0661" * 32,  # ... and other scripts' digits
        "{" + "0" * 32 + "}",
        "urn:uuid:" + "0" * 32,
        "0000000-00000-0000-0000-000000000000",  # hyphens in the wrong places
        "00000000-0000-0000-0000000000000000",  # some hyphens but not all
        "g" * 32,
    ],
)
def test_a_malformed_library_item_id_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidLibraryItemId):
        parse_library_item_id(raw)


@properties
@given(st.one_of(any_text, st.text(alphabet="0123456789abcdefABCDEF-{}x_+ \u0661", max_size=40)))
def test_any_string_either_is_a_library_item_id_or_raises_invalid_library_item_id(
    raw: str,
) -> None:
    try:
        parsed: uuid.UUID | None = parse_library_item_id(raw)
    except InvalidLibraryItemId:
        parsed = None
    if parsed is not None:
        assert raw.lower() in (str(parsed), parsed.hex)
