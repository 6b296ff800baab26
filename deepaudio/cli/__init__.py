"""The command lines: ``get_parser()`` and ``main(argv)`` for each entry point of the design
card (the scripts at the repository root) and each console script."""
