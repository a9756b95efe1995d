"""A rendered plan as the API's 200 body: encoded images, the parameters used, usage and timings."""

from __future__ import annotations

import base64
import time

from PIL import Image

from worker.images import encode_image
from worker.plan import Plan
from worker.protocol import GenerationResponse, ImageData, Usage, UsedParameters, image_tokens


def response_for(
    plan: Plan,
    images: list[Image.Image],
    started: float,
    rendered: float,
    prompt_tokens: int,
    scores: list[float] | None = None,
) -> GenerationResponse:
    """The response body for one plan's images (re-encoded from pixels: no metadata leaves)."""
    data = []
    for index, (seed, image) in enumerate(zip(plan.seeds, images, strict=True)):
        used = UsedParameters(
            model=plan.model,
            width=image.width,
            height=image.height,
            steps=plan.steps,
            guidance=plan.guidance,
            seed=seed,
            negative_prompt=plan.negative,
            strength=plan.strength,
            mode=plan.mode,
            adapters=list(plan.adapters),
            concepts=[c.token for c in plan.concepts],
            style=plan.style,
            safety_checked=plan.safety_check,
            outpaint=plan.outpaint,
            references=len(plan.references),
            reference_role=plan.reference_role,
            reference_scale=plan.reference_scale,
        )
        encoded = encode_image(image, plan.output_format, plan.compression or 90)
        data.append(
            ImageData(b64_json=base64.b64encode(encoded).decode("ascii"), revised_prompt=plan.prompt, seed=seed,
                      parameters=used, score=None if scores is None else scores[index])
        )  # fmt: skip
    # Each picture given counts at the size the model read it: the edited one at the plan's, a reference at its own.
    given_pictures = [*([plan.image] if plan.image is not None else []), *plan.references]
    given = sum(image_tokens(picture.width, picture.height) for picture in given_pictures)
    made = sum(image_tokens(image.width, image.height) for image in images)
    return GenerationResponse(
        created=int(time.time()),
        data=data,
        output_format=plan.output_format,  # type: ignore[arg-type]
        quality=plan.quality,  # type: ignore[arg-type]
        size=f"{plan.size.width}x{plan.size.height}",
        usage=Usage.of(prompt_tokens, given, made),
        job_id=plan.job_id or None,
        timings={"render_s": rendered - started, "encode_s": time.perf_counter() - rendered},
        chosen=None if scores is None else max(range(len(scores)), key=scores.__getitem__),
    )
