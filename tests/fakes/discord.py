"""A local fake of Discord (gateway websocket + REST) for the real discord.py client.

It speaks just enough of API v10 for a bot's life: login, HELLO/IDENTIFY/READY,
GUILD_CREATE, heartbeats, RESUME, messages (JSON and multipart), typing,
interactions, followups and command sync. Every REST call is captured with its
parsed JSON and files so that tests can assert exact payloads. Faults are
scripted per route (status + body) to test 429s, 5xx, 404/10062, 413...

It refuses what Discord refuses, so that a bug of that kind fails a test:
- an interaction callback more than 3 s after the interaction was sent (404, 10062);
- a message over Discord's limits: content over 2000 characters, more than 10 embeds, an embed
  title over 256, description over 4096, more than 25 fields, a field name over 256 or value over
  1024, a footer over 2048, more than 6000 characters of embeds in all, more than 5 rows of
  components or 5 buttons in a row, a custom_id over 100 or a label over 80 (400, 50035);
- a message with nothing in it (400, 50006);
- a wrong bot token, once `token` is set (401);
- a guild-commands read or sync in a server that did not grant the applications.commands scope (403, 50001);
- a webhook call with an interaction token older than 15 minutes (401, 50027).

It keeps Discord's delivery rules (tests/fakes/discord_deliveries.py): a repeated message nonce
with `enforce_nonce` gets the first message back, and the first followup of a deferred
interaction fills its loading original response.

Its server's roles, the bot's roles and registered commands are in `guild` (tests/fakes/discord_guilds.py).
Where an interaction happens (its server, or a place the bot never joined), in which language and
for which install is a `Place` (tests/fakes/discord_places.py); reads and posts in a channel the
bot cannot see are refused (403, 50001).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_deliveries import LOADING, Deliveries
from tests.fakes.discord_guilds import GuildState
from tests.fakes.discord_places import CHANNEL_ID, GUILD_ID, HERE, Place, elsewhere_channels, interaction_fields
from tests.fakes.serving import serve

BOT_ID = 900
APP_ID = 900
NSFW_CHANNEL_ID = 2001
OTHER_CHANNEL_ID = 2002  # a second ordinary channel of the guild
DM_CHANNEL_ID = 2100  # a user's DM with the bot
OWNER_ID = 1
ALL_PERMISSIONS = str((1 << 53) - 1)
MESSAGE_CONTENT_LIMITED = 1 << 19  # the application flag of a bot under 100 servers with the intent on
TIMESTAMP = "2026-11-21T12:00:00.000000+00:00"
ACK_DEADLINE_S = 3.0  # Discord forgets an interaction that is not acknowledged within 3 s


def limit_problems(body: dict[str, Any]) -> dict[str, str]:
    """Discord's 50035 field errors for a message body over its limits (empty when within them)."""
    problems: dict[str, str] = {}
    if len(body.get("content") or "") > 2000:
        problems["content"] = "Must be 2000 or fewer in length."
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        problems["embeds"] = "Must be 10 or fewer in length."
    total = 0
    for n, embed in enumerate(embeds):
        texts = {
            "title": (embed.get("title") or "", 256),
            "description": (embed.get("description") or "", 4096),
            "footer.text": ((embed.get("footer") or {}).get("text") or "", 2048),
            "author.name": ((embed.get("author") or {}).get("name") or "", 256),
        }
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems[f"embeds.{n}.fields"] = "Must be 25 or fewer in length."
        for i, f in enumerate(fields):
            texts[f"fields.{i}.name"] = (f.get("name") or "", 256)
            texts[f"fields.{i}.value"] = (f.get("value") or "", 1024)
        for key, (text, limit) in texts.items():
            total += len(text)
            if len(text) > limit:
                problems[f"embeds.{n}.{key}"] = f"Must be {limit} or fewer in length."
    if total > 6000:
        problems["embeds"] = "Embed size exceeds maximum size of 6000"
    rows = body.get("components") or []
    if len(rows) > 5:
        problems["components"] = "Must be 5 or fewer in length."
    for r, row in enumerate(rows):
        items = row.get("components") or []
        if len(items) > 5:
            problems[f"components.{r}.components"] = "Must be 5 or fewer in length."
        for i, item in enumerate(items):
            if len(item.get("custom_id") or "") > 100:
                problems[f"components.{r}.components.{i}.custom_id"] = "Must be 100 or fewer in length."
            if len(item.get("label") or "") > 80:
                problems[f"components.{r}.components.{i}.label"] = "Must be 80 or fewer in length."
    return problems


def is_empty_message(body: dict[str, Any], files: list[Any]) -> bool:
    """Discord refuses a new message with no content, embeds, files, components, stickers or poll."""
    return not (files or any(body.get(k) for k in ("content", "embeds", "components", "sticker_ids", "poll")))


@dataclass
class Captured:
    """One REST request the client made."""

    method: str
    path: str
    json: Any
    files: list[CapturedFile] = field(default_factory=list)
    query: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.perf_counter)  # when it arrived (for benchmarks)


@dataclass
class CapturedFile:
    """One uploaded file of a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Fault:
    """A scripted failure for the next `times` requests matching a route."""

    method: str
    path_prefix: str
    status: int
    body: dict[str, Any]
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    path_suffix: str = ""  # and ending so ("/messages": message posts, not typing)


def user_payload(user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
    """A complete user object."""
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
        "flags": 0,
    }


def member_payload(user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
    """A complete guild member object."""
    return {
        "user": user_payload(user_id, name, bot),
        "roles": [],
        "joined_at": TIMESTAMP,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
        "avatar": None,
        "pending": False,
    }


def text_channel(channel_id: int = CHANNEL_ID, nsfw: bool = False) -> dict[str, Any]:
    """A guild text channel."""
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(GUILD_ID),
        "name": f"chan-{channel_id}",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": nsfw,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
    }


class FakeDiscord:
    """The fake server. Start with `await fake.start()`; point discord.py at `fake.api_base`."""

    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self.faults: list[Fault] = []
        self.gateway_frames: list[dict[str, Any]] = []
        self.identify_count = 0
        self.resume_count = 0
        self._ws: web.WebSocketResponse | None = None
        self._seq = 0
        self._ids = itertools.count(500_000)
        self._changed = asyncio.Condition()
        self._ready = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.channels: dict[int, dict[str, Any]] = {
            CHANNEL_ID: text_channel(),
            NSFW_CHANNEL_ID: text_channel(NSFW_CHANNEL_ID, nsfw=True),
            OTHER_CHANNEL_ID: text_channel(OTHER_CHANNEL_ID),
        }
        self.messages: dict[int, dict[str, Any]] = {}
        self.elsewhere = elsewhere_channels(text_channel())  # channels the bot cannot see (user installs)
        self.preferred_locale = "en-US"  # the server's locale
        self.created_at: dict[int, float] = {}  # when each message was created (perf_counter), for benchmarks
        self.late_interactions: set[str] = set()
        # When each interaction was sent; a callback after ACK_DEADLINE_S is refused (10062).
        self.interactions_sent: dict[str, float] = {}
        self.clock = time.monotonic  # tests may move it on instead of sleeping
        self.deliveries = Deliveries(lambda: self.clock())
        self.refused: list[tuple[str, int]] = []  # (path, Discord error code) of each refusal
        # Like a portal where the privileged intent is off: IDENTIFY asking for it is closed with 4014.
        self.refuse_message_content = False
        self.files: dict[str, bytes] = {}
        self.token: str | None = None  # when set, REST calls with another bot token get a 401
        self.guild = GuildState(
            GUILD_ID, BOT_ID, self.channels, roles={GUILD_ID: int(ALL_PERMISSIONS)}, commands_scope={GUILD_ID}
        )

    # -- lifecycle -------------------------------------------------------
    async def start(self) -> None:
        """Serve on 127.0.0.1, on a free port."""
        app = web.Application(client_max_size=64 << 20)
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_get("/attachments/{id}/{name}", self._attachment_file)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner, self.port = await serve(app)

    async def stop(self) -> None:
        """Close the websocket and the server."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        """The REST base URL for discord.http.Route.BASE."""
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The websocket URL (the trailing slash matters)."""
        return f"ws://127.0.0.1:{self.port}/gateway/"

    @property
    def sequence(self) -> int:
        """The sequence number of the last event dispatched (a client that has read it holds the same)."""
        return self._seq

    def next_id(self) -> int:
        """A fresh snowflake."""
        return next(self._ids)

    # -- waiting ---------------------------------------------------------
    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_requests(
        self, match: Callable[[Captured], bool], count: int, timeout: float = 30.0
    ) -> list[Captured]:
        """The first `count` captured requests (old or new) that match."""

        async def wait() -> list[Captured]:
            # Each request is matched once, when it first arrives: with many waiters (the
            # benchmarks have hundreds) rescanning every request on every arrival is quadratic.
            found: list[Captured] = []
            scanned = 0
            async with self._changed:
                while True:
                    fresh, scanned = self.requests[scanned:], len(self.requests)
                    found.extend(c for c in fresh if match(c))
                    if len(found) >= count:
                        return found[:count]
                    await self._changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def wait_for_request(self, match: Callable[[Captured], bool], timeout: float = 30.0) -> Captured:
        """The first captured request (old or new) that matches."""
        return (await self.wait_for_requests(match, 1, timeout))[0]

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Until the client has identified and received GUILD_CREATE."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    # -- gateway ---------------------------------------------------------
    async def _send(self, payload: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(payload))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send an op 0 DISPATCH to the connected client."""
        self._seq += 1
        await self._send({"op": 0, "t": event, "s": self._seq, "d": data})

    async def close_gateway(self, code: int) -> None:
        """Close the websocket with a close code (4000 to make the client RESUME)."""
        assert self._ws is not None
        self._ready.clear()
        await self._ws.close(code=code)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await self._send({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            self.gateway_frames.append(frame)
            op = frame.get("op")
            if op == 1:
                await self._send({"op": 11, "d": None, "s": None, "t": None})
            elif op == 2:
                self.identify_count += 1
                if self.refuse_message_content and frame["d"]["intents"] & (1 << 15):
                    await ws.close(code=4014, message=b"Disallowed intent(s).")
                    break
                await self._identify()
            elif op == 6:
                self.resume_count += 1
                await self.dispatch("RESUMED", {})
                self._ready.set()
        return ws

    async def _identify(self) -> None:
        self._seq = 0
        await self.dispatch(
            "READY",
            {
                "v": 10,
                "user": user_payload(BOT_ID, "egaku", bot=True),
                "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
                "session_id": "fake-session",
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(APP_ID), "flags": 0},
                "private_channels": [],
                "relationships": [],
            },
        )
        await self.dispatch("GUILD_CREATE", self.guild_payload())
        self._ready.set()

    def guild_payload(self) -> dict[str, Any]:
        """A complete, available guild."""
        return {
            "id": str(GUILD_ID),
            "name": "egaku test guild",
            "icon": None,
            "owner_id": str(OWNER_ID),
            "region": "us",
            "afk_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": self.guild.role_payloads(),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.preferred_locale,
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "large": False,
            "unavailable": False,
            "member_count": 2,
            "joined_at": TIMESTAMP,
            "members": [{**member_payload(BOT_ID, "egaku", bot=True), "roles": [str(r) for r in self.guild.bot_roles]}],
            "channels": list(self.channels.values()),
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
        }

    def attachment(self, data: bytes, filename: str, content_type: str = "image/png") -> dict[str, Any]:
        """Host a file the way Discord's CDN would, and return its attachment payload."""
        attachment_id = str(self.next_id())
        self.files[attachment_id] = data
        url = f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{filename}"
        return {
            "id": attachment_id,
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    async def _attachment_file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["id"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    # -- events a test injects -------------------------------------------
    async def user_message(
        self,
        content: str,
        *,
        author_id: int = 20,
        author_name: str = "alice",
        channel_id: int = CHANNEL_ID,
        mention_bot: bool = True,
        reply_to: int | None = None,
        attachments: list[dict[str, Any]] | None = None,
        dm: bool = False,
    ) -> dict[str, Any]:
        """Dispatch MESSAGE_CREATE from a user; return the payload."""
        message_id = self.next_id()
        data: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": user_payload(author_id, author_name),
            "content": content,
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [user_payload(BOT_ID, "egaku", bot=True)] if mention_bot else [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "pinned": False,
            "type": 19 if reply_to else 0,
            "flags": 0,
        }
        if not dm:
            data["guild_id"] = str(GUILD_ID)
            data["member"] = {k: v for k, v in member_payload(author_id, author_name).items() if k != "user"}
        if reply_to is not None:
            data["message_reference"] = {"message_id": str(reply_to), "channel_id": str(channel_id), "type": 0}
            data["referenced_message"] = self.messages.get(reply_to)
        self.messages[message_id] = data
        await self.dispatch("MESSAGE_CREATE", data)
        return data

    async def slash_command(
        self,
        name: str,
        options: list[dict[str, Any]],
        *,
        user_id: int = 20,
        user_name: str = "alice",
        channel_id: int = CHANNEL_ID,
        app_permissions: str = ALL_PERMISSIONS,
        interaction_id: int | None = None,
        member_permissions: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        locale: str | None = None,
        place: Place | None = None,
    ) -> dict[str, Any]:
        """Dispatch an application-command INTERACTION_CREATE; return the payload.

        `attachments` (from `attachment()`) go into `data.resolved`, as Discord sends
        the files behind attachment options. `place` says where (this server's `channel_id` by
        default), `locale` the user's client language (en-US by default).
        """
        command: dict[str, Any] = {"id": str(self.next_id()), "name": name, "type": 1, "options": options}
        if attachments:
            command["resolved"] = {"attachments": {a["id"]: a for a in attachments}}
        place = (place or Place(channel_id)).speaking(locale)
        data = self._interaction(
            2, command, user_id, user_name, place.channel_id, member_permissions or ALL_PERMISSIONS,
            interaction_id=interaction_id, place=place,
        )  # fmt: skip
        data["app_permissions"] = app_permissions
        await self._dispatch_interaction(data)
        return data

    def _interaction(self, kind: int, data: dict[str, Any], user_id: int, user_name: str, channel_id: int,
                     permissions: str = ALL_PERMISSIONS, interaction_id: int | None = None,
                     place: Place | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
        iid = interaction_id or self.next_id()
        place = place or Place(channel_id)
        channel = self.channels.get(place.channel_id) or self.elsewhere[place.channel_id]
        user = user_payload(user_id, user_name)
        return {
            "id": str(iid),
            "application_id": str(APP_ID),
            "type": kind,
            "data": data,
            **interaction_fields(place, channel, user, member_payload(user_id, user_name), permissions),
            "token": f"itoken-{iid}",
            "version": 1,
            "app_permissions": ALL_PERMISSIONS,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            **extra,
        }

    async def press(
        self, custom_id: str, message_id: int, *, user_id: int = 20, user_name: str = "alice",
        permissions: str = ALL_PERMISSIONS, locale: str | None = None, place: Place | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Dispatch a button press (a component interaction) on one of the bot's messages.

        `place` defaults to the message's channel in this server (give it for a message elsewhere).
        """
        message = self.messages[message_id]
        place = (place or Place(int(message["channel_id"]))).speaking(locale)
        data = self._interaction(
            3, {"custom_id": custom_id, "component_type": 2}, user_id, user_name,
            place.channel_id, permissions, message=message, place=place,
        )  # fmt: skip
        await self._dispatch_interaction(data)
        return data

    async def submit_modal(
        self, custom_id: str, values: dict[str, str], *, user_id: int = 20, locale: str | None = None,
        place: Place | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Dispatch a modal submission with text input values by custom_id."""
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in values.items()]
        place = (place or HERE).speaking(locale)
        data = self._interaction(
            5, {"custom_id": custom_id, "components": rows}, user_id, "alice", place.channel_id, place=place
        )
        await self._dispatch_interaction(data)
        return data

    def deferred(self, channel_id: int = CHANNEL_ID, age_s: float = 0.0) -> tuple[int, str, int]:
        """An interaction a bot deferred `age_s` ago (its response still "thinking"): its id, token, response id."""
        interaction_id = self.next_id()
        token = f"itoken-{interaction_id}"
        self.deliveries.dispatched(token, str(channel_id))
        self.deliveries.interactions[token].sent_at = self.clock() - age_s
        response = self._message_from(str(channel_id), Captured("POST", "", {"flags": LOADING}), webhook=True)
        self.deliveries.interactions[token].original = int(response["id"])
        return interaction_id, token, int(response["id"])

    async def _dispatch_interaction(self, data: dict[str, Any]) -> None:
        self.interactions_sent[data["id"]] = self.clock()
        self.deliveries.dispatched(data["token"], data["channel_id"])
        await self.dispatch("INTERACTION_CREATE", data)

    # -- REST ------------------------------------------------------------
    def _json(self, data: Any, status: int = 200) -> web.Response:
        # discord.py reads the body as JSON only for exactly this content type.
        response = web.Response(body=json.dumps(data).encode(), status=status)
        response.headers["Content-Type"] = "application/json"  # set after: aiohttp would add a charset
        return response

    async def _capture(self, request: web.Request) -> Captured:
        body: Any = None
        files: list[CapturedFile] = []
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                raw = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":
                    body = json.loads(raw)
                else:
                    files.append(
                        CapturedFile(
                            field=part.name or "",
                            filename=part.filename or "",  # type: ignore[union-attr]
                            content_type=part.headers.get("Content-Type", ""),
                            data=bytes(raw),
                        )
                    )
        elif request.can_read_body:
            text = await request.text()
            body = json.loads(text) if text else None
        return Captured(request.method, request.path, body, files, dict(request.query))

    def _refusal(self, method: str, parts: list[str], captured: Captured) -> dict[str, Any] | None:
        """Discord's error body for a request it would refuse (late ack, over a limit, empty), else None."""
        body: dict[str, Any] = captured.json if isinstance(captured.json, dict) else {}
        if parts[0] == "interactions" and parts[-1] == "callback":
            sent = self.interactions_sent.get(parts[1])
            if parts[1] in self.late_interactions or (sent is not None and self.clock() - sent > ACK_DEADLINE_S):
                return {"message": "Unknown interaction", "code": 10062}
            body = body.get("data") or {} if body.get("type") in (4, 7) else {}
        if parts[0] == "channels" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) in self.elsewhere:
            return {"message": "Missing Access", "code": 50001}  # the bot is no member there
        sends = method == "POST" and (
            (parts[0] == "channels" and parts[-1] == "messages") or (parts[0] == "webhooks" and len(parts) == 3)
        )
        edits = method == "PATCH" and parts[0] in ("channels", "webhooks")
        if not (sends or edits or body):
            return None
        problems = limit_problems(body)
        if problems:
            errors = {
                key: {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": text}]} for key, text in problems.items()
            }
            return {"message": "Invalid Form Body", "code": 50035, "errors": errors}
        if sends and is_empty_message(body, captured.files):
            return {"message": "Cannot send an empty message", "code": 50006}
        return None

    def _fault_for(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            matches = path.startswith(fault.path_prefix) and path.endswith(fault.path_suffix)
            if fault.times > 0 and fault.method == method and matches:
                fault.times -= 1
                return fault
        return None

    def _attachments(self, message_id: int, files: list[CapturedFile]) -> list[dict[str, Any]]:
        return [
            {
                "id": str(self.next_id()),
                "filename": f.filename,
                "size": len(f.data),
                "url": f"https://cdn.example/{message_id}/{f.filename}",
                "proxy_url": f"https://media.example/{message_id}/{f.filename}",
                "content_type": f.content_type,
            }
            for f in files
        ]

    def _message_from(self, channel_id: str, captured: Captured, webhook: bool = False) -> dict[str, Any]:
        body = captured.json or {}
        message_id = self.next_id()
        attachments = self._attachments(message_id, captured.files)
        message = {
            "id": str(message_id),
            "channel_id": channel_id,
            "author": user_payload(BOT_ID, "egaku", bot=True),
            "content": body.get("content") or "",
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags") or 0,
        }
        if channel_id and int(channel_id) in self.channels:
            message["guild_id"] = str(GUILD_ID)
        if body.get("message_reference"):
            message["message_reference"] = {"channel_id": channel_id, **body["message_reference"]}
        if webhook:
            message["webhook_id"] = str(APP_ID)
        self.messages[message_id] = message
        self.created_at[message_id] = time.perf_counter()
        return message

    def _edit_message(self, message_id: int, captured: Captured) -> web.Response:
        """PATCH a message: the fields sent replace the stored ones; new files replace the attachments."""
        message = self.messages.get(message_id)
        if message is None:
            return self._json({"message": "Unknown Message", "code": 10008}, status=404)
        body = captured.json or {}
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                message[key] = body[key]
        if captured.files or "attachments" in body:
            message["attachments"] = self._attachments(message_id, captured.files)
        message["edited_timestamp"] = TIMESTAMP
        return self._json(message)

    def _webhook(self, method: str, parts: list[str], captured: Captured) -> web.StreamResponse:
        """An interaction's followups and original response, as Discord keeps them (see Deliveries)."""
        token = parts[2]
        if self.deliveries.expired(token):
            self.refused.append(("/" + "/".join(parts), 50027))
            return self._json({"message": "Invalid Webhook Token", "code": 50027}, status=401)
        interaction = self.deliveries.interactions.get(token)
        channel = interaction.channel_id if interaction else str(CHANNEL_ID)
        target = parts[4] if len(parts) > 4 else None  # "@original" or a message id
        original = interaction.original if interaction else None
        if method == "POST" and interaction is not None and original in self.messages and not interaction.filled:
            target = "@original"  # the first followup of a deferred response fills it
        if target is None:
            return self._json(self._message_from(channel, captured, webhook=True))
        message_id = original if target == "@original" else int(target)
        if message_id is None or message_id not in self.messages:
            return self._json({"message": "Unknown Message", "code": 10008}, status=404)
        if method == "DELETE":
            self.messages.pop(message_id, None)
            return web.Response(status=204)
        if method == "GET":
            return self._json(self.messages[message_id])
        flags = self.messages[message_id]["flags"]
        answer = self._edit_message(message_id, captured)
        if message_id == original and interaction is not None:
            interaction.filled = True
            self.messages[message_id]["flags"] = flags & ~LOADING  # the deferral's visibility stays
            answer = self._json(self.messages[message_id])
        return answer

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        captured = await self._capture(request)
        self.requests.append(captured)
        await self._notify()
        path = request.path.removeprefix("/api/v10")
        if self.token is not None and request.headers.get("Authorization") != f"Bot {self.token}":
            return self._json({"message": "401: Unauthorized", "code": 0}, status=401)
        fault = self._fault_for(request.method, path)
        if fault is not None:
            response = self._json(fault.body, status=fault.status)
            response.headers.update(fault.headers)
            return response
        parts = path.strip("/").split("/")
        method = request.method
        refusal = self._refusal(method, parts, captured)
        if refusal is not None:
            self.refused.append((path, refusal["code"]))
            status = {10062: 404, 50001: 403}.get(refusal["code"], 400)
            return self._json(refusal, status=status)
        if path == "/users/@me":
            return self._json(user_payload(BOT_ID, "egaku", bot=True))
        if path == "/oauth2/applications/@me":
            return self._json(
                {
                    "id": str(APP_ID),
                    "name": "egaku",
                    "description": "",
                    "icon": None,
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": user_payload(OWNER_ID, "owner"),
                    "verify_key": "0" * 64,
                    # The portal's Message Content switch, as the gateway enforces it (4014 when off).
                    "flags": 0 if self.refuse_message_content else MESSAGE_CONTENT_LIMITED,
                    "approximate_guild_count": 1,
                    "interactions_endpoint_url": None,
                }
            )
        if parts[0] == "applications" and parts[-1] == "commands" and method == "PUT":
            if self.guild.commands_refused(parts):
                return self._json({"message": "Missing Access", "code": 50001}, status=403)
            commands = [
                {**c, "id": str(self.next_id()), "application_id": str(APP_ID), "version": "1"} for c in captured.json
            ]
            self.guild.register(parts, commands)
            return self._json(commands)
        read = self.guild.read(method, parts, member_payload(BOT_ID, "egaku", bot=True))
        if read is not None:
            return self._json(*read)
        if parts[0] == "channels" and parts[-1] == "typing":
            return web.Response(status=204)
        if parts[0] == "channels" and parts[-1] == "messages" and method == "POST":
            body = captured.json or {}
            again = self.deliveries.repeated(parts[1], body)
            if again is not None and again in self.messages:
                return self._json(self.messages[again])
            message = self._message_from(parts[1], captured)
            self.deliveries.created(parts[1], body, message)
            return self._json(message)
        if parts[0] == "channels" and len(parts) == 4 and parts[2] == "messages" and method == "PATCH":
            return self._edit_message(int(parts[3]), captured)
        if parts[0] == "channels" and len(parts) == 4 and parts[2] == "messages" and method == "DELETE":
            self.messages.pop(int(parts[3]), None)
            return web.Response(status=204)
        if parts[0] == "interactions" and parts[-1] == "callback":
            response: dict[str, Any] = {
                "interaction": {
                    "id": parts[1],
                    "type": 2,
                    "response_message_id": None,
                    "response_message_loading": captured.json.get("type") == 5,
                    "response_message_ephemeral": bool((captured.json.get("data") or {}).get("flags", 0) & 64),
                }
            }
            interaction = self.deliveries.interactions.get(parts[2])
            channel = interaction.channel_id if interaction else str(CHANNEL_ID)
            if captured.json.get("type") in (4, 5):
                data = Captured(captured.method, captured.path, captured.json.get("data") or {}, captured.files)
                created = self._message_from(channel, data, True)
                if captured.json.get("type") == 5:
                    created["flags"] = LOADING | (created["flags"] & 64)  # "thinking...", until filled
                response["interaction"]["response_message_id"] = created["id"]
                if interaction is not None:
                    interaction.original, interaction.filled = int(created["id"]), captured.json.get("type") == 4
                if captured.json.get("type") == 4:
                    response["resource"] = {"type": 4, "message": created}
            return self._json(response)
        if parts[0] == "webhooks":
            return self._webhook(method, parts, captured)
        return self._json({"message": f"fake Discord has no route for {method} {path}", "code": 0}, status=404)
