"""Search quality (issue 14): recall@1 and MRR@10 per kind of query on the labelled set of
tests/search_quality (402 tracks; exact titles, partial titles, artists, typos, descriptive
queries, nonsense and off-topic), for the search before ADR 0030 (hashing, no floor), the model
alone, the hybrid the service runs, and the hybrid on the hashing fallback. In process: the
real Qdrant adapter in local mode, in memory; no rig.

    .venv/bin/python -m bench --only search
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass

from adapters.embedding.hashing import HashingEmbedder
from adapters.embedding.wordllama import load_bundled_model
from bench.rig import Config
from tests.search_quality.evaluation import Configuration, configurations, evaluate
from tests.search_quality.labelled import EMPTY_KINDS, KINDS, KindScore

QUICK_EVERY = 40


@dataclass(frozen=True)
class ConfigurationScores:
    name: str
    scores: list[KindScore]
    seconds: float  # writing the catalogue and asking every query, in local mode


@dataclass(frozen=True)
class SearchQuality:
    rows: list[ConfigurationScores]
    model_load_s: float | None
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    sampled: bool


def measure(config: Config) -> SearchQuality:
    load_before = os.getloadavg()
    model_load_s = None
    every = QUICK_EVERY if config.quick else 1
    if config.quick:
        # The smoke test's budget: the hybrid on the fallback, which loads no model.
        hashing = HashingEmbedder()
        chosen = [Configuration("hybrid on the fallback (hashing + lexical)", hashing, True)]
    else:
        started = time.perf_counter()
        load_bundled_model()
        model_load_s = time.perf_counter() - started
        chosen = configurations()
    rows = []
    for configuration in chosen:
        print(f"search quality: {configuration.name} ...", file=sys.stderr)
        started = time.perf_counter()
        scores = asyncio.run(evaluate(configuration, every=every, every_written=every))
        rows.append(ConfigurationScores(configuration.name, scores, time.perf_counter() - started))
    return SearchQuality(rows, model_load_s, load_before, os.getloadavg(), config.quick)


def _cell(kind: str, score: KindScore) -> str:
    if kind in EMPTY_KINDS:
        return f"{score.nothing:.0%} answered nothing"
    empty = f", {score.nothing:.1%} empty" if score.nothing else ""
    return f"{score.recall_at_1:.2f} / {score.mrr_at_10:.2f}{empty}"


def render(result: SearchQuality) -> list[str]:
    load_before = ", ".join(f"{x:.2f}" for x in result.load_before)
    load_after = ", ".join(f"{x:.2f}" for x in result.load_after)
    counts = {score.kind: score.queries for score in result.rows[0].scores}
    lines = [
        "## Search quality (issue 14, ADR 0030)",
        "",
        "The labelled set of `tests/search_quality/` (402 tracks; exact titles, artist names and"
        " one-edit typos derived from every title and artist, partial titles, hand-made typos,"
        " descriptive, nonsense and off-topic queries written by hand), each configuration"
        " through the Qdrant adapter in local mode. A cell is recall@1 / MRR@10 (an answer"
        " counts when it is one of the query's labelled tracks), and the share of queries"
        " answered with nothing where there was any; for nonsense and off-topic queries, the"
        " right answer is nothing. `python -m bench --only search` prints this section.",
        "",
        "| kind (queries) | " + " | ".join(row.name for row in result.rows) + " |",
        "|---|" + "---|" * len(result.rows),
    ]
    for kind in KINDS:
        cells = [_cell(kind, next(s for s in row.scores if s.kind == kind)) for row in result.rows]
        lines.append(f"| {kind} ({counts[kind]}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Load average (1, 5, 15 min) before: {load_before}; after: {load_after}."
        + (
            f" WordLlama loads in {result.model_load_s:.2f} s (with its first import)."
            if result.model_load_s is not None
            else ""
        )
        + " Writing the 402 tracks and asking the queries took "
        + ", ".join(f"{row.seconds:.0f} s ({row.name})" for row in result.rows)
        + ": the sparse ranking is a pure-Python scan in local mode (ADR 0030)."
        + (
            f" Quick configuration: every {QUICK_EVERY}th query, the fallback's hybrid alone."
            if result.sampled
            else ""
        ),
        "",
    ]
    return lines


def run_alone(config: Config) -> None:
    print("\n".join(render(measure(config))))
