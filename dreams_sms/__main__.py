"""`python -m dreams_sms`: the `dreams-sms` command."""

from dreams_sms.ops.cli import main

main()
