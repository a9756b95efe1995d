"""The evaluation runner against the fake OpenAI server: a perfect model scores full marks, planted faults fail."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.agent_eval import KINDS, LANGUAGES, EvalSet, EvalTurn, evaluate, load_eval_set, markdown
from egaku.config import Config
from tests.conftest import FAKE_ENV
from tests.fakes.openai import Call, FakeOpenAI, Say, Script

REPLIES = {"ja": "はい、描きました！", "zh": "好的，画好了！", "ko": "네, 그렸어요!", "en": "Here you go!"}


def the_turn(eval_set: EvalSet, body: dict[str, Any]) -> EvalTurn:
    """The turn a request is about: the one whose words end the latest user message."""
    said = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    return max((t for t in eval_set.turn if t.text in said), key=lambda t: len(t.text))


def oracle(eval_set: EvalSet, planted: Mapping[str, str] | None = None) -> Callable[[dict[str, Any]], Script]:
    """A model that answers every turn as the set expects, except for the planted faults."""
    planted = planted or {}

    def answer(body: dict[str, Any]) -> Script:
        turn = the_turn(eval_set, body)
        fault = planted.get(turn.id)
        if body["messages"][-1]["role"] == "tool" or turn.expect == "reply":
            return Say(REPLIES["en" if fault == "english reply" else turn.language])
        quotes = "" if fault == "drop quote" else "".join(f' with the words "{q}"' for q in turn.quoted)
        prompt = f"A detailed illustration of the requested scene{quotes}, soft light, watercolour"
        if turn.expect == "draw":
            return Call("generate_image", {"prompt": prompt})
        assert turn.ref is not None
        # The model finds the image's id in the history note of its system message, as a real one would.
        note = body["messages"][0]["content"]
        wanted = re.escape(eval_set.images[turn.ref].prompt[:40])
        ref = re.findall(r"id=(\w+) \([^)]*\): " + wanted, note)[0]
        if fault == "wrong ref":
            ref = re.findall(r"id=(\w+)", note)[0]
        return Call("edit_image", {"ref": ref, "prompt": prompt, "mode": "subtle"})

    return answer


def pointed_at(config: Config, fake: FakeOpenAI) -> Config:
    return config.model_copy(update={"llm": config.llm.model_copy(update={"base_url": fake.base_url})})


def test_the_set_covers_every_language_and_kind() -> None:
    eval_set = load_eval_set()
    assert len(eval_set.turn) >= 60
    for language in LANGUAGES:
        for kind in KINDS:
            assert any(t.language == language and t.kind == kind for t in eval_set.turn), (language, kind)
    assert {t.expect for t in eval_set.turn if t.kind == "refusal"} == {"reply"}
    assert all(t.quoted for t in eval_set.turn if t.kind == "quote")
    # Edits refer to images every way a user does: "it", an ordinal, words, a reply, an upload.
    assert {bool(t.reply_to) for t in eval_set.turn if t.kind == "edit"} == {True, False}
    assert any(t.upload for t in eval_set.turn if t.kind == "edit")


async def test_a_model_that_does_everything_right_scores_full_marks(
    app_config: Config, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    eval_set = load_eval_set()
    fake_openai.responder = oracle(eval_set)
    report = await evaluate(pointed_at(app_config, fake_openai), FAKE_ENV, tmp_path, label="oracle")
    assert [s.failed() for s in report.scored if not s.passed] == []
    assert report.rate("turns") == f"{len(eval_set.turn)}/{len(eval_set.turn)}"
    table = markdown(report, "python -m benchmarks.agent_eval --label oracle")
    edits = sum(t.expect == "edit" for t in eval_set.turn)
    drawn = sum(t.expect != "reply" for t in eval_set.turn)
    quoted = sum(bool(t.quoted) for t in eval_set.turn)
    forbids = sum(bool(t.prompt_forbids or t.reply_forbids) for t in eval_set.turn)
    n = len(eval_set.turn)
    assert (
        f"| **all** | {n}/{n} | {n}/{n} | {n}/{n} | {drawn}/{drawn} | {quoted}/{quoted} | {edits}/{edits} | "
        f"{forbids}/{forbids} |" in table.splitlines()
    )
    assert "| ja | 17/17 | 17/17 | 17/17 | 12/12 | 3/3 | 6/6 | 2/2 |" in table.splitlines()
    # The upload reached the model as the bot sends it: its history id under the user's words.
    upload_turn = next(
        r for r in fake_openai.requests if "この写真を水彩画にして" in r["messages"][-1].get("content") or ""
    )
    said = upload_turn["messages"][-1]["content"]
    assert re.fullmatch(r"\[user\] この写真を水彩画にして\n\(attached image: id=\w+\)", said)
    assert "iVBOR" not in str(fake_openai.requests)  # pixels never reach the model


async def test_planted_faults_fail_exactly_their_checks(
    app_config: Config, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    eval_set = load_eval_set()
    planted = {"ja-chat-greeting": "english reply", "en-edit-ordinal": "wrong ref", "zh-quote-native": "drop quote"}
    fake_openai.responder = oracle(eval_set, planted)
    chosen = {*planted, "ko-edit-reply", "en-refuse-nsfw"}
    report = await evaluate(
        pointed_at(app_config, fake_openai), FAKE_ENV, tmp_path, label="planted", only=lambda t: t.id in chosen
    )
    failures = {s.turn.id: s.failed() for s in report.scored if not s.passed}
    assert failures == {
        "ja-chat-greeting": ["language"],
        "en-edit-ordinal": ["reference"],
        "zh-quote-native": ["quoted verbatim"],
    }
    assert report.rate("turns") == "2/5"
    table = markdown(report, "cmd").splitlines()
    assert "- `en-edit-ordinal`: reference; got edit" in table
    assert "| **all** | 2/5 | 5/5 | 4/5 | 3/3 | 0/1 | 1/2 | – |" in table


async def test_a_model_that_is_down_fails_every_check_and_the_run_goes_on(
    app_config: Config, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    from tests.fakes.openai import Fail

    fake_openai.responder = lambda _body: Fail(500)
    report = await evaluate(
        pointed_at(app_config, fake_openai),
        FAKE_ENV,
        tmp_path,
        only=lambda t: t.id in ("en-draw-squirrel", "ja-chat-greeting"),
    )
    assert [(s.turn.id, s.outcome.action, s.passed) for s in report.scored] == [
        ("ja-chat-greeting", "error", False),
        ("en-draw-squirrel", "error", False),
    ]
    assert report.scored[0].outcome.error is not None and report.scored[0].outcome.error.startswith("LLMUnavailable")
