"""The ``jq`` message filter for Plasmite (``pls follow --where EXPR``).

It is a plugin rather than part of the core so that the core stays free of a
native jq dependency; installing ``plasmite-jq`` makes ``--where`` work.

A filter matches when the expression yields ``true`` at least once. Any
non-boolean result is a usage error (the expression is probably missing a
comparison); a runtime error such as indexing a string counts as no match, so
one odd message never stops a long-running follow. The program is compiled
once per expression, when the predicate is built.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("plasmite")

_EXAMPLE = "example: --where '.data.status == \"green\"'"


def _usage(message: str, hint: str):
    from plasmite_core.errors import UsageError

    return UsageError(message, hint=hint)


class JqPredicate:
    """A compiled jq expression used as a message predicate.

    Call it with the message as a dict (``Message.to_dict()``), or with the
    message's compact JSON envelope as ``bytes``/``str``: the raw form skips a
    Python → JSON round trip, so the CLI passes ``Message.raw`` (advertised by
    ``accepts_raw``).
    """

    accepts_raw = True
    __slots__ = ("expr", "_program")

    def __init__(self, expr: str) -> None:
        try:
            import jq
        except ImportError:
            raise _usage("the jq package is not installed", "pip install jq (or reinstall plasmite-jq)") from None

        if not isinstance(expr, str) or not expr.strip():
            raise _usage("empty --where expression", _EXAMPLE)
        self.expr = expr
        try:
            self._program = jq.compile(expr)
        except ValueError as exc:
            detail = str(exc).strip().splitlines()[0].rstrip(":") if str(exc).strip() else "syntax error"
            raise _usage(
                f"invalid jq expression: {expr}",
                f"{detail}; {_EXAMPLE}",
            ) from None

    def __call__(self, message: Any) -> bool:
        program = self._program
        try:
            if isinstance(message, (bytes, bytearray, memoryview)):
                results = program.input_text(bytes(message).decode("utf-8"))
            elif isinstance(message, str):
                results = program.input_text(message)
            else:
                results = program.input_value(message)
            matched = False
            for value in results:
                if value is True:
                    matched = True
                elif value is not False:
                    raise _NonBoolean(value)
            return matched
        except _NonBoolean as nb:
            raise _usage(
                f"--where expression must yield booleans: {self.expr}",
                f"it yielded {_short(nb.value)}; compare it, e.g. `{self.expr} == \"x\"`",
            ) from None
        except ValueError:
            # jq runtime error (missing field, type mismatch): no match.
            return False

    def __repr__(self) -> str:
        return f"JqPredicate({self.expr!r})"


class _NonBoolean(Exception):
    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


def _short(value: Any) -> str:
    import json

    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def compile_filter(expr: str) -> Callable[[Any], bool]:
    """The filter factory: ``compile_filter(expr)(message) -> bool``."""
    return JqPredicate(expr)


@hookimpl
def register_filters(register):
    register("jq", compile_filter)
