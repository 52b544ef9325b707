"""plasmite-cli: the ``pls`` / ``plasmite`` command line for Plasmite pools."""

__version__ = "0.1.0"
