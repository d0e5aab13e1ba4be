"""The labelled query set: 402 real-looking tracks (catalogue.tsv) and queries of six kinds,
each with the tracks that answer it (ADR 0030).

Exact titles, artist names and one-edit typos are derived from the catalogue; partial titles,
hand-made typos, descriptive queries, nonsense and off-topic queries are written in
queries.tsv. A query answered by several tracks (two songs called 'Hallelujah', every track of
an artist) counts as found when any of them is.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from application.ports.embedder import TrackText
from domain.values import Isrc

HERE = Path(__file__).parent
KINDS = ("exact", "partial", "artist", "typo", "descriptive", "nonsense", "off-topic")
# Kinds whose right answer is nothing at all.
EMPTY_KINDS = frozenset({"nonsense", "off-topic"})
VOWELS = "aeiou"


@dataclass(frozen=True, slots=True)
class LabelledTrack:
    isrc: Isrc
    track_id: str
    text: TrackText


@dataclass(frozen=True, slots=True)
class LabelledQuery:
    kind: str
    text: str
    relevant: frozenset[Isrc]


def _rows(name: str) -> Iterator[list[str]]:
    with (HERE / name).open(encoding="utf-8", newline="") as file:
        for row in csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row and not row[0].startswith("#"):
                yield row


def catalogue() -> list[LabelledTrack]:
    tracks = []
    for n, (title, version, artists, album) in enumerate(_rows("catalogue.tsv"), start=1):
        tracks.append(
            LabelledTrack(
                isrc=Isrc(f"QZSQL{n:07d}"),
                track_id=str(700_000 + n),
                text=TrackText(
                    title=title,
                    version=version or None,
                    artist_names=tuple(name.strip() for name in artists.split(";")),
                    album_title=album or None,
                ),
            )
        )
    return tracks


def _key(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def typo_of(title: str, n: int) -> str | None:
    """One edit in the title's longest word of five letters or more (deleted, swapped or
    vowel-changed letter, by turns), or None when it has no such word."""
    words = title.split(" ")
    candidates = [i for i, word in enumerate(words) if len(word) >= 5 and word.isalpha()]
    if not candidates:
        return None
    at = max(candidates, key=lambda i: len(words[i]))
    word = words[at]
    middle = len(word) // 2
    edit = n % 3
    if edit == 1 and word[middle - 1] != word[middle]:
        word = word[: middle - 1] + word[middle] + word[middle - 1] + word[middle + 1 :]
    elif edit == 2 and any(ch in VOWELS for ch in word[1:]):
        i = next(i for i in range(1, len(word)) if word[i] in VOWELS)
        word = word[:i] + VOWELS[(VOWELS.index(word[i]) + 1) % len(VOWELS)] + word[i + 1 :]
    else:
        word = word[:middle] + word[middle + 1 :]
    words[at] = word
    return " ".join(words)


def queries(tracks: Sequence[LabelledTrack]) -> list[LabelledQuery]:
    by_title: dict[str, set[Isrc]] = {}
    by_artist: dict[str, set[Isrc]] = {}
    for track in tracks:
        by_title.setdefault(_key(track.text.title), set()).add(track.isrc)
        for name in track.text.artist_names:
            by_artist.setdefault(name, set()).add(track.isrc)
    labelled: list[LabelledQuery] = []
    titles = sorted({track.text.title for track in tracks})
    for title in titles:
        labelled.append(LabelledQuery("exact", title, frozenset(by_title[_key(title)])))
    for name in sorted(by_artist):
        labelled.append(LabelledQuery("artist", name, frozenset(by_artist[name])))
    for n, title in enumerate(titles):
        typo = typo_of(title, n)
        if typo is not None:
            labelled.append(LabelledQuery("typo", typo, frozenset(by_title[_key(title)])))
    for kind, text, relevant in _rows("queries.tsv"):
        if kind not in KINDS:
            raise ValueError(f"queries.tsv: unknown kind {kind!r}")
        answers: set[Isrc] = set()
        for title in filter(None, relevant.split("|")):
            found = by_title.get(_key(title))
            if found is None:
                raise ValueError(f"queries.tsv: {title!r} ({text!r}) is not in the catalogue")
            answers |= found
        labelled.append(LabelledQuery(kind, text, frozenset(answers)))
    return labelled


@dataclass(frozen=True, slots=True)
class KindScore:
    """One kind's figures: recall@1 (the first hit answers the query), MRR@10 (the mean of 1 /
    the rank of the first answering hit in the top ten, 0 when none), and how often the search
    answered nothing (right for nonsense, a miss for every other kind)."""

    kind: str
    queries: int
    recall_at_1: float
    mrr_at_10: float
    nothing: float


def score(kind: str, answered: Sequence[tuple[LabelledQuery, Sequence[Isrc]]]) -> KindScore:
    recall = reciprocal = nothing = 0.0
    for query, hits in answered:
        if not hits:
            nothing += 1
        if kind in EMPTY_KINDS:
            continue
        if hits and hits[0] in query.relevant:
            recall += 1
        rank = next((i for i, isrc in enumerate(hits[:10], 1) if isrc in query.relevant), None)
        if rank is not None:
            reciprocal += 1 / rank
    count = len(answered)
    if kind in EMPTY_KINDS:
        # The right answer is nothing: recall@1 and MRR@10 both read as 'answered nothing'.
        recall = reciprocal = nothing
    return KindScore(kind, count, recall / count, reciprocal / count, nothing / count)
