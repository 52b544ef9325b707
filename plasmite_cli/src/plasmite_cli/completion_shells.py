"""Shell completion for PowerShell and Elvish, added to click's bash/zsh/fish.

click ships completion for bash, zsh and fish only, but lets a program register
more shells (``click.shell_completion.add_completion_class``). These two classes
use click's own protocol: the shell script runs ``pls`` with ``_PLS_COMPLETE``
set to ``powershell_complete`` or ``elvish_complete`` and the words typed so far
in ``COMP_WORDS``; ``pls`` prints one ``TYPE<TAB>VALUE<TAB>HELP`` line per
candidate. So commands, options, choices and pool names complete exactly as in
bash.
"""

from __future__ import annotations

import os

from click.shell_completion import CompletionItem, ShellComplete, add_completion_class, split_arg_string

_POWERSHELL = """\
Register-ArgumentCompleter -Native -CommandName %(prog_name)s, plasmite -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $line = $commandAst.ToString()
    $upto = [Math]::Min($line.Length, $cursorPosition - $commandAst.Extent.StartOffset)
    $words = $line.Substring(0, [Math]::Max(0, $upto))
    # The AST ends at the last token: a new, empty word needs its separating space back.
    if ($wordToComplete -eq '' -and -not $words.EndsWith(' ')) { $words += ' ' }
    $env:COMP_WORDS = $words
    $env:%(complete_var)s = 'powershell_complete'
    try { $items = & $commandAst.CommandElements[0].Value } finally {
        Remove-Item Env:%(complete_var)s, Env:COMP_WORDS -ErrorAction SilentlyContinue
    }
    foreach ($item in $items) {
        $type, $value, $help = $item -split "`t", 3
        if ($type -eq 'plain') {
            $tip = if ($help) { $help } else { $value }
            [System.Management.Automation.CompletionResult]::new($value, $value, 'ParameterValue', $tip)
        }
    }
}
"""

_ELVISH = """\
use str
var %(complete_func)s = {|@words|
    var lines = [(env %(complete_var)s=elvish_complete COMP_WORDS=(str:join "\\n" $words) $words[0])]
    for line $lines {
        var parts = [(str:split "\\t" $line)]
        if (eq $parts[0] plain) {
            edit:complex-candidate $parts[1]
        } elif (or (eq $parts[0] file) (eq $parts[0] dir)) {
            edit:complete-filename $parts[1]
        }
    }
}
set edit:completion:arg-completer[%(prog_name)s] = $%(complete_func)s
set edit:completion:arg-completer[plasmite] = $%(complete_func)s
"""


class PowerShellComplete(ShellComplete):
    """``COMP_WORDS`` is the command line up to the cursor; a trailing space starts a new word."""

    name = "powershell"
    source_template = _POWERSHELL

    def get_completion_args(self) -> tuple[list[str], str]:
        line = os.environ.get("COMP_WORDS", "")
        words = split_arg_string(line)
        args = words[1:]
        incomplete = ""
        if args and line and not line[-1].isspace():
            incomplete = args.pop()
        return args, incomplete

    def format_completion(self, item: CompletionItem) -> str:
        return f"{item.type}\t{item.value}\t{item.help or ''}"


class ElvishComplete(ShellComplete):
    """``COMP_WORDS`` holds Elvish's words, one per line; the last is the one being typed."""

    name = "elvish"
    source_template = _ELVISH

    def get_completion_args(self) -> tuple[list[str], str]:
        words = os.environ.get("COMP_WORDS", "").split("\n")
        return words[1:-1], words[-1] if len(words) > 1 else ""

    def format_completion(self, item: CompletionItem) -> str:
        return f"{item.type}\t{item.value}\t{item.help or ''}"


def register() -> None:
    add_completion_class(PowerShellComplete)
    add_completion_class(ElvishComplete)
