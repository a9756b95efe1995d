"""Teaching a new word from a few pictures: textual inversion, after diffusers' example recipe.

The recipe (diffusers/examples/textual_inversion): a placeholder word whose embedding
starts as an existing word's ("object"), captions from fixed templates ("a photo of a
<word>"), the model's own noise-prediction loss on the pictures' latents at random
timesteps, and only that embedding row trained; the UNet, the VAE and every other
row stay frozen. SDXL has two text encoders: the word gets a vector in each, and both
are trained.

One difference, on purpose: the word is not added to the pipeline's tokenizer while it
trains. The worker renders other people's pictures with that same pipeline between
training chunks, so the trainer leaves it untouched: the caption is tokenised with a
stand-in token at the word's place, and a hook on the encoder's token-embedding layer
puts the trained vector there, only during the trainer's own forward pass. The result is
the same row the recipe trains, saved in the file format the family's
`load_textual_inversion` reads (`emb_params` for SD1.5; `clip_l` and `clip_g` for SDXL).
"""

from __future__ import annotations

import base64
import contextlib
import io
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from worker.families import Family
from worker.families.base import TeachPart
from worker.protocol import Size, TeachResponse, TeachSettingsUsed
from worker.settings import ModelPreset

# diffusers' textual_inversion.py `imagenet_templates_small` (objects).
TEMPLATES = (
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a photo of a dirty {}",
    "a dark photo of the {}",
    "a photo of my {}",
    "a photo of the cool {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a cropped photo of a {}",
    "a photo of the {}",
    "a good photo of the {}",
    "a photo of one {}",
    "a close-up photo of the {}",
    "a rendition of the {}",
    "a photo of the clean {}",
    "a rendition of a {}",
    "a photo of a nice {}",
    "a good photo of a {}",
    "a photo of the nice {}",
    "a photo of the small {}",
    "a photo of the weird {}",
    "a photo of the large {}",
    "a photo of a cool {}",
    "a photo of a small {}",
)
LOSS_WINDOW = 10  # the reported loss is the mean of the last this many steps: one step's loss is noise


@dataclass(frozen=True)
class TeachPlan:
    """A training request checked against the presets: everything the trainer needs."""

    model: str
    preset: ModelPreset
    token: str
    init_word: str
    pictures: tuple[Image.Image, ...] = field(compare=False)
    size: Size
    steps: int
    learning_rate: float
    seed: int
    max_seconds: float
    job_id: str = ""

    @property
    def family(self) -> Family:
        """The model family that learns the word."""
        from worker.families import family_for

        return family_for(self.preset.family)


def fit_picture(picture: Image.Image, size: Size) -> Image.Image:
    """Centre-crop a picture to the training size's shape, then scale it to that size."""
    target = size.width / size.height
    width, height = picture.size
    if width / height > target:
        crop = round(height * target)
        left = (width - crop) // 2
        picture = picture.crop((left, 0, left + crop, height))
    else:
        crop = round(width / target)
        top = (height - crop) // 2
        picture = picture.crop((0, top, width, top + crop))
    return picture.resize((size.width, size.height), Image.Resampling.BICUBIC)


def _init_vector(part: TeachPart, word: str) -> torch.Tensor:
    """The starting embedding: the init word's, averaged over its tokens when it has several."""
    ids = part.tokenizer(word, add_special_tokens=False).input_ids
    table = part.encoder.get_input_embeddings().weight
    return table[ids].detach().float().mean(dim=0).clone()


def _caption_ids(tokenizer: Any, template: str, stand_in: int) -> tuple[torch.Tensor, int]:
    """[1, 77] ids of a caption with a stand-in token where the word goes, and that token's position."""
    before, after = template.split("{}")
    head = tokenizer(before.strip(), add_special_tokens=False).input_ids if before.strip() else []
    tail = tokenizer(after.strip(), add_special_tokens=False).input_ids if after.strip() else []
    length = tokenizer.model_max_length
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    row = [tokenizer.bos_token_id, *head, stand_in, *tail, tokenizer.eos_token_id]
    return torch.tensor([row + [pad] * (length - len(row))]), 1 + len(head)


@contextlib.contextmanager
def _word_at(encoder: Any, position: int, vector: torch.Tensor) -> Iterator[None]:
    """While open, the encoder's token embedding at `position` is the trained vector (a hook, not a new row)."""

    def put(_module: Any, _args: Any, output: torch.Tensor) -> torch.Tensor:
        replaced = output.clone()
        replaced[:, position] = vector.to(output.dtype)
        return replaced

    handle = encoder.get_input_embeddings().register_forward_hook(put)
    try:
        yield
    finally:
        handle.remove()


class Trainer:
    """One textual-inversion run on a loaded pipeline. `run(n)` trains n steps; `result()` is the word's file.

    It keeps the pictures' latent distributions (one VAE pass at the start), the trained
    vectors and their optimiser between calls, so the worker can train in short chunks
    between render batches.
    """

    def __init__(self, pipe: Any, plan: TeachPlan) -> None:
        self._pipe = pipe
        self._plan = plan
        self._family = plan.family
        self._parts = self._family.teach_parts(pipe)
        self._random = random.Random(plan.seed)
        self._generator = torch.Generator(device="cpu").manual_seed(plan.seed)
        self._unet = getattr(pipe, self._family.denoiser)  # families that teach have a UNet here
        self._device, self._dtype = self._unet.device, self._unet.dtype
        self.initial = [_init_vector(part, plan.init_word) for part in self._parts]
        self.vectors = [v.clone().to(self._device).requires_grad_(True) for v in self.initial]
        # The stand-in token at the word's place: the init word's first token (the hook replaces it anyway).
        self._stand_ins = [p.tokenizer(plan.init_word, add_special_tokens=False).input_ids[0] for p in self._parts]
        # diffusers' example: AdamW on the embedding, no learning-rate warm-up for a few hundred steps.
        self._optimizer = torch.optim.AdamW(self.vectors, lr=plan.learning_rate, weight_decay=1e-2)
        self._noise = _training_scheduler(pipe)
        self._latents = self._encode_pictures()
        self.step = 0
        self.losses: list[float] = []
        self.seconds = 0.0

    def _encode_pictures(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each picture's latent mean and std (sampled afresh at every step, as the recipe's VAE pass does)."""
        vae = self._pipe.vae
        encoded = []
        with torch.no_grad():
            for picture in self._plan.pictures:
                pixels = torch.from_numpy(_as_array(picture)).permute(2, 0, 1)[None]
                pixels = (pixels.float() / 127.5 - 1.0).to(vae.device, vae.dtype)
                dist = vae.encode(pixels).latent_dist
                encoded.append((dist.mean, dist.std))
        return encoded

    @property
    def loss(self) -> float | None:
        """The mean loss of the last steps."""
        recent = self.losses[-LOSS_WINDOW:]
        return sum(recent) / len(recent) if recent else None

    def run(self, steps: int) -> None:
        """Train `steps` more steps."""
        started = time.perf_counter()
        with torch.enable_grad():
            for _ in range(steps):
                self._one_step()
        self.seconds += time.perf_counter() - started

    def _one_step(self) -> None:
        mean, std = self._latents[self._random.randrange(len(self._latents))]
        noise_shape = mean.shape
        latents = mean + std * torch.randn(noise_shape, generator=self._generator).to(mean.device, mean.dtype)
        if self._random.random() < 0.5:
            latents = latents.flip(-1)  # the recipe's horizontal flip, in latent space (no second VAE pass)
        config = self._pipe.vae.config
        latents = (latents - (getattr(config, "shift_factor", None) or 0.0)) * config.scaling_factor
        noise = torch.randn(latents.shape, generator=self._generator).to(latents.device, latents.dtype)
        timestep = torch.randint(0, self._noise.config.num_train_timesteps, (1,), generator=self._generator).to(
            latents.device
        )
        noisy = self._noise.add_noise(latents, noise, timestep)
        template = self._random.choice(TEMPLATES)
        hidden, pooled = [], None
        for part, vector, stand_in in zip(self._parts, self.vectors, self._stand_ins, strict=True):
            ids, position = _caption_ids(part.tokenizer, template, stand_in)
            with _word_at(part.encoder, position, vector):
                out = part.encoder(ids.to(part.encoder.device), output_hidden_states=True)
            hidden.append((out.hidden_states[-2] if part.penultimate else out[0]).to(self._dtype))
            if out[0].ndim == 2:  # a projection encoder's pooled output (SDXL's second)
                pooled = out[0].to(self._dtype)
        condition = self._family.teach_condition(self._pipe, hidden, pooled, self._plan.size)
        predicted = self._unet(noisy.to(self._dtype), timestep, **condition).sample
        if self._noise.config.prediction_type == "v_prediction":
            target = self._noise.get_velocity(latents, noise, timestep)
        else:
            target = noise
        loss = F.mse_loss(predicted.float(), target.float())
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=self.vectors)  # only the word's vectors learn; nothing frozen gets a gradient
        self._optimizer.step()
        self.step += 1
        self.losses.append(float(loss.detach()))

    def changed(self) -> float:
        """How far the vectors moved from their start (largest absolute change)."""
        return max(float((v.detach().cpu() - i).abs().max()) for v, i in zip(self.vectors, self.initial, strict=True))

    def embedding_file(self) -> bytes:
        """The word as a safetensors file: one [1, dim] vector per text encoder, keyed as the family loads them."""
        from safetensors.torch import save

        tensors = {
            part.key: vector.detach().float().cpu().reshape(1, -1).contiguous()
            for part, vector in zip(self._parts, self.vectors, strict=True)
        }
        return save(tensors)

    def result(self, stopped_by: str) -> TeachResponse:
        """The finished word and how it was trained."""
        plan = self._plan
        used = TeachSettingsUsed(
            model=plan.model,
            family=self._family.name,
            init_word=plan.init_word,
            steps=self.step,
            steps_asked=plan.steps,
            learning_rate=plan.learning_rate,
            seed=plan.seed,
            width=plan.size.width,
            height=plan.size.height,
            images=len(plan.pictures),
            stopped_by=stopped_by,  # type: ignore[arg-type]
        )
        return TeachResponse(
            token=plan.token,
            embedding=base64.b64encode(self.embedding_file()).decode("ascii"),
            loss=self.loss,
            settings=used,
            job_id=plan.job_id or None,
            timings={"train_s": round(self.seconds, 4), "step_s": round(self.seconds / max(1, self.step), 4)},
        )


def _training_scheduler(pipe: Any) -> Any:
    """The DDPM noise schedule the model was trained with (the recipe's noise scheduler)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(pipe.scheduler.config)


def _as_array(picture: Image.Image) -> Any:
    import numpy as np

    return np.asarray(picture.convert("RGB"), dtype=np.uint8).copy()


def read_embedding(data: bytes) -> dict[str, torch.Tensor]:
    """A taught word's safetensors file, read back (tests and checks)."""
    from safetensors.torch import load

    return load(io.BytesIO(data).getvalue())
