"""The orchestrator: catalog runs as durable workflows, served over gRPC and HTTP."""
