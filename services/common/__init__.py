"""Plumbing shared by the three services: errors, the gRPC server, logging."""
