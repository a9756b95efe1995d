"""Buttons under results: they work after a restart, refuse others politely, and ignore garbage."""

from __future__ import annotations

import hashlib
from typing import Any

from egaku.config import Config
from tests.bot.test_conversation import KING, live, say
from tests.fakes.discord import APP_ID, BOT_ID, CHANNEL_ID, Captured, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker

NO_PERMISSIONS = "0"
SINGLE = (
    *("reroll", "subtle", "strong", "edit"),
    *("upscale2", "upscale4", "upscale"),
    *("zoom15", "zoom2", "zoom"),
    *("panleft", "panright", "panup", "pandown"),
    *("prompt", "delete"),
)


def custom_ids(post: Captured) -> list[str]:
    return [c["custom_id"] for row in post.json["components"] for c in row["components"]]


def callback_of(interaction: dict[str, Any]) -> Any:
    return lambda r: r.path == f"/api/v10/interactions/{interaction['id']}/{interaction['token']}/callback"


def followup_of(interaction: dict[str, Any]) -> Any:
    return lambda r: r.method == "POST" and r.path == f"/api/v10/webhooks/{APP_ID}/{interaction['token']}"


async def raw_imagine(fake: FakeDiscord, **numbers: int) -> Captured:
    """/imagine of the squirrel king, drawn as written, with these whole-number options; its followup."""
    options = [{"name": "prompt", "type": 3, "value": KING}, {"name": "raw", "type": 5, "value": True}]
    options += [{"name": name, "type": 4, "value": value} for name, value in numbers.items()]
    interaction = await fake.slash_command("imagine", options)
    return await fake.wait_for_request(followup_of(interaction))


async def first_image(fake: FakeDiscord, llm: FakeOpenAI) -> tuple[Captured, int, str]:
    llm.then(Call("generate_image", {"prompt": KING, "seed": 77}), Say("Here."))
    post = await say(fake, f"<@{BOT_ID}> draw a squirrel king")
    message_id = int(next(m for m in fake.messages.values() if m["content"] == "Here.")["id"])
    generation_id = custom_ids(post)[0].rsplit(":", 1)[1]
    return post, message_id, generation_id


async def test_buttons_carry_the_image_id_and_survive_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        post, message_id, gid = await first_image(fake_discord, fake_openai)
    assert custom_ids(post) == [f"egaku:{action}:{gid}" for action in SINGLE]
    async with live(app_config, fake_openai, recorder, fake_discord):  # a new process: nothing in memory
        reroll = await fake_discord.press(f"egaku:reroll:{gid}", message_id)
        rerolled = await fake_discord.wait_for_request(followup_of(reroll))
        vary = await fake_discord.press(f"egaku:subtle:{gid}", message_id)
        await fake_discord.wait_for_request(followup_of(vary))
        upscale = await fake_discord.press(f"egaku:upscale:{gid}", message_id)
        upscaled = await fake_discord.wait_for_request(followup_of(upscale))
    assert (await fake_discord.wait_for_request(callback_of(reroll))).json == {"type": 5}
    _, regenerate, subtle, bigger = recorder.received
    assert (regenerate.path, regenerate.fields["prompt"]) == ("/v1/images/generations", KING)
    assert regenerate.fields["seed"] != 77  # a reroll is a new seed
    assert (subtle.path, subtle.fields["seed"], subtle.fields["strength"]) == ("/v1/images/edits", "77", "0.35")
    assert (bigger.fields["size"], bigger.fields["strength"]) == ("128x128", "0.3")
    assert rerolled.files and custom_ids(rerolled)[0].startswith("egaku:reroll:")  # new buttons on new results
    assert upscaled.json["embeds"][0]["footer"]["text"].split(" · ")[1] == "128×128"


async def test_other_users_and_garbage_ids_are_refused_politely(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        _, message_id, gid = await first_image(fake_discord, fake_openai)
        # Discord only delivers presses of buttons the message has: give it two odd ones,
        # as an old or tampered message might carry.
        odd = [
            {"type": 2, "style": 2, "label": "?", "custom_id": c} for c in ("egaku:reroll:zzzz", f"egaku:explode:{gid}")
        ]
        fake_discord.messages[message_id]["components"][1]["components"].extend(odd)  # the upscales' row has room
        bob = await fake_discord.press(f"egaku:reroll:{gid}", message_id, user_id=21, user_name="bob")
        unknown = await fake_discord.press("egaku:reroll:zzzz", message_id)
        strange = await fake_discord.press(f"egaku:explode:{gid}", message_id)
        shown = await fake_discord.press(f"egaku:prompt:{gid}", message_id, user_id=21, user_name="bob")
        answers = [await fake_discord.wait_for_request(callback_of(i)) for i in (bob, unknown, strange, shown)]
    texts = [a.json["data"]["content"] for a in answers]
    assert all(a.json["type"] == 4 and a.json["data"]["flags"] == 64 for a in answers)  # ephemeral
    assert texts[0].startswith("Only the person who asked for this image can change it.")
    assert texts[1] == texts[2] == "I can't find that image in my history any more."
    assert f"**Prompt:** {KING}" in texts[3] and f"`id {gid}` · seed 77 · 64×64" in texts[3]
    assert len(recorder.received) == 1  # nothing was drawn for any of them


async def test_delete_is_for_the_owner_or_a_moderator(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        _, message_id, gid = await first_image(fake_discord, fake_openai)
        bob = await fake_discord.press(f"egaku:delete:{gid}", message_id, user_id=21, permissions=NO_PERMISSIONS)
        refused = await fake_discord.wait_for_request(callback_of(bob))
        mine = await fake_discord.press(f"egaku:delete:{gid}", message_id)
        deleted = await fake_discord.wait_for_request(
            lambda r: r.method == "DELETE" and r.path == f"/api/v10/channels/{CHANNEL_ID}/messages/{message_id}"
        )
    assert refused.json["data"]["content"].startswith("Only the person who asked for this image, or a moderator")
    assert deleted.method == "DELETE" and mine["id"]


async def test_edit_opens_a_prefilled_modal_that_remixes(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        _, message_id, gid = await first_image(fake_discord, fake_openai)
        press = await fake_discord.press(f"egaku:edit:{gid}", message_id)
        modal = (await fake_discord.wait_for_request(callback_of(press))).json
        text_input = modal["data"]["components"][0]["components"][0]
        submit = await fake_discord.submit_modal(
            modal["data"]["custom_id"], {text_input["custom_id"]: "A squirrel queen on a throne of ice"}
        )
        await fake_discord.wait_for_request(followup_of(submit))
    assert modal["type"] == 9 and text_input["value"] == KING  # prefilled with the prompt
    remix = recorder.received[1]
    assert (remix.path, remix.fields["prompt"], remix.fields["seed"]) == (
        "/v1/images/edits", "A squirrel queen on a throne of ice", "77",
    )  # fmt: skip


async def test_a_grid_gets_per_image_upscale_and_vary_buttons(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        grid = await raw_imagine(fake_discord, count=2, seed=10)
    rows = [[(c["label"], c["custom_id"]) for c in row["components"]] for row in grid.json["components"]]
    ids = [custom_id.rsplit(":", 1)[1] for _, custom_id in rows[0]]
    assert len(set(ids)) == 2  # one history id per image
    assert rows == [
        [("U1", f"egaku:upscale:{ids[0]}"), ("U2", f"egaku:upscale:{ids[1]}")],
        [("V1", f"egaku:strong:{ids[0]}"), ("V2", f"egaku:strong:{ids[1]}")],
        [(label, f"egaku:{action}:{ids[0]}") for action, label in
         (("reroll", "Reroll"), ("edit", "Edit"), ("prompt", "Show prompt"), ("delete", "Delete"))],
    ]  # fmt: skip
    message_id = max(fake_discord.messages)
    async with live(app_config, fake_openai, recorder, fake_discord):  # after a restart
        vary = await fake_discord.press(f"egaku:strong:{ids[1]}", message_id)
        await fake_discord.wait_for_request(followup_of(vary))
    edit = recorder.received[-1]
    assert (edit.path, edit.fields["seed"], edit.fields["strength"]) == ("/v1/images/edits", "11", "0.7")
    assert edit.files["image"] == hashlib.sha256(grid.files[1].data).hexdigest()  # the second picture


async def test_best_of_posts_the_chosen_picture_and_its_candidates_button_survives_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        posted = await raw_imagine(fake_discord, best_of=3, seed=20)
    answer = recorder.received[0].answer
    data, chosen = answer["data"], answer["chosen"]
    assert [hashlib.sha256(f.data).hexdigest() for f in posted.files] == [data[chosen]["sha256"]]  # the best, alone
    assert posted.json["embeds"][0]["footer"]["text"] == (
        f"seed {20 + chosen} · 64×64 · 2 steps · tiny · score {data[chosen]['score']:.2f}"
    )
    gid = custom_ids(posted)[0].rsplit(":", 1)[1]
    assert custom_ids(posted)[-1] == f"egaku:candidates:{gid}"
    message_id = next(m for m in fake_discord.messages.values() if m["components"] == posted.json["components"])["id"]

    async with live(app_config, fake_openai, recorder, fake_discord):  # a new process, the same history
        press = await fake_discord.press(f"egaku:candidates:{gid}", int(message_id), user_id=21, user_name="bob")
        shown = await fake_discord.wait_for_request(followup_of(press))
    assert (await fake_discord.wait_for_request(callback_of(press))).json == {"type": 5, "data": {"flags": 64}}
    others = sorted((item for n, item in enumerate(data) if n != chosen), key=lambda item: -item["score"])
    assert shown.json["flags"] == 64  # only the presser sees them
    assert [hashlib.sha256(f.data).hexdigest() for f in shown.files] == [item["sha256"] for item in others]
    footers = [embed["footer"]["text"] for embed in shown.json["embeds"]]
    assert footers == [f"seed {item['seed']} · 64×64 · 2 steps · tiny · score {item['score']:.2f}" for item in others]
    assert shown.json["content"].startswith(
        f"The posted picture (`{gid}`) scored **{data[chosen]['score']:.2f}**, the best of 3. The others, best first:"
    )
    assert len(recorder.received) == 1  # showing them drew nothing


async def test_a_picture_drawn_alone_has_no_candidates_button(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        post, message_id, gid = await first_image(fake_discord, fake_openai)
        assert not any(c.startswith("egaku:candidates:") for c in custom_ids(post))
        # An old or tampered message may carry the button anyway: the answer is polite.
        odd = [{"type": 2, "style": 2, "label": "?", "custom_id": f"egaku:candidates:{gid}"}]
        fake_discord.messages[message_id]["components"][-1]["components"].extend(odd)
        press = await fake_discord.press(f"egaku:candidates:{gid}", message_id)
        answer = await fake_discord.wait_for_request(followup_of(press))
    assert answer.json["content"] == "This picture was drawn alone: there are no other candidates."
    assert answer.json["flags"] == 64
