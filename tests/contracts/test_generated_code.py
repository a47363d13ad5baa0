"""The committed generated code matches protos/, and every part of the contracts is documented."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "protos"
PROTO_FILES = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))

# The RPCs each service must have: the contract the services and clients are written against.
EXPECTED_RPCS = {
    "catalog.v1.SandboxManagerService": {
        "AcquireSandbox": (False, False),
        "Execute": (False, True),
        "ResetSandbox": (False, False),
        "ReleaseSandbox": (False, False),
        "RenewLease": (False, False),
        "ListSandboxes": (False, False),
        "DescribeSandbox": (False, False),
    },
    "catalog.v1.AgentRunnerService": {
        "RunAgent": (False, True),
        "GetAgentRun": (False, False),
        "CancelAgentRun": (False, False),
    },
    "catalog.v1.CatalogService": {
        "StartCatalog": (False, False),
        "GetCatalog": (False, False),
        "ListCatalogs": (False, False),
        "WatchCatalog": (False, True),
        "CancelCatalog": (False, False),
        "CreateSchedule": (False, False),
        "GetSchedule": (False, False),
        "ListSchedules": (False, False),
        "UpdateSchedule": (False, False),
        "PauseSchedule": (False, False),
        "ResumeSchedule": (False, False),
        "DeleteSchedule": (False, False),
        "TriggerSchedule": (False, False),
    },
}
SERVICE_MODULES = {
    "catalog.v1.SandboxManagerService": "sandbox",
    "catalog.v1.AgentRunnerService": "agent",
    "catalog.v1.CatalogService": "catalog",
}

# Field numbers of descriptor.proto, as used in SourceCodeInfo.Location.path.
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM, MESSAGE_ONEOF = 2, 3, 4, 8
ENUM_VALUE = 2
SERVICE_METHOD = 2


@pytest.fixture(scope="module")
def descriptor_set(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    out = tmp_path_factory.mktemp("fds") / "contracts.binpb"
    # `python -m grpc_tools.protoc` adds the include path of the well-known types.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *PROTO_FILES,
        ],
        check=True,
        cwd=ROOT,
    )
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    return fds


def test_generated_code_is_up_to_date() -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_protos.sh"), "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_proto_files_present() -> None:
    assert PROTO_FILES == [
        "catalog/v1/agent.proto",
        "catalog/v1/catalog.proto",
        "catalog/v1/sandbox.proto",
    ]


@pytest.mark.parametrize("service", sorted(EXPECTED_RPCS))
def test_services_have_their_rpcs(service: str) -> None:
    name = SERVICE_MODULES[service]
    pb2 = importlib.import_module(f"catalog.v1.{name}_pb2")
    pb2_grpc = importlib.import_module(f"catalog.v1.{name}_pb2_grpc")
    short = service.rsplit(".", 1)[1]
    desc = pb2.DESCRIPTOR.services_by_name[short]
    assert desc.full_name == service
    rpcs = {m.name: (m.client_streaming, m.server_streaming) for m in desc.methods}
    assert rpcs == EXPECTED_RPCS[service]
    for method in desc.methods:
        # buf STANDARD naming: {Rpc}Request -> {Rpc}Response, unique to the RPC.
        assert method.input_type.name == f"{method.name}Request"
        assert method.output_type.name == f"{method.name}Response"
    stub = getattr(pb2_grpc, f"{short}Stub")
    servicer = getattr(pb2_grpc, f"{short}Servicer")
    assert callable(getattr(pb2_grpc, f"add_{short}Servicer_to_server"))
    for rpc in EXPECTED_RPCS[service]:
        assert callable(getattr(servicer, rpc)), rpc
    assert stub.__init__ is not object.__init__


def _documented_elements(
    fd: descriptor_pb2.FileDescriptorProto,
) -> list[tuple[tuple[int, ...], str]]:
    """(source path, full name) of every message, field, oneof, enum, value, service, method."""
    found: list[tuple[tuple[int, ...], str]] = []

    def enum(path: tuple[int, ...], e: descriptor_pb2.EnumDescriptorProto, scope: str) -> None:
        found.append((path, f"enum {scope}{e.name}"))
        for i, v in enumerate(e.value):
            found.append(((*path, ENUM_VALUE, i), f"enum value {scope}{e.name}.{v.name}"))

    def message(path: tuple[int, ...], m: descriptor_pb2.DescriptorProto, scope: str) -> None:
        full = f"{scope}{m.name}"
        if m.options.map_entry:  # synthesized for map<,> fields; documented by the field
            return
        found.append((path, f"message {full}"))
        for i, f in enumerate(m.field):
            found.append(((*path, MESSAGE_FIELD, i), f"field {full}.{f.name}"))
        for i, o in enumerate(m.oneof_decl):
            if o.name.startswith("_"):  # synthetic oneof of a proto3 `optional` field
                continue
            found.append(((*path, MESSAGE_ONEOF, i), f"oneof {full}.{o.name}"))
        for i, n in enumerate(m.nested_type):
            message((*path, MESSAGE_NESTED, i), n, f"{full}.")
        for i, e in enumerate(m.enum_type):
            enum((*path, MESSAGE_ENUM, i), e, f"{full}.")

    scope = f"{fd.package}."
    for i, m in enumerate(fd.message_type):
        message((FILE_MESSAGE, i), m, scope)
    for i, e in enumerate(fd.enum_type):
        enum((FILE_ENUM, i), e, scope)
    for i, s in enumerate(fd.service):
        found.append(((FILE_SERVICE, i), f"service {scope}{s.name}"))
        for j, method in enumerate(s.method):
            path = (FILE_SERVICE, i, SERVICE_METHOD, j)
            found.append((path, f"rpc {scope}{s.name}.{method.name}"))
    return found


def test_every_element_has_a_leading_comment(
    descriptor_set: descriptor_pb2.FileDescriptorSet,
) -> None:
    ours = [fd for fd in descriptor_set.file if fd.name in PROTO_FILES]
    assert sorted(fd.name for fd in ours) == PROTO_FILES
    missing: list[str] = []
    count = 0
    for fd in ours:
        comments = {
            tuple(loc.path): loc.leading_comments.strip() for loc in fd.source_code_info.location
        }
        for path, what in _documented_elements(fd):
            count += 1
            if not comments.get(path):
                missing.append(f"{fd.name}: {what}")
    assert count > 100
    assert not missing, "no leading comment on:\n" + "\n".join(missing)


def test_rpc_comments_name_their_status_codes(
    descriptor_set: descriptor_pb2.FileDescriptorSet,
) -> None:
    """Every RPC that takes input documents which status codes it answers bad input with."""
    missing: list[str] = []
    for fd in descriptor_set.file:
        if fd.name not in PROTO_FILES:
            continue
        comments = {tuple(loc.path): loc.leading_comments for loc in fd.source_code_info.location}
        for i, s in enumerate(fd.service):
            for j, m in enumerate(s.method):
                text = comments.get((FILE_SERVICE, i, SERVICE_METHOD, j), "")
                if "Errors:" not in text or "INVALID_ARGUMENT" not in text:
                    missing.append(f"{s.name}.{m.name}")
    assert not missing, "RPCs without an Errors: section: " + ", ".join(missing)


def test_secrets_are_marked_debug_redact() -> None:
    from catalog.v1 import agent_pb2, catalog_pb2, sandbox_pb2

    secret_fields = [
        sandbox_pb2.SessionConfig.DESCRIPTOR.fields_by_name["db_dsn"],
        sandbox_pb2.S3Settings.DESCRIPTOR.fields_by_name["secret_access_key"],
        sandbox_pb2.S3Settings.DESCRIPTOR.fields_by_name["session_token"],
        agent_pb2.RunAgentRequest.DESCRIPTOR.fields_by_name["redact_values"],
        catalog_pb2.StartCatalogRequest.DESCRIPTOR.fields_by_name["db_conn_string"],
    ]
    for field in secret_fields:
        assert field.GetOptions().debug_redact, field.full_name
    # The catalog a client reads back never has a field for the connection string.
    names = [f.name for f in catalog_pb2.Catalog.DESCRIPTOR.fields]
    assert not [n for n in names if "conn" in n or "dsn" in n]
