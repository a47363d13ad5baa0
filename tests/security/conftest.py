"""Attack tests share the pre-loaded subprocess kernel of the sandbox tests."""

from tests.sandbox.conftest import shared_kernel

__all__ = ["shared_kernel"]
