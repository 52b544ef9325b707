"""``python -m plasmite_cli`` runs ``pls``."""

from plasmite_cli.main import main

if __name__ == "__main__":
    main()
