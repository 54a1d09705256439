"""Build the bundled RedPajama-shaped sample site (src/gap_replay/sample/sites/redpajama/).

Run from the checkout root: `python scripts/build_replay_sample.py`. Output is deterministic
(gzip without timestamp, fixed zstd level). The layout mirrors data.together.xyz:
  redpajama-data-1T/v1.0.0/urls.txt             master list (every data file)
  redpajama-data-1T/v1.0.0/urls/<subset>.txt    per-subset lists
  redpajama-data-1T/v1.0.0/<subset>/<file>      data files (.jsonl, .jsonl.gz, .jsonl.zst)
There is no `book` subset, as on the real site since 2024 (taken down for copyright: its files
404 and urls.txt no longer lists them; docs/replay.md). Record shapes follow the raw release:
`meta` as a dict (wikipedia), as a JSON string (arxiv, as in some exports), absent with
metadata keys beside `text` (stackexchange here, common_crawl in the release), or absent with
nothing beside `text` (one arxiv record). The texts were written (encyclopedic passages paraphrased from common knowledge) for this
sample; there are several languages in wikipedia as in the release (20 languages).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import zstandard

ROOT = Path(__file__).resolve().parent.parent / "src/gap_replay/sample/sites/redpajama"
BASE = "https://data.together.xyz/redpajama-data-1T/v1.0.0"

WIKIPEDIA = [
    ("en", "Lighthouse", "A lighthouse is a tower, building, or other type of physical structure designed to emit light from a system of lamps and lenses and to serve as a beacon for navigational aid for maritime pilots at sea or on inland waterways.\n\nLighthouses mark dangerous coastlines, hazardous shoals, reefs, rocks, and safe entries to harbors; they also assist in aerial navigation. Once widely used, the number of operational lighthouses has declined due to the expense of maintenance and the advent of much cheaper, more sophisticated and effective electronic navigational systems.\n\nHistory\n\nBefore the development of clearly defined ports, mariners were guided by fires built on hilltops. Since elevating the fire would improve the visibility, placing the fire on a platform became a practice that led to the development of the lighthouse."),
    ("en", "Sourdough", "Sourdough is bread made by the fermentation of dough using wild lactobacillaceae and yeast. Lactic acid from fermentation imparts a sour taste and improves keeping qualities.\n\nThe starter, a mixture of flour and water in which the microorganisms live, is fed regularly with fresh flour and water. A portion of the active starter is then mixed into the dough, which is left to rise for several hours before baking. Bakers value the method because the long fermentation develops flavour and a chewy crumb, and because the acidity slows the growth of moulds.\n\nSourdough was the usual way of leavening bread in Europe until the Middle Ages, when it was partly replaced by barm from the brewing process."),
    ("en", "Tide", "Tides are the rise and fall of sea levels caused by the combined effects of the gravitational forces exerted by the Moon and the Sun, and the rotation of the Earth.\n\nTide tables can be used for any given locale to find the predicted times and amplitude. The predictions are influenced by many factors including the alignment of the Sun and Moon, the phase and amplitude of the tide, the amphidromic systems of the oceans, and the shape of the coastline and near-shore bathymetry.\n\nMost coastal areas experience two high and two low tides each day. Some places have only one high and one low tide a day, and a few have irregular patterns."),
    ("de", "Schwarzwald", "Der Schwarzwald ist ein Mittelgebirge im Südwesten Baden-Württembergs. Er ist das höchste und flächengrößte zusammenhängende Mittelgebirge Deutschlands und erstreckt sich über etwa 160 Kilometer von Norden nach Süden.\n\nDie Landschaft wird von dichten Nadelwäldern, tief eingeschnittenen Tälern und zahlreichen Bächen geprägt. Der höchste Berg ist der Feldberg mit 1493 Metern. Seit dem 19. Jahrhundert ist die Region ein beliebtes Reiseziel; bekannt sind vor allem die Kuckucksuhren, der Schinken und die Kirschtorte, die den Namen des Gebirges trägt."),
    ("fr", "Camembert", "Le camembert est un fromage français à pâte molle et à croûte fleurie, fabriqué à partir de lait de vache. Il tire son nom du village de Camembert, dans l'Orne, en Normandie.\n\nSa fabrication repose sur le moulage du caillé à la louche, puis sur un affinage d'au moins trois semaines pendant lequel se développe la moisissure blanche qui recouvre la croûte. Le fromage est traditionnellement vendu dans une boîte ronde en bois de peuplier, une innovation de la fin du XIXe siècle qui permit de l'expédier dans toute la France par le chemin de fer."),
    ("es", "Río Amazonas", "El río Amazonas es un río de América del Sur que atraviesa Perú, Colombia y Brasil. Es el más caudaloso del mundo y, según la mayoría de las mediciones recientes, también uno de los más largos.\n\nSu cuenca, la mayor del planeta, abarca cerca de siete millones de kilómetros cuadrados y alberga la selva tropical más extensa de la Tierra. Durante la estación de lluvias el río puede desbordarse decenas de kilómetros, inundando los bosques cercanos y formando lagunas temporales que sirven de refugio a peces, delfines de río y aves acuáticas."),
]

ARXIV = [
    ("2104.01234", "1904", "\\section{Introduction}\nGraph neural networks have become a standard tool for learning on relational data. In this paper we study the expressive power of message passing architectures when node features are noisy. We show that a simple normalisation of the aggregation step, $h_v^{(t+1)} = \\sigma\\big(W \\sum_{u \\in N(v)} h_u^{(t)} / \\sqrt{d_u d_v}\\big)$, is enough to recover the optimal rate in the stochastic block model.\n\n\\section{Main result}\nLet $G$ be drawn from $\\mathrm{SBM}(n, p, q)$ with $p > q$. Then, with probability at least $1 - n^{-2}$, the estimator recovers the communities provided that $(p - q)^2 / (p + q) \\geq C \\log n / n$."),
    ("1710.04567", "1710", "\\section{Introduction}\nThe cosmic microwave background carries an imprint of the acoustic oscillations of the primordial plasma. We revisit the estimation of the damping tail with a likelihood that accounts for foreground residuals at small angular scales.\n\n\\section{Data}\nWe use the temperature power spectrum $C_\\ell$ for $500 < \\ell < 3000$ and model the residual foregrounds as a power law $A (\\ell / 3000)^{\\alpha}$. The posterior on the effective number of relativistic species is $N_{\\mathrm{eff}} = 3.05 \\pm 0.21$, consistent with the standard model."),
    ("2201.09876", "2201", "\\section{Introduction}\nWe consider the problem of scheduling jobs with release times on identical parallel machines to minimise the total weighted completion time. A polynomial-time approximation scheme is known for a fixed number of machines; here we give a simple greedy algorithm with ratio $1 + \\sqrt{2}/2$ for an arbitrary number of machines.\n\n\\section{The algorithm}\nJobs are sorted by the ratio $w_j / p_j$ and assigned to the machine that becomes idle first, with a delay rule that waits for a heavier job whenever its release time is within $\\alpha p_j$ of the current time."),
    ("1503.05555", "1503", "\\section{Introduction}\nThin films of layered materials show a thickness-dependent band gap. We report measurements of photoluminescence from exfoliated flakes of one to five layers and compare them with first-principles calculations.\n\n\\section{Results}\nThe monolayer shows a direct gap of $1.88\\,\\mathrm{eV}$, while thicker samples show an indirect transition whose energy decreases with the number of layers $N$ approximately as $E(N) = E_\\infty + \\Delta / N^2$. The fitted bulk limit $E_\\infty = 1.29\\,\\mathrm{eV}$ agrees with optical absorption data."),
]

# A third arxiv file and a second stackexchange file give each subset more text than its share
# of the sample budget (configs/sample.yaml: 2,000 replay tokens), so the sample run reaches it.
ARXIV_MORE = [
    ("2303.11111", "2303", "\\section{Introduction}\nSparse linear systems arising from the discretisation of elliptic equations are usually solved with preconditioned Krylov methods. We study a two-level additive Schwarz preconditioner whose coarse space is built from the low-frequency eigenvectors of local Neumann problems.\n\n\\section{Analysis}\nFor a decomposition into $N$ overlapping subdomains with overlap $\\delta$ and subdomain size $H$, we prove that the condition number of the preconditioned operator is bounded by $C (1 + H / \\delta)$, with $C$ independent of the coefficient jumps, provided that every eigenvector with eigenvalue below a threshold $\\tau$ enters the coarse space. Numerical experiments on a heterogeneous diffusion problem with contrasts up to $10^6$ confirm the bound: the iteration count of conjugate gradients stays below forty for every tested contrast."),
    ("1911.02222", "1911", "\\section{Introduction}\nThe spin of a black hole can be measured from the shape of the relativistically broadened iron line in its X-ray spectrum. We revisit the measurement for a sample of twelve active galactic nuclei observed with long exposures.\n\n\\section{Method}\nThe line profile is modelled as emission from a thin disc that extends down to the innermost stable circular orbit, whose radius $r_{\\mathrm{isco}}(a)$ decreases with the dimensionless spin $a$. Including a distant reflection component and a warm absorber, we find spins $a > 0.9$ for seven sources and only weak constraints for the others. The inferred spin distribution favours growth by prolonged, coherent accretion rather than by many randomly oriented episodes."),
    ("2008.03333", "2008", "\\section{Introduction}\nLarge language models are often evaluated on benchmarks whose test sets may have leaked into the pre-training data. We propose a simple contamination test based on the perplexity gap between a benchmark item and paraphrases of it generated by a separate model.\n\n\\section{Results}\nOn six reading-comprehension benchmarks, items with a gap above a threshold $\\gamma$ are far more likely to appear verbatim in a web crawl than items below it; removing them lowers reported accuracy by up to $4.2$ points. The test needs only black-box access to token probabilities and costs about as much as one evaluation pass."),
]

STACKEXCHANGE_MORE = [
    ("https://gardening.stackexchange.com/questions/3310", "gardening", "Q: Why are the lower leaves of my tomato plants turning yellow?\n\nThe plants are about a metre tall and still flowering, but the leaves near the ground are yellowing and some have brown spots with rings in them.\n\nA: Yellow lower leaves with brown, ringed spots are the classic sign of early blight, a fungal disease that starts on old foliage close to the soil. Remove the affected leaves and bin them rather than composting them, water at the base instead of over the leaves, and mulch so that rain does not splash soil onto the plant. Spacing the plants for airflow helps, and next year grow tomatoes in a different bed, because the spores survive in plant debris over winter."),
    ("https://physics.stackexchange.com/questions/8842", "physics", "Q: Why does a spinning top not fall over?\n\nA top that is not spinning falls immediately, but a spinning one stays up for a long time. Where does the extra stability come from?\n\nA: Gravity exerts a torque on the tilted top, and a torque changes angular momentum in the direction of the torque. For a top at rest that change is a fall. For a fast spinning top the angular momentum is large and points along its axis, and the torque, which is horizontal, only turns that axis sideways: the top precesses around the vertical instead of falling. Friction at the tip slowly removes spin, the precession speeds up and wobbles grow, and eventually the top does fall."),
]

STACKEXCHANGE = [
    ("https://cooking.stackexchange.com/questions/1021", "cooking", "Q: Why does my bread collapse in the oven?\n\nMy loaves rise nicely on the counter but sink as soon as they go into the oven. I use a standard white dough with 65% hydration and let it rise for about three hours at room temperature.\n\nA: Three hours is probably too long for a dough at room temperature; it is over-proofed. The gluten network has stretched as far as it can, and the extra heat of the oven makes the gas expand past that point, so the structure collapses. Try shaping after the first rise and baking when a floured finger leaves a dent that springs back slowly."),
    ("https://superuser.com/questions/48213", "superuser", "Q: How do I find which process is listening on a port?\n\nSomething on my machine is already using port 8080 and my development server refuses to start. How can I see what it is?\n\nA: On Linux, run `ss -ltnp 'sport = :8080'` as root; the last column names the process and its PID. On macOS use `lsof -nP -iTCP:8080 -sTCP:LISTEN`. On Windows, `netstat -ano | findstr :8080` gives the PID, which you can look up in Task Manager or with `tasklist /FI \"PID eq 1234\"`."),
    ("https://english.stackexchange.com/questions/7733", "english", "Q: Is it \"different from\" or \"different than\"?\n\nI was taught that \"different than\" is always wrong, but I see it in newspapers all the time.\n\nA: Both are standard. \"Different from\" is the more common choice in formal writing on both sides of the Atlantic, but \"different than\" has been used by respected writers for centuries and is especially natural in American English when a clause follows, as in \"the town is different than it was ten years ago.\" British English also has \"different to\"."),
    ("https://math.stackexchange.com/questions/20117", "math", "Q: Why is the sum of the first n odd numbers a perfect square?\n\nI noticed that 1 + 3 + 5 + 7 = 16 and wondered whether this always works.\n\nA: It does. The k-th odd number is 2k - 1, so the sum is 2(1 + 2 + ... + n) - n = n(n + 1) - n = n^2. There is also a picture proof: arrange the dots of each odd number as an L-shaped border around the previous square, and each border turns an (k - 1) by (k - 1) square into a k by k square."),
]


def wiki_records():
    for i, (lang, title, text) in enumerate(WIKIPEDIA):
        slug = title.replace(" ", "_")
        yield {"text": text, "meta": {"title": title, "url": f"https://{lang}.wikipedia.org/wiki/{slug}",
                                      "language": lang, "timestamp": "20230320"}}


def arxiv_records(items):
    for arxiv_id, yymm, text in items:
        meta = {"timestamp": f"20{yymm[:2]}-{yymm[2:]}-15T10:00:00", "yymm": yymm,
                "arxiv_id": arxiv_id, "language": "en", "url": f"https://arxiv.org/abs/{arxiv_id}"}
        yield {"text": text, "meta": json.dumps(meta)}


def arxiv_records_without_meta(items):
    """The first record without any metadata (meta_format "none"), as some exports have."""
    for i, record in enumerate(arxiv_records(items)):
        yield {"text": record["text"]} if i == 0 else record


def stackexchange_records(items):
    for url, site, text in items:
        yield {"text": text, "url": url, "timestamp": "2023-03-29", "source": "stackexchange",
               "language": "en", "question_score": "12", "site": site}


def encode(records) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def write(rel: str, records) -> str:
    data = encode(records)
    path = ROOT / "redpajama-data-1T/v1.0.0" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if rel.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    elif rel.endswith(".zst"):
        data = zstandard.ZstdCompressor(level=10).compress(data)
    path.write_bytes(data)
    return f"{BASE}/{rel}"


def main() -> None:
    files = {
        "arxiv": [write("arxiv/arxiv_0a3f2c1e-5b7d-4e8a-9c21-7d1e6b3a9f40.jsonl", arxiv_records(ARXIV[:2])),
                  write("arxiv/arxiv_7c9e4b2d-1f3a-4d6c-8e5b-2a4f9c7d1e63.jsonl.gz", arxiv_records(ARXIV[2:])),
                  write("arxiv/arxiv_e41b7a90-3c2d-4f58-a6e1-0b9d8c7f5a24.jsonl.zst",
                        arxiv_records_without_meta(ARXIV_MORE))],
        "stackexchange": [write("stackexchange/stackexchange.jsonl.gz", stackexchange_records(STACKEXCHANGE)),
                          write("stackexchange/stackexchange_0001.jsonl.gz",
                                stackexchange_records(STACKEXCHANGE_MORE))],
        "wikipedia": [write("wikipedia/wiki.jsonl", wiki_records())],
    }
    lists = ROOT / "redpajama-data-1T/v1.0.0/urls"
    lists.mkdir(parents=True, exist_ok=True)
    everything = []
    for subset, urls in files.items():
        (lists / f"{subset}.txt").write_text("".join(u + "\n" for u in urls))
        everything += urls
    (ROOT / "redpajama-data-1T/v1.0.0/urls.txt").write_text("".join(u + "\n" for u in everything))


if __name__ == "__main__":
    main()
