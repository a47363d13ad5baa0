"""The compose file as Docker Compose reads it, for every deploy test (defined in test_compose)."""

from tests.deploy.test_compose import compose_bin, config  # noqa: F401
