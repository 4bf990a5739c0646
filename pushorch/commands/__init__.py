"""Pure command builders: argv tuples and shell scripts, quoted in exactly one place (shell.py)."""
