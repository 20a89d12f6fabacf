"""One module per `sparsespikformer` sub-command. Each exposes `HELP` (one line),
`add_arguments(parser)` and `run(args) -> int`; `sparsespikformer.analysis.cli` imports a
command's module only when that command runs."""
