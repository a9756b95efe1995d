"""The Serve config file and the KubeRay manifest in deploy/ build the egaku application."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from egaku.config import parse_config
from egaku.serve import app

ROOT = Path(__file__).parent.parent.parent


def test_the_serve_config_file_is_valid_and_builds_the_app() -> None:
    schema = ServeDeploySchema.model_validate(yaml.safe_load((ROOT / "deploy/serve.yaml").read_text()))
    (application,) = schema.applications
    assert (application.import_path, application.route_prefix) == ("egaku.serve:app", None)
    assert {d.name for d in application.deployments} == {"Renderer", "Gateway"}
    (listed,) = [d for d in application.deployments if d.name == "Renderer"]  # the file's options replace the code's
    assert listed.ray_actor_options.runtime_env == {"env_vars": {"EGAKU_WORKER_TOKEN": ""}}
    built = app({"config": str(ROOT / application.args["config"]), "replicas": "3"})
    renderer = built._bound_deployment.init_args[0]._bound_deployment  # the Gateway is bound to the Renderer
    assert (renderer.name, renderer.num_replicas, renderer.ray_actor_options["num_gpus"]) == ("Renderer", 3, 1.0)
    # Only the gateway answers HTTP, so only it holds the token: the replicas get the variable blanked.
    assert renderer.ray_actor_options["runtime_env"] == {"env_vars": {"EGAKU_WORKER_TOKEN": ""}}


def test_the_rayservice_carries_a_valid_serve_config_and_worker_config() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/rayservice.yaml").read_text()))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Secret", "ConfigMap", "RayService", "Service"]
    serve_config = ServeDeploySchema.model_validate(yaml.safe_load(docs[2]["spec"]["serveConfigV2"]))
    assert serve_config.applications[0].args == {"config": "/etc/egaku/config.toml"}
    worker = parse_config(docs[1]["data"]["config.toml"], origin="configmap").worker
    assert (worker.host, worker.token_env, worker.serve.replicas) == ("0.0.0.0", "EGAKU_WORKER_TOKEN", 4)
    gateway_pod = docs[2]["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["metadata"]["labels"]
    assert docs[3]["spec"]["selector"].items() <= gateway_pod.items()
    assert tomllib.loads((ROOT / "deploy/config.toml").read_text())["worker"]["serve"]["replicas"] == 4
