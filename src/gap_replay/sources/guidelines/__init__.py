"""Clinical guideline sources: one YAML spec per site (top-level `guidelines/`), one engine.

spec.py (schema + validation) → discover.py (listing pages → article links) → scrape.py (fetch,
extract, clean, state, shards) with extract.py (DOM → text), clean.py (rules), hooks.py (named
code for the few sites that need it), store.py (records in SQLite → shards), pdf.py (PDF text).
"""
