"""The polling ledger confirms to Telegram only updates that have been handled."""

from __future__ import annotations

import asyncio

from services.bot.polling import UpdateLedger


async def test_the_offset_stops_at_the_lowest_update_still_in_hand() -> None:
    ledger = UpdateLedger()
    gates = {u: asyncio.Event() for u in (10, 11, 12)}
    for update_id, gate in gates.items():
        ledger.in_hand[update_id] = asyncio.create_task(gate.wait())
    ledger.settle()
    assert ledger.offset == 10                    # nothing confirmed yet

    gates[11].set(); gates[12].set()
    await asyncio.sleep(0)
    ledger.settle()
    assert ledger.offset == 10                    # 10 is still in hand: 11 and 12 wait with it
    assert not ledger.is_new(11) and not ledger.is_new(12) and not ledger.is_new(10)
    assert ledger.is_new(13)

    gates[10].set()
    await asyncio.sleep(0)
    ledger.settle()
    assert ledger.offset == 13 and not ledger.in_hand   # all three confirmed at once
    assert not ledger.is_new(12)                  # below the offset: Telegram will not send it, and it is not new
