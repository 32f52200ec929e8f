"""Errors of the model package, importable without loading torch (the CLI catches them)."""


class CheckpointError(ValueError):
    """The checkpoint folder does not match the release layout; the message names what differs."""
