"""The default Embedder: deterministic, normalised, and good enough to find a track by its title
or its artist among a few hundred (cosine similarity in plain Python, no Qdrant)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.embedding import FieldWeights, HashingEmbedder
from adapters.embedding.hashing import features, normalise
from application.ports.embedder import Embedder, TrackText
from tests.contracts.embedder import EmbedderContract, texts, track_texts

properties = settings(max_examples=100, deadline=None)


def _words(text: str) -> list[str]:
    return text.split()


TITLE_WORDS = _words(
    """love night blue fire dream heart city rain summer dance light shadow river golden road wild
    echo storm silver moon paper ocean glass winter morning electric velvet neon hollow sweet
    broken highway garden thunder crystal northern midnight satellite desert honey ghost mirror
    burning falling endless secret kingdom lonely radio diamond stranger"""
)
FIRST_NAMES = _words("Ana Marta Lena Jonas Kofi Yuki Omar Ines Pablo Greta Ravi Noor Elif Tomas")
LAST_NAMES = _words("Pereira Silva Okafor Lindqvist Tanaka Haddad Moreau Novak Brennan Costa")
ALBUM_WORDS = _words("songs tales sessions stories collection chapters letters notes")


def _catalogue(count: int = 300, seed: int = 20250101) -> list[TrackText]:
    """Seeded synthetic tracks: distinct titles of one to four words, 40 artists with several
    tracks each (some sharing a first name), albums shared by an artist's tracks."""
    rng = random.Random(seed)
    artists: list[str] = []
    while len(artists) < 40:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if name not in artists:
            artists.append(name)
    titles: set[str] = set()
    tracks: list[TrackText] = []
    while len(tracks) < count:
        title = " ".join(rng.sample(TITLE_WORDS, rng.randint(1, 4))).title()
        if title.casefold() in titles:
            continue
        titles.add(title.casefold())
        artist = rng.choice(artists)
        featured = (rng.choice(artists),) if rng.random() < 0.15 else ()
        album_word = ALBUM_WORDS[artists.index(artist) % len(ALBUM_WORDS)]
        tracks.append(
            TrackText(
                title=title,
                version=rng.choice([None, None, None, "Remastered 2011", "Live", "Radio Edit"]),
                artist_names=(artist, *featured),
                album_title=rng.choice([None, f"{artist.split()[1]} {album_word}".title()]),
            )
        )
    return tracks


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _rank(embedder: HashingEmbedder, vectors: list[list[float]], query: str) -> list[int]:
    """Indexes of the tracks, best first; ties kept in catalogue order (a stable sort)."""
    q = embedder.embed_query(query)
    scores = [_cosine(q, vector) for vector in vectors]
    return sorted(range(len(vectors)), key=lambda index: -scores[index])


@pytest.fixture(scope="module")
def catalogue() -> list[TrackText]:
    return _catalogue()


@pytest.fixture(scope="module")
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="module")
def vectors(embedder: HashingEmbedder, catalogue: list[TrackText]) -> list[list[float]]:
    return [embedder.embed_track(track) for track in catalogue]


def _strictly_first(embedder: HashingEmbedder, vectors: list[list[float]], query: str) -> int:
    """The top hit, asserting it is not merely first by a tie."""
    q = embedder.embed_query(query)
    scores = sorted(((_cosine(q, v), i) for i, v in enumerate(vectors)), reverse=True)
    assert scores[0][0] > scores[1][0], f"{query!r} ties between tracks"
    return scores[0][1]


# -- search quality ----------------------------------------------------------------------------


def test_a_track_is_the_top_hit_for_its_own_title(
    embedder: HashingEmbedder, catalogue: list[TrackText], vectors: list[list[float]]
) -> None:
    assert len({track.title for track in catalogue}) == 300
    misses = [
        track.title
        for index, track in enumerate(catalogue)
        if _strictly_first(embedder, vectors, track.title) != index
    ]
    assert misses == []


def test_a_track_is_the_top_hit_for_its_title_typed_in_lower_case_without_accents() -> None:
    embedder = HashingEmbedder()
    tracks = [
        TrackText("Déjà Vu", None, ("Beyoncé",), "B'Day"),
        TrackText("Deja Entendu", None, ("Brand New",), None),
        TrackText("Vu Meter", None, ("Some Band",), None),
    ]
    vectors = [embedder.embed_track(track) for track in tracks]
    assert _rank(embedder, vectors, "deja vu")[0] == 0
    assert _rank(embedder, vectors, "beyonce")[0] == 0


def test_a_track_by_the_artist_is_the_top_hit_for_an_artist_name(
    embedder: HashingEmbedder, catalogue: list[TrackText], vectors: list[list[float]]
) -> None:
    artists = sorted({name for track in catalogue for name in track.artist_names})
    assert len(artists) >= 30
    misses = [
        artist
        for artist in artists
        if artist not in catalogue[_rank(embedder, vectors, artist)[0]].artist_names
    ]
    assert misses == []


def test_an_artist_query_ranks_the_artists_own_tracks_above_a_namesakes(
    embedder: HashingEmbedder, catalogue: list[TrackText], vectors: list[list[float]]
) -> None:
    # Main artists only: a featured appearance is a weaker match, by design.
    artist = catalogue[0].artist_names[0]
    theirs = {i for i, track in enumerate(catalogue) if track.artist_names[0] == artist}
    ranking = _rank(embedder, vectors, artist)
    assert set(ranking[: len(theirs)]) == theirs


def test_a_query_with_a_typo_still_finds_the_track() -> None:
    embedder = HashingEmbedder()
    tracks = [
        TrackText("Satellite Heart", None, ("Anya Marina",), None),
        TrackText("Electric Garden", None, ("Omar Haddad",), None),
        TrackText("Midnight Highway", None, ("Greta Novak",), None),
    ]
    vectors = [embedder.embed_track(track) for track in tracks]
    assert _rank(embedder, vectors, "satelite hart")[0] == 0
    assert _rank(embedder, vectors, "midnite highway")[0] == 2


def test_the_title_weighs_more_than_the_album_title() -> None:
    embedder = HashingEmbedder()
    named_so = TrackText("Golden Road", None, ("Ana Silva",), "Other Songs")
    on_an_album_named_so = TrackText("Other Song", None, ("Kofi Costa",), "Golden Road")
    vectors = [embedder.embed_track(named_so), embedder.embed_track(on_an_album_named_so)]
    assert _rank(embedder, vectors, "Golden Road") == [0, 1]


# -- the port's contract -----------------------------------------------------------------------


class TestHashingEmbedderContract(EmbedderContract):
    @pytest.fixture
    def make_embedder(self) -> Callable[[], Embedder]:
        return lambda: HashingEmbedder(dimension=64)


@properties
@given(track_texts, texts)
def test_the_same_input_gives_the_same_vector_in_another_instance(
    track: TrackText, query: str
) -> None:
    first, second = HashingEmbedder(), HashingEmbedder()
    assert first.embed_track(track) == second.embed_track(track)
    assert first.embed_query(query) == second.embed_query(query)
    assert first.embed_query(query) == first.embed_query(query)  # through the slot cache


def test_a_vector_is_pinned_across_processes_and_releases() -> None:
    # Python's hash() is salted per process; blake2b is not. These numbers change only with
    # FEATURE_VERSION, and then the index must be rebuilt.
    vector = HashingEmbedder(dimension=16).embed_query("Love")
    assert [round(value, 6) for value in vector] == pytest.approx(EXPECTED_LOVE_16, abs=1e-6)


@properties
@given(track_texts, texts, st.integers(min_value=1, max_value=512))
def test_a_vector_has_the_configured_dimension_and_unit_norm_or_is_zero(
    track: TrackText, query: str, dimension: int
) -> None:
    embedder = HashingEmbedder(dimension=dimension)
    for vector in (embedder.embed_track(track), embedder.embed_query(query)):
        assert len(vector) == dimension
        assert all(math.isfinite(value) for value in vector)
        norm = math.sqrt(sum(value * value for value in vector))
        if any(vector):
            assert norm == pytest.approx(1.0)
        else:
            assert norm == 0.0


@properties
@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=40))
def test_any_text_with_a_letter_or_digit_gives_a_unit_vector(query: str) -> None:
    vector = HashingEmbedder().embed_query(query)
    assert math.sqrt(sum(value * value for value in vector)) == pytest.approx(1.0)


@pytest.mark.parametrize("query", ["", "   ", "!?-", "\u0301"])
def test_text_without_any_word_gives_the_zero_vector(query: str) -> None:
    assert HashingEmbedder(dimension=8).embed_query(query) == [0.0] * 8


def test_a_track_with_no_text_at_all_gives_the_zero_vector() -> None:
    empty = TrackText(title="", version=None, artist_names=(), album_title=None)
    assert HashingEmbedder(dimension=8).embed_track(empty) == [0.0] * 8


@pytest.mark.parametrize("dimension", [0, -3])
def test_a_dimension_below_one_is_refused(dimension: int) -> None:
    with pytest.raises(ValueError):
        HashingEmbedder(dimension=dimension)


def test_case_accents_and_compatibility_forms_do_not_matter() -> None:
    embedder = HashingEmbedder()
    assert embedder.embed_query("BEYONCÉ") == embedder.embed_query("beyonce")
    assert embedder.embed_query("ＡＢＣ") == embedder.embed_query("abc")  # noqa: RUF001
    assert normalise("Straße") == "strasse"


def test_a_query_equal_to_a_title_only_track_gives_the_same_direction() -> None:
    # With one field, field weights scale the vector and normalising removes the scale.
    embedder = HashingEmbedder()
    track = TrackText("Northern Lights", None, (), None)
    assert _cosine(embedder.embed_track(track), embedder.embed_query("Northern Lights")) == (
        pytest.approx(1.0)
    )


def test_a_field_weighted_zero_is_ignored() -> None:
    embedder = HashingEmbedder(field_weights=FieldWeights(album=0.0))
    with_album = TrackText("Rain", None, ("Noor",), "Anything")
    without = TrackText("Rain", None, ("Noor",), None)
    assert embedder.embed_track(with_album) == embedder.embed_track(without)


def test_the_features_of_a_text_are_the_whole_its_words_bigrams_and_marked_trigrams() -> None:
    assert set(features("Go, Love!")) == {
        "f:go love",
        "w:go",
        "w:love",
        "b:go love",
        "c:<go>",
        "c:<lo",
        "c:lov",
        "c:ove",
        "c:ve>",
    }
    repeated = features("la la la")
    assert repeated["w:la"] == pytest.approx(1.0 + math.log(3))  # sublinear tf


# 'love' as a whole (weight 2), as a word (1) and as four boundary trigrams (0.25 each), hashed
# into 16 buckets: the whole and one trigram share bucket 8, so the norm is 2.5.
EXPECTED_LOVE_16 = [
    *(-0.1, 0.0, -0.1, 0.0, 0.0, 0.0, 0.0, 0.0),
    *(0.9, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.1),
]
