"""Median and tail latency of sequential addTrackToLibrary calls against a running service.

    .venv/bin/python -m bench.sequential_adds http://127.0.0.1:8000 "$TOKEN"

with TOKEN from `libingest token alice`.
Runs from its own process (not the service's interpreter): 20 warm-up adds, then 200 measured
ones, each a new track id, one at a time over one keep-alive connection.
"""

from __future__ import annotations

import statistics
import sys
import time

import httpx

MUTATION = "mutation($id: ID!) { addTrackToLibrary(trackId: $id) { __typename } }"
WARM_UP = 20
MEASURED = 200


def main(url: str, token: str, first_id: int = 20_000_000) -> None:
    latencies: list[float] = []
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers) as client:
        for n in range(WARM_UP + MEASURED):
            started = time.perf_counter()
            response = client.post(
                "/graphql", json={"query": MUTATION, "variables": {"id": str(first_id + n)}}
            )
            elapsed_ms = (time.perf_counter() - started) * 1000
            answer = response.json()["data"]["addTrackToLibrary"]["__typename"]
            if answer != "AddToLibrarySuccess":
                raise SystemExit(f"unexpected answer: {response.text}")
            if n >= WARM_UP:
                latencies.append(elapsed_ms)
    latencies.sort()
    print(
        f"n={MEASURED} median={statistics.median(latencies):.2f} ms "
        f"p95={latencies[int(MEASURED * 0.95) - 1]:.2f} ms "
        f"p99={latencies[int(MEASURED * 0.99) - 1]:.2f} ms max={latencies[-1]:.2f} ms"
    )


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
