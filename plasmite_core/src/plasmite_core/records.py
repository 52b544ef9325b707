"""``NamedTuple`` for the modules a one-shot ``pls feed`` loads, without ``typing``.

Importing ``typing`` costs about 40% of a bare interpreter's start-up (in
instructions), and the pool engine's records (``format.State``,
``format.Geometry``...) are its only use on that path. Type checkers see
``typing.NamedTuple``; at run time a class statement on this base builds the
same ``collections.namedtuple`` class from the annotated fields, with the
class body's defaults, methods, properties and docstring.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    from collections import namedtuple

    _NOT_COPIED = frozenset(("__module__", "__qualname__", "__annotations__", "__dict__", "__weakref__"))

    class _Builder(type):
        def __new__(mcls, name, bases, ns):
            if not bases:  # the NamedTuple base itself
                return super().__new__(mcls, name, bases, ns)
            fields = list(ns.get("__annotations__", ()))
            defaults = [ns[f] for f in fields if f in ns]
            if any(f not in ns for f in fields[len(fields) - len(defaults):]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            cls = namedtuple(name, fields, defaults=defaults, module=ns["__module__"])
            cls.__qualname__ = ns["__qualname__"]
            cls.__annotations__ = dict(ns.get("__annotations__", ()))
            for key, value in ns.items():
                if key not in _NOT_COPIED and key not in fields:
                    setattr(cls, key, value)
            return cls

    class NamedTuple(metaclass=_Builder):
        """Base of a record class (see the module docstring)."""
