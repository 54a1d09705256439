"""One renderer for formulas and inline markup (MathML, TeX, `<sup>`/`<sub>`) → linear text.

Used by JATS body text, captions and tables and by MEDLINE abstracts, so a formula reads the
same wherever it appears. The convention (documented in docs/pubmed.md, "Full-text format"):

- superscript `a^b`, subscript `a_i`, both `a_i^2`; a script of more than one token is
  parenthesised: `x^(n+1)`, `x_(i,j)`; a signed number stays one token: `10^-5`;
- fraction `a/b`, parts of more than one token parenthesised: `(a + b)/2`;
- `sqrt(x)`, `root(n, x)`; an accent over a base becomes a combining mark (`V̇`);
- relations and binary operators are spaced (`E = m c^2`), a leading sign is not (`-5`);
  the minus sign U+2212 is written `-`; invisible operators (U+2061-U+2064) are dropped;
- `mspace` is a space and text (`mtext`) keeps its word boundaries;
- in prose, `<sup>` follows the same rule (`10^-5`, `CD4^+`) except ordinal suffixes, symbols
  and citation markers; `<sub>` starting with a digit is kept plain (chemistry: `H2O`,
  `VO2max`), any other is `_` (`C_max`).
"""

from __future__ import annotations

import re
from typing import Callable

Hook = Callable[[object, str], "str | None"]

INVISIBLE = dict.fromkeys(map(ord, "\u2061\u2062\u2063\u2064\u200b\u200c\u200d\ufeff"), None)
MINUS = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-"})
SPACED_OPS = frozenset("= + - < > ≤ ≥ ≦ ≧ ≪ ≫ × ± ∓ → ← ↔ ⇒ ⇔ ≈ ≠ ≃ ≅ ∼ ≡ ∝ ÷ ∈ ∉ ⊂ ⊆ ∪ ∩ ∧ ∨".split())
_ACCENTS = {"˙": "\u0307", ".": "\u0307", "¨": "\u0308", "¯": "\u0304", "‾": "\u0305",
            "^": "\u0302", "ˆ": "\u0302", "~": "\u0303", "˜": "\u0303", "→": "\u20d7",
            "⃗": "\u20d7", "´": "\u0301", "`": "\u0300", "ˇ": "\u030c"}
_LARGE_OPS = frozenset("∑ ∏ ∐ ∫ ∬ ∭ ∮ ⋃ ⋂ ⋁ ⋀ lim max min".split())
_TIGHT = re.compile(r" ?([=+\-<>≤≥×±]) ?")
_ATOM = re.compile(r"^(?:[-+]?[\w.,′'∞]+[-+]?|[-+*†‡∗′']|\(.*\)|\[.*\]|\{.*\})$")
_ORDINAL = re.compile(r"^(?:st|nd|rd|th|er|e|re|o|a)$", re.I)
_SYMBOL_SUP = re.compile(r"^[®™©*†‡§¶#∗]+$")
# Elements dropped from prose wherever they sit (images of formulas, footnote bodies, ids).
DROPPED = frozenset({"graphic", "inline-graphic", "media", "object-id", "fn", "alt-text",
                     "supplementary-material"})


def local(tag) -> str:
    """Local name of an element tag ('' for comments and processing instructions)."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].split(":")[-1]


def group(text: str) -> str:
    """`text` as one token: kept when it is one already, else in parentheses."""
    text = text.strip()
    if not text or _ATOM.match(text) and (text[0] not in "([{" or _balanced(text)):
        return text
    return f"({text})"


def _balanced(text: str) -> bool:
    depth = 0
    for i, c in enumerate(text):
        depth += (c in "([{") - (c in ")]}")
        if depth == 0 and i < len(text) - 1:
            return False
    return depth == 0


def _clean(text: str | None) -> str:
    return " ".join((text or "").translate(INVISIBLE).split())


def math_text(el) -> str:
    """A MathML element (`<math>` or any part of it) → one line of linear text."""
    return " ".join(_math(el).translate(MINUS).split())


def _math(el) -> str:
    tag = local(el.tag)
    kids = [k for k in el if local(k.tag)]
    if tag in ("annotation", "annotation-xml", "mphantom", "maligngroup", "malignmark", "mprescripts", "none"):
        return ""
    if tag == "semantics":
        return _math(kids[0]) if kids else ""
    if tag in ("mi", "mn", "ms"):
        return _clean("".join(el.itertext()))
    if tag == "mtext":
        text = _clean("".join(el.itertext()))
        return f" {text} " if sum(c.isalpha() for c in text) >= 2 else text
    if tag == "mspace":
        return " "
    if tag == "mglyph":
        return el.get("alt") or ""
    if tag == "mo":
        op = _clean("".join(el.itertext())).translate(MINUS)
        if op in (",", ";"):
            return op + " "
        if op in _LARGE_OPS:
            return f" {op} "
        return f"\x00{op}" if op in SPACED_OPS else op  # spaced in _row when infix
    parts = [_math(k) for k in kids]
    if tag in ("msup", "msub", "msubsup", "munder", "mover", "munderover") and len(parts) >= 2:
        return _scripts(tag, kids, parts)
    if tag == "mfrac" and len(parts) == 2:
        return f"{group(_row([parts[0]]))}/{group(_row([parts[1]]))}"
    if tag == "msqrt":
        return f"sqrt({_row(parts)})"
    if tag == "mroot" and len(parts) == 2:
        return f"root({_row([parts[1]])}, {_row([parts[0]])})"
    if tag == "mfenced":
        seps = el.get("separators", ",").strip() or ","
        return el.get("open", "(") + f"{seps[0]} ".join(_row([p]) for p in parts) + el.get("close", ")")
    if tag == "mtable":
        return "[" + "; ".join(p for p in (_row([p]) for p in parts) if p) + "]"
    if tag in ("mtr", "mlabeledtr"):
        cells = parts[1:] if tag == "mlabeledtr" else parts
        return ", ".join(c for c in (_row([c]) for c in cells) if c)
    if tag == "mmultiscripts" and parts:
        return parts[0] + "".join(f"^{group(_row([p]))}" for p in parts[1:] if p.strip())
    if not kids:
        return _clean(el.text)
    return parts[0] if len(parts) == 1 else _row(parts)


def _scripts(tag: str, kids, parts: list[str]) -> str:
    base = _row([parts[0]])
    if tag == "mover" and parts[1].strip() in _ACCENTS and base:
        return base + _ACCENTS[parts[1].strip()]
    sub = sup = ""
    if tag in ("msub", "munder"):
        sub = parts[1]
    elif tag in ("msup", "mover"):
        sup = parts[1]
    else:
        sub, sup = parts[1], parts[2] if len(parts) > 2 else ""
    large = base.strip() in _LARGE_OPS
    out = group(base) if base and not large and not _ATOM.match(base) and len(base) > 1 else base
    for mark, script in (("_", sub), ("^", sup)):
        script = _TIGHT.sub(r"\1", _row([script]))  # scripts written tight: x^(n+1)
        if script:
            out += mark + group(script)
    return f" {out} " if large else out


def _row(parts: list[str]) -> str:
    """Join rendered children: an operator marked by \\x00 is spaced when it has a left operand."""
    out: list[str] = []
    for part in parts:
        if part.startswith("\x00"):
            op = part[1:]
            left = "".join(out).rstrip()
            if left and not left.endswith(tuple(SPACED_OPS) + ("(", "[", "{", ",")):
                out.append(f" {op} ")
            else:
                out.append(op)
        else:
            out.append(part.replace("\x00", ""))
    return " ".join("".join(out).split())


def tex_text(text: str) -> str:
    """A TeX formula without the document wrapper PMC puts around it."""
    text = re.sub(r"\\documentclass.*?\\begin\{document\}|\\end\{document\}|\\usepackage\{[^}]*\}"
                  r"|\\setlength\{[^}]*\}\{[^}]*\}|\$", " ", text, flags=re.S)
    return " ".join(text.split())


def formula_text(el) -> str:
    """Text of a formula element (`inline-formula`, `disp-formula`, `alternatives`): MathML when
    given, else TeX, else its plain text (an image-only formula gives '')."""
    math = next((e for e in el.iter() if local(e.tag) == "math"), None)
    if math is not None:
        return math_text(math)
    tex = next((e for e in el.iter() if local(e.tag) == "tex-math"), None)
    if tex is not None:
        return tex_text("".join(tex.itertext()))
    return " ".join(t for k in el if local(k.tag) not in ("label", *DROPPED)
                    for t in render_inline(k).split())


def sup_text(inner: str, has_refs: bool = False) -> str:
    """A prose superscript's rendered content → its linear form (see the module docstring)."""
    inner = inner.strip()
    if not inner or has_refs or _ORDINAL.match(inner) or _SYMBOL_SUP.match(inner):
        return inner if not has_refs else f" {inner} "
    return "^" + group(inner.translate(MINUS))


def sub_text(inner: str) -> str:
    inner = inner.strip()
    if not inner or inner[0].isdigit():
        return inner
    return "_" + group(inner.translate(MINUS))


def render_inline(el, hook: Hook | None = None) -> str:
    """Inline text of `el`: math and scripts rendered, dropped elements leave a space where
    they would otherwise glue two words. `hook(child, tag)` may render a child itself (tokens,
    dropped blocks); it returns None to let this function do it."""
    out = [el.text or ""]
    for child in el:
        tag = local(child.tag)
        piece = hook(child, tag) if hook is not None and tag else None
        if piece is None:
            piece = _render_child(child, tag, hook)
        tail = child.tail or ""
        if not piece.strip():
            before = "".join(out[-2:])
            if before[-1:].isalnum() and tail[:1].isalnum():
                piece = " "  # "written<inline-graphic/>in which" → "written in which"
        out.append(piece)
        out.append(tail)
    return "".join(out)


def _render_child(child, tag: str, hook: Hook | None) -> str:
    if not tag or tag in DROPPED:
        return ""
    if tag == "math":
        return math_text(child)
    if tag in ("inline-formula", "disp-formula", "alternatives", "tex-math"):
        return formula_text(child)
    if tag in ("break", "br"):
        return " "
    inner = render_inline(child, hook)
    if tag == "sup":
        return sup_text(inner, has_refs="[" in inner and "_ref]" in inner
                        or any(local(k.tag) == "xref" for k in child.iter()))
    if tag == "sub":
        return sub_text(inner)
    return inner


_HTML_TAG = re.compile(r"<(/?)(p|br|div|span|i|b|u|em|strong|sup|sub|sc|small|big|font|a|li|ul|ol"
                       r"|h[1-6]|tt|strike|s|blockquote|mml:[\w-]+|math)\b[^<>]*?/?>", re.I)


def strip_escaped_html(text: str) -> str:
    """Text that carried escaped HTML (`&lt;p&gt;...`, so literal `<p>` after parsing): the tags
    removed, `<sup>`/`<sub>` rendered like the XML ones, blocks become spaces. Only known HTML tag
    names are touched, so "p<0.05" and "<5 years" stay."""
    if "<" not in text:
        return text

    def script(m: re.Match) -> str:
        render = sup_text if m.group(1).lower() == "sup" else sub_text
        return render(_HTML_TAG.sub("", m.group(2)))

    text = re.sub(r"<(sup|sub)\b[^<>]*>(.*?)</\1\s*>", script, text, flags=re.I | re.S)
    return _HTML_TAG.sub(lambda m: "" if m.group(2).lower() in ("i", "b", "u", "em", "strong", "sc",
                                                                "small", "big", "font", "a", "tt",
                                                                "span", "s", "strike")
                         else " ", text)
