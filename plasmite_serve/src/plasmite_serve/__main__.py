"""``python -m plasmite_serve``: the ``serve`` command group without ``pls``."""

from .cli import main

if __name__ == "__main__":
    main()
