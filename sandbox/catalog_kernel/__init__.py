"""The sandbox kernel: a pre-loaded Python process that forks one worker per session.

Run it with ``python -m catalog_kernel``; the wire protocol is in ``catalog_kernel.protocol``.
"""
