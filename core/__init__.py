"""The ground every stage stands on: the contracts (``core.contracts``), settings, logging, the
AWS client factory and the one error root. It imports nothing else of this project."""
