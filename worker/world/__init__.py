"""The shipped shape-world model: only its trained weights' folder lives in the runtime package.

Its world (scenes, captions), its builder, its training and its judge are offline tools under
`training/world/` in the repository, which the installed wheel does not carry.
"""

from __future__ import annotations

from pathlib import Path

# The trained pipeline ships inside the package (see [tool.setuptools.package-data]).
WEIGHTS_DIR = Path(__file__).parent / "weights"
TRAIN_COMMAND = "python -m training.world.train --out worker/world/weights"


def world_model_dir() -> Path:
    """The shipped, trained pipeline folder."""
    if not (WEIGHTS_DIR / "model_index.json").exists():
        raise FileNotFoundError(
            f"the world model's weights are missing from {WEIGHTS_DIR}; train them from a clone of the "
            f"repository with `{TRAIN_COMMAND}`"
        )
    return WEIGHTS_DIR
