"""One module per `hbench` subcommand; each defines `register(subparsers)`."""
