"""When a density sweep must stop starting sandboxes: the memory floor, for every backend.

The host (or node) keeps ``floor`` KiB of MemAvailable whatever the counts asked for: the next
sandbox is priced at the mean fall of MemAvailable per sandbox started so far.
"""

from __future__ import annotations


def stop_reason(started: int, wanted: int, available: int, before: int,
                floor_kib: int) -> str | None:
    """Why no more sandboxes should start, or None: the next one, priced at the mean fall of
    MemAvailable per sandbox so far (at least 1 MiB), would take the host below the floor."""
    per_sandbox = max((before - available) / started, 1024.0) if started else 1024.0
    if available - per_sandbox < floor_kib:
        return (f"stopped at {started} of {wanted} sandboxes: the host's MemAvailable is "
                f"{available // 1024} MiB and the next sandbox (about {per_sandbox / 1024:.0f}"
                f" MiB) would take it below the {floor_kib // 1024} MiB floor")
    return None
