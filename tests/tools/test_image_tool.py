"""generate_image's best_of: from the model to the worker, bounded in the tool and by the bot's cap."""

from __future__ import annotations

from egaku.config import BestOfSettings, Config
from tests.agent.test_agent import PROMPT, configured, running, turn
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker


async def test_give_me_the_best_one_draws_candidates_and_returns_the_best(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "best_of": 3, "reply": "The best of three!"}))
    async with running(configured(app_config, fake_openai.base_url, recorder.url)) as app:
        result = await app.agent.respond(turn("draw a squirrel king, give me the best one"))
    (received,) = recorder.received
    assert received.fields["best_of"] == 3 and "n" not in received.fields
    (image,) = result.images
    assert len(image.candidates) == 2 and image.score == max(item["score"] for item in received.answer["data"])
    assert result.reply == "The best of three!"
    tools = {t["function"]["name"]: t["function"] for t in fake_openai.requests[0]["tools"]}
    best_of = tools["generate_image"]["parameters"]["properties"]["best_of"]
    assert "give me the best one" in best_of["description"] and "give me" in tools["generate_image"]["description"]


async def test_a_best_of_past_the_bounds_is_a_tool_error_and_nothing_is_drawn(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker
) -> None:
    fake_openai.then(
        Call("generate_image", {"prompt": PROMPT, "best_of": 50}),
        Call("generate_image", {"prompt": PROMPT, "best_of": 3}),
        Say("I can only compare two here."),
    )
    config = app_config.model_copy(update={"best_of": BestOfSettings(max=2)})
    async with running(configured(config, fake_openai.base_url, recorder.url)) as app:
        result = await app.agent.respond(turn("best of fifty squirrel kings"))
    assert recorder.received == [] and result.images == []
    schema_error, cap_error = (r["messages"][-1] for r in fake_openai.requests[1:])
    assert schema_error["role"] == "tool" and "less than or equal to 8" in schema_error["content"]
    assert "I can pick the best of 1 to 2 pictures here; you asked for 3." in cap_error["content"]
    assert result.reply == "I can only compare two here."
