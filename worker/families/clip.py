"""UNet families with CLIP text encoders (SD1.5, SDXL, InstructPix2Pix): long prompts in windows.

diffusers truncates at 77 tokens (75 plus BOS/EOS), so an upsampled 80-word
prompt silently loses its tail. Here each 75-token window is encoded with
BOS/EOS and padding of its own and the windows are concatenated along the
sequence axis, which both SD1.5's and SDXL's cross-attention accept. SDXL's
pooled embedding comes from the first window, as with a short prompt. Short
prompts never come here: they take diffusers' own path unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from worker.families.base import Family, ModeInputs, TeachPart
from worker.protocol import Mode, ReferenceRole, Size

if TYPE_CHECKING:
    import torch

    from worker.settings import ModelPreset


def window_ids(tokenizer: Any, text: str) -> list[list[int]]:
    """The prompt's token ids (no specials) in windows of model_max_length - 2."""
    size = tokenizer.model_max_length - 2
    ids: list[int] = tokenizer(text, add_special_tokens=False, truncation=False).input_ids
    return [ids[i : i + size] for i in range(0, len(ids), size)] or [[]]


def windows_needed(tokenizer: Any, texts: list[str]) -> int:
    """How many windows the longest text needs."""
    return max(len(window_ids(tokenizer, t)) for t in texts)


def _window_tensor(tokenizer: Any, text: str, count: int) -> torch.Tensor:
    """[count, 77] ids: each window with BOS, EOS and the tokenizer's own padding."""
    import torch

    length = tokenizer.model_max_length
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    windows = window_ids(tokenizer, text)
    windows += [[]] * (count - len(windows))
    rows = []
    for window in windows:
        row = [tokenizer.bos_token_id, *window, tokenizer.eos_token_id]
        rows.append(row + [pad] * (length - len(row)))
    return torch.tensor(rows, dtype=torch.long)


def _encode(encoder: Any, ids: torch.Tensor, penultimate: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Hidden states for each window, concatenated: [1, count*77, dim], plus the first window's pooled output."""
    out = encoder(ids.to(encoder.device), output_hidden_states=True)
    hidden = out.hidden_states[-2] if penultimate else out[0]
    pooled = out[0][:1] if out[0].ndim == 2 else None
    return hidden.reshape(1, -1, hidden.shape[-1]), pooled


def _expand(pipe: Any, text: str, tokenizer: Any) -> str:
    """Textual-inversion tokens with several vectors, spelled out as diffusers does."""
    convert = getattr(pipe, "maybe_convert_prompt", None)
    return str(convert(text, tokenizer)) if convert is not None else text


class ClipFamily(Family):
    """A UNet family conditioned on one CLIP encoder (SD1.5) or two (SDXL: `dual`), and reference pictures through
    an IP-Adapter where the preset names one (worker/families/ip_adapter.py)."""

    dual: ClassVar[bool] = False
    adapter_kinds = frozenset({"lora", "textual_inversion"})
    teach_refusal: ClassVar[str | None] = None
    ip_adapters = True
    reference_mode: ClassVar[Mode] = "generate"  # references reach the UNet beside the prompt, in any mode
    # The attention blocks a style reference reaches (InstantStyle), unless the preset's ip_adapter names others.
    style_blocks: ClassVar[Mapping[str, Any]] = {}

    # -- pictures in (IP-Adapter) ---------------------------------------------
    def image_limit(self, preset: ModelPreset, mode: Mode, editing: bool) -> int:
        """With an IP-Adapter: the preset's references, beside the edited picture on an edit."""
        if preset.ip_adapter is None or not self.ip_adapters:
            return super().image_limit(preset, mode, editing)
        return preset.ip_adapter.max_references + (1 if editing else 0)

    def reference_scale(
        self, preset: ModelPreset, role: ReferenceRole, fidelity: str | None, requested: float | None
    ) -> float | None:
        """The IP-Adapter's strength: the request's, else the preset's for the role; OpenAI's input_fidelity
        "high" reads the references at least at full strength."""
        spec = preset.ip_adapter
        if spec is None or not self.ip_adapters:
            return None
        if requested is not None:
            return requested
        scale = spec.style_scale if role == "style" else spec.subject_scale
        return max(scale, 1.0) if fidelity == "high" else scale

    def attach(self, pipe: Any, preset: ModelPreset, cache_dir: Path) -> None:
        """Load the preset's IP-Adapter, once, into the UNet every mode shares."""
        if preset.ip_adapter is not None and self.ip_adapters:
            from worker.families.ip_adapter import load_ip_adapter

            load_ip_adapter(pipe, preset.ip_adapter, cache_dir)

    def reference_kwargs(
        self, pipe: Any, mode: Mode, inputs: ModeInputs, preset: ModelPreset, guidance: float
    ) -> dict[str, Any]:
        """The batch's reference embeddings (a blank picture's at scale 0 when it has none) on an IP preset."""
        if preset.ip_adapter is None or not self.ip_adapters:
            return {}
        from worker.families.ip_adapter import ip_adapter_kwargs

        return ip_adapter_kwargs(pipe, inputs, preset.ip_adapter, self.style_blocks, guidance)

    def warmup_kwargs(self, preset: ModelPreset) -> dict[str, Any]:
        """The base warm-up, with a picture for the IP-Adapter when the preset has one (its UNet wants one)."""
        from PIL import Image

        kwargs = super().warmup_kwargs(preset)
        if preset.ip_adapter is not None and self.ip_adapters:
            kwargs["ip_adapter_image"] = Image.new("RGB", (64, 64))
        return kwargs

    def teach_parts(self, pipe: Any) -> list[TeachPart]:
        """SD1.5: one vector for its CLIP encoder; SDXL: one for each of its two (clip_l, clip_g), both trained."""
        if not self.dual:
            return [TeachPart("emb_params", pipe.tokenizer, pipe.text_encoder)]
        return [
            TeachPart("clip_l", pipe.tokenizer, pipe.text_encoder, penultimate=True),
            TeachPart("clip_g", pipe.tokenizer_2, pipe.text_encoder_2, penultimate=True),
        ]

    def teach_condition(self, pipe: Any, hidden: list[Any], pooled: Any, size: Size) -> dict[str, Any]:
        """The UNet's text conditioning, as the pipeline builds it (SDXL adds the pooled vector and size ids)."""
        import torch

        states = torch.cat(hidden, dim=-1)
        added: dict[str, Any] = {}
        if getattr(pipe.unet, "encoder_hid_proj", None) is not None:  # an IP-Adapter: its UNet wants a picture
            from worker.families.ip_adapter import blank_condition

            added.update(blank_condition(pipe, states.shape[0]))
        if not self.dual:
            return {"encoder_hidden_states": states, **({"added_cond_kwargs": added} if added else {})}
        # original size, crop corner, target size: an uncropped picture at the training size.
        time_ids = torch.tensor([[size.height, size.width, 0, 0, size.height, size.width]] * states.shape[0])
        added.update(text_embeds=pooled, time_ids=time_ids.to(states.device, states.dtype))
        return {"encoder_hidden_states": states, "added_cond_kwargs": added}

    def tokenizers(self, pipe: Any) -> list[Any]:
        """The pipeline's CLIP tokenizers, in encoder order."""
        return [pipe.tokenizer, pipe.tokenizer_2] if self.dual else [pipe.tokenizer]

    def windows(self, pipe: Any, texts: list[str]) -> int:
        """The number of 77-token windows the longest text needs, over every tokenizer."""
        return max(windows_needed(t, [_expand(pipe, x, t) for x in texts]) for t in self.tokenizers(pipe))

    def text_tokens(self, pipe: Any, prompt: str) -> int:
        """The prompt's CLIP tokens across its 77-token windows (read whole, so all of them count)."""
        tokenizer = getattr(pipe, "tokenizer", None)
        if tokenizer is None:
            return 0
        return sum(len(window) for window in window_ids(tokenizer, prompt))

    def prompt_group(self, pipe: Any, texts: list[str], preset: ModelPreset) -> int:
        """The windows the longest text needs: there is no upper limit, nothing is cut."""
        return self.windows(pipe, texts)

    def prompt_kwargs(
        self, pipe: Any, prompts: list[str], negatives: list[str | None], group: int, preset: ModelPreset
    ) -> dict[str, Any]:
        """Plain text for short prompts (diffusers' own path); windowed embeddings for long ones."""
        if group > 1:
            return self.encode_long(pipe, prompts, negatives)
        return super().prompt_kwargs(pipe, prompts, negatives, group, preset)

    def encode_long(self, pipe: Any, prompts: list[str], negatives: list[str | None]) -> dict[str, torch.Tensor]:
        """prompt_embeds (and SDXL's pooled ones) for a batch of possibly long prompts."""
        import torch

        dual = self.dual
        tokenizers = self.tokenizers(pipe)
        encoders = [pipe.text_encoder, pipe.text_encoder_2] if dual else [pipe.text_encoder]
        texts = [*prompts, *(n or "" for n in negatives)]
        count = self.windows(pipe, texts)
        zero_negative = dual and all(n is None for n in negatives) and pipe.config.force_zeros_for_empty_prompt

        def embed(text: str) -> tuple[torch.Tensor, torch.Tensor | None]:
            parts, pooled = [], None
            for tokenizer, encoder in zip(tokenizers, encoders, strict=True):
                ids = _window_tensor(tokenizer, _expand(pipe, text, tokenizer), count)
                hidden, pool = _encode(encoder, ids, penultimate=dual)
                parts.append(hidden)
                pooled = pool if pool is not None else pooled
            return torch.cat(parts, dim=-1), pooled

        with torch.no_grad():
            positive = [embed(p) for p in prompts]
            result = {"prompt_embeds": torch.cat([e for e, _ in positive])}
            if dual:
                result["pooled_prompt_embeds"] = torch.cat([p for _, p in positive if p is not None])
            if zero_negative:
                result["negative_prompt_embeds"] = torch.zeros_like(result["prompt_embeds"])
                result["negative_pooled_prompt_embeds"] = torch.zeros_like(result["pooled_prompt_embeds"])
            else:
                negative = [embed(n or "") for n in negatives]
                result["negative_prompt_embeds"] = torch.cat([e for e, _ in negative])
                if dual:
                    result["negative_pooled_prompt_embeds"] = torch.cat([p for _, p in negative if p is not None])
        dtype = getattr(pipe, self.denoiser).dtype
        return {k: v.to(dtype) for k, v in result.items()}


class InstructPix2Pix(ClipFamily):
    """An InstructPix2Pix edit model: edits an image by an instruction; it cannot draw from text alone.

    Mixed in before the base family (`class SDXLInstructPix2Pix(InstructPix2Pix, SDXL)`).
    """

    base = "instruct"
    interruptible = False  # its loop has no interrupt check
    ip_adapters = False
    teach_refusal = "an instruction-edit model draws nothing from words alone: teach the word on a drawing model"

    def mode_kwargs(self, mode: Mode, inputs: ModeInputs) -> dict[str, Any]:
        """The source image, held to by a fixed image guidance."""
        return {"image": [inputs.image] * inputs.count, "image_guidance_scale": 1.5}
