"""The family registry: every model family the worker knows, by the name presets use.

Torch-free on purpose: the bot validates presets against these names without
importing the worker's heavy libraries. Each entry names the module and class
that declares the family; adding a family is one module plus one line here.
"""

from __future__ import annotations

FAMILIES: dict[str, str] = {
    "sdxl": "worker.families.sdxl:SDXL",
    "sd15": "worker.families.sd15:SD15",
    "sdxl-instruct": "worker.families.sdxl:SDXLInstructPix2Pix",
    "sd15-instruct": "worker.families.sd15:SD15InstructPix2Pix",
    "flux": "worker.families.flux:Flux",
    "flux-kontext": "worker.families.flux_kontext:FluxKontext",
    "sd3": "worker.families.sd3:SD3",
    "qwen-image": "worker.families.qwen_image:QwenImage",
    "qwen-image-edit": "worker.families.qwen_image_edit:QwenImageEdit",
    "flux2-klein": "worker.families.flux2_klein:Flux2Klein",
    "qwen-image-edit-plus": "worker.families.qwen_image_edit_plus:QwenImageEditPlus",
    "flux2": "worker.families.flux2:Flux2",
    "z-image": "worker.families.z_image:ZImage",
}
