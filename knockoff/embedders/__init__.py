"""Embedders: one interface (:class:`Embedder`) and a registry (:func:`create_embedder`)."""

from knockoff.embedders.base import (
    Embedder,
    create_embedder,
    describe_embedders,
    l2_normalize,
    list_embedders,
    register_embedder,
)

__all__ = ["Embedder", "create_embedder", "describe_embedders", "l2_normalize", "list_embedders", "register_embedder"]
