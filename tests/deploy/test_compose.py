"""compose.yaml against the Compose Specification's JSON schema, and against the files and ports it names.

The schema is the one check-jsonschema vendors from compose-spec (Apache-2.0; its licence ships beside
it in that package). No docker daemon or image registry is reachable here, so nothing is started.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from egaku.config import load_config
from tests.deploy.dockerfiles import ROOT, Dockerfile

COMPOSE = ROOT / "compose.yaml"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Every place the document breaks the Compose Specification, as 'path: message'."""
    text = (importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    schema = json.loads(text)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document))


def test_compose_follows_the_specification() -> None:
    assert schema_errors(compose()) == []


def test_the_schema_check_catches_a_mistake() -> None:
    """The same check refuses a GPU reservation written the way people get it wrong."""
    broken = copy.deepcopy(compose())
    broken["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] = "gpu"
    broken["services"]["bot"]["restart_policy"] = "always"
    assert schema_errors(broken) == [
        "services/bot: Unevaluated properties are not allowed ('restart_policy' was unexpected)",
        "services/worker/deploy/resources/reservations/devices/0/capabilities: 'gpu' is not of type 'array'",
    ]


def test_check_jsonschema_cli_agrees() -> None:
    """The packaged command line, as CI or a pre-commit hook would run it."""
    run = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (run.returncode, run.stdout.strip()) == (0, "ok -- validation done")


def test_services_profiles_and_the_gpu() -> None:
    services = compose()["services"]
    assert {name: s.get("profiles") for name, s in services.items()} == {
        "bot": None, "worker": None, "ollama": ["ollama"], "prometheus": ["monitoring"], "grafana": ["monitoring"],
    }  # fmt: skip
    assert services["worker"]["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    ]
    assert services["bot"]["depends_on"] == {"worker": {"condition": "service_healthy"}}
    assert "deploy" not in services["bot"]  # the bot needs no GPU


def test_every_file_it_names_exists() -> None:
    services = compose()["services"]
    for name in ("bot", "worker"):
        assert (ROOT / services[name]["build"]["dockerfile"]).is_file()
    binds = [v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if isinstance(v, str)]
    local = [b for b in binds if b.startswith("./")]
    assert local == [
        "./deploy/prometheus/prometheus.yml",
        "./deploy/grafana/provisioning",
        "./deploy/grafana/dashboards",
    ]
    assert all((ROOT / b).exists() for b in local)


def test_secrets_become_the_variables_the_config_names() -> None:
    """Each secret's target is the environment variable the compose config's *_env key names."""
    document = compose()
    config = load_config(ROOT / "deploy/docker/config.compose.toml")
    targets = {s["target"] for name in ("bot", "worker") for s in document["services"][name]["secrets"]}
    assert targets == {config.discord.token_env, config.worker.token_env}
    used = {s if isinstance(s, str) else s["source"] for svc in document["services"].values()
            for s in svc.get("secrets", [])}  # fmt: skip
    assert used == set(document["secrets"])
    # The worker is reached by its service name, binds its container's interfaces, and so needs its token.
    assert (config.backend.url, config.worker.host, config.worker.port) == ("http://worker:7861", "0.0.0.0", 7861)
    assert config.backend.mode == "remote" and config.llm.provider == "ollama"
    assert config.llm.base_url == "http://ollama:11434"
    assert str(config.storage.history_path).startswith("/data/")


def test_the_worker_port_agrees_everywhere() -> None:
    """The worker's command, its EXPOSE, its health check, compose and Prometheus all say 7861."""
    worker = Dockerfile.read("deploy/docker/worker.Dockerfile")
    assert worker.cmd()[-2:] == ["--port", "7861"]
    assert worker.last("EXPOSE") == "7861"
    assert worker.healthcheck_cmd()[-1] == "http://127.0.0.1:7861"
    assert compose()["services"]["worker"]["expose"] == ["7861"]
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["static_configs"] == [{"targets": ["worker:7861"]}]
    assert prometheus["scrape_configs"][0]["metrics_path"] == "/metrics"


def test_grafana_is_provisioned_with_the_dashboard() -> None:
    root = ROOT / "deploy/grafana"
    datasource = yaml.safe_load((root / "provisioning/datasources/prometheus.yaml").read_text())["datasources"][0]
    assert (datasource["type"], datasource["url"]) == ("prometheus", "http://prometheus:9090")
    provider = yaml.safe_load((root / "provisioning/dashboards/egaku.yaml").read_text())["providers"][0]
    grafana = compose()["services"]["grafana"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
    dashboard = json.loads((root / "dashboards/egaku.json").read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids == {datasource["uid"]}


def test_nothing_secret_or_local_is_sent_to_the_build() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:1] == ["*"]  # everything is excluded first...
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "egaku", "bot", "agent", "tools", "worker", "deploy/docker"}
    assert not any(Path(a).parts[0] in {"secrets", ".venv", "config.toml"} for a in allowed)
