"""Config: validated once, errors name the key, secrets come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from egaku.config import load_config, parse_config, read_secret
from egaku.errors import ConfigError

ROOT = Path(__file__).parent.parent.parent


def test_the_example_config_is_valid() -> None:
    config = load_config(ROOT / "config.example.toml")
    assert config.llm.provider == "embedded"
    assert config.backend.mode == "embedded"
    assert config.worker.models["tiny"].source == "tiny"
    assert config.discord.api_base == "https://discord.com/api/v10"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[llm]\nprovider = "skynet"', "llm.provider"),
        ("[agent]\nmax_model_calls = 0", "agent.max_model_calls"),
        ('[worker]\ndefault_model = "nope"', "worker"),
        ("[worker.models.big]\nsource = 'x'\nwidth = 4096", "worker.models.big"),
        ("[discord]\ntoken = 'abc'", "discord.token"),
        ("[llm]\nvision = true", "llm: Value error, vision: the embedded SmolLM2 reads no images"),
        ("[best_of]\ndefault = 3\nmax = 2", "best_of: Value error, default (3) is above max (2)"),
        ("[best_of]\nmax = 9", "best_of.max"),
        ("[best_of]\nmax = 6", ": Value error, best_of.max (6) is above worker.max_best_of (4)"),
        ('[best_of]\ndefault = 2\n[backend]\nmode = "openai"', ": Value error, best_of.default: OpenAI's Images API"),
        ("[worker]\nmax_best_of = 9", "worker.max_best_of"),
    ],
)
def test_errors_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, origin="egaku.toml")
    assert str(caught.value).startswith(f"egaku.toml: {key}")


def test_bad_toml_and_missing_file() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("[llm\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(Path("/nonexistent/egaku.toml"))


def test_secrets_are_read_from_the_named_variable() -> None:
    assert read_secret("TOKEN", {"TOKEN": " abc \n"}) == "abc"
    assert read_secret("TOKEN", {"TOKEN": "  "}) is None
    assert read_secret(None, {"TOKEN": "abc"}) is None


def test_every_preset_in_the_example_config_is_valid() -> None:
    """The commented-out presets are real: uncommented, each validates."""
    import re
    import tomllib

    from worker.settings import ModelPreset

    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    blocks = re.findall(r"^# \[worker\.models\.([\w-]+)\]\n((?:# \w+ = .*\n)+)", text, flags=re.M)
    presets = {name: tomllib.loads(body.replace("# ", "")) for name, body in blocks}
    valid = {name: ModelPreset.model_validate(p) for name, p in presets.items()}
    assert {n: p.family for n, p in valid.items()} == {
        "turbo": "sdxl", "edit": "sdxl-instruct", "sdxl": "sdxl", "schnell": "flux", "flux": "flux",
        "kontext": "flux-kontext", "sd35": "sd3", "sd35-turbo": "sd3", "qwen": "qwen-image",
        "qwen-edit": "qwen-image-edit", "klein": "flux2-klein", "sd15": "sd15",
        "qwen-edit-2509": "qwen-image-edit-plus", "qwen-edit-2511": "qwen-image-edit-plus", "flux2": "flux2",
        "z-turbo": "z-image",
    }  # fmt: skip
    assert {n for n, p in valid.items() if p.ip_adapter is not None} == {"sdxl", "sd15"}
    assert "Non-Commercial" in valid["flux2"].licence and valid["z-turbo"].licence == "Apache-2.0"
    assert all(p.licence for p in valid.values() if p.family != "sdxl-instruct")
    assert "Non-Commercial" in valid["flux"].licence and valid["schnell"].licence == "Apache-2.0"
    # Qwen's encoder reads Chinese and English: prompts in either are not translated.
    assert {n: p.prompt_language for n, p in valid.items() if p.prompt_language != ["en"]} == {
        "qwen": ["zh", "en"], "qwen-edit": ["zh", "en"], "qwen-edit-2509": ["zh", "en"], "qwen-edit-2511": ["zh", "en"],
        "z-turbo": ["zh", "en"],
    }  # fmt: skip
