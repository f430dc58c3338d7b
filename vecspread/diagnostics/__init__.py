"""Diagnostics that explain why a code works: ``report`` (the ``inspect`` stage), ``spread`` (uniformity,
ε-search), ``codes`` (table balance, bit and atom usage), ``recall`` (id-based vs tie-aware), ``plots``."""
