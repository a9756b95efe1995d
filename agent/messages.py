"""Reading and repairing a conversation's messages: what a turn holds, what the model is shown."""

from __future__ import annotations

from langchain.agents.middleware import ModelResponse
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

from agent.replies import tidy_reply


def calls_this_turn(messages: list[AnyMessage]) -> int:
    """Model calls since the latest user message (derived, not stored)."""
    count = 0
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        count += isinstance(message, AIMessage)
    return count


def recent(messages: list[AnyMessage], keep: int) -> list[AnyMessage]:
    """The last `keep` messages, starting on a user message so no tool result is orphaned."""
    if len(messages) <= keep:
        return messages
    tail = messages[-keep:]
    for i, message in enumerate(tail):
        if isinstance(message, HumanMessage):
            return tail[i:]
    # One turn longer than `keep`: keep that whole turn.
    last_human = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
    return messages[last_human:]


UNANSWERED_TEXT = "(no result: this call was interrupted and did not run to the end)"


def answer_every_tool_call(messages: list[AnyMessage]) -> list[AnyMessage] | None:
    """The conversation with every tool call answered and no stray tool result, or None if it already is.

    OpenAI, and every server that checks message order, refuses a conversation in which an
    assistant's tool call is not followed by its result: one such message would break every
    later turn of the channel.
    """
    repaired: list[AnyMessage] = []
    open_calls: dict[str, str] = {}  # call id -> tool name, for the latest assistant message

    def close() -> None:
        repaired.extend(
            ToolMessage(content=UNANSWERED_TEXT, tool_call_id=call_id, name=name, status="error")
            for call_id, name in open_calls.items()
        )
        open_calls.clear()

    for message in messages:
        if isinstance(message, ToolMessage):
            if open_calls.pop(message.tool_call_id, None) is None:
                continue  # a result with no call before it
            repaired.append(message)
            continue
        close()
        repaired.append(message)
        if isinstance(message, AIMessage):
            open_calls = {call["id"] or "": call["name"] for call in message.tool_calls}
    close()
    if len(repaired) == len(messages) and all(a is b for a, b in zip(repaired, messages, strict=True)):
        return None
    return repaired


def usable(message: AIMessage) -> bool:
    """A tool call that parsed, or some text: anything else would reach the user as nothing."""
    if message.invalid_tool_calls:
        return False
    return bool(message.tool_calls) or bool(message.text.strip())


def tidied(response: ModelResponse, answer: AIMessage | None) -> ModelResponse:
    """The response with its text answer cut at loops and capped (tool calls untouched)."""
    if answer is None or answer.tool_calls or not isinstance(answer.content, str):
        return response
    text = tidy_reply(answer.content)
    if text == answer.content:
        return response
    fixed = answer.model_copy(update={"content": text})
    return ModelResponse(
        result=[fixed if m is answer else m for m in response.result],
        structured_response=response.structured_response,
    )
