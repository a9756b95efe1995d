"""What the image service keeps of a job: its pictures in the history (with their lineage and best-of's losers), and its
audit record."""

from __future__ import annotations

import json
from dataclasses import replace

from tools.checks.languages import detect_language
from tools.pictures import ImageKind, Lineage, RenderedImage
from tools.service.requests import Requester
from tools.stores.history import AuditRecord, Generation, History


async def kept(
    history: History | None, images: list[RenderedImage], who: Requester, kind: ImageKind, parents: Lineage = ()
) -> list[RenderedImage]:
    """Record images in the history (when there is one), with their parents in order; return them with their ids."""
    first = parents[0].id if parents else None

    def made(image: RenderedImage, image_id: str | None = None) -> RenderedImage:
        return replace(image, id=image_id or image.id, kind=kind, parent_id=first, parents=parents)

    if history is None:
        return [made(i) for i in images]
    result = []
    for image in images:
        record = await _record(history, image, who, kind, parents)
        # Best-of-N: the candidates it beat are kept too, each linked to it, none of them posted.
        losers = [await _record(history, c, who, kind, parents, candidate_of=record.id) for c in image.candidates]
        candidates = tuple(made(c, r.id) for c, r in zip(image.candidates, losers, strict=True))
        result.append(replace(made(image, record.id), candidates=candidates))
    return result


async def _record(
    history: History,
    image: RenderedImage,
    who: Requester,
    kind: ImageKind,
    parents: Lineage,
    candidate_of: str | None = None,
) -> Generation:
    """One image into the history, with its parents."""
    return await history.add(
        image.png,
        conversation=who.conversation,
        user_id=who.user_id,
        guild_id=who.guild_id,
        channel_id=who.channel_id,
        user_words=who.user_words,
        prompt=image.prompt,
        negative_prompt=image.negative_prompt,
        seed=image.seed,
        width=image.width,
        height=image.height,
        steps=image.steps,
        model=image.model,
        kind=kind,
        parents=parents,
        prompt_language=detect_language(image.prompt),
        score=image.score,
        candidate_of=candidate_of,
        nsfw=who.nsfw,
    )


async def audit(
    history: History | None, who: Requester, seconds: float, outcome: str, images: list[RenderedImage], verdict: str
) -> None:
    """One audit record per job: who, where, their words, the final prompt, parameters, outcome, time."""
    if history is None:
        return
    parameters = [
        {"seed": i.seed, "width": i.width, "height": i.height, "steps": i.steps, "guidance": i.guidance,
         "model": i.model, "negative_prompt": i.negative_prompt, "kind": i.kind, "parent_id": i.parent_id}
        for i in images
    ]  # fmt: skip
    await history.audit(
        AuditRecord(
            user_id=who.user_id,
            user_words=who.user_words,
            parameters=json.dumps(parameters, ensure_ascii=False),
            outcome=outcome,
            seconds=seconds,
            guild_id=who.guild_id,
            channel_id=who.channel_id,
            source_id=who.source_id,
            final_prompt=images[0].prompt if images else None,
            verdict=verdict,
            image_ids=",".join(i.id for i in images if i.id),
        )
    )
