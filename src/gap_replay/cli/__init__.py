"""Command-line interface (click): `gap-replay` and `guidelines`."""
