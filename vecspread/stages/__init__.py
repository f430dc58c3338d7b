"""The stages: one function per subcommand (import, gt, train, encode, search, eval, bench, demo), each
reading artifacts and writing one. The command line (``vecspread.cli``) only parses and reports."""
