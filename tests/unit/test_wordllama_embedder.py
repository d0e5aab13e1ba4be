"""The WordLlama embedder: the model bundled in the wheel, loaded strictly offline, behind the
Embedder port's contract."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.embedding import WordLlamaEmbedder
from adapters.embedding.wordllama import track_text
from application.ports.embedder import Embedder, TrackText
from tests.contracts.embedder import EmbedderContract


class TestWordLlamaEmbedderContract(EmbedderContract):
    @pytest.fixture
    def make_embedder(self) -> Callable[[], Embedder]:
        return WordLlamaEmbedder


# A fresh interpreter (the model is loaded once per process) with every way out refused: no
# socket connects, no DNS, an empty home (no ~/.cache/wordllama), Hugging Face told offline
# and pointed nowhere. It reports the vector's size and what the root logger looks like.
OFFLINE_LOAD = textwrap.dedent(
    """
    import json, logging, socket, sys

    def refuse(*args, **kwargs):
        raise OSError("network refused by the test")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    from adapters.embedding.wordllama import WordLlamaEmbedder

    vector = WordLlamaEmbedder().embed_query("come together")
    root = logging.getLogger()
    print(json.dumps({"size": len(vector), "handlers": len(root.handlers), "level": root.level}))
    """
)


def test_the_bundled_model_loads_with_the_network_refused_and_leaves_logging_alone(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_LOAD],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        env={
            "HOME": str(home),
            "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(home / "hf"),
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(Path(__file__).parents[2]),
        },
        check=False,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # No handler added, level untouched: wordllama's import-time basicConfig is undone.
    assert report == {"size": 256, "handlers": 0, "level": 30}
    assert list(home.iterdir()) == []  # nothing downloaded or cached


def test_a_smaller_dimension_is_the_model_truncated_and_still_a_unit_vector() -> None:
    embedder = WordLlamaEmbedder(128)
    vector = embedder.embed_query("come together")

    assert len(vector) == embedder.dimension == 128
    assert math.sqrt(sum(v * v for v in vector)) == pytest.approx(1.0)
    assert embedder.space != WordLlamaEmbedder().space


def test_a_dimension_the_model_does_not_have_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="EMBEDDER=hashing"):
        WordLlamaEmbedder(100)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_a_query_is_nearer_the_track_it_describes_than_to_an_unrelated_one() -> None:
    embedder = WordLlamaEmbedder()
    sea = embedder.embed_track(TrackText("Beyond the Sea", None, ("Bobby Darin",), "That's All"))
    hell = embedder.embed_track(TrackText("Highway to Hell", None, ("AC/DC",), None))

    # 'ocean' shares no word with the title: the model relates the meanings.
    ocean = embedder.embed_query("a song about the ocean")
    assert _cosine(ocean, sea) > _cosine(ocean, hell) + 0.2
    sea_songs = embedder.embed_query("songs about the sea")
    assert _cosine(sea_songs, sea) > embedder.match_floor >= _cosine(sea_songs, hell)


def test_the_track_text_is_the_title_with_its_version_and_the_artists() -> None:
    track = TrackText("Heroes", "2017 Remaster", ("David Bowie", ""), '"Heroes"')
    assert track_text(track) == "Heroes (2017 Remaster) David Bowie"
