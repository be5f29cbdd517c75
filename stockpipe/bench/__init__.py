"""Benchmarks, one module each: ``stockpipe bench TARGET`` runs one and prints its figure
and the command that produced it."""
