"""What a model family declares, with the behaviour most families share.

A family is a stateless description of one kind of model: which diffusers
pipeline classes serve each mode, how prompts are encoded (and how long they
may be), which denoiser and callback tensors it has, how its latents become a
preview, which adapters it takes and how to build a tiny random copy of it for
tests. The engine asks the family and never branches on a family's name.

Family
├── ClipFamily   UNet + CLIP encoders, long prompts in 77-token windows (clip.py); references by IP-Adapter
│   │            (ip_adapter.py)
│   ├── SD15, SD15InstructPix2Pix
│   └── SDXL, SDXLInstructPix2Pix
├── ChatPromptFamily   an LLM encoder reading a chat template; prompts counted in it (chat.py)
│   ├── Flux2Klein ── Flux2   every picture of a request is a reference
│   └── ZImage
└── (other transformer families declare their own encoding, e.g. T5 with a hard limit)
"""

from __future__ import annotations

import importlib.util
import io
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from worker.errors import BadRequest, ModelUnavailable
from worker.protocol import Mode, ReferenceRole, Size

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from worker.settings import ModelPreset


@dataclass(frozen=True)
class ModeInputs:
    """What a mode's pipeline arguments are made from: the size, the image count, the edit's inputs and the
    reference pictures (in the order the request gave them), with what they give and how strongly."""

    size: Size
    count: int
    image: Image.Image | None = None
    mask: Image.Image | None = None
    strength: float | None = None
    references: tuple[Image.Image, ...] = ()
    reference_role: ReferenceRole | None = None
    reference_scale: float | None = None

    @property
    def pictures(self) -> list[Image.Image]:
        """Every input picture in order: the edited one first (when there is one), then the references."""
        return [*([self.image] if self.image is not None else []), *self.references]


@dataclass(frozen=True)
class TeachPart:
    """One text encoder a taught word gets a vector in: the vector's key in the embedding file, its tokenizer
    and encoder, and whether the model reads that encoder's penultimate layer (SDXL) or its last (SD1.5)."""

    key: str
    tokenizer: Any
    encoder: Any
    penultimate: bool = False


StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]
RGBFactors = tuple[tuple[tuple[float, float, float], ...], tuple[float, float, float]]


class Family:
    """One model family. Subclasses fill in the class attributes and override what differs."""

    name: ClassVar[str] = ""
    # diffusers pipeline class names by mode; `base` is the one loaded, the others share its weights.
    pipelines: ClassVar[Mapping[Mode, str]] = {}
    base: ClassVar[Mode] = "generate"
    # The denoising network's attribute on the pipeline (compile and channels_last apply to it).
    denoiser: ClassVar[str] = "unet"
    # Its diffusers model class: a single-file checkpoint holding only the denoiser loads into it.
    denoiser_class: ClassVar[str] = "UNet2DConditionModel"
    # Tensors the step callback receives; "latents" feeds the previews.
    callback_tensors: ClassVar[tuple[str, ...]] = ("latents",)
    # Pipelines with only the legacy per-step callback (SDXL InstructPix2Pix).
    legacy_callback: ClassVar[bool] = False
    # Whether the pipeline's loop honours `_interrupt`; if not, a cancel aborts the call instead.
    interruptible: ClassVar[bool] = True
    adapter_kinds: ClassVar[frozenset[str]] = frozenset({"lora"})
    # The pipeline argument the guidance goes to (Qwen-Image's real CFG is `true_cfg_scale`).
    guidance_argument: ClassVar[str] = "guidance_scale"
    # Whether the model reads a negative prompt at the guidance the presets use.
    negative_prompts: ClassVar[bool] = True
    # Width and height must be multiples of this (VAE factor times patch size).
    size_multiple: ClassVar[int] = 8
    # Optional Python packages (import names) the family needs beyond the worker's own.
    requires: ClassVar[tuple[str, ...]] = ()
    # Linear latent -> RGB approximation for cheap previews: per-channel weights and a bias.
    latent_rgb: ClassVar[RGBFactors] = ((), (0.0, 0.0, 0.0))
    # Whether the callback's latents are packed in 2x2 patches (FLUX, Qwen-Image), one token per patch.
    packed_latents: ClassVar[bool] = False
    # Why the family cannot learn a new word from pictures (/teach); None where it can (the CLIP families).
    teach_refusal: ClassVar[str | None] = (
        "its prompts are read by a text encoder that is not CLIP; textual inversion works on the sd15 and sdxl families"
    )
    # How many pictures its instruction edits read at once, in order: the edited one and its references
    # (Qwen-Image-Edit Plus: 3, FLUX.2 [dev]: 10). 1: it edits one picture and reads no references.
    max_images: ClassVar[int] = 1
    # The mode a new picture drawn from references alone renders in (generations' `references`).
    reference_mode: ClassVar[Mode] = "instruct"
    # Whether a preset of this family may name an IP-Adapter (`ip_adapter`): pictures as prompts for a UNet.
    ip_adapters: ClassVar[bool] = False

    # -- pipelines -----------------------------------------------------------
    @property
    def modes(self) -> frozenset[Mode]:
        """The modes this family can render."""
        return frozenset(self.pipelines)

    def edit_mode(self, masked: bool) -> Mode:
        """How an edit runs: inpaint for a masked region, else the family's edit model or img2img."""
        if masked and "inpaint" in self.pipelines:
            return "inpaint"
        return "instruct" if "instruct" in self.pipelines else "img2img"

    def pipeline_class(self, mode: Mode) -> type[Any]:
        """The diffusers class for a mode; a clear error when the installed diffusers lacks it."""
        import diffusers

        name = self.pipelines[mode]
        cls = getattr(diffusers, name, None)
        if cls is None:
            raise ModelUnavailable(
                f"family {self.name!r} needs diffusers' {name}, which the installed diffusers "
                f"{diffusers.__version__} lacks: upgrade diffusers"
            )
        return cls  # type: ignore[no-any-return]

    def class_names(self) -> frozenset[str]:
        """Pipeline classes a saved model of this family may name in its model_index.json."""
        return frozenset(self.pipelines.values())

    def check_requirements(self) -> None:
        """Raise ModelUnavailable naming any optional package the family needs that is missing."""
        missing = [name for name in self.requires if importlib.util.find_spec(name) is None]
        if missing:
            raise ModelUnavailable(
                f"family {self.name!r} needs the Python package(s) {', '.join(missing)}: "
                "install the worker extra (pip install 'egaku[worker]')"
            )

    def derive(self, base: Any, mode: Mode) -> Any:
        """The pipeline for another mode, sharing the loaded weights (no second copy in memory)."""
        if self.pipelines[mode] == self.pipelines[self.base]:
            return base
        return self.pipeline_class(mode).from_pipe(base)

    # -- pictures in -----------------------------------------------------------
    def image_limit(self, preset: ModelPreset, mode: Mode, editing: bool) -> int:
        """The most pictures one request may give it in `mode`: an edit's (the edited one first), or a new picture's
        references. An instruction model reads them all; img2img and inpaint read only the edited picture."""
        if mode == "instruct":
            return self.max_images if editing or self.max_images > 1 else 0
        return 1 if editing else 0

    def reference_scale(
        self, preset: ModelPreset, role: ReferenceRole, fidelity: str | None, requested: float | None
    ) -> float | None:
        """How strongly references steer the picture, where the model has a control for it; None where the prompt
        alone says what to take from each picture (the instruction models), so `input_fidelity` means nothing."""
        return None

    def attach(self, pipe: Any, preset: ModelPreset, cache_dir: Path) -> None:
        """Load what the preset adds to the pipeline once, at load time (an IP-Adapter); nothing by default."""

    def reference_kwargs(
        self, pipe: Any, mode: Mode, inputs: ModeInputs, preset: ModelPreset, guidance: float
    ) -> dict[str, Any]:
        """Pipeline arguments that need the loaded pipeline (IP-Adapter's image embeddings); none by default."""
        return {}

    # -- prompts -------------------------------------------------------------
    def prompt_group(self, pipe: Any, texts: list[str], preset: ModelPreset) -> int:
        """A number batches must share to be encoded together; raises BadRequest past the token limit."""
        return 0

    def refuse_long_prompts(self, counts: Iterable[int], room: int, encoder: str) -> None:
        """A 400 naming the limit for a prompt longer than `encoder` reads whole: no prompt is ever cut."""
        for count in counts:
            if count > room:
                raise BadRequest(
                    f"the prompt is {count} tokens long; this {self.name} model reads at most {room} "
                    f"(its {encoder} limit): shorten it",
                    param="prompt",
                )

    def prompt_kwargs(
        self, pipe: Any, prompts: list[str], negatives: list[str | None], group: int, preset: ModelPreset
    ) -> dict[str, Any]:
        """The pipeline arguments carrying the prompts (text, or embeddings for long ones)."""
        kwargs: dict[str, Any] = {"prompt": prompts}
        if self.negative_prompts:
            kwargs["negative_prompt"] = None if all(n is None for n in negatives) else [n or "" for n in negatives]
        return kwargs

    def text_tokens(self, pipe: Any, prompt: str) -> int:
        """The prompt's length in the (first) text encoder's tokens, for OpenAI's `usage`."""
        tokenizer = getattr(pipe, "tokenizer", None)
        if tokenizer is None:
            return 0
        return len(tokenizer(prompt, add_special_tokens=False).input_ids)

    # -- per-mode arguments --------------------------------------------------
    def mode_kwargs(self, mode: Mode, inputs: ModeInputs) -> dict[str, Any]:
        """The pipeline arguments a mode needs."""
        size, count = inputs.size, inputs.count
        if mode == "generate":
            return {"width": size.width, "height": size.height}
        kwargs: dict[str, Any] = {"image": [inputs.image] * count}
        if mode in ("img2img", "inpaint"):
            kwargs["strength"] = inputs.strength
        if mode == "inpaint":
            kwargs.update(mask_image=[inputs.mask] * count, width=size.width, height=size.height)
        return kwargs

    def warmup_kwargs(self, preset: ModelPreset) -> dict[str, Any]:
        """One cheap call of the base pipeline at the preset's size."""
        from PIL import Image

        blank = Image.new("RGB", (preset.width, preset.height))
        mask = Image.new("L", (preset.width, preset.height))
        extra = self.mode_kwargs(self.base, ModeInputs(preset.base_size, 1, blank, mask, 1.0))
        return {"prompt": "warm-up", "num_inference_steps": 1, **extra}

    def callback_kwargs(self, pipe: Any, on_step_end: StepCallback) -> dict[str, Any]:
        """How the pipeline reports each step to `on_step_end`."""
        if self.legacy_callback:
            return {"callback": lambda step, timestep, latents: on_step_end(pipe, step, timestep, {"latents": latents})}
        return {"callback_on_step_end": on_step_end, "callback_on_step_end_tensor_inputs": list(self.callback_tensors)}

    # -- previews ------------------------------------------------------------
    def latent_image(self, latents: torch.Tensor, size: Size) -> torch.Tensor:
        """One sample's callback latents as a [channels, h, w] grid, unpacked first if the family packs them."""
        if not self.packed_latents:
            return latents
        # [tokens, 4*channels] -> [channels, h, w]; the token grid has the image's aspect.
        tokens, width = latents.shape
        rows = round(math.sqrt(tokens * size.height / size.width))
        cols = tokens // rows
        grid = latents.reshape(rows, cols, width // 4, 2, 2).permute(2, 0, 3, 1, 4)
        return grid.reshape(width // 4, rows * 2, cols * 2)

    def preview_picture(self, latents: torch.Tensor, size: Size) -> Image.Image:
        """A small picture approximating one sample's latents, without the VAE (previews, OpenAI partials)."""
        import torch
        from PIL import Image

        weights, bias = self.latent_rgb
        grid = self.latent_image(latents, size).float().cpu()
        rgb = torch.einsum("chw,cr->hwr", grid, torch.tensor(weights)) + torch.tensor(bias)
        pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).numpy()
        return Image.fromarray(pixels, mode="RGB")

    def preview(self, latents: torch.Tensor, size: Size) -> bytes:
        """A small PNG approximating one sample's latents, without the VAE."""
        buffer = io.BytesIO()
        self.preview_picture(latents, size).save(buffer, format="PNG")
        return buffer.getvalue()

    # -- adapters ------------------------------------------------------------
    def load_textual_inversion(self, pipe: Any, source: str, token: str) -> None:
        """Add a textual-inversion word to the pipeline's text encoder."""
        pipe.load_textual_inversion(source, token=token)

    def unload_textual_inversion(self, pipe: Any, token: str) -> None:
        """Take a word added by `load_textual_inversion` out again (a taught word serves one request)."""
        pipe.unload_textual_inversion(token)

    # -- teaching (textual inversion, worker/teach.py) -------------------------
    def teach_parts(self, pipe: Any) -> list[TeachPart]:
        """The text encoders a taught word gets a vector in (only families without a `teach_refusal`)."""
        raise NotImplementedError(f"family {self.name!r} cannot learn words: {self.teach_refusal}")

    def teach_condition(self, pipe: Any, hidden: list[Any], pooled: Any, size: Size) -> dict[str, Any]:
        """The denoiser's conditioning arguments from the encoded training prompt (one tensor per part)."""
        raise NotImplementedError(f"family {self.name!r} cannot learn words: {self.teach_refusal}")

    # -- tests ---------------------------------------------------------------
    def build_tiny(self, directory: Path) -> Path:
        """Build a tiny random pipeline of this family and save it with save_pretrained."""
        raise ModelUnavailable(f"there is no tiny {self.name} model")
