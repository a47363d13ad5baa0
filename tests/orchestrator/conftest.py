"""Real S3 on loopback: moto's server mode, spoken to over HTTP by real boto3 clients."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from services.common.ports import free_port

# Fake credentials only, and no profile, config file or instance metadata that could reach a
# real account: every S3 call in these tests goes to the moto server.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-access-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-access-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
CLEARED_AWS_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 for the session; yields its endpoint URL."""
    saved = {name: os.environ.get(name) for name in (*FAKE_AWS_ENV, *CLEARED_AWS_ENV)}
    os.environ.update(FAKE_AWS_ENV)
    for name in CLEARED_AWS_ENV:
        os.environ.pop(name, None)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def s3_client(endpoint_url: str) -> Any:
    """A plain boto3 client on the moto server, for tests to look behind the store's back."""
    return boto3.client("s3", endpoint_url=endpoint_url, region_name="us-east-1")


@pytest.fixture
def s3_bucket(s3_server: str) -> Iterator[str]:
    """A fresh bucket, labelled by its name, emptied and removed after the test."""
    client = s3_client(s3_server)
    name = f"catalog-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        listed = client.list_objects_v2(Bucket=name).get("Contents", [])
        for item in listed:
            client.delete_object(Bucket=name, Key=item["Key"])
        client.delete_bucket(Bucket=name)


# The schedule tests' orchestrator (its runs fail fast) and webhook receiver.
from tests.orchestrator.schedule_kit import orchestrator, receiver  # noqa: E402, F401

# The whole stack (sandbox manager, runners, orchestrators), shared by the orchestrator tests.
from tests.orchestrator.stack import (  # noqa: E402, F401
    claude_runner,
    fake,
    manager,
    offline_runner,
    pg_system_database,
    reader_table,
    start,
)
