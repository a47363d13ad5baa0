"""The attack tests run against real sandbox managers, as the sandbox manager's tests do."""

from tests.sandbox_manager.conftest import start_manager

__all__ = ["start_manager"]
