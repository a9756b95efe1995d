"""Every button a result can carry, by name, and how they are laid out. A new button: one module, one line here."""

from __future__ import annotations

from bot.buttons.action import ButtonAction
from bot.buttons.candidates import CANDIDATES
from bot.buttons.delete import DELETE
from bot.buttons.prompt import PROMPT
from bot.buttons.remix import REMIX
from bot.buttons.reroll import REROLL
from bot.buttons.upscale import UPSCALE
from bot.buttons.vary import STRONG, SUBTLE

ACTIONS: dict[str, ButtonAction] = {
    action.name: action for action in (REROLL, SUBTLE, STRONG, UPSCALE, REMIX, PROMPT, DELETE, CANDIDATES)
}
# One picture: these rows (best-of adds "candidates" to the last one).
SINGLE_ROWS: tuple[tuple[str, ...], ...] = (("reroll", "subtle", "strong", "upscale", "edit"), ("prompt", "delete"))
# Several pictures: one row per action here, a button per picture ("U1", "V2"), as on Midjourney's grids...
PER_PICTURE: tuple[tuple[str, str], ...] = (("upscale", "U"), ("strong", "V"))
# ...then these for the first picture.
GRID_SHARED: tuple[str, ...] = ("reroll", "edit", "prompt", "delete")
