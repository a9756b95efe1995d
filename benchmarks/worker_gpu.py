"""The worker on a GPU: full-size architectures, random weights, bf16. True FLOPs, noise pixels.

Measures whole HTTP requests through the real worker (queue, batching, encode).
SDXL: 1024² at 30 steps with and without torch.compile, 512² at 4 steps, and the
batching curve for 1, 2, 4 and 8 concurrent requests. FLUX (`--model flux`):
FLUX.1-schnell's architecture (12B transformer, T5-XXL, CLIP-L, 16-channel VAE)
at 1024², 4 steps, T5 reading 256 tokens, eager and compiled (goal: 0.8 s or
less per request on an H100, against about 1.1 s published).

    python -m benchmarks.worker_gpu --write docs/benchmarks.md                # on a CUDA machine
    python -m benchmarks.worker_gpu --model flux --write docs/benchmarks.md   # FLUX.1-schnell class
    python -m benchmarks.worker_gpu --tiny [--model flux]                     # smoke test on CPU
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import torch

from benchmarks._markdown import device, write_section
from benchmarks._netns import loopback_only
from tests.fakes.serving import serve
from worker.engine import Engine
from worker.http import WorkerServer
from worker.pipelines import Placement, load_pipeline
from worker.settings import ModelPreset, WorkerSettings
from worker.tiny import tiny_clip_vocab

# Published config values of stabilityai/stable-diffusion-xl-base-1.0.
SDXL_UNET = {
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "in_channels": 4,
    "layers_per_block": 2,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "use_linear_projection": True,
}
SDXL_VAE = {
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "latent_channels": 4,
    "layers_per_block": 2,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
}
CLIP_L = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
          "projection_dim": 768, "hidden_act": "quick_gelu"}  # fmt: skip
CLIP_BIG_G = {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 20,
              "projection_dim": 1280, "hidden_act": "gelu"}  # fmt: skip


def full_size_sdxl(placement: Placement) -> Any:
    """SDXL base's architecture with random weights, built directly on the device."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    common = {"vocab_size": 49408, "max_position_embeddings": 77, "bos_token_id": 49406, "eos_token_id": 49407}
    with torch.device(placement.device):
        unet = UNet2DConditionModel(**SDXL_UNET)
        vae = AutoencoderKL(**SDXL_VAE)
        te1 = CLIPTextModel(CLIPTextConfig(**common, **CLIP_L))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(**common, **CLIP_BIG_G))
    # The tokenizer's ids only need to index the embedding; its vocabulary does not change FLOPs.
    tokenizer = CLIPTokenizer(vocab=tiny_clip_vocab(), merges=[], model_max_length=77)
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                         timestep_spacing="leading", steps_offset=1),
        add_watermarker=False,
    )  # fmt: skip
    pipe.to(placement.device, placement.dtype)
    pipe.vae.to(torch.float32 if placement.device == "cpu" else placement.dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# Published config values of black-forest-labs/FLUX.1-schnell (transformer, VAE) and google/t5-v1_1-xxl.
FLUX_TRANSFORMER = {
    "patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38, "attention_head_dim": 128,
    "num_attention_heads": 24, "joint_attention_dim": 4096, "pooled_projection_dim": 768,
    "guidance_embeds": False, "axes_dims_rope": (16, 56, 56),
}  # fmt: skip
FLUX_VAE = {
    "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "latent_channels": 16, "layers_per_block": 2, "sample_size": 1024,
    "use_quant_conv": False, "use_post_quant_conv": False, "shift_factor": 0.1159, "scaling_factor": 0.3611,
}  # fmt: skip
T5_XXL = {
    "vocab_size": 32128, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
    "feed_forward_proj": "gated-gelu", "relative_attention_num_buckets": 32,
}  # fmt: skip


def full_size_flux(placement: Placement) -> Any:
    """FLUX.1-schnell's architecture with random weights, built directly on the device in its dtype."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel

    from worker.tiny import tiny_t5_tokenizer

    clip = {"vocab_size": 49408, "max_position_embeddings": 77, "bos_token_id": 49406, "eos_token_id": 49407}
    default = torch.get_default_dtype()
    torch.set_default_dtype(placement.dtype)  # 12B + 4.7B parameters: never materialise them in fp32
    try:
        with torch.device(placement.device):
            transformer = FluxTransformer2DModel(**FLUX_TRANSFORMER)
            vae = AutoencoderKL(**FLUX_VAE)
            t5 = T5EncoderModel(T5Config(**T5_XXL))
            clip_l = CLIPTextModel(CLIPTextConfig(**clip, **CLIP_L))
    finally:
        torch.set_default_dtype(default)
    # The tokenizers' ids only need to index the embeddings; their vocabularies do not change FLOPs.
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False),
        vae=vae, text_encoder=clip_l, tokenizer=CLIPTokenizer(vocab=tiny_clip_vocab(), merges=[], model_max_length=77),
        text_encoder_2=t5, tokenizer_2=tiny_t5_tokenizer(), transformer=transformer,
    )  # fmt: skip
    pipe.to(placement.device, placement.dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


async def timed_requests(url: str, bodies: list[dict[str, Any]]) -> list[float]:
    """Send bodies at once; seconds each took."""

    async def one(session: aiohttp.ClientSession, body: dict[str, Any]) -> float:
        started = time.perf_counter()
        async with session.post(url, json=body) as resp:
            await resp.read()
            assert resp.status == 200, await resp.text()
        return time.perf_counter() - started

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3600)) as session:
        return await asyncio.gather(*(one(session, b) for b in bodies))


async def scenario(
    tiny: bool,
    *,
    size: int,
    steps: int,
    compile_unet: bool,
    runs: int,
    concurrency: tuple[int, ...],
    model: str = "sdxl",
) -> dict[str, Any]:
    flux = model == "flux"
    with tempfile.TemporaryDirectory() as tmp:
        preset = ModelPreset(source="tiny" if tiny else f"random-{model}", family=model, steps=steps,
                             guidance=0.0 if flux else 5.0, width=size, height=size,
                             prompt_tokens=256 if flux else None)  # fmt: skip
        settings = WorkerSettings(
            cache_dir=tmp, models={"m": preset}, default_model="m", max_batch=8, preview_every=0,
            compile=compile_unet, request_timeout_s=3600, device="cpu" if tiny else "auto",
        )  # fmt: skip

        def loader(p: ModelPreset, placement: Placement, cache: Path) -> Any:
            if tiny:
                return load_pipeline(p, placement, cache)
            return full_size_flux(placement) if flux else full_size_sdxl(placement)

        engine = Engine(settings, loader=loader)
        started = time.perf_counter()
        engine.load()  # includes a warm-up call (and compilation, when on)
        load_s = time.perf_counter() - started
        server = WorkerServer(engine, settings, token=None)
        runner, port = await serve(server.app())
        await server._ready.wait()
        url = f"http://127.0.0.1:{port}/v1/images/generations"
        await timed_requests(url, [{"prompt": "warm-up", "seed": 0}])
        if compile_unet:
            await timed_requests(url, [{"prompt": "warm-up", "seed": 0}] * 8)  # compile batch shapes too
        lone = [(await timed_requests(url, [{"prompt": "a red fox", "seed": i}]))[0] for i in range(runs)]
        result: dict[str, Any] = {"load_s": load_s, "lone_s": statistics.median(lone), "curve": {}}
        for c in concurrency:
            t0 = time.perf_counter()
            times = await timed_requests(url, [{"prompt": f"fox {i}", "seed": i, "user": f"u{i}"} for i in range(c)])
            result["curve"][c] = {"images_per_s": c / (time.perf_counter() - t0), "p50_s": statistics.median(times)}
        await runner.cleanup()
        if torch.cuda.is_available():
            result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            torch.cuda.reset_peak_memory_stats()
        return result


def main() -> None:
    loopback_only("benchmarks.worker_gpu")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="smoke-test on CPU with the tiny pipeline")
    parser.add_argument("--model", choices=("sdxl", "flux"), default="sdxl", help="the architecture to measure")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    big, small = (1024, 512) if not args.tiny else (64, 64)
    scenarios = [
        ("1024², 30 steps, eager", dict(size=big, steps=30, compile_unet=False, concurrency=(1, 2, 4, 8))),
        ("1024², 30 steps, torch.compile", dict(size=big, steps=30, compile_unet=True, concurrency=(1, 2, 4, 8))),
        ("512², 4 steps, eager", dict(size=small, steps=4, compile_unet=False, concurrency=(1, 8))),
        ("512², 4 steps, torch.compile", dict(size=small, steps=4, compile_unet=True, concurrency=(1, 8))),
    ]
    if args.model == "flux":
        scenarios = [
            ("1024², 4 steps, eager", dict(size=big, steps=4, compile_unet=False, concurrency=(1, 2, 4))),
            ("1024², 4 steps, torch.compile", dict(size=big, steps=4, compile_unet=True, concurrency=(1, 2, 4))),
        ]
    if args.tiny:
        scenarios = [s for s in scenarios if "compile" not in s[0]]
    rows = []
    for name, kwargs in scenarios:
        r = asyncio.run(scenario(args.tiny, runs=args.runs, model=args.model, **kwargs))  # type: ignore[arg-type]
        curve = r["curve"]
        speedup = curve[max(curve)]["images_per_s"] / curve[1]["images_per_s"]
        line = (f"| {name} | {r['lone_s'] * 1000:.0f} | "
                + " | ".join(f"{curve[c]['images_per_s']:.2f}" if c in curve else "–" for c in (1, 2, 4, 8))
                + f" | {speedup:.2f}× | {r.get('peak_gib', float('nan')):.1f} | {r['load_s']:.0f} |")  # fmt: skip
        print(line, flush=True)
        rows.append(line)
    if args.write and args.model == "flux":
        write_section(
            args.write,
            "worker_gpu_flux",
            f"""## Worker on a GPU: FLUX.1-schnell architecture, random weights, bf16 (issue 9)

- Device: {device()}
- Date: {dt.date.today().isoformat()}
- Command: `python -m benchmarks.worker_gpu --model flux --runs {args.runs} --write {args.write}`
- 12B transformer, T5-XXL reading 256 tokens, CLIP-L, 16-channel VAE; 1024², 4 steps, whole HTTP requests
  through the worker; lone = median of {args.runs} sequential requests. Goal: 0.8 s (published: about 1.1 s).

| scenario | lone request ms | img/s @1 | @2 | @4 | @8 | speed-up @max | peak GiB | load+warm-up s |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
""",
        )
    elif args.write:
        write_section(
            args.write,
            "worker_gpu",
            f"""## Worker on a GPU: full-size SDXL architecture, random weights, bf16 (issue: the production worker)

- Device: {device()}
- Date: {dt.date.today().isoformat()}
- Command: `python -m benchmarks.worker_gpu --runs {args.runs} --write {args.write}`
- Whole HTTP requests through the worker; lone = median of {args.runs} sequential requests.

| scenario | lone request ms | img/s @1 | @2 | @4 | @8 | speed-up @max | peak GiB | load+warm-up s |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
""",
        )


if __name__ == "__main__":
    main()
