"""Measuring the world model with the analytic judge: prompt fidelity and edit coherence.

The benchmark (`benchmarks/world.py`) and the floor tests call the same functions, so the
recorded figures and the tests that guard them can never measure different things.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from training.world.judge import EditChange, Fidelity, edit_change, fidelity, read
from training.world.scenes import OBJECT_COLOURS, Scene, Shape
from worker.world.masker import grow

BATCH = 25


def draw(pipe: Any, prompts: list[str], seeds: list[int], steps: int, guidance: float) -> list[np.ndarray]:
    """Render prompts with one seeded generator each, in batches; pictures as uint8 arrays."""
    import torch

    pictures: list[np.ndarray] = []
    for start in range(0, len(prompts), BATCH):
        chunk = prompts[start : start + BATCH]
        generators = [torch.Generator().manual_seed(s) for s in seeds[start : start + BATCH]]
        with torch.inference_mode():
            images = pipe(
                prompt=chunk, num_inference_steps=steps, guidance_scale=guidance, generator=generators,
                width=64, height=64,
            ).images  # fmt: skip
        pictures.extend(np.asarray(image.convert("RGB")) for image in images)
    return pictures


def prompt_fidelity(pipe: Any, scenes: list[Scene], steps: int, guidance: float, seed: int = 0) -> Fidelity:
    """Draw each scene's exact caption (seed `seed + i`) and judge the pictures."""
    seeds = [seed + i for i in range(len(scenes))]
    return fidelity(draw(pipe, [s.caption() for s in scenes], seeds, steps, guidance), scenes)


def round_trip_fidelity(pipe: Any, scenes: list[Scene]) -> Fidelity:
    """The scenes' own pictures through the VAE and back, judged: the ceiling the VAE puts on drawing."""
    import torch

    pictures = np.stack([s.render() for s in scenes])
    with torch.inference_mode():
        x = torch.from_numpy(pictures).permute(0, 3, 1, 2).to(pipe.vae.dtype).div(127.5).sub(1.0)
        back = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mode()).sample
    out = back.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return fidelity(list(out), scenes)


def recoloured(scene: Scene) -> tuple[Scene, Shape]:
    """The scene with its first object in a colour the scene does not use ("make the circle green")."""
    target = scene.shapes[0]
    used = {s.colour for s in scene.shapes} | {scene.background}
    colour = next(c for c in OBJECT_COLOURS if c not in used)
    new = Shape(shape=target.shape, colour=colour, size=target.size, cell=target.cell, jitter=target.jitter)
    return Scene(background=scene.background, shapes=(new, *scene.shapes[1:])), new


@dataclass(frozen=True)
class EditCoherence:
    """Inpainting one object with its mask: the change inside against the change outside."""

    edits: int
    inside: float
    outside: float
    ratio: float  # outside / inside, averaged over edits' pixels
    recoloured: float  # share of edits where the judge reads the new colour on the object


# One edit: (the picture, the mask to paint, the new caption, the seed) -> the edited picture.
Inpaint = Callable[[np.ndarray, np.ndarray, str, int], np.ndarray]


def png(picture: np.ndarray) -> bytes:
    """An RGB or greyscale uint8 array as PNG bytes, as a client uploads it."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def pipeline_inpaint(pipe: Any, steps: int, guidance: float) -> Inpaint:
    """Diffusers' inpaint pipeline alone, on the same components (it re-decodes the whole picture)."""
    import torch
    from diffusers import AutoPipelineForInpainting

    inpaint = AutoPipelineForInpainting.from_pipe(pipe)

    def edit(picture: np.ndarray, mask: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        with torch.inference_mode():
            result = inpaint(
                prompt=prompt, image=Image.fromarray(picture), mask_image=Image.fromarray(mask),
                num_inference_steps=steps, guidance_scale=guidance, strength=1.0, width=64, height=64,
                generator=torch.Generator().manual_seed(seed),
            ).images[0]  # fmt: skip
        return np.asarray(result.convert("RGB"))

    return edit


def worker_inpaint(engine: Any) -> Inpaint:
    """The worker's own edit (what /v1/images/edits and the bot return): the engine, a luminance mask."""
    from worker.protocol import EditRequest

    def edit(picture: np.ndarray, mask: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        request = EditRequest(prompt=prompt, seed=seed, mask_format="luminance", strength=1.0)
        response = engine.render(engine.plan_edit(request, png(picture), png(mask)))
        data = base64.b64decode(response.data[0].b64_json)
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    return edit


def edit_coherence(
    pipe: Any, scenes: list[Scene], steps: int, guidance: float, inpaint: Inpaint, seed: int = 0
) -> EditCoherence:
    """Draw each scene, then repaint its first object in a new colour through the object's mask.

    Both passes use the same seed. The mask is the object's exact mask grown by 2 pixels, as a
    user's brush (or a segmenter) would give it; "inside" is that mask, "outside" the rest.
    """
    seeds = [seed + i for i in range(len(scenes))]
    before = draw(pipe, [s.caption() for s in scenes], seeds, steps, guidance)
    changes: list[EditChange] = []
    hits = 0
    for picture, scene, s in zip(before, scenes, seeds, strict=True):
        edited, target = recoloured(scene)
        mask = grow(scene.masks()[0], 2)
        after = inpaint(picture, (mask * 255).astype(np.uint8), edited.caption(), s)
        changes.append(edit_change(picture, after, mask))
        reading = read(after)
        cx, cy = target.centre
        near = [b for b in reading.blobs if (b.centre[0] - cx) ** 2 + (b.centre[1] - cy) ** 2 <= 36]
        hits += any(b.colour == target.colour for b in near)
    inside = float(np.mean([c.inside for c in changes]))
    outside = float(np.mean([c.outside for c in changes]))
    return EditCoherence(
        edits=len(changes),
        inside=round(inside, 2),
        outside=round(outside, 2),
        ratio=round(outside / inside, 4) if inside else float("inf"),
        recoloured=round(hits / len(changes), 4),
    )
