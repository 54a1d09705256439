"""Clinical guideline sources: one YAML spec per site (top-level `guidelines/`), one engine.

spec.py (schema + validation) → discover.py (listing pages → article links) → scrape.py (fetch,
extract, state, raw shards) with article.py/extract.py (page → text), pdf.py (PDF text),
site_rules.py (the spec's cut of a page to its article, and rejections), hooks.py (named code
for the few sites that need it; WikiDoc's overview rule in wikidoc.py) and store.py (records in
SQLite → shards). The shared text rules run later, in `gap-replay process` (stages/clean.py).
"""
