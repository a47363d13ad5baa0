"""What model tokens cost: the price table (deploy/prices.yaml) and a run's cost in USD.

The table gives, per model, US dollars per million tokens of each kind the API reports: input,
output, cache writes (`cache_creation_input_tokens`) and cache reads. A dated snapshot name
(`claude-sonnet-4-5-20250929`) takes the longest entry its name starts with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from services.common.env import SettingsError
from services.common.usage import TokenUsage

_KINDS = ("input", "output", "cache_write", "cache_read")
_PER = 1_000_000


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens of each kind."""

    input: float
    output: float
    cache_write: float
    cache_read: float

    def cost(self, usage: TokenUsage) -> float:
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_creation_input_tokens * self.cache_write
            + usage.cache_read_input_tokens * self.cache_read
        ) / _PER


@dataclass(frozen=True)
class PriceTable:
    models: Mapping[str, ModelPrice] = field(default_factory=dict)

    def price(self, model: str) -> ModelPrice | None:
        """The model's price: its own entry, else the longest entry its name starts with."""
        if model in self.models:
            return self.models[model]
        prefixes = [name for name in self.models if model.startswith(name + "-")]
        return self.models[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, usage: TokenUsage) -> float | None:
        """The usage's cost in USD; None when the table has no price for the model."""
        price = self.price(model)
        return None if price is None else price.cost(usage)


def load_prices(path: Path, variable: str = "CATALOG_PRICES_FILE") -> PriceTable:
    """The table in `path`; SettingsError naming `variable` and what to fix."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot read {path} ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"{variable}: {path} is not valid YAML ({exc})") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not models:
        raise SettingsError(f"{variable}: {path} needs a `models:` mapping of model -> prices")
    return PriceTable({str(m): _price(path, str(m), p, variable) for m, p in models.items()})


def _price(path: Path, model: str, value: Any, variable: str) -> ModelPrice:
    if not isinstance(value, dict) or set(value) != set(_KINDS):
        raise SettingsError(
            f"{variable}: {path}: model {model!r} needs exactly {', '.join(_KINDS)} "
            "(USD per million tokens)"
        )
    prices = {}
    for kind in _KINDS:
        number = value[kind]
        if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
            raise SettingsError(
                f"{variable}: {path}: {model}.{kind} must be a number >= 0, not {number!r}"
            )
        prices[kind] = float(number)
    return ModelPrice(**prices)
