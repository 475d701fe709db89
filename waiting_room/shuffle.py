"""The pre-queue's drawn order, replayed in Python: the same Park-Miller generator and
Fisher-Yates walk as lua/queue_admit.lua, over the members sorted. An auditor with the recorded
seed and the set of users who pre-queued gets the admission order the room used."""

from __future__ import annotations

MODULUS = 2**31 - 1


def shuffled(members: list[str], seed: int) -> list[str]:
    order = sorted(members)
    x = seed % MODULUS or 1
    for i in range(len(order), 1, -1):
        x = (x * 16807) % MODULUS
        j = x % i  # 0-based here; the Lua is 1-based
        order[i - 1], order[j] = order[j], order[i - 1]
    return order
