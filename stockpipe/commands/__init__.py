"""One module a command group. Each has ``register(commands)``, which adds its sub-parser(s)
and sets ``handler`` (a function of the parsed arguments returning the exit code). Heavy
imports stay inside the handlers, so ``stockpipe --help`` is fast."""
