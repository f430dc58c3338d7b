"""vecspread: learned spreading transforms and fixed codes for similarity search."""

__version__ = "0.1.0"
