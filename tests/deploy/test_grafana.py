"""The Grafana dashboard against a real /metrics scrape of a tiny worker: every metric, label and label value
it queries is one the worker exports."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.dockerfiles import ROOT
from worker.http.metrics import GPU_MEMORY

DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/egaku.json").read_text(encoding="utf-8"))
SUFFIXES = {"gauge": ("",), "counter": ("",), "summary": ("", "_sum", "_count"),
            "histogram": ("_bucket", "_sum", "_count")}  # fmt: skip


def queries() -> list[str]:
    return [t["expr"] for panel in DASHBOARD["panels"] for t in panel.get("targets", [])]


async def scrape(worker_url: str) -> str:
    """/metrics after one picture, so that the histograms have samples."""
    async with aiohttp.ClientSession() as session:
        body = {"prompt": "a red fox", "steps": 2, "response_format": "b64_json"}
        async with session.post(worker_url + "/v1/images/generations", json=body) as resp:
            assert resp.status == 200
        async with session.get(worker_url + "/metrics") as resp:
            return await resp.text()


def exported(text: str) -> tuple[set[str], dict[str, list[dict[str, str]]]]:
    """The sample names the declared families may have, and the label sets of the samples present."""
    declared = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    names = {family + suffix for family, kind in declared.items() for suffix in SUFFIXES[kind]}
    samples: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):  # Prometheus' own parser: the format is valid
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return names, samples


async def test_every_metric_the_dashboard_queries_is_exported(worker_url: str) -> None:
    text = await scrape(worker_url)
    names, samples = exported(text)
    used = {name for expr in queries() for name in re.findall(r"\begaku_\w+", expr)}
    assert used - names == set()
    # All but the GPU's memory have samples on this CPU worker; that one is declared, and has them on CUDA.
    assert used - set(samples) == {"egaku_gpu_memory_bytes"}
    # One picture: one batch rendered, one job done.
    assert "\negaku_render_seconds_count 1\n" in text and "\negaku_job_seconds_count 1\n" in text


async def test_every_label_it_matches_or_groups_by_exists(worker_url: str) -> None:
    _, samples = exported(await scrape(worker_url))
    known: dict[str, set[tuple[str, str]]] = {n: {kv for s in sets for kv in s.items()} for n, sets in samples.items()}
    known["egaku_gpu_memory_bytes"] = {("kind", kind) for kind in GPU_MEMORY}
    for expr in queries():
        for metric, matchers in re.findall(r"(egaku_\w+)\{([^}]*)\}", expr):
            for label, value in re.findall(r'(\w+)="([^"]*)"', matchers):
                assert (label, value) in known[metric], (expr, label, value)
        for grouping in re.findall(r"by \(([^)]*)\)", expr):
            metrics = re.findall(r"\begaku_\w+", expr)
            for label in (g.strip() for g in grouping.split(",")):
                assert all(label in {k for k, _ in known[m]} for m in metrics), (expr, label)


def test_the_panels_an_operator_asked_for() -> None:
    titles = [p["title"] for p in DASHBOARD["panels"]]
    for wanted in ("Queue length by priority", "Jobs and failures per minute", "Render time per batch",
                   "Wait per job (queued to done)", "GPU memory", "Batch sizes"):  # fmt: skip
        assert wanted in titles
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(set(ids)) == len(ids)
    percentiles = [e for e in queries() if e.startswith("histogram_quantile")]
    assert {re.match(r"histogram_quantile\(([\d.]+)", e)[1] for e in percentiles} == {"0.5", "0.9", "0.99"}  # type: ignore[index]


def panel_grid(panel: dict[str, Any]) -> tuple[int, int, int, int]:
    grid = panel["gridPos"]
    return grid["x"], grid["y"], grid["w"], grid["h"]


def test_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        x, y, w, h = panel_grid(panel)
        assert x + w <= 24
        mine = {(x + i, y + j) for i in range(w) for j in range(h)}
        assert not mine & cells, panel["title"]
        cells |= mine
