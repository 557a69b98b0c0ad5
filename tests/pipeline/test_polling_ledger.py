"""The polling ledger confirms to Telegram only updates that have been handled."""

from __future__ import annotations

import asyncio

from services.bot.polling import UpdateLedger


async def test_the_offset_stops_at_the_lowest_update_still_in_hand() -> None:
    ledger = UpdateLedger()
    gates = {u: asyncio.Event() for u in (10, 11, 12)}
    for update_id, gate in gates.items():
        ledger.take(update_id, asyncio.create_task(gate.wait()))
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


async def test_a_stuck_update_stops_holding_the_offset_back() -> None:
    now = [0.0]
    ledger = UpdateLedger(clock=lambda: now[0])
    stuck = asyncio.Event()
    ledger.take(1, asyncio.create_task(stuck.wait()))
    ledger.take(2, asyncio.create_task(asyncio.sleep(0)))
    await asyncio.sleep(0.01)
    ledger.settle()
    assert ledger.offset == 1
    now[0] = UpdateLedger.HOLD_SECONDS + 1
    ledger.settle()
    assert ledger.offset == 3 and 1 in ledger.in_hand   # still running, no longer holding anything back
    stuck.set()


async def test_never_more_unconfirmed_than_telegram_hands_back() -> None:
    ledger = UpdateLedger()
    stuck = asyncio.Event()
    ledger.take(1, asyncio.create_task(stuck.wait()))
    for update_id in range(2, 2 + UpdateLedger.MAX_UNCONFIRMED + 10):
        ledger.take(update_id, asyncio.create_task(asyncio.sleep(0)))
    await asyncio.sleep(0.01)
    ledger.settle()
    newest = 1 + UpdateLedger.MAX_UNCONFIRMED + 10
    assert newest - ledger.offset + 1 == UpdateLedger.MAX_UNCONFIRMED
    before = ledger.offset
    ledger.take(newest + 1, asyncio.create_task(stuck.wait()))
    ledger.settle()
    assert ledger.offset >= before                      # never moves back
    stuck.set()
