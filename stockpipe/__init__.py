"""stockpipe: the command line and what the stages share (settings, logging)."""
