"""plasmite-core: pool storage, envelope, errors, refs, hooks and the local API."""

__version__ = "0.1.0"
