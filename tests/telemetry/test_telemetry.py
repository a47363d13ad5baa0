"""Telemetry through the whole stack: a real OTLP receiver here, the three services as real
processes exporting to it, Claude as the fake Messages API; then /metrics scraped over HTTP,
and the Grafana dashboards in deploy/ checked against the metric names the services export.

One catalog run must be one trace across the three services, with the gRPC parent links, the
GenAI spans and their attributes, and no code, prompt or secret in any span; the runner's
metrics must count the run's tokens exactly and price them as the price table says.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from catalog.v1 import catalog_pb2 as pb
from prometheus_client.parser import text_string_to_metric_families

from services.agent_runner.prices import load_prices
from services.common.ports import free_port
from services.common.readiness import wait_serving
from services.common.usage import TokenUsage
from tests.fakes.anthropic_server import FakeAnthropic, Reply, tool_use
from tests.orchestrator.stack import (
    PASSWORD,
    PLANE,
    REPO,
    orchestrator_env,
    reader_table,  # noqa: F401 (a fixture)
    start_orchestrator,
    wait_finished,
    with_password,
)
from tests.sandbox_manager.conftest import RunningManager, start_manager_process
from tests.telemetry.otlp import ReceivedSpan, Receiver, otlp_receiver

MODEL = "claude-sonnet-4-6"
CODE_MARK = "telemetry_code_marker_8842"  # in the cell's code: must reach no span
PAGE_MARK = "telemetry-page-marker-5521"  # in the page: must reach no span
# What each model call reports, in the order the agents make them.
CALLS = (
    TokenUsage(1200, 80, 3000, 0),  # catalog: runs a cell
    TokenUsage(900, 400, 0, 3000),  # catalog: submits its page
    TokenUsage(700, 300, 2500, 0),  # summary: submits its page
)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with otlp_receiver() as running:
        yield running


@pytest.fixture
def traced(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard variables, as every process started from here inherits them."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")


def reply(usage: TokenUsage, *content: dict[str, object]) -> Reply:
    return Reply(
        *content,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens,
    )


async def start_runner_process(
    manager: RunningManager, fake: FakeAnthropic, port: int
) -> tuple[asyncio.subprocess.Process, str]:
    agent_port = free_port()
    env = {
        **os.environ,
        "CATALOG_AGENT_HOST": "127.0.0.1",
        "CATALOG_AGENT_PORT": str(agent_port),
        "CATALOG_AGENT_METRICS_PORT": str(port),
        "CATALOG_AGENT_MODEL": MODEL,
        "CATALOG_SANDBOX_MANAGERS": manager.address,
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": fake.base_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.agent_runner", env=env, cwd=REPO
    )
    address = f"127.0.0.1:{agent_port}"
    await wait_serving(address, process, timeout_s=60, name="the runner", plane=PLANE)
    return process, address


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[Samples, set[str]]:
    """The samples by (name, labels), and every name a query may use (a family without samples
    yet, such as a labelled counter nothing incremented, included)."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our loopback URL)
        text = response.read().decode()
    families = list(text_string_to_metric_families(text))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names = {f.name + s for f in families for s in ("", *suffixes.get(f.type, ()))}
    return samples, names


async def test_one_catalog_is_one_trace_and_its_metrics_match_its_usage(
    docker_image: str,
    reader_table: tuple[str, str],  # noqa: F811
    tmp_path: Path,
    receiver: Receiver,
    traced: None,
) -> None:
    url, schema = reader_table
    ports = {name: free_port() for name in ("manager", "runner")}
    manager = await start_manager_process(
        docker_image, plane=PLANE, min_warm="1", max_size="2", metrics_port=str(ports["manager"])
    )
    runner = None
    orchestrator = None
    try:
        async with FakeAnthropic() as fake:
            fake.script(
                reply(CALLS[0], tool_use("execute_python", {"code": f"{CODE_MARK} = 6 * 7"})),
                reply(CALLS[1], tool_use("submit_html", {"content": f"<h1>{PAGE_MARK}</h1>"})),
                reply(CALLS[2], tool_use("submit_html", {"content": "<h1>Changes</h1>"})),
            )
            runner, runner_address = await start_runner_process(manager, fake, ports["runner"])
            env = orchestrator_env(tmp_path, manager.address, runner_address)
            orchestrator = await start_orchestrator(env, tmp_path / "orchestrator.log")
            request = pb.StartCatalogRequest(
                db_conn_string=with_password(url),
                tables=[f"{schema}.orders"],
                s3_prefix=f"file://{tmp_path}/out",
                # the two agents CALLS scripts: the trace's shape, not the default pipeline
                agents=["catalog", "summary"],
            )
            started = await orchestrator.stub.StartCatalog(request)
            catalog = await wait_finished(orchestrator.stub, started.catalog_id, 300)
            assert catalog.status == pb.CATALOG_STATUS_SUCCEEDED, catalog.error
            await receiver.wait_for(_whole_run, 60)
            urls = {
                "orchestrator": f"{orchestrator.http_url}/metrics",
                "manager": f"http://127.0.0.1:{ports['manager']}/metrics",
                "runner": f"http://127.0.0.1:{ports['runner']}/metrics",
            }
            scraped = {name: await asyncio.to_thread(scrape, u) for name, u in urls.items()}
            prompts = [r.body for r in fake.requests]
    finally:
        if orchestrator is not None:
            await orchestrator.stop()
        if runner is not None and runner.returncode is None:
            runner.terminate()
            await asyncio.wait_for(runner.wait(), 60)
        await manager.stop()

    usage = sum(CALLS, TokenUsage())
    price = load_prices(REPO / "deploy" / "prices.yaml").price(MODEL)
    assert price is not None
    assert catalog.cost_usd == pytest.approx(price.cost(usage))
    assert [u.cost_usd for u in catalog.agent_usage] == pytest.approx(
        [price.cost(CALLS[0] + CALLS[1]), price.cost(CALLS[2])]
    )
    _check_trace(receiver.spans)
    _check_no_secrets(receiver.spans, [PASSWORD, CODE_MARK, PAGE_MARK, url, str(prompts[0])])
    _check_metrics(
        {name: samples for name, (samples, _) in scraped.items()}, usage, price.cost(usage)
    )
    _check_dashboards(set().union(*(names for _, names in scraped.values())))


def _whole_run(spans: list[ReceivedSpan]) -> bool:
    names = {(s.service, s.name) for s in spans}
    return {
        ("catalog-orchestrator", "catalog_workflow"),
        ("catalog-agent-runner", "invoke_agent summary"),
        ("catalog-sandbox-manager", "/catalog.v1.SandboxManagerService/Execute"),
    } <= names


def _by_id(spans: list[ReceivedSpan]) -> dict[bytes, ReceivedSpan]:
    return {s.span.span_id: s for s in spans}


def _ancestors(span: ReceivedSpan, index: dict[bytes, ReceivedSpan]) -> list[ReceivedSpan]:
    chain = []
    while span.span.parent_span_id in index:
        span = index[span.span.parent_span_id]
        chain.append(span)
    return chain


def _check_trace(spans: list[ReceivedSpan]) -> None:
    workflow = next(s for s in spans if s.name == "catalog_workflow")
    trace = [s for s in spans if s.span.trace_id == workflow.span.trace_id]
    index = _by_id(trace)
    # One trace: every span of the run's work shares the workflow's trace id.
    run_work = [s for s in spans if s.name.startswith(("invoke_agent", "chat", "execute_tool"))]
    assert run_work and all(s.span.trace_id == workflow.span.trace_id for s in run_work)
    assert {s.service for s in trace} == {
        "catalog-orchestrator",
        "catalog-agent-runner",
        "catalog-sandbox-manager",
    }
    # orchestrator step -> RunAgent client -> runner's RunAgent server -> invoke_agent
    for agent in ("catalog", "summary"):
        invoke = next(s for s in trace if s.name == f"invoke_agent {agent}")
        chain = [(a.service, a.name) for a in _ancestors(invoke, index)]
        rpc = "/catalog.v1.AgentRunnerService/RunAgent"
        assert chain[:2] == [("catalog-agent-runner", rpc), ("catalog-orchestrator", rpc)]
        assert ("catalog-orchestrator", "run_agent") in chain
        assert chain[-1][1] == "/catalog.v1.CatalogService/StartCatalog"
        assert invoke.attributes["gen_ai.operation.name"] == "invoke_agent"
    # execute_tool -> Execute client (runner) -> Execute server (manager)
    tool = next(s for s in trace if s.name == "execute_tool execute_python")
    assert tool.attributes["gen_ai.tool.name"] == "execute_python"
    assert tool.attributes["catalog.kernel.duration_s"] >= 0
    assert tool.attributes["catalog.cell.status"] == "ok"
    execute = "/catalog.v1.SandboxManagerService/Execute"
    served = [s for s in trace if s.service == "catalog-sandbox-manager" and s.name == execute]
    inside = [s for s in served if tool in _ancestors(s, index)]
    assert len(inside) == 1
    assert [(a.service, a.name) for a in _ancestors(inside[0], index)][:2] == [
        ("catalog-agent-runner", execute),
        ("catalog-agent-runner", tool.name),
    ]
    _check_chat_spans(trace)


def _check_chat_spans(trace: list[ReceivedSpan]) -> None:
    chats = sorted(
        (s for s in trace if s.name == f"chat {MODEL}"), key=lambda s: s.span.start_time_unix_nano
    )
    assert len(chats) == len(CALLS)
    for chat, usage in zip(chats, CALLS, strict=True):
        got = chat.attributes
        assert got["gen_ai.operation.name"] == "chat"
        assert got["gen_ai.provider.name"] == "anthropic"
        assert got["gen_ai.request.model"] == MODEL
        assert got["gen_ai.response.model"] == MODEL
        assert got["gen_ai.response.finish_reasons"] == ["tool_use"]
        assert (
            got["gen_ai.usage.input_tokens"],
            got["gen_ai.usage.output_tokens"],
            got["gen_ai.usage.cache_creation.input_tokens"],
            got["gen_ai.usage.cache_read.input_tokens"],
        ) == (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_creation_input_tokens,
            usage.cache_read_input_tokens,
        )


def _check_no_secrets(spans: list[ReceivedSpan], secrets: list[str]) -> None:
    text = "\n".join(str(s.span) for s in spans)
    for secret in secrets:
        assert secret not in text, f"a span holds {secret[:40]!r}"
    # the system prompt, or any long part of it
    assert "submit_html" not in text


def _check_metrics(metrics: dict[str, dict], usage: TokenUsage, cost: float) -> None:  # type: ignore[type-arg]
    runner = metrics["runner"]
    for kind, tokens in (
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cache_creation", usage.cache_creation_input_tokens),
        ("cache_read", usage.cache_read_input_tokens),
    ):
        key = ("catalog_agent_tokens_total", (("model", MODEL), ("type", kind)))
        assert runner[key] == tokens, kind
    assert runner[("catalog_agent_cost_usd_total", (("model", MODEL),))] == pytest.approx(cost)
    runs = metrics["orchestrator"]
    assert runs[("catalog_runs_total", (("code", "none"), ("status", "succeeded")))] == 1
    assert runs[("catalog_run_cost_usd_sum", (("status", "succeeded"),))] == pytest.approx(cost)
    assert runs[("catalog_storage_writes_total", (("outcome", "created"), ("store", "file")))] >= 2
    pool = metrics["manager"]
    assert ("catalog_sandboxes", (("state", "warm"),)) in pool
    executed = ("catalog_sandbox_execute_duration_seconds_count", (("status", "ok"),))
    assert pool[executed] >= 2  # the read-only check's cells and the agent's
    assert pool[("catalog_sandbox_acquire_wait_seconds_count", ())] >= 1


def _check_dashboards(exported: set[str]) -> None:
    """Every metric a dashboard's query names is one the services really export."""
    for path in sorted((REPO / "deploy").glob("grafana-*.json")):
        queries = [t["expr"] for p in json.loads(path.read_text())["panels"] for t in p["targets"]]
        named = {m for q in queries for m in re.findall(r"\b(catalog_[a-z0-9_]+)", q)}
        assert named, path.name
        assert named <= exported, f"{path.name} queries {sorted(named - exported)}"
