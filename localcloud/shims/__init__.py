"""Patches that close the gaps of the pinned moto (see docs/local-cloud.md and ../shared/notes/moto.md).

Each shim module exposes ``install()`` (idempotent) and has a contract test under
``tests/unit/localcloud/shims/`` that fails if the pinned moto changes underneath it.
"""
