"""``python -m oqc_trio`` is ``oqc-run``."""

from oqc_trio.runner.cli import console_main

if __name__ == "__main__":
    console_main()
