"""``python -m gridsvc.cli``: the `gridsvc` command."""

from gridsvc.cli import main

main()
