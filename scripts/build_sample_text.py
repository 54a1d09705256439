"""Build the bundled sample text (src/gap_replay/sample/text/): the corpus the sample tokenizer is
trained on and the benchmarks and cleaning tests draw sentences from. (The sample run itself
acquires its documents from the bundled fixture sites through the real scrapers and clients.)

Abstracts and papers are real records: the MEDLINE and PMC/JATS files of
/work/shared/samples (see its README for origin and licence) reduced to Documents. Guidelines
and replay text are written here by hand in the style of those sources, including the things the
shared stages must handle: URLs, numeric citations, bullets, headers, non-English documents, an
exact duplicate, a too-short document and one malformed line. Deterministic: sorted inputs, no
clock. Run it again only when the sample should change; the output is committed.

    python scripts/build_sample_text.py --samples /work/shared/samples
"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

import orjson
from lxml import etree

OUT = Path(__file__).resolve().parent.parent / "src" / "gap_replay" / "sample" / "text"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _text(el) -> str:
    return re.sub(r"\s+", " ", "".join(el.itertext())).strip() if el is not None else ""


def medline_abstracts(samples: Path) -> list[dict]:
    docs = []
    seen = set()
    for path in sorted((samples / "medline").glob("*.xml*")):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        root = etree.fromstring(data, PARSER)
        for art in root.iter("PubmedArticle"):
            pmid = _text(art.find(".//MedlineCitation/PMID"))
            parts = []
            for ab in art.iterfind(".//Abstract/AbstractText"):
                label = ab.get("Label")
                body = _text(ab)
                parts.append(f"{label.capitalize()}: {body}" if label else body)
            if not pmid or not parts or pmid in seen:
                continue
            seen.add(pmid)
            title = _text(art.find(".//ArticleTitle"))
            docs.append({"id": f"pmid:{pmid}", "source": "abstracts", "subset": "pubmed", "title": title,
                         "text": f"{title}\n" + " ".join(parts), "url": f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
                         "meta": {"pmid": pmid, "journal": _text(art.find(".//Journal/Title"))}})
    return docs


def _jats_body(el) -> str:
    """Section titles as markdown headers, paragraphs as paragraphs, citations as [bib_ref]."""
    out = []

    def walk(node, depth):
        for child in node:
            tag = etree.QName(child).localname if isinstance(child.tag, str) else ""
            if tag == "sec":
                title = child.find("{*}title") if child.find("{*}title") is not None else child.find("title")
                if title is not None and _text(title):
                    out.append("#" * min(depth + 1, 6) + " " + _text(title))
                walk(child, depth + 1)
            elif tag == "p":
                for x in child.iter():
                    if isinstance(x.tag, str) and etree.QName(x).localname == "xref" and x.get("ref-type") == "bibr":
                        x.text = f"[bib_ref]{x.text or ''}"
                        x.tail = f"[/bib_ref]{x.tail or ''}"
                        for sub in list(x):
                            x.remove(sub)
                text = _text(child)
                if text:
                    out.append(text)
    walk(el, 1)
    return "\n\n".join(out)


def jats_papers(samples: Path) -> list[dict]:
    docs = []
    for path in sorted((samples / "pmc_jats").glob("*ml")):
        root = etree.fromstring(path.read_bytes(), PARSER)
        ids = {i.get("pub-id-type"): _text(i) for i in root.iter("{*}article-id", "article-id")}
        pmcid = ids.get("pmc") or ids.get("pmcid") or path.stem
        pmcid = pmcid if pmcid.startswith("PMC") else f"PMC{pmcid}" if pmcid.isdigit() else pmcid
        title = _text(next(root.iter("{*}article-title", "article-title"), None))
        abstract_el = next(root.iter("{*}abstract", "abstract"), None)
        paras = [_text(p) for p in abstract_el.iter("{*}p", "p")] if abstract_el is not None else []
        abstract = " ".join(p for p in paras if p) or _text(abstract_el)
        body = next(root.iter("{*}body", "body"), None)
        if body is None:
            continue
        text = f"# {title}\n\n## Abstract\n\n{abstract}\n\n" + _jats_body(body)
        docs.append({"id": pmcid, "source": "papers", "subset": "pmc", "title": title, "text": text,
                     "url": f"https://www.ncbi.nlm.nih.gov/pmc/articles/{pmcid}/",
                     "meta": {"pmcid": pmcid, "doi": ids.get("doi", "")}})
    return docs


def legacy_s2orc(samples: Path) -> list[dict]:
    path = samples / "s2orc" / "legacy_v2020_example_paper.json"
    obj = orjson.loads(path.read_bytes())
    sections, last = [], None
    for para in obj.get("body_text", []):
        if para.get("section") and para["section"] != last:
            sections.append(f"## {para['section']}")
            last = para["section"]
        sections.append(para["text"])
    title = obj["metadata"]["title"]
    abstract = " ".join(p["text"] for p in obj.get("abstract", []))
    return [{"id": f"s2:{obj['paper_id']}", "source": "papers", "subset": "s2orc", "title": title,
             "text": f"# {title}\n\n## Abstract\n\n{abstract}\n\n" + "\n\n".join(sections), "url": "",
             "meta": {"corpusid": obj["paper_id"]}}]


GUIDELINES = [
    ("who", "Hypertension in adults: pharmacological treatment", "https://www.who.int/publications/i/item/9789240033986", """
# Hypertension in adults: pharmacological treatment

## Summary of recommendations

WHO recommends a blood pressure threshold of ≥140/90 mmHg for starting pharmacological treatment in patients with a confirmed diagnosis of hypertension [1]. In patients with existing cardiovascular disease, treatment may be started at a systolic blood pressure of 130–139 mmHg [2, 3].

### Choice of first-line agents

For adults requiring treatment, WHO suggests one of the following classes of drug as initial treatment:

• thiazide and thiazide-like agents;
• angiotensin-converting enzyme inhibitors (ACEi) or angiotensin-receptor blockers (ARBs);
• long-acting dihydropyridine calcium channel blockers (CCBs).

Combination therapy, preferably as a single-pill combination, is suggested to improve adherence and persistence [4-6]. The full guideline and the evidence profiles are available at https://www.who.int/publications/i/item/9789240033986?lang=en#annex and www.who.int/hypertension.

### Targets

A target blood pressure below 140/90 mmHg is recommended for all patients without comorbidities. A systolic target below 130 mmHg is suggested in patients with known cardiovascular disease, diabetes or chronic kidney disease (effect estimate [95% CI 0.72-0.91]).

## Follow-up

Monthly follow-up after initiation or a change in medication is suggested until patients reach target; thereafter every 3–6 months. Often, team-based care and task sharing with non-physician health workers improve control.
"""),
    ("nice", "Type 2 diabetes in adults: management", "https://www.nice.org.uk/guidance/ng28", """
## Type 2 diabetes in adults: management

### 1.6 Blood glucose management

1.6.1 Involve adults with type 2 diabetes in decisions about their individual HbA1c target. Encourage them to reach the target and maintain it unless any resulting adverse effects (including hypoglycaemia), or their efforts to achieve the target, impair their quality of life.

1.6.2 Offer lifestyle advice and drug treatment to support adults with type 2 diabetes to reach and maintain their HbA1c target [12]. See the NICE guideline on [patient experience](https://www.nice.org.uk/guidance/cg138) for advice on shared decision making.

### 1.7 Drug treatment

* Offer standard-release metformin as the first-line drug treatment.
* Gradually increase the dose of standard-release metformin over several weeks to minimise the risk of gastrointestinal side effects.
* If an adult experiences gastrointestinal side effects with standard-release metformin, consider a trial of modified-release metformin.

In adults with type 2 diabetes and chronic heart failure or established atherosclerotic cardiovascular disease, offer an SGLT2 inhibitor with proven cardiovascular benefit in addition to metformin [7; 9].
"""),
    ("cdc", "Tuberculosis: latent infection treatment", "https://www.cdc.gov/tb/topic/treatment/ltbi.htm", """
Treatment Regimens for Latent TB Infection

Several treatment regimens are available for the treatment of latent TB infection. Health care providers should prescribe the more convenient shorter regimens when possible, because patients are more likely to complete them.

▪ 3HP: once-weekly isoniazid plus rifapentine for 3 months
▪ 4R: daily rifampin for 4 months
▪ 3HR: daily isoniazid plus rifampin for 3 months

Isoniazid uptake studies with [3H]isoniazid and intracellular calcium measurements ([Ca2+]i) are not required before treatment. Report adverse events to MedWatch at https://www.fda.gov/safety/medwatch.

Patients with HIV infection: drug interactions with antiretroviral therapy must be considered; rifapentine is not recommended with some protease inhibitors.

Obesity, older age and alcohol use increase the risk of hepatotoxicity; monitor liver enzymes at baseline in these groups.
"""),
    ("cps", "Management of bronchiolitis in infants and children", "https://cps.ca/en/documents/position/bronchiolitis", """
# Bronchiolitis: Recommendations for diagnosis, monitoring and management of children one to 24 months of age

## Diagnosis

Bronchiolitis is a clinical diagnosis based on history and physical examination. Routine chest radiography, blood work and viral testing are not recommended for children with typical bronchiolitis.

## Monitoring

Infants with bronchiolitis who are well enough to be discharged from the emergency department do not need oxygen saturation monitoring. Supplemental oxygen may be started if oxygen saturation falls persistently below 90% [1-3].

## Management

- Salbutamol should not be used in children with bronchiolitis.
- Epinephrine should not be used routinely.
- Corticosteroids are not recommended.
- Nasogastric hydration should be used when hydration cannot be maintained orally.

Children with risk factors for severe disease, including age under 3 months, prematurity and haemodynamically significant heart disease, should be observed closely.
"""),
    ("icrc", "First aid in armed conflicts: haemorrhage control", "https://shop.icrc.org/first-aid-in-armed-conflicts", """
Haemorrhage control in the field

Severe external bleeding can kill within minutes. Direct pressure on the wound is the first action; if bleeding from a limb cannot be controlled by direct pressure, apply a tourniquet 5 to 7 cm above the wound, never over a joint.

Record the time the tourniquet was applied on the casualty and hand this information over on evacuation. Do not loosen a tourniquet in the field.

For junctional wounds (neck, axilla, groin), pack the wound tightly with gauze and maintain firm pressure for at least 3 minutes.

Keep the casualty warm: hypothermia worsens coagulopathy. Evacuate to a surgical facility as soon as security conditions allow.
"""),
    ("magic", "Recommendations for the prevention of venous thromboembolism", "https://app.magicapp.org/#/guideline/1234", """
## Venous thromboembolism prophylaxis in hospitalised medical patients

For acutely ill medical patients at average risk of bleeding, we suggest using pharmacological prophylaxis with low-molecular-weight heparin rather than no prophylaxis (conditional recommendation, moderate certainty) [22].

For acutely ill medical patients at high risk of bleeding, we suggest mechanical prophylaxis with intermittent pneumatic compression rather than pharmacological prophylaxis [23-25].

Extended-duration prophylaxis after hospital discharge is not suggested for most patients, because the reduction in symptomatic venous thromboembolism is offset by an increase in major bleeding.

Rationale: low-molecular-weight heparin reduced pulmonary embolism (relative risk 0.59 [95% CI 0.45-0.78]) with no important increase in major bleeding.
"""),
    ("wikidoc", "Otitis media", "https://www.wikidoc.org/index.php/Otitis_media", """
## Overview

Otitis media is inflammation of the middle ear. It is one of the most common reasons children are prescribed antibiotics.

## Treatment

* Analgesia with paracetamol or ibuprofen is recommended for all children with acute otitis media.
* Amoxicillin 80–90 mg/kg/day is the first-line antibiotic when antibiotics are indicated.
* Watchful waiting is appropriate for children older than 2 years with non-severe illness.

## Complications

Complications include mastoiditis, hearing loss and, rarely, intracranial infection.
"""),
    ("cco", "Short", "https://www.cancercareontario.ca/en/guidelines", "Guideline withdrawn."),
]

REPLAY = [
    ("c4", "en", """The Great Barrier Reef is the world's largest coral reef system, composed of over 2,900 individual reefs and 900 islands stretching for over 2,300 kilometres over an area of approximately 344,400 square kilometres. The reef is located in the Coral Sea, off the coast of Queensland, Australia. It can be seen from outer space and is the world's biggest single structure made by living organisms. This reef structure is composed of and built by billions of tiny organisms, known as coral polyps. It supports a wide diversity of life and was selected as a World Heritage Site in 1981. A large part of the reef is protected by the Great Barrier Reef Marine Park, which helps to limit the impact of human use, such as fishing and tourism."""),
    ("wikipedia", "en", """A bicycle is a human-powered, pedal-driven, single-track vehicle, with two wheels attached to a frame, one behind the other. Bicycles were introduced in the 19th century in Europe. By the early 21st century there were more than one billion bicycles in the world. They are the principal means of transport in many regions. They also provide a popular form of recreation, and have been adapted for use as children's toys, general fitness, military and police applications, courier services and bicycle racing. The basic shape and configuration of a typical upright bicycle has changed little since the first chain-driven model was developed around 1885. However, many details have been improved, especially since the advent of modern materials and computer-aided design."""),
    ("book", "en", """It was late in the afternoon when the travellers reached the village at the foot of the mountain. The road had been long and dusty, and the horses were tired. An old woman sat at the door of the inn, shelling peas into a wooden bowl, and she looked up at them without surprise, as if she had been expecting them for a long time. There was bread and cheese on the table inside, and a fire in the grate although the evening was warm. They ate in silence, and when the meal was over the eldest of them asked the woman whether the pass was still open. She shook her head slowly and said that the snow had come early that year."""),
    ("arxiv", "en", """We study the problem of learning a sparse linear model from noisy observations when the design matrix has correlated columns. Classical results show that the lasso recovers the support of the true coefficient vector under an irrepresentability condition, but this condition fails in many practical settings. We propose a two-stage estimator that first screens variables using marginal correlations and then fits a weighted lasso in which the weights are derived from a preliminary ridge estimate. We prove that the estimator is consistent for support recovery under a weaker restricted eigenvalue condition and we give non-asymptotic error bounds. Experiments on synthetic data and on a gene expression data set show that the method selects fewer false positives than the lasso and the adaptive lasso at the same level of prediction error."""),
    ("stackexchange", "en", """Q: How do I undo the most recent local commits in Git? I accidentally committed the wrong files to Git, but I have not pushed the commit to the server yet. How can I undo those commits from the local repository? A: Use git reset with the soft option if you want to keep your changes staged, for example git reset --soft HEAD~1, which moves the branch pointer back by one commit while leaving the working tree and the index as they were. If you also want to unstage the files, use the mixed mode, which is the default. Only use the hard option if you want to discard the changes entirely, because it cannot be undone easily."""),
    ("github", "en", """# Contributing\n\nThank you for considering a contribution to this project. Please open an issue before you start work on a large change so that we can discuss the design. All code must be formatted with the project's formatter and must pass the test suite before it is merged. Write a short description of the change in the pull request and link the issue it fixes. We review pull requests on a best-effort basis and may ask for changes; please be patient with the maintainers, who work on this project in their spare time."""),
    ("c4", "fr", """La ville de Lyon est située au confluent du Rhône et de la Saône, dans le centre-est de la France. Elle est connue pour sa gastronomie, son patrimoine historique et architectural, ainsi que pour la fête des Lumières qui a lieu chaque année au mois de décembre. Le Vieux Lyon, avec ses traboules et ses maisons de la Renaissance, est inscrit au patrimoine mondial de l'UNESCO depuis 1998. La ville est aussi un centre important pour l'industrie pharmaceutique et les biotechnologies, et elle accueille de nombreuses universités et grandes écoles."""),
    ("wikipedia", "de", """Der Rhein ist ein Strom in Mitteleuropa. Er entspringt in den Schweizer Alpen und mündet in den Niederlanden in die Nordsee. Mit einer Länge von rund 1230 Kilometern ist er einer der längsten und wichtigsten Flüsse Europas. Der Rhein ist eine der meistbefahrenen Wasserstraßen der Welt und verbindet bedeutende Industriegebiete miteinander. An seinen Ufern liegen zahlreiche Burgen und Weinberge, die besonders im Mittelrheintal das Landschaftsbild prägen und jedes Jahr viele Touristen anziehen."""),
    ("c4", "es", """La dieta mediterránea se basa en el consumo abundante de frutas, verduras, legumbres, cereales integrales y aceite de oliva, con un consumo moderado de pescado y vino y un consumo bajo de carnes rojas. Numerosos estudios han mostrado que este patrón de alimentación se asocia con una menor incidencia de enfermedades cardiovasculares y con una mayor esperanza de vida. Además de los alimentos, la dieta mediterránea incluye costumbres como compartir las comidas en familia y realizar actividad física de forma regular."""),
    ("wikipedia", "it", """Il Colosseo, originariamente conosciuto come Anfiteatro Flavio, è il più grande anfiteatro del mondo, situato nel centro della città di Roma. In grado di contenere un numero di spettatori stimato tra 50.000 e 87.000, è stato usato per gli spettacoli dei gladiatori e altre manifestazioni pubbliche. La costruzione fu iniziata dall'imperatore Vespasiano nel 70 d.C. e fu completata da suo figlio Tito nell'80 d.C."""),
    ("c4", "en", """Regular physical activity is one of the most important things you can do for your health. Being physically active can improve your brain health, help manage weight, reduce the risk of disease, strengthen bones and muscles, and improve your ability to do everyday activities. Adults who sit less and do any amount of moderate-to-vigorous physical activity gain some health benefits. Only a few lifestyle choices have as large an impact on your health as physical activity. Everyone can experience the health benefits of physical activity, regardless of age, abilities, ethnicity, shape or size."""),
    ("wikipedia", "en", """The printing press is a mechanical device for applying pressure to an inked surface resting upon a print medium, such as paper or cloth, thereby transferring the ink. It marked a dramatic improvement on earlier printing methods in which the cloth, paper or other medium was brushed or rubbed repeatedly to achieve the transfer of ink, and accelerated the process. Typically used for texts, the invention and global spread of the printing press was one of the most influential events in the second millennium. Johannes Gutenberg, a goldsmith in Mainz, developed a movable-type printing press around 1440."""),
]


def guideline_docs() -> list[dict]:
    from hashlib import sha1

    return [{"id": sha1(f"{tag}\x1f{url}".encode()).hexdigest(), "source": "guidelines", "subset": tag,
             "title": title, "text": text.strip("\n"), "url": url,
             "meta": {"raw_text": text.strip("\n"), "redistributable": tag in {"who", "cdc", "icrc", "wikidoc", "magic"}}}
            for tag, title, url, text in GUIDELINES]


def replay_docs() -> list[dict]:
    from hashlib import sha1

    docs = [{"id": "rp-" + sha1(text.encode()).hexdigest()[:16], "source": "replay", "subset": subset,
             "title": "", "text": text, "url": "", "meta": {"expected_language": lang}}
            for subset, lang, text in REPLAY]
    # an exact duplicate of the first document under another id (re-crawled page)
    dup = dict(docs[0], id="rp-duplicate-of-first", meta={"expected_language": "en"})
    docs.append(dup)
    return docs


FRENCH_ABSTRACT = {
    "id": "pmid:90000001", "source": "abstracts", "subset": "pubmed",
    "title": "Prise en charge de l'hypertension artérielle chez le sujet âgé",
    "text": ("Prise en charge de l'hypertension artérielle chez le sujet âgé\n"
             "Objectif : évaluer la pression artérielle et le traitement antihypertenseur chez les patients "
             "de plus de 80 ans suivis en médecine générale. Méthodes : étude transversale menée dans 42 cabinets "
             "de médecine générale entre 2019 et 2021. Résultats : parmi les 1 214 patients inclus, 61 % avaient "
             "une pression artérielle contrôlée ; les patients les plus fragiles recevaient moins de "
             "médicaments. Conclusion : le traitement doit être adapté à la fragilité plutôt qu'à l'âge seul."),
    "url": "", "meta": {"pmid": "90000001", "language_note": "French abstract: the language filter drops it"},
}


def write(path: Path, docs: list[dict], malformed_after: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in docs]
    if malformed_after is not None:
        lines.insert(malformed_after, b'{"id": "broken", "source": "abstracts", "text": "truncated record')
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(b"\n".join(lines) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=Path, default=Path("/work/shared/samples"))
    args = ap.parse_args()
    abstracts = medline_abstracts(args.samples)
    half = len(abstracts) // 2
    write(OUT / "abstracts" / "part-00000.jsonl.gz", abstracts[:half], malformed_after=3)
    # the second shard repeats the first abstract (same PMID, fetched again by an update file)
    write(OUT / "abstracts" / "part-00001.jsonl.gz", abstracts[half:] + abstracts[:1] + [FRENCH_ABSTRACT])
    write(OUT / "papers" / "part-00000.jsonl.gz", jats_papers(args.samples) + legacy_s2orc(args.samples))
    guides = guideline_docs()
    for tag in sorted({d["subset"] for d in guides}):
        write(OUT / "guidelines" / tag / "part-00000.jsonl.gz", [d for d in guides if d["subset"] == tag])
    write(OUT / "replay" / "part-00000.jsonl.gz", replay_docs())
    for p in sorted(OUT.rglob("*.jsonl.gz")):
        print(p.relative_to(OUT), sum(1 for _ in gzip.open(p)))


if __name__ == "__main__":
    main()
