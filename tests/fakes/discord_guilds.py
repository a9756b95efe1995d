"""The fake Discord's server and commands state, and the REST reads of it that `egaku doctor` makes.

`FakeDiscord` holds one `GuildState` (its one server) and answers from it as Discord does:

- GET /users/@me/guilds: the bot's servers, each with the bot's permissions there (@everyone's and its
  roles' OR-ed; Administrator grants everything);
- GET /guilds/{id}/members/{user id} and /guilds/{id}/channels: 403 Missing Access outside its server;
- GET and PUT /applications/{id}/commands and /applications/{id}/guilds/{id}/commands: the commands last
  registered there; 403 Missing Access in a server that did not grant the applications.commands scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ADMINISTRATOR = 1 << 3
EVERYTHING = (1 << 53) - 1
MISSING_ACCESS = {"message": "Missing Access", "code": 50001}


@dataclass
class GuildState:
    """The server the bot is in, its roles and channels, and the application's registered commands."""

    guild_id: int
    bot_id: int
    channels: dict[int, dict[str, Any]]  # the same dict the gateway's GUILD_CREATE sends
    roles: dict[int, int]  # role id -> permissions; @everyone's id is the server's
    bot_roles: list[int] = field(default_factory=list)
    commands: dict[int | None, list[dict[str, Any]]] = field(default_factory=dict)  # None: global
    commands_scope: set[int] = field(default_factory=set)  # servers that granted applications.commands

    def permissions(self) -> int:
        """The bot's permissions in the server, as Discord computes them from its roles."""
        permissions = self.roles.get(self.guild_id, 0)
        for role in self.bot_roles:
            permissions |= self.roles.get(role, 0)
        return EVERYTHING if permissions & ADMINISTRATOR else permissions

    def role_payloads(self) -> list[dict[str, Any]]:
        """The roles as the gateway sends them."""
        return [
            {"id": str(role_id), "name": "@everyone" if role_id == self.guild_id else f"role-{role_id}",
             "permissions": str(permissions), "position": 0 if role_id == self.guild_id else 1, "color": 0,
             "hoist": False, "managed": False, "mentionable": False, "flags": 0}
            for role_id, permissions in self.roles.items()
        ]  # fmt: skip

    def commands_refused(self, parts: list[str]) -> bool:
        """A guild-commands path for a server that did not grant the applications.commands scope."""
        return len(parts) == 5 and parts[2] == "guilds" and int(parts[3]) not in self.commands_scope

    def register(self, parts: list[str], commands: list[dict[str, Any]]) -> None:
        """PUT .../commands: the list replaces whatever was registered there."""
        self.commands[int(parts[3]) if len(parts) == 5 else None] = commands

    def read(self, method: str, parts: list[str], bot_member: dict[str, Any]) -> tuple[Any, int] | None:
        """The (body, status) of a read served from this state, or None when it is not one."""
        if method != "GET":
            return None
        if parts == ["users", "@me", "guilds"]:
            guild = {"id": str(self.guild_id), "name": "egaku test guild", "icon": None, "owner": False,
                     "permissions": str(self.permissions()), "features": []}  # fmt: skip
            return [guild], 200
        if parts[0] == "guilds" and len(parts) >= 3 and int(parts[1]) != self.guild_id:
            return MISSING_ACCESS, 403
        if parts[0] == "guilds" and len(parts) == 4 and parts[2] == "members":
            if int(parts[3]) != self.bot_id:
                return {"message": "Unknown Member", "code": 10007}, 404
            return {**bot_member, "roles": [str(r) for r in self.bot_roles]}, 200
        if parts[0] == "guilds" and parts[2:] == ["channels"]:
            return list(self.channels.values()), 200
        if parts[0] == "applications" and parts[-1] == "commands":
            if self.commands_refused(parts):
                return MISSING_ACCESS, 403
            return self.commands.get(int(parts[3]) if len(parts) == 5 else None, []), 200
        return None
