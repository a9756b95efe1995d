"""Where an interaction of the fake Discord happens, in which language, and who installed the app that answers it.

Besides its one server, the fake knows places the bot never joined, which only a command of the
app installed to a user's account reaches: a channel of another server, and a group DM. The fake
refuses the bot's channel reads and posts there (403, 50001 Missing Access), as Discord does;
only the interaction's own response and followups get through.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

GUILD_ID = 1000
CHANNEL_ID = 2000
FOREIGN_GUILD_ID = 1100  # a server the bot has not joined
FOREIGN_CHANNEL_ID = 2200  # a text channel there
GROUP_DM_ID = 2300  # a group DM of users, the bot not among them


@dataclass(frozen=True)
class Place:
    """Where an interaction happens: channel, server (None for DMs), install, context and locales."""

    channel_id: int = CHANNEL_ID
    guild_id: int | None = GUILD_ID
    user_install: bool = False  # the app installed to the user's account, not to the server
    context: int = 0  # Discord's interaction context: 0 a server, 1 the bot's DM, 2 a DM of users or a group DM
    locale: str = "en-US"  # the user's client
    guild_locale: str | None = "en-US"  # the server's (absent outside servers)

    def speaking(self, locale: str | None) -> Place:
        """The same place, the user's client in another language (None: unchanged)."""
        return self if locale is None else replace(self, locale=locale)


HERE = Place()
FOREIGN_SERVER = Place(FOREIGN_CHANNEL_ID, FOREIGN_GUILD_ID, user_install=True, context=0)
GROUP_DM = Place(GROUP_DM_ID, None, user_install=True, context=2, guild_locale=None)


def elsewhere_channels(text_channel: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The channels the bot cannot see, as an interaction's `channel` carries them (`text_channel`: a model)."""
    foreign = {**text_channel, "id": str(FOREIGN_CHANNEL_ID), "guild_id": str(FOREIGN_GUILD_ID), "name": "elsewhere"}
    group = {"id": str(GROUP_DM_ID), "type": 3, "name": "friends", "recipients": [], "last_message_id": None,
             "owner_id": "21", "icon": None}  # fmt: skip
    return {FOREIGN_CHANNEL_ID: foreign, GROUP_DM_ID: group}


def interaction_fields(
    place: Place, channel: dict[str, Any], user: dict[str, Any], member: dict[str, Any], permissions: str
) -> dict[str, Any]:
    """The fields of an INTERACTION_CREATE that say where it is and who installed the app."""
    owner = {"1": user["id"]} if place.user_install else {"0": str(place.guild_id)}
    fields: dict[str, Any] = {
        "channel_id": channel["id"],
        "channel": channel,
        "locale": place.locale,
        "authorizing_integration_owners": owner,
        "context": place.context,
    }
    if place.guild_id is None:
        return {**fields, "user": user}
    fields = {**fields, "guild_id": str(place.guild_id), "member": {**member, "permissions": permissions}}
    return {**fields, "guild_locale": place.guild_locale} if place.guild_locale else fields
