"""The RedPajama release (or a parquet hub mirror) behind the source interface (sources/base.py).

`discover(subsets)` lists the data files of the chosen subsets (the published URL lists, a
folder, or the hub); `fetch(file)` returns the file itself: the sampler streams each one with
Range resume and never stores it, so the location `extract` opens is the file's URL;
`extract(file, quarantine)` yields its raw Documents (records.py's normalisation, bad lines
quarantined). `gap-replay download` / `refresh` discover through it (sampler.run_sample); the
sampling tasks read files through the same `open_documents` that `extract` wraps, which also
gives them the byte position the size estimate needs.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from gap_replay.document import Document
from gap_replay.io import Quarantine
from gap_replay.sources.replay.hub import list_parquet_files
from gap_replay.sources.replay.settings import ReplaySettings
from gap_replay.sources.replay.file_task import HTTPSettings, client_for, open_documents
from gap_replay.sources.replay.urllists import DataFile, list_data_files


class RedPajamaRelease:
    name = "redpajama"
    source = "replay"

    def __init__(self, settings: ReplaySettings, http: HTTPSettings) -> None:
        self.settings = settings
        self.http = http

    def discover(self, inputs: Iterable[str]) -> list[DataFile]:
        """The data files of the subsets `inputs`, subset by subset in list order."""
        subsets = tuple(inputs)
        http_subsets = tuple(s for s in subsets if s not in self.settings.hub)
        found: dict[str, list[DataFile]] = {}
        if http_subsets:
            found.update(list_data_files(client_for(self.http), self.settings.url_lists,
                                         http_subsets))
        for subset in subsets:
            if subset in self.settings.hub:
                found[subset] = list_parquet_files(subset, self.settings.hub[subset])
        return [f for files in found.values() for f in files]

    def fetch(self, item: DataFile) -> DataFile:
        return item  # streamed by `extract`, never stored

    def extract(self, item: DataFile, quarantine: Quarantine) -> Iterator[Document]:
        with open_documents(item, quarantine, self.http, self.settings.text_field) as (docs, _):
            yield from docs
