"""The agent runner's settings, read once from the environment at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from services.agent_runner.budget import Budget
from services.agent_runner.prices import PriceTable, load_prices
from services.common import ports
from services.common.control_plane import ControlPlane
from services.common.env import SettingsError, env_float, env_int

__all__ = ["Settings", "SettingsError"]


@dataclass(frozen=True)
class Settings:
    # loopback unless told otherwise: a caller spends the operator's model budget
    host: str = "127.0.0.1"
    port: int = ports.AGENT_RUNNER
    metrics_port: int = ports.AGENT_RUNNER_METRICS  # Prometheus /metrics; 0 serves none
    # No key means the built-in offline agent. Never logged.
    anthropic_api_key: str = field(default="", repr=False)
    anthropic_base_url: str = ""
    model: str = "claude-sonnet-4-6"
    budget: Budget = field(default_factory=Budget)
    sandbox_managers: tuple[str, ...] = (f"localhost:{ports.SANDBOX_MANAGER}",)
    max_html_bytes: int = 2 * 1024 * 1024
    tool_output_bytes: int = 16 * 1024
    cell_timeout_s: float = 300.0
    profile_concurrency: int = 4  # tables the offline agent profiles at once in a sandbox
    # finished runs answered again by run id: how long and how many (memory and disk alike)
    run_retention_s: float = 24 * 3600.0
    max_retained_runs: int = 1000
    # the folder of runs.sqlite, the finished runs a restart keeps; "" keeps them in memory only
    state_dir: str = ".catalog"
    llm_max_retries: int = 4
    shutdown_grace_s: float = 30.0
    # the most a request's budget may ask for; above it the request is refused
    budget_ceiling: Budget = field(
        default_factory=lambda: Budget(
            max_total_tokens=10_000_000,
            max_turns=200,
            wall_clock_s=4 * 3600.0,
            max_output_tokens=64_000,
        )
    )
    # what tokens cost (deploy/prices.yaml); empty: every run's cost is unknown
    prices_file: Path = Path("deploy/prices.yaml")
    prices: PriceTable = field(default_factory=PriceTable)
    # the service token its callers must send (and it sends to the managers), and TLS
    control_plane: ControlPlane = field(default_factory=ControlPlane)

    @property
    def offline(self) -> bool:
        return not self.anthropic_api_key

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        defaults = cls()
        budget = Budget(
            max_total_tokens=env_int(
                env, "CATALOG_AGENT_MAX_TOTAL_TOKENS", defaults.budget.max_total_tokens
            ),
            max_turns=env_int(env, "CATALOG_AGENT_MAX_TURNS", defaults.budget.max_turns),
            wall_clock_s=env_float(env, "CATALOG_AGENT_WALL_CLOCK_S", defaults.budget.wall_clock_s),
            max_output_tokens=env_int(
                env, "CATALOG_AGENT_MAX_OUTPUT_TOKENS", defaults.budget.max_output_tokens
            ),
        )
        managers = env.get("CATALOG_SANDBOX_MANAGERS", ",".join(defaults.sandbox_managers))
        prices_file = Path(env.get("CATALOG_PRICES_FILE", str(defaults.prices_file)))
        settings = cls(
            host=env.get("CATALOG_AGENT_HOST", defaults.host),
            port=env_int(env, "CATALOG_AGENT_PORT", defaults.port),
            metrics_port=env_int(
                env, "CATALOG_AGENT_METRICS_PORT", defaults.metrics_port, minimum=0
            ),
            anthropic_api_key=env.get("ANTHROPIC_API_KEY", ""),
            anthropic_base_url=env.get("ANTHROPIC_BASE_URL", ""),
            model=env.get("CATALOG_AGENT_MODEL", defaults.model),
            budget=budget,
            sandbox_managers=tuple(a.strip() for a in managers.split(",") if a.strip()),
            max_html_bytes=env_int(env, "CATALOG_AGENT_MAX_HTML_BYTES", defaults.max_html_bytes),
            tool_output_bytes=env_int(
                env, "CATALOG_AGENT_TOOL_OUTPUT_BYTES", defaults.tool_output_bytes
            ),
            cell_timeout_s=env_float(env, "CATALOG_AGENT_CELL_TIMEOUT_S", defaults.cell_timeout_s),
            profile_concurrency=env_int(
                env, "CATALOG_AGENT_PROFILE_CONCURRENCY", defaults.profile_concurrency, minimum=1
            ),
            budget_ceiling=_ceiling(env, defaults.budget_ceiling),
            run_retention_s=env_float(
                env, "CATALOG_AGENT_RUN_RETENTION_S", defaults.run_retention_s, minimum=1
            ),
            max_retained_runs=env_int(
                env, "CATALOG_AGENT_MAX_RETAINED_RUNS", defaults.max_retained_runs, minimum=1
            ),
            state_dir=env.get("CATALOG_AGENT_STATE_DIR", defaults.state_dir),
            prices_file=prices_file,
            prices=load_prices(prices_file),
            control_plane=ControlPlane.from_env(env),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.sandbox_managers:
            raise SettingsError("CATALOG_SANDBOX_MANAGERS names no sandbox manager")
        for field_name, name in CEILING_VARS.items():
            default = getattr(self.budget, field_name)
            ceiling = getattr(self.budget_ceiling, field_name)
            if default > ceiling:
                raise SettingsError(
                    f"the default budget is above its ceiling {name}={ceiling:g}: "
                    f"raise {name} or lower the default"
                )


# Budget field -> the variable holding its ceiling (named in refusals, so keep them in step).
CEILING_VARS = {
    "max_total_tokens": "CATALOG_AGENT_CEILING_TOTAL_TOKENS",
    "max_turns": "CATALOG_AGENT_CEILING_TURNS",
    "wall_clock_s": "CATALOG_AGENT_CEILING_WALL_CLOCK_S",
    "max_output_tokens": "CATALOG_AGENT_CEILING_OUTPUT_TOKENS",
}


def _ceiling(env: dict[str, str], default: Budget) -> Budget:
    return Budget(
        max_total_tokens=env_int(
            env, "CATALOG_AGENT_CEILING_TOTAL_TOKENS", default.max_total_tokens, minimum=1
        ),
        max_turns=env_int(env, "CATALOG_AGENT_CEILING_TURNS", default.max_turns, minimum=1),
        wall_clock_s=env_float(
            env, "CATALOG_AGENT_CEILING_WALL_CLOCK_S", default.wall_clock_s, minimum=1
        ),
        max_output_tokens=env_int(
            env, "CATALOG_AGENT_CEILING_OUTPUT_TOKENS", default.max_output_tokens, minimum=1
        ),
    )
