"""`python -m bondscope` is the same as the `bondscope` command."""

from bondscope.cli import main

main()
