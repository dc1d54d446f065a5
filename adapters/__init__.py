"""Venue adapters: the reference simulator (``adapters.sim``) and, later, ccxt testnets.

PYTEST_DONT_REWRITE: library code, imported by ``perpcheck run`` before pytest starts.
"""
