"""The TOML configuration: loaded once at start-up, validated, errors name the key."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from egaku.errors import ConfigError
from tools.checks.blocklist import DEFAULT_BLOCKLIST
from worker.families import family_for
from worker.protocol import MAX_BEST_OF
from worker.settings import ModelPreset, WorkerSettings
from worker.settings import read_secret as read_secret  # the one way to read a secret, for the bot's side too

log = logging.getLogger(__name__)

DISCORD_API = "https://discord.com/api/v10"
DISCORD_GATEWAY = "wss://gateway.discord.gg/"


@dataclass(frozen=True)
class PicturesRead:
    """How many pictures a preset reads in one request."""

    edit: int  # in one edit, the edited picture first
    draw: int  # in a new picture drawn from pictures alone


def pictures_read(preset: ModelPreset) -> PicturesRead:
    """How many pictures a preset reads, as its family says (the worker refuses one more with a 400)."""
    family = family_for(preset.family)
    return PicturesRead(
        edit=family.image_limit(preset, family.edit_mode(masked=False), editing=True),
        draw=family.image_limit(preset, family.reference_mode, editing=False),
    )


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiscordSettings(_Section):
    """[discord]"""

    token_env: str = "DISCORD_TOKEN"
    api_base: str = DISCORD_API
    gateway_url: str = DISCORD_GATEWAY
    sync_commands: bool = True
    sync_guild_ids: list[int] = Field(default_factory=list)
    message_content_intent: bool = True


class LLMSettings(_Section):
    """[llm]"""

    provider: Literal["embedded", "openai", "ollama"] = "embedded"
    base_url: str | None = None
    api_key_env: str | None = None
    model: str = "gpt-4o-mini"
    tool_calling: Literal["native", "json"] = "native"
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=600, ge=16, le=8192)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=1, ge=0, le=5)
    # The model reads images: it sees uploads (and the image a user replies to) as small thumbnails
    # instead of the worker captioner's words. Only then do pixels go to the LLM.
    vision: bool = False

    @model_validator(mode="after")
    def _vision_needs_a_vision_model(self) -> Self:
        if self.vision and self.provider == "embedded":
            raise ValueError("vision: the embedded SmolLM2 reads no images; use an endpoint whose model does")
        return self


class AgentSettings(_Section):
    """[agent]"""

    max_model_calls: int = Field(default=4, ge=1, le=20)
    max_tool_calls: int = Field(default=2, ge=1, le=10)
    turn_timeout_s: float = Field(default=300.0, gt=0)
    history_messages: int = Field(default=20, ge=2, le=200)
    # A worker preset of an instruction-edit family (FLUX.1 Kontext, InstructPix2Pix), offered to the model as
    # edit mode "instruct" and made the default for edits. Unset, the first such preset in [worker.models] is used.
    instruct_model: str | None = None
    # A worker preset that reads several pictures at once (Qwen-Image-Edit Plus, FLUX.2, an SDXL or SD1.5 preset with
    # an IP-Adapter): it draws edits with reference pictures ("put the cat from my upload into this picture") and
    # /blend. Unset, the first such preset in [worker.models] is used, an instruction-edit family's before an
    # IP-Adapter's; with none, an edit that names references is drawn from the same seed with the new description,
    # and the reply says the likeness is approximate.
    reference_model: str | None = None


class LimitsSettings(_Section):
    """[limits]: image jobs per user, per guild and in total."""

    per_user_running: int = Field(default=1, ge=1, le=16)
    per_user_queued: int = Field(default=2, ge=0, le=64)
    per_guild: int = Field(default=8, ge=1, le=1024)
    total: int = Field(default=32, ge=1, le=4096)
    # Past a server's cap (or the bot's total) a request waits in its server's line, its place shown; only
    # past this many waiting is the answer "busy".
    line: int = Field(default=32, ge=0, le=4096)


class SafetySettings(_Section):
    """[safety]: what may be drawn outside channels marked NSFW (DMs count as not NSFW)."""

    # Words that block a request when its FINAL English prompt contains them (whole words, any case).
    # Matched as the text encoder reads the prompt (tools/checks/blocklist.py): "nude_woman", "ｎｕｄｅ" and
    # "nudes" all use "nude". Spaced words match whole words; an entry of 4+ letters also starts a longer word.
    blocklist: list[str] = Field(default_factory=lambda: list(DEFAULT_BLOCKLIST))
    # Also ask the worker to run its CLIP safety checker there ([worker] safety_checker must be set).
    worker_check: bool = False


class OpenAIBackendSettings(_Section):
    """[backend.openai]: OpenAI's own Images API as the bot's image backend (`mode = "openai"`)."""

    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_API_KEY"
    model: str = "gpt-image-1"  # every request goes to this model; egaku's preset names mean nothing there
    quality: Literal["low", "medium", "high", "auto", "standard", "hd"] | None = None
    moderation: Literal["low", "auto"] | None = None  # gpt-image models only
    # While someone watches: partial images streamed as progress previews (gpt-image models; 0: none).
    partial_images: int = Field(default=2, ge=0, le=3)


class BackendSettings(_Section):
    """[backend]: where the bot sends its image jobs. (How a worker serves them is [worker].)"""

    # embedded: a worker subprocess of the bot; remote: an egaku worker at `url`; openai: OpenAI's Images API
    mode: Literal["embedded", "remote", "openai"] = "embedded"
    url: str = "http://127.0.0.1:7861"  # remote: the worker's address (its bearer token: [worker] token_env)
    startup_timeout_s: float = Field(default=600.0, gt=0)  # embedded: how long the worker may take to load
    # A job whose worker went away (killed, restarting, unreachable) is sent again under its id for this long.
    retry_for_s: float = Field(default=300.0, ge=0, le=24 * 3600)
    openai: OpenAIBackendSettings = Field(default_factory=OpenAIBackendSettings)


# Keys that lived under [worker] before [backend] existed: an older config still loads, with a warning.
_MOVED_TO_BACKEND = ("mode", "url", "startup_timeout_s", "openai")  # retry_for_s is new: never under [worker]


class BestOfSettings(_Section):
    """[best_of]: best-of-N, the worker renders several candidates and the best-scoring one is posted."""

    # Candidates per new picture when neither the user, the model nor the server (/settings server) says.
    default: int = Field(default=1, ge=1, le=MAX_BEST_OF)
    # The most a user, the model or a server may ask for; unset, the worker's own cap ([worker] max_best_of).
    max: int | None = Field(default=None, ge=1, le=MAX_BEST_OF)

    @model_validator(mode="after")
    def _default_within_cap(self) -> Self:
        if self.max is not None and self.default > self.max:
            raise ValueError(f"default ({self.default}) is above max ({self.max})")
        return self


class StorageSettings(_Section):
    """[storage]"""

    path: str = "~/.local/share/egaku/egaku.sqlite"
    images_dir: str = "~/.local/share/egaku/images"
    # Every image made or uploaded (SQLite index + files by content hash); /reset keeps it.
    history_dir: str = "~/.local/share/egaku/history"

    @property
    def db_path(self) -> Path:
        """The SQLite file, with ~ expanded."""
        return Path(self.path).expanduser()

    @property
    def history_path(self) -> Path:
        """The history folder, with ~ expanded."""
        return Path(self.history_dir).expanduser()

    @property
    def settings_path(self) -> Path:
        """The /settings store (users' defaults, servers' rules), inside the history folder."""
        return self.history_path / "settings.sqlite"

    @property
    def images_path(self) -> Path:
        """The folder images are written to, with ~ expanded."""
        return Path(self.images_dir).expanduser()


class Config(_Section):
    """The whole file."""

    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    backend: BackendSettings = Field(default_factory=BackendSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    best_of: BestOfSettings = Field(default_factory=BestOfSettings)

    @model_validator(mode="before")
    @classmethod
    def _older_backend_keys(cls, data: Any) -> Any:
        """Move [worker] mode, url, startup_timeout_s and openai, as older configs wrote them, to [backend]."""
        worker = data.get("worker") if isinstance(data, dict) else None
        if not isinstance(worker, dict):
            return data
        moved = {k: worker[k] for k in _MOVED_TO_BACKEND if k in worker}
        if not moved:
            return data
        backend = data.get("backend") if isinstance(data.get("backend"), dict) else {}
        log.warning("config: [worker] %s now belong under [backend]; please move them", ", ".join(sorted(moved)))
        rest = {k: v for k, v in worker.items() if k not in moved}
        return {**data, "worker": rest, "backend": {**moved, **backend}}

    @property
    def best_of_cap(self) -> int:
        """The most candidates a user, the model or a server may ask for: [best_of] max, else the worker's cap."""
        return self.best_of.max or self.worker.max_best_of

    @model_validator(mode="after")
    def _edit_models(self) -> Config:
        """The one place that picks the edit presets: instruction edits default to an instruction-edit preset, and
        reference edits go to a preset that reads several pictures, when one is configured; a named one must be one."""
        models = self.worker.models
        editors = [name for name, p in models.items() if "instruct" in family_for(p.family).modes]
        # Reference edits prefer a model that reads the prompt's "picture 2" (an instruction-edit family) to one
        # that reads pictures as a prompt's other half (an IP-Adapter).
        readers = sorted(
            (name for name, p in models.items() if pictures_read(p).edit > 1), key=lambda n: n not in editors
        )
        for key, fitting, kind in (("instruct_model", editors, "an instruction-edit preset"),
                                   ("reference_model", readers, "a preset that reads several pictures")):  # fmt: skip
            chosen = getattr(self.agent, key)
            if chosen is None and fitting:
                self.agent = self.agent.model_copy(update={key: fitting[0]})
            elif chosen is not None and chosen not in fitting:
                raise ValueError(f"agent.{key} {chosen!r} is not {kind} of [worker.models]: "
                                 f"{fitting or 'there is none'}")  # fmt: skip
        return self

    def reference_pictures(self) -> PicturesRead | None:
        """How many pictures [agent] reference_model reads (None when there is none)."""
        name = self.agent.reference_model
        return pictures_read(self.worker.models[name]) if name is not None else None

    @model_validator(mode="after")
    def _best_of_fits_the_worker(self) -> Config:
        """The bot's best-of default within its cap, the cap within what its own worker renders; none on OpenAI."""
        if self.best_of.default > self.best_of_cap:
            raise ValueError(f"best_of.default ({self.best_of.default}) is above worker.max_best_of "
                             f"({self.worker.max_best_of}), the cap when best_of.max is unset")  # fmt: skip
        if self.backend.mode == "embedded" and self.best_of_cap > self.worker.max_best_of:
            raise ValueError(f"best_of.max ({self.best_of_cap}) is above worker.max_best_of "
                             f"({self.worker.max_best_of}), the most this worker renders")  # fmt: skip
        if self.backend.mode == "openai" and self.best_of.default > 1:
            raise ValueError("best_of.default: OpenAI's Images API has no scorer; best-of needs egaku's worker")
        return self


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        lines.append(f"{key}: {err['msg']}")
    return "; ".join(lines)


def parse_config(text: str, origin: str = "<config>") -> Config:
    """Parse and validate TOML text; a ConfigError names the key at fault."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_describe(exc)}") from exc


def load_config(path: Path) -> Config:
    """Read and validate the config file at path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    return parse_config(text, origin=str(path))
