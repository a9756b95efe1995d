"""The worker's configuration models, torch-free (the bot validates them too)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worker.families.registry import FAMILIES
from worker.protocol import MAX_BEST_OF, MAX_PIXELS, MAX_STEPS, MAX_TEACH_STEPS, Size, check_size

SchedulerName = Literal[
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "DDIMScheduler",
    "UniPCMultistepScheduler",
    "LCMScheduler",
]


class ModelPreset(BaseModel):
    """One model the worker can serve.

    `source` is a hub id ("stabilityai/sdxl-turbo"), a local `save_pretrained`
    directory, a single `.safetensors`/`.ckpt` file, "tiny" for the built-in
    random test pipeline, or "world" for the shipped shape-world model (sd15, 64x64).
    """

    model_config = ConfigDict(extra="forbid")

    source: str
    # One of worker/families/registry.py: the model's architecture ("sdxl", "flux", ...). Instruction-edit
    # families ("sdxl-instruct", InstructPix2Pix) only edit images.
    family: str = "sdxl"
    steps: int = Field(default=30, ge=1, le=MAX_STEPS)
    guidance: float = Field(default=6.0, ge=0.0, le=30.0)
    width: int = 1024
    height: int = 1024
    max_pixels: int = Field(default=MAX_PIXELS, ge=64 * 64, le=MAX_PIXELS)
    # A diffusers scheduler class to use instead of the model's own, e.g. "DPMSolverMultistepScheduler".
    scheduler: SchedulerName | None = None
    # The most prompt tokens the model reads when lower than its family's limit (FLUX.1-schnell: 256).
    prompt_tokens: int | None = Field(default=None, ge=1, le=4096)
    # For single-file checkpoints: a local folder or hub id holding the diffusers config.
    config: str | None = None
    licence: str = ""
    # The languages its text encoder reads well (ISO 639-1 codes): the agent keeps a user's language when it
    # is one of them, instead of translating into English. Qwen-Image: ["zh", "en"]; a Japanese model: ["ja"].
    prompt_language: list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]] = Field(default=["en"], min_length=1)
    # What finds the region a region edit's words name, for this model: "world" (the shape world's own
    # masker: no model, reads the picture and the new caption), or a CLIPSeg hub id or folder. Unset:
    # the worker's `segmenter`.
    segmenter: str | None = None

    @model_validator(mode="after")
    def _size_in_bounds(self) -> ModelPreset:
        check_size(self.base_size)
        return self

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str) -> str:
        if value not in FAMILIES:
            raise ValueError(f"unknown family {value!r}; known: {sorted(FAMILIES)}")
        return value

    @property
    def base_size(self) -> Size:
        """The preset's default size."""
        return Size(width=self.width, height=self.height)


class AdapterSpec(BaseModel):
    """A LoRA or textual inversion that requests may name; loaded on first use, then cached."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["lora", "textual_inversion"]
    source: str  # a .safetensors file, a folder, or a hub id
    weight_name: str | None = None
    token: str | None = Field(default=None, description="textual inversion: the word prompts use")

    @model_validator(mode="after")
    def _token_for_ti(self) -> AdapterSpec:
        if self.kind == "textual_inversion" and not self.token:
            raise ValueError("a textual_inversion adapter needs a token, e.g. token = '<my-cat>'")
        return self


# OpenAI's image model names. Those the config does not alias itself serve the default preset,
# so that a client written for OpenAI works unchanged.
OPENAI_MODEL_NAMES = (
    "dall-e-2",
    "dall-e-3",
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-1.5",
    "gpt-image-2",
    "chatgpt-image-latest",
)


class OpenAIBackendSettings(BaseModel):
    """[worker.openai]: OpenAI's own Images API as the bot's image backend (`mode = "openai"`)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_API_KEY"
    model: str = "gpt-image-1"  # every request goes to this model; egaku's preset names mean nothing there
    quality: Literal["low", "medium", "high", "auto", "standard", "hd"] | None = None
    moderation: Literal["low", "auto"] | None = None  # gpt-image models only
    # While someone watches: partial images streamed as progress previews (gpt-image models; 0: none).
    partial_images: int = Field(default=2, ge=0, le=3)


def world_preset() -> ModelPreset:
    """The shipped shape-world model (worker/world), trained here on its synthetic scenes."""
    return ModelPreset(
        source="world", family="sd15", steps=12, guidance=4.0, width=64, height=64, max_pixels=128 * 128,
        licence="Apache-2.0 (trained by egaku on its synthetic shape world)", segmenter="world",
    )  # fmt: skip


class ServeSettings(BaseModel):
    """[worker.serve]: the worker on Ray Serve (`egaku serve`), one replica per GPU behind one gateway."""

    model_config = ConfigDict(extra="forbid")

    # A Ray cluster to join ("auto", "ray://head:10001"); unset, `egaku serve` starts one on this machine.
    address: str | None = None
    replicas: int = Field(default=1, ge=1, le=1024)
    num_gpus: float = Field(default=1.0, ge=0.0)  # per replica: one GPU each
    num_cpus: float = Field(default=1.0, ge=0.0)
    gateway_cpus: float = Field(default=0.5, ge=0.0)
    # Presets (serve.multiplexed model ids) one replica keeps loaded; the least recently used goes first.
    max_models_per_replica: int = Field(default=2, ge=1, le=64)
    # Requests Serve's router may hold back when every replica is at max_queue + max_batch; past it, 503.
    max_queued_requests: int = Field(default=16, ge=0, le=100_000)
    # How many replica deaths one job survives (it runs again elsewhere, under the same job id).
    retries: int = Field(default=3, ge=0, le=20)
    # torch threads per replica; on a small CPU box 1 avoids the replicas fighting over cores.
    torch_threads: int | None = Field(default=None, ge=1, le=256)
    health_check_period_s: float = Field(default=5.0, gt=0.0)


class TeachSettings(BaseModel):
    """[worker.teach]: textual-inversion training (/teach), queued below rendering and bounded."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=300, ge=1, le=MAX_TEACH_STEPS)  # when the request names none
    max_steps: int = Field(default=1000, ge=1, le=MAX_TEACH_STEPS)
    # A run stops here and keeps what it learned so far (the answer says `stopped_by: "time"`).
    max_seconds: float = Field(default=900.0, gt=0.0)
    learning_rate: float = Field(default=5e-3, gt=0.0, le=0.1)
    # Training pictures are cropped and scaled to the preset's size, never larger than this side.
    max_side: int = Field(default=1024, ge=32, le=2048)
    # Training steps run between render batches in chunks of this many: a waiting picture waits at most one chunk.
    chunk_steps: int = Field(default=4, ge=1, le=100)
    max_queue: int = Field(default=4, ge=1, le=100)  # training jobs waiting or running; past it, 503


def _default_presets() -> dict[str, ModelPreset]:
    return {"tiny": ModelPreset(source="tiny", steps=4, guidance=5.0, width=64, height=64, licence="random weights")}


class WorkerSettings(BaseModel):
    """[worker]: how the worker serves, and where the bot finds it."""

    model_config = ConfigDict(extra="forbid")

    # embedded: a worker subprocess; remote: an egaku worker at `url`; openai: OpenAI's Images API ([worker.openai])
    mode: Literal["embedded", "remote", "openai"] = "embedded"
    url: str = "http://127.0.0.1:7861"
    host: str = "127.0.0.1"
    port: int = Field(default=7861, ge=0, le=65535)
    token_env: str | None = None
    default_model: str = "tiny"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    request_timeout_s: float = Field(default=300.0, gt=0)
    startup_timeout_s: float = Field(default=600.0, gt=0)
    cache_dir: str = "~/.cache/egaku"
    # Scheduling
    max_queue: int = Field(default=64, ge=1, le=10_000)
    max_batch: int = Field(default=4, ge=1, le=32)
    batch_window_s: float = Field(default=0.005, ge=0.0, le=2.0)
    preview_every: int = Field(default=5, ge=0, le=1000)
    drain_timeout_s: float = Field(default=120.0, ge=0)
    # Speed
    warmup: bool = True
    compile: bool = False
    channels_last: bool = False
    # Text-prompted masks for region edits (CLIPSeg): a hub id, a local folder, or "tiny"
    segmenter: str = "CIDAS/clipseg-rd64-refined"
    # The image captioner /describe uses (BLIP): a hub id, a local folder, or "tiny"
    captioner: str = "Salesforce/blip-image-captioning-large"
    # The safety checker requests with "safety_check" get (a hub id or folder, e.g.
    # "CompVis/stable-diffusion-safety-checker"); unset, such requests are refused.
    safety_checker: str | None = None
    # Best-of-N: the model that scores candidates against the prompt, loaded with transformers' CLIPModel on
    # first use: a hub id, a local folder, or "tiny". PickScore works too: scorer = "yuvalkirstain/PickScore_v1"
    # with scorer_processor = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K" (its repository has no processor).
    scorer: str = "openai/clip-vit-large-patch14"
    scorer_processor: str | None = None
    # The most candidates one request may ask for (best_of); past it, a 400 naming the limit.
    max_best_of: int = Field(default=4, ge=1, le=MAX_BEST_OF)
    models: dict[str, ModelPreset] = Field(default_factory=_default_presets)
    # Other names for presets, e.g. "dall-e-3" = "sdxl". OpenAI's model names not listed serve default_model.
    aliases: dict[str, str] = Field(default_factory=dict)
    adapters: dict[str, AdapterSpec] = Field(default_factory=dict)
    # response_format="url": images are kept this long behind signed links that need no bearer token.
    url_ttl_s: float = Field(default=3600.0, gt=0, le=7 * 24 * 3600)
    # The address clients reach this worker at, for those links; unset, the request's own Host.
    public_url: str | None = None
    openai: OpenAIBackendSettings = Field(default_factory=OpenAIBackendSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    teach: TeachSettings = Field(default_factory=TeachSettings)

    @model_validator(mode="after")
    def _default_exists(self) -> WorkerSettings:
        if self.default_model not in self.models:
            raise ValueError(
                f"default_model {self.default_model!r} is not one of [worker.models]: {sorted(self.models)}"
            )
        for alias, target in self.aliases.items():
            if target not in self.models:
                raise ValueError(f"aliases.{alias}: {target!r} is not one of [worker.models]: {sorted(self.models)}")
            if alias in self.models:
                raise ValueError(f"aliases.{alias}: already the name of a preset")
        return self

    def resolve(self, name: str | None) -> str | None:
        """The preset a requested model name means (a preset, an alias, or one of OpenAI's names); None if none."""
        name = name or self.default_model
        if name in self.models:
            return name
        if name in self.aliases:
            return self.aliases[name]
        if name in OPENAI_MODEL_NAMES:
            return self.default_model
        return None

    @property
    def served_names(self) -> list[str]:
        """Every model name a client may send: the presets, the aliases and OpenAI's names."""
        return sorted({*self.models, *self.aliases, *OPENAI_MODEL_NAMES})
