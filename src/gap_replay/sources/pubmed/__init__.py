"""PubMed abstracts and full-text papers: Semantic Scholar datasets (S2ORC, papers, abstracts)
and the keyless NCBI path (PMC Open Access JATS, PubMed baseline MEDLINE XML).

Every parser here turns one upstream record into a `Document` in the paper's format; the
corpus rules (`rules.py`) and the up-sampling stage (`stages/upsample.py`) work on those.
"""
