"""Subcommands of ``disentangle``: one module each, defining ``add_parser(subparsers)``."""
