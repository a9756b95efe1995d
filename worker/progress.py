"""What a batch reports while it denoises: steps with an ETA, latent previews, OpenAI's partial images.

The pipeline calls `StepReporter` after each step, on the render thread. It also carries a
cancel to the pipeline: diffusers' `_interrupt` where the loop checks it, else an exception.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from worker.images import encode_image
from worker.plan import Plan
from worker.protocol import GenerationResponse
from worker.scheduler import Job, Progress

Report = Callable[[Job[GenerationResponse], Progress], None]


class StopRender(Exception):
    """Raised from the step callback to cancel a pipeline that cannot be interrupted."""


def partial_steps(total: int, count: int) -> list[int]:
    """The steps (1-based, before the last) after which OpenAI's partial images are sent, evenly spread."""
    return sorted({round(total * (i + 1) / (count + 1)) for i in range(count)} & set(range(1, total)))


def partial_image(plan: Plan, latents: Any, index: int) -> dict[str, Any]:
    """One OpenAI partial image: the latent preview at the output's size and format."""
    picture = plan.family.preview_picture(latents, plan.size).resize(
        (plan.size.width, plan.size.height), Image.Resampling.BILINEAR
    )
    encoded = encode_image(picture, plan.output_format, plan.compression or 90)
    return {
        "partial_image_index": index,
        "b64_json": base64.b64encode(encoded).decode("ascii"),
        "background": "opaque",
        "output_format": plan.output_format,
        "quality": plan.quality,
        "size": f"{plan.size.width}x{plan.size.height}",
    }


def step_reporter(
    jobs: Sequence[Job[GenerationResponse]],
    owners: list[int],
    plan: Plan,
    started: float,
    report: Report,
    preview_every: int,
) -> Callable[..., dict[str, Any]]:
    """The batch's `callback_on_step_end`: `owners[i]` is the job of the batch's i-th sample."""
    partials: dict[int, list[int]] = {}

    def on_step_end(pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        done = step + 1
        total = pipe.num_timesteps if hasattr(pipe, "num_timesteps") else plan.steps
        elapsed = time.perf_counter() - started
        eta = elapsed / done * max(0, total - done)
        for job in jobs:
            report(job, Progress("step", {"step": done, "steps": total, "eta_s": round(eta, 3)}))
        if preview_every and done % preview_every == 0 and done < total and "latents" in tensors:
            for index, job in enumerate(jobs):
                sample = owners.index(index)
                preview = plan.family.preview(tensors["latents"][sample], plan.size)
                report(job, Progress("preview", {"step": done, "b64_png": base64.b64encode(preview).decode()}))
        for index, job in enumerate(jobs):
            wanted = job.plan.partial_images
            if not wanted or "latents" not in tensors:
                continue
            at = partials.setdefault(index, partial_steps(total, wanted))
            if done in at:
                latents = tensors["latents"][owners.index(index)]
                report(job, Progress("partial", partial_image(job.plan, latents, at.index(done))))
        if all(job.cancel_flag.is_set() for job in jobs):
            if not plan.family.interruptible:
                raise StopRender  # the loop has no interrupt check: leave it from here
            pipe._interrupt = True  # diffusers stops before the next step
        return tensors

    return on_step_end
