"""PubMed abstracts and full-text papers: Semantic Scholar datasets (S2ORC, papers, abstracts)
and the keyless NCBI path (PMC Open Access JATS, PubMed baseline MEDLINE XML).

Every parser here turns one upstream record into a raw `Document` in the paper's format and
marks the records that are not corpus text (`drop_marks.py`: retractions, abstracts with a full
text); the shared `filter` and `upsample` stages (stages/) act on those in `process`.
"""
