"""kg.sparql.channel.Deadline: one timer for all of a query's waits (for a worker, then for its
answer). What must hold, since the time limit rests on it: the wait current when it fires fails;
a wait that starts after it fired (it fired between two waits) fails at once instead of waiting
with no timer left; a cancelled deadline fails nothing. On a real event loop and, for `recv`, a
real socketpair.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from kg.sparql.channel import Channel, Deadline, Expired, frame

pytestmark = pytest.mark.serial("deadlines of tens of milliseconds")


def test_the_current_wait_fails_when_the_deadline_fires() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadline = Deadline(loop, 0.02)
        first = loop.create_future()
        first.set_result("handed over")  # the first wait ended in time
        deadline.watch(first)
        second = loop.create_future()
        deadline.watch(second)
        with pytest.raises(Expired):
            await asyncio.wait_for(second, 5)
        assert first.result() == "handed over" and deadline.expired

    asyncio.run(scenario())


def test_a_wait_that_starts_after_the_deadline_fired_fails_at_once() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadline = Deadline(loop, 0.0)
        await asyncio.sleep(0.02)  # fires while no wait is current
        assert deadline.expired
        waiter = loop.create_future()
        deadline.watch(waiter)
        assert waiter.done() and isinstance(waiter.exception(), Expired)

    asyncio.run(scenario())


def test_a_cancelled_deadline_fails_nothing() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadline = Deadline(loop, 0.01)
        waiter = loop.create_future()
        deadline.watch(waiter)
        deadline.cancel()
        await asyncio.sleep(0.05)
        assert not waiter.done() and not deadline.expired

    asyncio.run(scenario())


def test_recv_on_a_channel_ends_at_the_deadline_and_still_reads_what_came_in_time() -> None:
    async def scenario() -> None:
        ours, theirs = socket.socketpair()
        channel = Channel(ours)
        try:
            loop = asyncio.get_running_loop()
            theirs.sendall(frame(("ok", 1)))
            assert await channel.recv(None, Deadline(loop, 5.0)) == ("ok", 1)
            late = Deadline(loop, 0.05)
            with pytest.raises(TimeoutError):
                await channel.recv(None, late)  # nothing is sent: the deadline ends the wait
            expired = Deadline(loop, 0.0)
            await asyncio.sleep(0.02)
            waiting = asyncio.ensure_future(channel.recv(None, expired))
            await asyncio.sleep(0.02)
            assert waiting.done()  # failed at once, not a wait with no timer left
            with pytest.raises(TimeoutError):
                waiting.result()
            theirs.sendall(frame(("ok", 2)))
            assert await channel.recv(None, Deadline(loop, 5.0)) == ("ok", 2)
        finally:
            channel.close()
            theirs.close()

    asyncio.run(scenario())
