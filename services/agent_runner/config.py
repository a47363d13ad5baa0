"""The agent runner's settings, read once from the environment at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from services.agent_runner.budget import Budget
from services.common.env import SettingsError, env_float, env_int

__all__ = ["Settings", "SettingsError"]


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 50052
    # No key means the built-in offline agent. Never logged.
    anthropic_api_key: str = field(default="", repr=False)
    anthropic_base_url: str = ""
    model: str = "claude-sonnet-4-6"
    budget: Budget = field(default_factory=Budget)
    sandbox_managers: tuple[str, ...] = ("localhost:50051",)
    max_html_bytes: int = 2 * 1024 * 1024
    tool_output_bytes: int = 16 * 1024
    cell_timeout_s: float = 300.0
    run_retention_s: float = 24 * 3600.0
    max_retained_runs: int = 1000
    llm_max_retries: int = 4
    shutdown_grace_s: float = 30.0

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
        return cls(
            host=env.get("CATALOG_AGENT_HOST", defaults.host),
            port=env_int(env, "CATALOG_AGENT_PORT", defaults.port),
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
        )
