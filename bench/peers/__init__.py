"""Adapters for the alternatives a user would pick instead of Plasmite.

Each module exposes NAME, LABEL, available() -> reason|None, create(workdir, purpose)
-> spec (picklable, so worker processes can reopen it), and Handle(spec) with the
operations of bench.workloads.  An operation a system does not offer is None and its
row reads "n/a" with the reason in NOTES.
"""
