"""Crossover detection and the scheduled alerting Lambdas."""
