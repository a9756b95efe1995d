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
    from worker.settings import ModelPreset

    valid = {name: ModelPreset.model_validate(p) for name, p in example_presets().items()}
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


def example_presets() -> dict[str, object]:
    """The example config's commented-out presets, uncommented, in their order."""
    import re
    import tomllib

    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    blocks = re.findall(r"^# \[worker\.models\.([\w-]+)\]\n((?:# \w+ = .*\n)+)", text, flags=re.M)
    return {name: tomllib.loads(body.replace("# ", "")) for name, body in blocks}


def test_how_many_pictures_each_preset_reads_and_which_draws_reference_edits() -> None:
    from egaku.config import Config, PicturesRead, pictures_read
    from worker.settings import ModelPreset

    presets = example_presets()
    read = {name: pictures_read(ModelPreset.model_validate(p)) for name, p in presets.items()}
    assert {n: (r.edit, r.draw) for n, r in read.items() if r != PicturesRead(edit=1, draw=0)} == {
        "sdxl": (5, 4), "sd15": (5, 4),  # an IP-Adapter's 4 references, beside the edited picture
        "qwen-edit-2509": (3, 3), "qwen-edit-2511": (3, 3), "klein": (4, 4), "flux2": (10, 10),
    }  # fmt: skip
    # Unset, reference edits go to the first instruction-edit family that reads several pictures, before an
    # IP-Adapter listed earlier; instruction edits, to the first instruction-edit preset.
    every = Config.model_validate({"worker": {"models": presets}})
    assert (every.agent.instruct_model, every.agent.reference_model) == ("edit", "qwen-edit-2509")
    assert every.reference_pictures() == PicturesRead(edit=3, draw=3)
    adapters_only = Config.model_validate({"worker": {"models": {k: presets[k] for k in ("turbo", "sd15")}}})
    assert (adapters_only.agent.instruct_model, adapters_only.agent.reference_model) == (None, "sd15")
    plain = Config.model_validate({"worker": {"models": {"turbo": presets["turbo"]}}})
    assert (plain.agent.reference_model, plain.reference_pictures()) == (None, None)
    chosen = Config.model_validate({"agent": {"reference_model": "flux2"}, "worker": {"models": presets}})
    assert chosen.agent.reference_model == "flux2"


def test_a_reference_model_that_reads_one_picture_is_refused_naming_those_that_read_several() -> None:
    text = """
[agent]
reference_model = "kontext"

[worker.models.kontext]
source = "black-forest-labs/FLUX.1-Kontext-dev"
family = "flux-kontext"

[worker.models.plus]
source = "Qwen/Qwen-Image-Edit-2509"
family = "qwen-image-edit-plus"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, origin="egaku.toml")
    assert str(caught.value) == (
        "egaku.toml: : Value error, agent.reference_model 'kontext' is not a preset that reads several pictures of "
        "[worker.models]: ['plus']"
    )
