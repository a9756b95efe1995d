"""With a remote worker and an HTTP LLM, the bot process never imports torch (nor ray, the scale-out extra)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

from egaku.config import Config
from tests.agent.test_agent import configured
from tests.fakes.openai import Call, FakeOpenAI, Say

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.abc, json, sys
    from pathlib import Path

    class NoHeavyImports(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "diffusers", "transformers", "ray"}:
                raise ImportError(f"the bot process imported {name}")
            return None

    sys.meta_path.insert(0, NoHeavyImports())

    from egaku.app import open_app
    from egaku.config import Config
    from agent.service import TurnRequest
    import bot.run, bot.client, bot.exts.chat, bot.exts.imagine, egaku.cli

    async def main():
        config = Config.model_validate_json(sys.argv[1])
        async with open_app(config, Path("unused.toml"), {"FAKE_OPENAI_KEY": "x"}) as app:
            result = await app.agent.respond(TurnRequest.of("c", "u", "amy", "draw a fox"))
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "diffusers", "transformers", "ray"})
        print(json.dumps({"images": len(result.images), "heavy": heavy}))

    asyncio.run(main())
    """
)


async def test_bot_process_stays_torch_free(app_config: Config, fake_openai: FakeOpenAI, worker_url: str) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a fox in the snow"}), Say("done"))
    config = configured(app_config, fake_openai.base_url, worker_url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRIPT, config.model_dump_json(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ), cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert json.loads(out.decode().strip().splitlines()[-1]) == {"images": 1, "heavy": []}
