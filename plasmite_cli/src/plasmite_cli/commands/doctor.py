"""``pls doctor POOL | --all [--repair]``: validate (and optionally repair) pools.

Without ``--repair`` nothing is changed. Exits 7 (Corrupt) when any inspected
pool has a problem (after ``--repair``: one that could not be repaired), so
scripts and cron jobs can alert on it; ``--json`` prints ``{"reports": [...]}``,
each report carrying upstream's fields (``pool_ref``, ``status``,
``last_good_seq``, ``issues`` with ``seq``/``offset``, ...) and this project's
(``ok``, ``messages_checked``, ``bounds``, ``repaired``, ``notes``).
"""

from __future__ import annotations

import click

from plasmite_core.refs import is_url

from ..output import emit_json, write_out
from .common import complete_pool, get_state


@click.command(
    epilog="""\b
Examples:
  pls doctor chat
  pls doctor --all
  pls doctor --all --json | jq '.reports[] | select(.ok | not)'
  pls doctor chat --repair
  pls doctor chat --deep

\b
Checks the header, the state, every retained frame (length, checksum, seq
and time order) and the seq index, without changing anything; --deep also
decodes every payload and tags (finds frames written with a valid checksum
over invalid bytes). --repair works in place under the writer lock: it
keeps every frame that verifies (with --deep: and decodes), skipping past
damaged ones, and reports the seqs it lost (seqs are never reused; followers
see the loss as a gap). Exits 7 if a pool is corrupt (with --repair: if it
could not be repaired).

\b
--all also reports hidden temp files that killed `pool create` runs left
(.NAME.plasmite.PID.TID.tmp); --repair, `pool list` and `pool create`
remove those whose creator is gone.""",
    short_help="Check pools for corruption.",
)
@click.argument("pool", metavar="[POOL]", required=False, shell_complete=complete_pool)
@click.option("--all", "check_all", is_flag=True, help="Check every pool in the pool directory.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON reports instead of text.")
@click.option("--repair", is_flag=True, help="Repair damaged pools in place (keeps every intact message).")
@click.option("--deep", is_flag=True, help="Also decode every payload and tags with the pool's codec.")
@click.pass_context
def doctor(ctx, pool, check_all, as_json, repair, deep):
    """Validate POOL (or with --all, every pool) and report problems."""
    from plasmite_core.errors import ErrorKind, UsageError
    from plasmite_core.refs import resolve_pool_ref

    from plasmite_core.doctor import check_pool, repair_pool

    if check_all and pool:
        raise UsageError("--all cannot be combined with a pool name", hint="use --all alone, or name one pool")
    if not check_all and not pool:
        raise UsageError("doctor needs a pool name or --all", hint="`pls doctor NAME` or `pls doctor --all`")
    state = get_state(ctx)
    if pool:
        if is_url(pool):
            raise UsageError("doctor accepts local pool refs only", hint="run doctor on the server that hosts the pool")
        path = resolve_pool_ref(pool, state.pool_dir)
        if not path.exists():
            from plasmite_core.errors import NotFoundError

            raise NotFoundError(f"pool not found: {pool}", path=str(path),
                                hint="`pls pool list` shows existing pools")
        targets = [(pool, path)]
    else:
        from plasmite_core.refs import pool_files

        targets = pool_files(state.pool_dir)
    reports = []
    from plasmite_core import leftovers
    from plasmite_core.errors import CorruptError
    from plasmite_core.upstream import not_ours_error, upstream_version

    temp_files = leftovers.find(state.pool_dir) if check_all else []
    if repair and any(not t.creator_alive for t in temp_files):
        from plasmite_core import locks

        with locks.admin_lock(state.pool_dir, locks.resolve_timeout()):
            removed = {t.path for t in leftovers.sweep(state.pool_dir)}
        temp_files = [t for t in temp_files if t.path not in removed]

    for name, path in targets:
        version = upstream_version(path)
        if version is not None:
            err = not_ours_error(path, version, name)
            if pool:
                raise err
            rep = check_pool(path)  # listed as unreadable here, with the way out
            rep.issues[:] = []
            rep.add("upstream_format", err.message, 0)
            rep.notes.append(err.hint)
        elif repair:
            try:
                rep = repair_pool(path, deep=deep)
            except CorruptError as err:  # not repairable (e.g. a damaged header)
                rep = check_pool(path, deep)
                rep.notes.append(f"not repaired: {err.message}" + (f" ({err.hint})" if err.hint else ""))
        else:
            rep = check_pool(path, deep)
        d = _upstream_fields(name, rep)
        d.update((k, v) for k, v in rep.to_dict().items() if k not in d)
        d["pool"] = name
        reports.append((name, rep, d))
    if as_json:
        out = {"reports": [d for _, _, d in reports]}
        if check_all:
            out["leftovers"] = [t.to_dict() for t in temp_files]
        emit_json(out)
    else:
        lines = []
        if not reports:
            lines.append(f"No pools in {state.pool_dir}.")
        for t in temp_files:
            who = "running" if t.creator_alive else "dead"
            lines.append(f"LEFTOVER {t.path.name}: {t.size} bytes, temp file of a `pool create` "
                         f"by PID {t.pid} ({who})")
        if any(not t.creator_alive for t in temp_files):
            lines.append("`pls pool list` or `pls doctor --all --repair` removes temp files of dead creators")
        for name, rep, d in reports:
            issues = [i.get("message") if isinstance(i, dict) else str(i) for i in d.get("issues", [])]
            if rep.ok and d.get("repaired"):
                lost = ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in d.get("lost", []))
                lines.append(f"REPAIRED {name}: {len(issues)} issue(s) fixed; "
                             f"{_count(d.get('messages_checked', 0), 'message')} kept"
                             + (f"; seqs lost: {lost} (followers see a gap)" if lost else ""))
            elif rep.ok:
                lines.append(f"OK       {name}: {_count(d.get('messages_checked', 0), 'message')} checked")
            else:
                lines.append(f"CORRUPT  {name}: {len(issues)} issue(s)")
            for text in issues if not (rep.ok and not d.get("repaired")) else []:
                lines.append(f"  - {text}")
            for note in d.get("notes", []):
                lines.append(f"  note: {note}")
        if not repair and any(not rep.ok for _, rep, _ in reports):
            lines.append("run `pls doctor --repair` on a damaged pool: it keeps every message that verifies")
        bad = sum(1 for _, rep, _ in reports if not rep.ok)
        if len(reports) > 1:
            lines.append(f"{len(reports)} pools checked, {bad} corrupt")
        write_out("\n".join(lines) + "\n")
    if any(not rep.ok for _, rep, _ in reports):
        return int(ErrorKind.CORRUPT)
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _upstream_fields(name: str, rep) -> dict:
    """The fields of upstream's doctor report, from this project's report."""
    issues = [{"code": i.code, "message": i.message, "seq": i.seq, "offset": i.offset} for i in rep.issues]
    hints = []
    if not rep.ok:
        if any(i.code == "upstream_format" for i in rep.issues):
            hints.append(f"convert it with `pls pool import {name}`")
        elif all(i.code != "header" for i in rep.issues):  # a damaged header cannot be repaired
            hints.append(f"run `pls doctor {name} --repair` to keep every message that verifies")
        else:
            hints.append("restore the pool file from a backup, or delete and recreate it")
    return {
        "pool_ref": name,
        "path": rep.path,
        "status": "ok" if rep.ok else "corrupt",
        "last_good_seq": rep.newest_seq,
        "issue_count": len(issues),
        "issues": issues,
        "remediation_hints": hints,
        "snapshot_path": None,  # doctor never copies a pool aside
    }
