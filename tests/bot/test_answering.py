"""A reply waits for the answers being posted in its channel, and only those, and not for long."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from bot.answering import posting, settled


async def test_a_reply_waits_for_the_posts_in_its_channel_only_and_gives_up_after_its_timeout() -> None:
    bot: Any = SimpleNamespace(posting={})
    loop = asyncio.get_running_loop()

    async def post(channel: str, seconds: float) -> None:
        with posting(bot, channel):
            await asyncio.sleep(seconds)

    here, there = asyncio.create_task(post("1", 0.3)), asyncio.create_task(post("2", 5.0))
    await asyncio.sleep(0)  # both are posting now
    assert sorted(p.channel_id for p in bot.posting.values()) == ["1", "2"]
    began = loop.time()
    await settled(bot, "1")
    # Channel 1's post is over (about 0.3 s in); channel 2's is still going.
    assert 0.2 < loop.time() - began < 1.0 and [p.channel_id for p in bot.posting.values()] == ["2"]
    began = loop.time()
    await settled(bot, "3")  # nothing posting there: no wait at all
    assert loop.time() - began < 0.1
    await settled(bot, "2", timeout=0.2)  # a post that hangs holds a reply up for the timeout, no longer
    assert 0.15 < loop.time() - began < 1.0 and [p.channel_id for p in bot.posting.values()] == ["2"]
    there.cancel()
    await asyncio.gather(here, there, return_exceptions=True)
    assert bot.posting == {}  # a post that ends, or is cancelled, is no longer waited for
