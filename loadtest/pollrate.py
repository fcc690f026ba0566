#!/usr/bin/env python3
"""loadtest/pollrate.py — status polls per second of a line at rest.

Every visitor polls at `poll_after_ms` (src/waiting_room/mod.rs, mirrored
here), so a line polls at the sum of 1 / interval over its visitors. Prints
that sum for the bench's flash sale (200,000 waiting, 400 admissions/s,
max_active 1,000, abandonment after 120 s) under the schedule before
2026-12-03 (a tenth of the wait) and the one after (a third up to the 10 s
reveal grace, then a tenth).

    python3 loadtest/pollrate.py [WAITING] [RATE]
"""
import sys

REVEAL_GRACE_S = 10.0


def poll_after_s(ahead, rate, schedule, max_active=1000, abandon_s=120):
    if ahead <= max(max_active, rate * 5):
        return 1.0
    wait = ahead / rate
    guess = wait / 10 if schedule == "tenth" else max(min(wait / 3, REVEAL_GRACE_S), wait / 10)
    return min(max(guess, 1.0), min(max(abandon_s / 3, 1.0), 30.0))


def polls_per_second(waiting, rate, schedule):
    step = 10
    return sum(step / poll_after_s(a, rate, schedule) for a in range(0, waiting, step))


if __name__ == "__main__":
    waiting = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 400.0
    for schedule in ("tenth", "third up to the grace"):
        print(f"{schedule}: {polls_per_second(waiting, rate, schedule):,.0f} polls/s "
              f"with {waiting:,} waiting at {rate:g} admissions/s")
