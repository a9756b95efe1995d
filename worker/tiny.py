"""Tiny, randomly initialised models built in code, and the parts they share.

They exist so that everything runs offline: tests, demos and CI have no hub.
The images are noise; the code path (save_pretrained, from_pretrained, the
denoising loop) is the one real model ids take. Each model family builds its
own tiny pipeline in its module (worker/families/); the helpers here build the
CLIP vocabulary, encoders and VAE those builders share, and the tiny
segmenter, safety checker and captioner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# CLIP's byte-level BPE maps every byte to a printable unicode character; a
# vocabulary holding all 256 of them (with and without the end-of-word marker)
# can tokenise any text, one token per byte, without any merges.
_SPECIAL = ("<|startoftext|>", "<|endoftext|>")


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte to unicode-character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def tiny_clip_vocab() -> dict[str, int]:
    """A byte-level CLIP vocabulary: every byte, with and without end-of-word."""
    chars = list(_bytes_to_unicode().values())
    tokens = [*chars, *(c + "</w>" for c in chars), *_SPECIAL]
    return {tok: i for i, tok in enumerate(tokens)}


TINY_VOCAB_SIZE = 2 * 256 + len(_SPECIAL)


def tiny_vae(latent_channels: int = 4, **config: Any) -> Any:
    """A two-block VAE (downsamples by 2): the tiny pipelines' decoder.

    Transformer families pass their real latent channels (16) and shift/scale, and no quant convs, as theirs have.
    """
    from diffusers import AutoencoderKL

    if latent_channels != 4:
        config = {"use_quant_conv": False, "use_post_quant_conv": False, **config}
    return AutoencoderKL(
        block_out_channels=[16, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=latent_channels,
        norm_num_groups=16,
        sample_size=64,
        **config,
    )


# T5's SentencePiece marks a word start with "▁". A Unigram vocabulary of the printable
# ASCII characters, alone and word-initial, tokenises any English text without unknowns.
_T5_CHARS = [chr(c) for c in range(33, 127)]


def tiny_t5_tokenizer() -> Any:
    """A character-level T5 tokenizer built in code (no SentencePiece model file)."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    vocab += [(c, -2.0) for c in _T5_CHARS] + [("▁" + c, -1.5) for c in _T5_CHARS]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_t5(hidden_size: int) -> tuple[Any, Any]:
    """A two-layer T5 encoder of width `hidden_size`, and its tokenizer."""
    from transformers import T5Config, T5EncoderModel

    tokenizer = tiny_t5_tokenizer()
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=hidden_size,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
    )
    return T5EncoderModel(config), tokenizer


def tiny_unet(in_channels: int = 4, **config: Any) -> Any:
    """A two-level UNet after diffusers' own test components; families add their conditioning config."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=16,
        **config,
    )


def tiny_text_config() -> Any:
    """A two-layer CLIP text encoder over the byte-level vocabulary."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=TINY_VOCAB_SIZE - 2,
        eos_token_id=TINY_VOCAB_SIZE - 1,
        pad_token_id=TINY_VOCAB_SIZE - 1,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=TINY_VOCAB_SIZE,
        max_position_embeddings=77,
        hidden_act="gelu",
        projection_dim=32,
    )


def save_tiny_clipseg(directory: Path, seed: int = 0) -> Path:
    """A tiny random CLIPSeg (model + processor), saved like CIDAS/clipseg-rd64-refined."""
    import torch
    from transformers import (
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
        CLIPTokenizer,
        ViTImageProcessor,
    )

    torch.manual_seed(seed)
    config = CLIPSegConfig(
        text_config={
            "vocab_size": TINY_VOCAB_SIZE,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "bos_token_id": TINY_VOCAB_SIZE - 2,
            "eos_token_id": TINY_VOCAB_SIZE - 1,
            "pad_token_id": TINY_VOCAB_SIZE - 1,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=32,
        extract_layers=(1,),
        reduce_dim=16,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    CLIPSegForImageSegmentation(config).save_pretrained(directory)
    processor = CLIPSegProcessor(
        image_processor=ViTImageProcessor(
            size={"height": 32, "width": 32},
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        ),
        tokenizer=CLIPTokenizer(vocab=tiny_clip_vocab(), merges=[], model_max_length=77),
    )
    processor.save_pretrained(directory)
    return directory


def save_tiny_safety_checker(directory: Path, seed: int = 0) -> Path:
    """A tiny random CLIP safety checker (model + image processor), saved like CompVis's.

    Its concept thresholds decide the verdict: at 1.0 (the default) it flags nothing a random
    model sees. (The tests lower them in their own copy, to flag everything.)
    """
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4,
                     "vocab_size": TINY_VOCAB_SIZE},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4,
                       "image_size": 32, "patch_size": 8},
        projection_dim=32,
    )  # fmt: skip
    checker = StableDiffusionSafetyChecker(config)
    checker.save_pretrained(directory)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


TINY_CAPTION_WORDS = (
    "a", "an", "the", "of", "in", "on", "with", "and", "at", "by", "fox", "cat", "dog", "bird", "castle",
    "river", "tree", "forest", "city", "street", "mountain", "lake", "sky", "night", "snow", "rain", "sunset",
    "red", "blue", "green", "golden", "small", "large", "old", "painting", "photo", "drawing", "sitting",
    "standing",
)  # fmt: skip


def save_tiny_blip(directory: Path, seed: int = 0) -> Path:
    """A tiny random BLIP captioner (model + processor), saved like Salesforce/blip-image-captioning-large.

    Its vocabulary is a few dozen English words, so its (random) captions read as word salad
    rather than as sub-word noise.
    """
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    vocab = {word: i for i, word in enumerate([*specials, *TINY_CAPTION_WORDS])}
    torch.manual_seed(seed)
    config = BlipConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "encoder_hidden_size": 32, "max_position_embeddings": 64,
                     "bos_token_id": vocab["[DEC]"], "pad_token_id": vocab["[PAD]"], "sep_token_id": vocab["[SEP]"],
                     "eos_token_id": vocab["[SEP]"]},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 32, "patch_size": 8},
        projection_dim=32,
        image_text_hidden_size=32,
    )  # fmt: skip
    BlipForConditionalGeneration(config).save_pretrained(directory)
    tokenizer = BertTokenizer(vocab=vocab, bos_token="[DEC]")
    images = BlipImageProcessorPil(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def save_tiny_clip(directory: Path, seed: int = 0) -> Path:
    """A tiny random CLIP (CLIPModel + CLIPProcessor), saved like openai/clip-vit-large-patch14: the best-of scorer."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    torch.manual_seed(seed)
    text = tiny_text_config().to_dict()
    config = CLIPConfig(
        text_config=text,
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 32, "patch_size": 8},
        projection_dim=32,
    )  # fmt: skip
    CLIPModel(config).save_pretrained(directory)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=CLIPTokenizer(vocab=tiny_clip_vocab(), merges=[], model_max_length=77),
    )
    processor.save_pretrained(directory)
    return directory
