"""One real turn through the bundled SmolLM2-135M (offline, CPU) and the tiny worker."""

from __future__ import annotations

import math
from threading import current_thread
from types import SimpleNamespace

import pytest
import torch
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from agent.decision import Decision
from agent.graph import build_graph
from agent.prompts import system_prompt
from agent.seeing import history_note
from agent.service import Agent, TurnRequest
from agent.smol import EmbeddedChatModel, SmolRuntime, find_adapter, find_smollm2, first_sentences, speaker_free
from egaku.config import AgentSettings
from egaku.errors import UnknownImage
from egaku.i18n import Text
from tests.agent.test_worldtalk import generation
from tests.conftest import FAKE_ENV  # noqa: F401  (same fixtures module)
from tools.backends.worker_client import WorkerClient
from tools.image_tools import image_tools
from tools.service.images import ImageService
from tools.service.requests import Refused
from training.agent.lexicon import CHINESE, ENGLISH, JAPANESE


def test_helpers() -> None:
    assert speaker_free("[alice] draw a fox") == "draw a fox"
    text = "One two three. Four five six. " + "word " * 100
    assert first_sentences(text, max_words=5) == "One two three."


def test_the_model_loads_ahead_of_the_first_turn_under_the_turns_lock(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = SmolRuntime()
    seen: list[tuple[str, bool]] = []
    monkeypatch.setattr(runtime, "_ensure_loaded", lambda: seen.append((current_thread().name, runtime._lock.locked())))
    thread = runtime.load_in_background()
    thread.join(timeout=10)
    assert (thread.daemon, seen) == (True, [("smollm2-load", True)])  # a turn meanwhile waits on the lock

    def broken() -> None:
        raise OSError("no model file")

    monkeypatch.setattr(runtime, "_ensure_loaded", broken)
    runtime.load_in_background().join(timeout=10)
    assert "loading SmolLM2-135M ahead of the first turn failed (OSError); the turn will retry" in caplog.text
    with pytest.raises(OSError, match="no model file"):  # the turn's own load says what went wrong, as before
        runtime.complete("system", "hello")


class CharTokenizer:
    """One token per character (its code point); 0 ends the answer."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, tokens: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(chr(t) for t in tokens if t)

    def convert_tokens_to_ids(self, token: str) -> int:
        return 0

    def apply_chat_template(self, messages: list[dict[str, str]], **_: object) -> torch.Tensor:
        return torch.tensor([[ord("^")]])


class RowsCache:
    """A KV cache stand-in that keeps each row's tokens, with the calls the runtime makes."""

    def __init__(self) -> None:
        self.rows: list[list[int]] = [[]]

    def get_seq_length(self) -> int:
        return len(self.rows[0])

    def reorder_cache(self, rows: torch.Tensor) -> None:
        self.rows = [list(self.rows[int(r)]) for r in rows]

    def crop(self, tokens_to_remove: int) -> None:
        assert tokens_to_remove <= 0  # as transformers 5's DynamicCache asks
        self.rows = [row[: len(row) + tokens_to_remove] for row in self.rows]


class TableModel:
    """Next-character probabilities looked up by what each row has read so far (after the prompt's '^')."""

    def __init__(self, table: dict[str, dict[str, float]]) -> None:
        self.table = table
        self.calls: list[int] = []  # the batch size of each call

    def __call__(self, input_ids: torch.Tensor, past_key_values: RowsCache | None = None, **_: object) -> object:
        cache = past_key_values or RowsCache()
        self.calls.append(input_ids.shape[0])
        logits = torch.full((input_ids.shape[0], 1, 0x3100), -30.0)
        for at, (row, ids) in enumerate(zip(cache.rows, input_ids.tolist(), strict=True)):
            row += ids
            for char, p in self.table.get("".join(chr(t) for t in row[1:]), {"": 1.0}).items():
                logits[at, 0, ord(char) if char else 0] = math.log(p)
        return SimpleNamespace(past_key_values=cache, logits=logits)


class LinesGuide:
    """Any start of the given answers; after the head 'h', its next line is one of `lines`; once the answer
    is "e", the heads `after_e` (each followed by the lines of `lines_after`) are weighed whole."""

    def __init__(
        self, answers: list[str], lines: list[str], after_e: list[str] | None = None,
        lines_after: dict[str, list[str]] | None = None,
    ) -> None:  # fmt: skip
        self.answers, self.lines, self.after_e, self.lines_after = answers, lines, after_e, lines_after or {}

    def viable(self, text: str) -> bool:
        return any(a.startswith(text) for a in self.answers)

    def complete(self, text: str) -> bool:
        return text in self.answers

    def options(self, head: str) -> list[str] | None:
        return self.lines if head == "h" else self.lines_after.get(head)

    def heads(self, start: str) -> list[str] | None:
        return self.after_e if start == "e" else None


def test_a_known_line_is_chosen_whole_where_greedy_would_commit_early() -> None:
    # Greedy takes "a" (0.6), then has only "ab" left (0.6 x 0.1); "ba" scores 0.4 x 0.9.
    table = {
        "": {"h": 1.0}, "h": {"\n": 1.0}, "h\n": {"a": 0.6, "b": 0.4}, "h\na": {"b": 0.1, "x": 0.9},
        "h\nb": {"a": 0.9, "y": 0.1}, "h\nab": {"\n": 1.0}, "h\nba": {"\n": 1.0},
        "h\nab\n": {"o": 1.0}, "h\nba\n": {"o": 1.0}, "h\nab\no": {"k": 1.0}, "h\nba\no": {"k": 1.0},
    }  # fmt: skip
    runtime = SmolRuntime()
    runtime._tokenizer, runtime._model = CharTokenizer(), TableModel(table)
    answers = ["h\nab\nok", "h\nba\nok"]
    assert runtime.guided([], LinesGuide(answers, ["ab", "ba"])) == "h\nba\nok"
    # Without the options, the same guide lets greedy decoding commit to "a".
    greedy = SmolRuntime()
    greedy._tokenizer, greedy._model = CharTokenizer(), TableModel(table)
    assert greedy.guided([], LinesGuide(answers, [])) == "h\nab\nok"


def test_an_edit_head_is_weighed_with_the_best_line_it_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    # The head "ex" scores 0.6 against "ey" 0.4, but its best line 0.6 against "ey"'s only line 1.0.
    table = {
        "": {"e": 1.0}, "e": {"x": 0.6, "y": 0.4}, "ex": {"\n": 1.0}, "ey": {"\n": 1.0},
        "ex\n": {"a": 0.6, "b": 0.4}, "ey\n": {"c": 1.0},
        **{f"{h}\n{c}": {"\n": 1.0} for h, c in (("ex", "a"), ("ex", "b"), ("ey", "c"))},
        **{f"{h}\n{c}\n": {"o": 1.0} for h, c in (("ex", "a"), ("ex", "b"), ("ey", "c"))},
        **{f"{h}\n{c}\no": {"k": 1.0} for h, c in (("ex", "a"), ("ex", "b"), ("ey", "c"))},
    }  # fmt: skip
    answers = ["ex\na\nok", "ex\nb\nok", "ey\nc\nok"]
    guide = LinesGuide(answers, [], after_e=["ex", "ey"], lines_after={"ex": ["a", "b"], "ey": ["c"]})
    runtime = SmolRuntime()
    runtime._tokenizer, runtime._model = CharTokenizer(), TableModel(table)
    assert runtime.guided([], guide) == "ey\nc\nok"
    # The best head alone, its line weighed after it: "ex" and its best line.
    monkeypatch.setattr("agent.smol.HEAD_CHOICES", 1)
    alone = SmolRuntime()
    alone._tokenizer, alone._model = CharTokenizer(), TableModel(table)
    assert alone.guided([], guide) == "ex\na\nok"
    # A best head that allows no known lines (a picture the guide cannot read) is taken alone.
    unread = LinesGuide(answers, [], after_e=["ex", "ey"], lines_after={"ey": ["c"]})
    monkeypatch.setattr("agent.smol.HEAD_CHOICES", 2)
    runtime._model = TableModel(table)
    assert runtime.guided([], unread) == "ex\na\nok"


def test_the_line_search_hands_back_the_cache_as_it_found_it() -> None:
    runtime = SmolRuntime()
    runtime._tokenizer = CharTokenizer()
    runtime._model = TableModel({"a": {"c": 0.2, "d": 0.8}, "b": {"c": 0.9}, "ac": {"\n": 1.0}, "bc": {"\n": 1.0}})
    cache = RowsCache()
    cache.rows = [[ord("^")]]
    start = torch.full((1, 0x3100), -30.0)
    start[0, ord("a")] = start[0, ord("b")] = math.log(0.5)
    line = runtime._best_line(["ac", "bc"], cache, start)
    assert runtime._tokenizer.decode(line) == "bc\n"
    assert cache.rows == [[ord("^")]]
    assert runtime._model.calls == [2, 2]  # both beams grown together: "a" and "b", then "ac" and "bc"


@pytest.fixture(scope="module")
def runtime() -> SmolRuntime:
    find_smollm2()  # fails clearly if the package is missing
    return SmolRuntime()


async def test_real_turns_draw_what_was_asked_and_answer_a_greeting_in_words(
    runtime: SmolRuntime, worker_url: str
) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        agent = Agent(
            build_graph(EmbeddedChatModel(runtime=runtime), None, AgentSettings()),
            ImageService(WorkerClient(session, worker_url)),
            AgentSettings(),
        )
        drawn = await agent.respond(TurnRequest.of("t", "u", "amy", "draw a red fox in the snow"))
        greeted = await agent.respond(TurnRequest.of("t3", "u", "amy", "hello! nice to meet you"))
        forced = await agent.respond(TurnRequest.of("t2", "u", "amy", "リスの王", must_draw=True))
    # Asked to draw, it draws one picture of what was asked, and says so.
    (picture,) = drawn.images
    assert "fox" in picture.prompt.lower(), picture.prompt
    assert picture.user_words == "draw a red fox in the snow" and picture.png.startswith(b"\x89PNG")
    assert drawn.failures == [] and drawn.reply.strip() and "<|" not in drawn.reply
    # Greeted, it answers in words and draws nothing.
    assert greeted.images == [] and greeted.failures == []
    assert greeted.reply.strip() and "<|" not in greeted.reply
    # /imagine always draws, even when the tiny model cannot translate.
    assert len(forced.images) == 1 and forced.images[0].user_words == "リスの王"
    assert forced.images[0].png.startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def world() -> EmbeddedChatModel:
    """The bundled model with the shipped world adapter, as the example config builds it."""
    return EmbeddedChatModel(runtime=SmolRuntime(adapter=find_adapter("world"))).bind_tools(image_tools())


def said(model: EmbeddedChatModel, text: str, note: str = "This user has no images here yet.") -> Decision | None:
    """The model's decision for one user line, shown what the agent shows it."""
    return model.decide([SystemMessage(content=f"{system_prompt()}\n\n{note}"), HumanMessage(content=f"[amy] {text}")])


RED_ONE = "a large red circle in the center, on a white background"
BLUE_SQUARE = (
    "a small blue square at the top left and a large yellow triangle at the bottom right, on a black background"
)


def test_the_world_adapter_writes_the_canonical_caption_in_japanese_and_chinese(world: EmbeddedChatModel) -> None:
    assert said(world, "黒い背景の左上に小さい青い四角と、右下に大きい黄色い三角を描いて") == Decision(
        action="draw", prompt=BLUE_SQUARE, reply=JAPANESE.drawn
    )
    assert said(world, "在灰色背景的右边画一个大的绿色三角形") == Decision(
        action="draw", prompt="a large green triangle on the right, on a gray background", reply=CHINESE.drawn
    )


def two_pictures() -> str:
    """The history note of a user with two pictures: the red circle (k3mf), then the blue square's (x8pq)."""
    return history_note([generation("k3mf", RED_ONE), generation("x8pq", BLUE_SQUARE)])


def test_the_world_adapter_finds_the_picture_an_edit_means(world: EmbeddedChatModel) -> None:
    # "the square" is the last picture's, named as the last one (the ref the agent resolves to x8pq).
    assert said(world, "make the square green", two_pictures()) == Decision(
        action="edit", ref="last", mode="region", target="the blue square", reply=ENGLISH.edited,
        prompt=BLUE_SQUARE.replace("blue", "green"),
    )  # fmt: skip
    # By ordinal, in Japanese.
    assert said(world, "1枚目の丸を青にして", two_pictures()) == Decision(
        action="edit", ref="k3mf", mode="region", target="the red circle", reply=JAPANESE.edited,
        prompt=RED_ONE.replace("red", "blue"),
    )  # fmt: skip


def test_the_world_adapter_draws_a_newcomers_first_words(world: EmbeddedChatModel) -> None:
    # Every default left to the world: the shortest requests there are, in each language.
    assert said(world, "please draw a red circle") == Decision(action="draw", prompt=RED_ONE, reply=ENGLISH.drawn)
    assert said(world, "赤い丸を描いて") == Decision(action="draw", prompt=RED_ONE, reply=JAPANESE.drawn)
    assert said(world, "画一个红色的圆") == Decision(action="draw", prompt=RED_ONE, reply=CHINESE.drawn)
    assert said(world, "a green triangle") == Decision(
        action="draw", prompt="a large green triangle in the center, on a white background", reply=ENGLISH.drawn
    )
    # A colour the world does not have is still declined.
    assert said(world, "draw an orange circle") == Decision(action="reply", text=ENGLISH.outside_reply)


def test_the_world_adapter_draws_a_newcomers_bare_words_and_edits_the_picture_named(
    world: EmbeddedChatModel,
) -> None:
    # Said bare, as the out-of-world near misses are ("draw a pink square"): the fourth lesson's.
    assert said(world, "draw a red circle") == Decision(action="draw", prompt=RED_ONE, reply=ENGLISH.drawn)
    assert said(world, "paint a blue square") == Decision(
        action="draw", prompt=RED_ONE.replace("red circle", "blue square"), reply=ENGLISH.drawn
    )
    # Only the first picture has a circle: said so, the edit is of that one (k3mf), named by its id.
    assert said(world, "turn the circle blue", two_pictures()) == Decision(
        action="edit", ref="k3mf", mode="region", target="the red circle", reply=ENGLISH.edited,
        prompt=RED_ONE.replace("red", "blue"),
    )  # fmt: skip


def test_the_world_adapter_changes_only_what_an_edit_names(world: EmbeddedChatModel) -> None:
    # Removals: decoded letter by letter, the model kept the object and moved it (1 of 6 held-back removals
    # right); weighing the allowed captions whole, it removes it.
    assert said(world, "I don't want the yellow triangle anymore", two_pictures()) == Decision(
        action="edit", ref="last", mode="region", target="the yellow triangle", reply=ENGLISH.edited,
        prompt="a small blue square at the top left, on a black background",
    )  # fmt: skip
    assert said(world, "三角はいらない", two_pictures()) == Decision(
        action="edit", ref="last", mode="region", target="the yellow triangle", reply=JAPANESE.edited,
        prompt="a small blue square at the top left, on a black background",
    )  # fmt: skip


def test_an_edit_naming_what_only_an_earlier_picture_has_goes_to_that_picture(world: EmbeddedChatModel) -> None:
    # Decoded letter by letter, the head went to the last picture (a known miss until the head was weighed
    # with its caption, agent.smol HEAD_CHOICES).
    assert said(world, "make the circle blue", two_pictures()) == Decision(
        action="edit", ref="k3mf", mode="region", target="the red circle", reply=ENGLISH.edited,
        prompt=RED_ONE.replace("red", "blue"),
    )  # fmt: skip
    assert said(world, "丸を青にして", two_pictures()) == Decision(
        action="edit", ref="k3mf", mode="region", target="the red circle", reply=JAPANESE.edited,
        prompt=RED_ONE.replace("red", "blue"),
    )  # fmt: skip


@pytest.mark.xfail(
    strict=True, raises=AssertionError,
    reason="a known miss of the shipped adapter (docs/notes.md, the sixth lesson): the bare English \"draw a "
    "<colour> circle\" after pictures is declined again, as before the fifth lesson",
)  # fmt: skip
def test_the_world_adapter_known_miss_of_bare_circles_after_pictures(world: EmbeddedChatModel) -> None:
    assert said(world, "draw a red circle", two_pictures()) == Decision(
        action="draw", prompt=RED_ONE, reply=ENGLISH.drawn
    )


def four_pictures() -> str:
    """The history note of a user with four pictures, the last two those of `two_pictures`."""
    return history_note([
        generation("ab12", "a small yellow circle at the bottom, on a black background"),
        generation("cd34", "a large green triangle on the left, on a gray background"),
        generation("k3mf", RED_ONE), generation("x8pq", BLUE_SQUARE),
    ])  # fmt: skip


def test_the_world_adapter_draws_bare_words_after_several_pictures(world: EmbeddedChatModel) -> None:
    # The fourth lesson's bare requests came after none to two pictures, so after a few the bare English "draw
    # a red circle" was declined as outside the world (found at the first-run check); the fifth's come after
    # as many pictures as its out-of-world lines do. Since the sixth, "draw a <colour> circle" after pictures is
    # declined again (a known miss, above); asked politely, it draws.
    for note in (two_pictures(), four_pictures()):
        assert said(world, "please draw a red circle", note) == Decision(
            action="draw", prompt=RED_ONE, reply=ENGLISH.drawn
        )
        assert said(world, "paint a yellow circle", note) == Decision(
            action="draw", prompt=RED_ONE.replace("red", "yellow"), reply=ENGLISH.drawn
        )
        # The near misses are still declined there.
        assert said(world, "draw a pink square", note) == Decision(action="reply", text=ENGLISH.outside_reply)


def test_the_world_adapter_talks_after_several_pictures(world: EmbeddedChatModel) -> None:
    # Thanks and goodbyes after a busy session are no edits of the last picture (the third lesson's regression,
    # mended by the fourth: docs/benchmarks.md, "The offline first run").
    four = four_pictures()
    assert said(world, "that's perfect, ty", four) == Decision(action="reply", text=ENGLISH.chat_reply["thanks"])
    # In the user's language, one of its fixed replies ("助かりました" gets the out-of-world one: docs/notes.md).
    for line, tongue in (("助かりました", JAPANESE), ("我先走了，再见", CHINESE), ("早上好", CHINESE)):
        decision = said(world, line, four)
        assert decision is not None and decision.action == "reply", line
        assert decision.text in {*tongue.chat_reply.values(), tongue.outside_reply}, line
    assert said(world, "draw a pentagon in the middle", four) == Decision(action="reply", text=ENGLISH.outside_reply)


def test_the_world_adapter_talks_and_declines_what_the_world_cannot_draw(world: EmbeddedChatModel) -> None:
    assert said(world, "what can you draw?") == Decision(action="reply", text=ENGLISH.chat_reply["ask"])
    assert said(world, "こんにちは") == Decision(action="reply", text=JAPANESE.chat_reply["greet"])
    assert said(world, "draw a dragon") == Decision(action="reply", text=ENGLISH.outside_reply)
    assert said(world, "画一条龙") == Decision(action="reply", text=CHINESE.outside_reply)
    # A refusal from the tool is answered in words, not with another call.
    refused = [
        SystemMessage(content=system_prompt()), HumanMessage(content="[amy] make the second one blue"),
        AIMessage(content="", tool_calls=[{"name": "edit_image", "args": {"ref": "2", "prompt": RED_ONE}, "id": "c1"}]),
        ToolMessage(content="Refused: you have 1 images here. Adjust the arguments once, or ask the user.",
                    tool_call_id="c1", status="error"),
    ]  # fmt: skip
    assert world.decide(refused) == Decision(action="reply", text="I couldn't do that: you have 1 images here.")
    # With the typed refusal beside it (as the agent's tool node leaves it), its fixed text, whole.
    reason = Text(UnknownImage.user_text)
    refused[-1] = ToolMessage(content=f"Refused: {reason}. Adjust the arguments once, or ask the user.",
                              tool_call_id="c1", status="error", artifact=Refused(reason))  # fmt: skip
    assert world.decide(refused) == Decision(action="reply", text=str(reason))
