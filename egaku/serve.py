"""The Ray Serve application builder, for `serve run deploy/serve.yaml` and KubeRay's RayService.

`egaku serve` deploys the same application from the command line (see worker/serve.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from egaku.config import load_config
from worker.ray_serve import build_app


def app(args: dict[str, str]) -> Any:
    """The egaku application from a config file: args `config` (a path) and, optionally, `replicas`."""
    settings = load_config(Path(args["config"])).worker
    if "replicas" in args:
        settings = settings.model_copy(
            update={"serve": settings.serve.model_copy(update={"replicas": int(args["replicas"])})}
        )
    return build_app(settings)
