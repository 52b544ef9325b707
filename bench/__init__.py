"""Plasmite benchmark: Plasmite next to a raw floor and the alternatives, in one run.

Run it as ``python -m bench`` (see ``python -m bench --help``).  Every figure is
measured on this machine in the same run, so the ratios mean something even when
the absolute numbers move from box to box.
"""
