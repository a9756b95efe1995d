"""The worker's configuration models, torch-free (the bot validates them too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worker.families.registry import FAMILIES
from worker.protocol import (
    MAX_BEST_OF,
    MAX_INPUT_IMAGES,
    MAX_PIXELS,
    MAX_STEPS,
    MAX_TEACH_STEPS,
    Size,
    check_size,
)

SAFE_WEIGHTS = (".safetensors",)
PICKLED_WEIGHTS = (".pth", ".pt", ".ckpt")


def check_weights_file(path: str, allow_pickle: bool) -> None:
    """Raise ValueError unless `path` names a safetensors file, or a pickle the operator opted into."""
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix in SAFE_WEIGHTS or (allow_pickle and suffix in PICKLED_WEIGHTS):
        return
    if suffix in PICKLED_WEIGHTS:
        raise ValueError(
            f"upscaler {path!r} is a pickle, and loading one can run code: convert it to .safetensors, "
            "or set upscaler_allow_pickle = true if you trust the file"
        )
    raise ValueError(f"upscaler {path!r} must be a .safetensors weights file")


SchedulerName = Literal[
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "DDIMScheduler",
    "UniPCMultistepScheduler",
    "LCMScheduler",
]


class IPAdapterSpec(BaseModel):
    """[worker.models.NAME.ip_adapter]: an IP-Adapter that lets an SDXL or SD1.5 preset draw from pictures.

    Loaded with the preset (diffusers' `load_ip_adapter`): `source` is a hub id or folder ("h94/IP-Adapter"),
    `subfolder` and `weight_name` the weights in it ("sdxl_models", "ip-adapter_sdxl.safetensors"), and
    `image_encoder` the CLIP vision encoder's folder (inside `subfolder`, or a path from `source` when it holds
    a "/"). `source = "tiny"` builds a random one for tests.
    """

    model_config = ConfigDict(extra="forbid")

    source: str
    subfolder: str = ""
    weight_name: str = "ip-adapter.safetensors"
    image_encoder: str = "image_encoder"
    # A subject reference ("this cat") reaches every attention block at this strength.
    subject_scale: float = Field(default=0.6, ge=0.0, le=2.0)
    # A style reference ("in the style of this") reaches only the style blocks (InstantStyle), at this strength.
    style_scale: float = Field(default=1.0, ge=0.0, le=2.0)
    # Which blocks a style reads, as diffusers' set_ip_adapter_scale takes them ({"up": {"block_0": [0, 1, 0]}});
    # unset: the family's own (SDXL: InstantStyle's up_blocks.0.attentions.1).
    style_blocks: dict[str, Any] | None = None
    max_references: int = Field(default=4, ge=1, le=MAX_INPUT_IMAGES - 1)


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
    # The GPU memory it needs, in GiB, at the worker's dtype (bf16 on CUDA): `egaku doctor` checks it against the GPU.
    gpu_memory_gb: float | None = Field(default=None, gt=0, le=1024)
    # The languages its text encoder reads well (ISO 639-1 codes): the agent keeps a user's language when it
    # is one of them, instead of translating into English. Qwen-Image: ["zh", "en"]; a Japanese model: ["ja"].
    prompt_language: list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]] = Field(default=["en"], min_length=1)
    # What finds the region a region edit's words name, for this model: "world" (the shape world's own
    # masker: no model, reads the picture and the new caption), or a CLIPSeg hub id or folder. Unset:
    # the worker's `segmenter`.
    segmenter: str | None = None
    # Reference pictures for the sdxl and sd15 families (subject or style): see IPAdapterSpec.
    ip_adapter: IPAdapterSpec | None = None
    # For the bot's embedded LLM, not the worker: an adapter that teaches it this model's words, used when this
    # preset is the default. "world": the shipped shape-world adapter (agent/adapters/world); or a folder.
    llm_adapter: str | None = None

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


def world_preset() -> ModelPreset:
    """The shipped shape-world model (worker/world), trained here on its synthetic scenes."""
    # UniPC, not the weights' own DPM-Solver++ (the same schedule): at 12 steps it reads a few more shapes
    # right and keeps more of a picture in an edit (docs/benchmarks.md, "Other samplers").
    return ModelPreset(
        source="world", family="sd15", steps=12, guidance=2.0, scheduler="UniPCMultistepScheduler", width=64,
        height=64, max_pixels=128 * 128,
        licence="Apache-2.0 (trained by egaku on its synthetic shape world)", segmenter="world",
        llm_adapter="world",
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
    # The defaults are the example config's: the shipped shape-world model, offline, on any CPU.
    return {"world": world_preset()}


class WorkerSettings(BaseModel):
    """[worker]: how the worker serves: its presets, device, queue and speed. (Where the bot finds it is [backend].)"""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=7861, ge=0, le=65535)
    token_env: str | None = None
    # The preset used when a request names none; unset, the first of [worker.models] ("world" by default).
    default_model: str = ""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    request_timeout_s: float = Field(default=300.0, gt=0)
    cache_dir: str = "~/.cache/egaku"
    # Scheduling
    max_queue: int = Field(default=64, ge=1, le=10_000)
    max_batch: int = Field(default=4, ge=1, le=32)
    batch_window_s: float = Field(default=0.005, ge=0.0, le=2.0)
    preview_every: int = Field(default=5, ge=0, le=1000)
    drain_timeout_s: float = Field(default=120.0, ge=0)
    # A finished job's result is kept this long (and within this much memory, oldest first), so that a client
    # that lost its answer (a restarted bot) gets it again by asking under the same job id, without a second render.
    keep_results_s: float = Field(default=900.0, ge=0, le=24 * 3600)
    keep_results_mb: int = Field(default=256, ge=0, le=65536)
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
    # The super-resolution network behind POST /v1/images/upscales: a weights file spandrel reads (ESRGAN,
    # Real-ESRGAN, SwinIR, HAT, DAT...; it detects the architecture). A .safetensors file; a pickled .pth, .pt or
    # .ckpt only with upscaler_allow_pickle = true, since unpickling can run code. Unset: no upscaler.
    upscaler: str | None = None
    upscaler_allow_pickle: bool = False
    # The network runs on tiles of this many input pixels a side, each with `upscale_overlap` pixels of its
    # neighbours' context (cropped off again), so a large picture fits in memory without seams.
    upscale_tile: int = Field(default=512, ge=16, le=4096)
    upscale_overlap: int = Field(default=32, ge=0, le=512)
    # The largest result, in pixels: a bigger one is scaled down to this (keeping its shape).
    upscale_max_pixels: int = Field(default=4096 * 4096, ge=64 * 64, le=8192 * 8192)
    models: dict[str, ModelPreset] = Field(default_factory=_default_presets)
    # Other names for presets, e.g. "dall-e-3" = "sdxl". OpenAI's model names not listed serve default_model.
    aliases: dict[str, str] = Field(default_factory=dict)
    adapters: dict[str, AdapterSpec] = Field(default_factory=dict)
    # response_format="url": images are kept this long behind signed links that need no bearer token.
    url_ttl_s: float = Field(default=3600.0, gt=0, le=7 * 24 * 3600)
    # The address clients reach this worker at, for those links; unset, the request's Host when it is one of
    # the worker's own names (below), else the bound address.
    public_url: str | None = None
    # Names besides the bound address and localhost that may appear in a request's Host header (a reverse proxy's
    # name, say). A worker without a token refuses any other Host, so a web page cannot reach it by DNS rebinding.
    allowed_hosts: list[str] = Field(default_factory=list)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    teach: TeachSettings = Field(default_factory=TeachSettings)

    @model_validator(mode="after")
    def _upscaler_file(self) -> WorkerSettings:
        if self.upscaler is not None:
            check_weights_file(self.upscaler, self.upscaler_allow_pickle)
        return self

    @model_validator(mode="after")
    def _default_exists(self) -> WorkerSettings:
        if not self.models:
            raise ValueError("[worker.models] is empty: name at least one preset")
        if not self.default_model:
            self.default_model = next(iter(self.models))
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


def read_secret(env_name: str | None, environ: Mapping[str, str]) -> str | None:
    """The secret named by env_name, or None when unset or empty: the one way egaku reads a secret."""
    if not env_name:
        return None
    value = environ.get(env_name, "").strip()
    return value or None
