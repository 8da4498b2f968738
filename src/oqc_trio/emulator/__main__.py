"""``python -m oqc_trio.emulator serve ...``: the same as the ``oqc-emulator`` command."""

from oqc_trio.emulator.cli import console_main

# The guard matters: the aer executor's worker processes re-import the main module.
if __name__ == "__main__":
    console_main()
