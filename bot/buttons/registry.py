"""Every button a result can carry, by name, and how they are laid out. A new button: one module, one line here."""

from __future__ import annotations

from bot.buttons.action import ButtonAction
from bot.buttons.candidates import CANDIDATES
from bot.buttons.creative import CREATIVE
from bot.buttons.custom_zoom import CUSTOM_ZOOM
from bot.buttons.delete import DELETE
from bot.buttons.pan import PAN_DOWN, PAN_LEFT, PAN_RIGHT, PAN_UP
from bot.buttons.prompt import PROMPT
from bot.buttons.remix import REMIX
from bot.buttons.reroll import REROLL
from bot.buttons.upscale import UPSCALE_2X, UPSCALE_4X
from bot.buttons.vary import STRONG, SUBTLE
from bot.buttons.zoom import ZOOM_2, ZOOM_15

ACTIONS: dict[str, ButtonAction] = {
    action.name: action
    for action in (
        *(REROLL, SUBTLE, STRONG, REMIX),
        *(UPSCALE_2X, UPSCALE_4X, CREATIVE),
        *(ZOOM_15, ZOOM_2, CUSTOM_ZOOM),
        *(PAN_LEFT, PAN_RIGHT, PAN_UP, PAN_DOWN),
        *(PROMPT, DELETE, CANDIDATES),
    )
}
# One picture: these rows, at most 5 of at most 5 buttons (Discord's limits); best-of adds "candidates" to the last.
SINGLE_ROWS: tuple[tuple[str, ...], ...] = (
    ("reroll", "subtle", "strong", "edit"),
    ("upscale2", "upscale4", "upscale"),
    ("zoom15", "zoom2", "zoom"),
    ("panleft", "panright", "panup", "pandown"),
    ("prompt", "delete"),
)
# Several pictures: one row per action here, a button per picture ("U1", "V2"), as on Midjourney's grids...
PER_PICTURE: tuple[tuple[str, str], ...] = (("upscale", "U"), ("strong", "V"))
# ...then these for the first picture.
GRID_SHARED: tuple[str, ...] = ("reroll", "edit", "prompt", "delete")
