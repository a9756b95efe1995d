"""/imagine over the fake Discord: defer at once, then a followup with the PNG."""

from __future__ import annotations

import io

from PIL import Image

from bot.services import BotServices
from egaku.config import Config
from tests.agent.test_agent import PROMPT
from tests.bot.harness import running_bot
from tests.bot.test_chat import app_for
from tests.fakes.discord import APP_ID, Captured, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say


def callback_of(interaction: dict) -> object:
    path = f"/api/v10/interactions/{interaction['id']}/{interaction['token']}/callback"
    return lambda r: r.method == "POST" and r.path == path


def followup_of(interaction: dict) -> object:
    path = f"/api/v10/webhooks/{APP_ID}/{interaction['token']}"
    return lambda r: r.method == "POST" and r.path == path


async def synced_commands(config: Config, llm: FakeOpenAI, worker_url: str, fake: FakeDiscord) -> Captured:
    """The command sync the bot sends at start-up."""
    async with app_for(config, llm, worker_url) as app, running_bot(fake, app.agent, sync=True):
        return await fake.wait_for_request(lambda r: r.method == "PUT" and r.path.endswith("/commands"))


async def test_imagine_defers_then_follows_up_with_the_image(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "seed": 5}), Say("できました！"))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        interaction = await fake_discord.slash_command("imagine", [{"name": "prompt", "type": 3, "value": "リスの王"}])
        followup: Captured = await fake_discord.wait_for_request(followup_of(interaction))  # type: ignore[arg-type]
    callback = next(r for r in fake_discord.requests if callback_of(interaction)(r))  # type: ignore[operator]
    assert callback.json == {"type": 5}
    assert fake_discord.requests.index(callback) < fake_discord.requests.index(followup)
    assert followup.json["content"] == "できました！"
    assert followup.json["allowed_mentions"] == {"parse": []}
    (embed,) = followup.json["embeds"]
    assert embed["description"] == PROMPT
    assert embed["fields"][0]["value"] == "リスの王"
    (upload,) = followup.files
    assert Image.open(io.BytesIO(upload.data)).format == "PNG"
    # The model was told this is an /imagine request.
    assert fake_openai.requests[0]["messages"][-1]["content"] == "[alice] /imagine リスの王"


async def test_imagine_raw_skips_the_rewrite(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        interaction = await fake_discord.slash_command(
            "imagine",
            [{"name": "prompt", "type": 3, "value": "a fox, ukiyo-e"}, {"name": "raw", "type": 5, "value": True}],
        )
        followup: Captured = await fake_discord.wait_for_request(followup_of(interaction))  # type: ignore[arg-type]
    assert fake_openai.requests == []
    assert "content" not in followup.json
    assert followup.json["embeds"][0]["description"] == "a fox, ukiyo-e"
    assert len(followup.files) == 1


async def test_imagine_worker_down_answers_in_the_followup(
    app_config: Config, fake_openai: FakeOpenAI, fake_discord: FakeDiscord
) -> None:
    async with app_for(app_config, fake_openai, "http://127.0.0.1:9") as app, running_bot(fake_discord, app.agent):
        interaction = await fake_discord.slash_command(
            "imagine",
            [{"name": "prompt", "type": 3, "value": "a fox"}, {"name": "raw", "type": 5, "value": True}],
        )
        followup: Captured = await fake_discord.wait_for_request(followup_of(interaction))  # type: ignore[arg-type]
    assert followup.json["content"].startswith("The image service is not reachable right now.")
    assert followup.files == []


async def test_commands_are_synced_with_their_options(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    sync = await synced_commands(app_config, fake_openai, worker_url, fake_discord)
    assert sync.path == f"/api/v10/applications/{APP_ID}/commands"
    names = [c["name"] for c in sync.json]
    assert names == ["describe", "imagine", "reset", "settings", "concepts", "teach", "blend"]
    describe, imagine, _reset, settings, _concepts, _teach, blend = sync.json
    # /blend in Midjourney's order: two pictures, the shape, then the optional pictures and the prompt.
    assert [(o["name"], o["type"], o["required"]) for o in blend["options"]] == [
        ("image1", 11, True), ("image2", 11, True), ("aspect", 3, False), ("image3", 11, False),
        ("image4", 11, False), ("image5", 11, False), ("prompt", 3, False),
    ]  # fmt: skip
    assert [c["value"] for c in blend["options"][2]["choices"]] == ["1:1", "3:2", "16:9", "2:3", "9:16"]
    assert [(o["name"], o["type"], o["required"]) for o in describe["options"]] == [("image", 11, True)]
    assert [o["name"] for o in settings["options"]] == ["me", "server"]
    options = {o["name"]: (o["type"], o["required"]) for o in imagine["options"]}
    assert options == {
        "prompt": (3, True), "negative": (3, False), "aspect": (3, False), "seed": (4, False),
        "style": (3, False), "count": (4, False), "model": (3, False), "raw": (5, False), "best_of": (4, False),
    }  # fmt: skip
    by_name = {o["name"]: o for o in imagine["options"]}
    assert by_name["prompt"]["max_length"] == 4000
    assert (by_name["count"]["min_value"], by_name["count"]["max_value"]) == (1, 4)
    assert (by_name["best_of"]["min_value"], by_name["best_of"]["max_value"]) == (1, 8)  # the config's cap: later
    assert [c["value"] for c in by_name["aspect"]["choices"]] == ["1:1", "3:2", "16:9", "2:3", "9:16"]
    assert "watercolor" in [c["value"] for c in by_name["style"]["choices"]]
    assert by_name["model"]["autocomplete"] is True


async def test_imagine_options_win_over_the_models_choices(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(
        Call("generate_image", {"prompt": PROMPT, "negative_prompt": "from the model", "seed": 1, "aspect": "1:1"}),
        Say("Two of them!"),
    )
    options = [
        {"name": "prompt", "type": 3, "value": "リスの王"},
        {"name": "negative", "type": 3, "value": "blurry, text"},
        {"name": "aspect", "type": 3, "value": "16:9"},
        {"name": "seed", "type": 4, "value": 42},
        {"name": "style", "type": 3, "value": "ukiyoe"},
        {"name": "count", "type": 4, "value": 2},
        {"name": "model", "type": 3, "value": "tiny-alt"},
    ]
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        interaction = await fake_discord.slash_command("imagine", options)
        followup: Captured = await fake_discord.wait_for_request(followup_of(interaction))  # type: ignore[arg-type]
    assert len(followup.files) == 2 and len(followup.json["embeds"]) == 2
    first, second = followup.json["embeds"]
    assert first["description"].startswith(PROMPT + ", ukiyo-e woodblock print")
    assert first["footer"]["text"] == "seed 42 · 80×48 · 3 steps · tiny-alt"
    assert second["footer"]["text"] == "seed 43 · 80×48 · 3 steps · tiny-alt"
    assert first["fields"][1] == {"name": "Negative", "value": "blurry, text, photo, 3d render", "inline": False}


async def test_imagine_unknown_model_is_answered_clearly(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    async with app_for(app_config, fake_openai, worker_url) as app:
        services = BotServices(agent=app.agent, images=app.images, models=("tiny", "tiny-alt"))
        async with running_bot(fake_discord, app.agent, services=services):
            options = [{"name": "prompt", "type": 3, "value": "a fox"}, {"name": "model", "type": 3, "value": "sd9"}]
            interaction = await fake_discord.slash_command("imagine", options)
            followup: Captured = await fake_discord.wait_for_request(followup_of(interaction))  # type: ignore[arg-type]
    assert followup.json["content"] == "I don't know the model `sd9`. Choose one of: tiny, tiny-alt."
    assert fake_openai.requests == []


async def test_imagine_best_of_past_the_cap_is_refused_before_any_work(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fox = {"name": "prompt", "type": 3, "value": "a fox"}
    too_many = [fox, {"name": "best_of", "type": 4, "value": 6}]
    both = [fox, {"name": "best_of", "type": 4, "value": 2}, {"name": "count", "type": 4, "value": 2}]
    answers: list[Captured] = []
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        for options in (too_many, both):
            interaction = await fake_discord.slash_command("imagine", options)
            answers.append(await fake_discord.wait_for_request(followup_of(interaction)))  # type: ignore[arg-type]
    assert [a.json["content"] for a in answers] == [
        "I can pick the best of 1 to 4 pictures here; you asked for 6.",
        "Choose `count` (several pictures) or `best_of` (the best of several), not both.",
    ]
    assert fake_openai.requests == [] and not any(a.files for a in answers)
