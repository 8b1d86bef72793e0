"""A separate process for test_governor: takes slots from a shared governor.

python _governor_worker.py run  STATE_DIR OUT N START_AT   record N grant times in OUT
python _governor_worker.py hold STATE_DIR                  hold one in-flight lease forever
python _governor_worker.py hold-rate STATE_DIR             one counted request, never answered
python _governor_worker.py ban  STATE_DIR BUCKET SECONDS   ban BUCKET and exit
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from etl.vendors.governor import Governor, Limit

# The limits test_governor checks: 5 starts per 0.5 s (10/s), 3 in flight.
LIMITS = (Limit(requests=5, seconds=0.5), Limit(in_flight=3))


async def run(state_dir: Path, out: Path, n: int, start_at: float) -> None:
    gov = Governor("shared", LIMITS, state_dir=state_dir)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    todo = list(range(n))
    starts: list[float] = []

    async def worker() -> None:
        while todo:
            todo.pop()
            async with gov.slot() as lease:
                starts.append(lease.started)
                await asyncio.sleep(0.01)

    await asyncio.gather(*(worker() for _ in range(4)))
    out.write_text("".join(f"{t!r}\n" for t in starts))


async def hold(state_dir: Path) -> None:
    gov = Governor("shared", (Limit(in_flight=1),), state_dir=state_dir, lease_ttl=600)
    async with gov.slot():
        print("held", flush=True)
        await asyncio.sleep(600)


async def hold_rate(state_dir: Path) -> None:
    """One request started under a 1-per-second window and never answered."""
    gov = Governor("shared", (Limit(requests=1, seconds=1.0),), state_dir=state_dir, lease_ttl=600)
    async with gov.slot():
        print("held", flush=True)
        await asyncio.sleep(600)


def main() -> None:
    mode, state_dir = sys.argv[1], Path(sys.argv[2])
    if mode == "run":
        asyncio.run(run(state_dir, Path(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))
    elif mode == "hold":
        asyncio.run(hold(state_dir))
    elif mode == "hold-rate":
        asyncio.run(hold_rate(state_dir))
    elif mode == "ban":
        Governor("shared", LIMITS, state_dir=state_dir).ban(sys.argv[3], float(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
