"""The text patterns redaction uses, built to run in linear time on attacker-controlled strings.

Every quantifier in these patterns is bounded (an e-mail local part has at most 64 characters,
a DNS label 63, a path segment 255), and no bounded group repeats a part that could match the
same text two ways, so a 200,000-character user agent costs a bounded amount of work per
character, never a backtracking search (tests/test_redaction.py checks both properties).
Word lists (names, local parts, organisation names) compile to one trie-shaped alternation
per list, so matching cost grows with the text, not with the number of people in a tenant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: An e-mail address or UPN, also URL-encoded (``%40``, ``%2540``): local part, separator, domain.
EMAIL = re.compile(r"[A-Za-z0-9._%+'!#$&*/=?^`{|}~-]{1,64}(@|%(?:25)?40)((?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,63})")
#: An InternetMessageId: ``<local@domain>`` (the angle brackets are part of the id).
MESSAGE_ID = re.compile(r"<([^<>@\s]{1,128})@((?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,63})>")
#: An IPv4 address; not a version number after a product name (``Chrome/106.0.0.0``) nor part of a longer dotted run.
IPV4 = re.compile(r"(?<!\d)(?<!\d\.)(?<![A-Za-z]/)(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
#: Candidate IPv6 addresses (checked with :mod:`ipaddress` before anything is replaced).
IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
#: A GUID (the tenant id is one).
GUID = re.compile(r"(?<![0-9A-Fa-f-])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
                  r"(?![0-9A-Fa-f-])")
_SEGMENT = r"[^\s/\\'\"<>|,;:=()\[\]]{1,255}"
#: An absolute local path: POSIX (``/home/x/...``, ``~/...``), Windows drive (``C:\\...``) or UNC (``\\\\host\\...``).
PATH = re.compile(
    r"(?<![\w.:/~\\-])~?/(?:" + _SEGMENT + r"/){1,32}" + _SEGMENT.replace("{1,255}", "{0,255}")
    + r"|(?<![\w])[A-Za-z]:\\(?:[^\\/:*?\"<>|\r\n]{1,255}\\){0,32}[^\\/:*?\"<>|\s]{0,255}"
    + r"|(?<![\w\\])\\\\[A-Za-z0-9.-]{1,253}\\(?:[^\\/:*?\"<>|\r\n]{1,255}\\){0,32}[^\\/:*?\"<>|\s]{0,255}")

# Characters a name may be written with in several ways: each maps to a class matching every way.
_APOSTROPHES = "['\u2019\u2018\u02bc`\u00b4]"
_HYPHENS = "[-\u2010\u2011\u2013]"
_VARIANTS = {
    **dict.fromkeys("'\u2019\u2018\u02bc`\u00b4", _APOSTROPHES + "?"), **dict.fromkeys("-\u2010\u2011\u2013", _HYPHENS),
    " ": r"[\s\u00a0_.+]{1,3}", ".": r"[.\s]{1,2}",
}
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")

#: Common words that are also first or last names: never redacted alone (only as part of a full name).
COMMON_WORDS = frozenset("""
may june april august will mark bill rich page grant hope joy faith art rose jean case read long young white
black brown green gray grey king hill wood stone field mail rule scope chase frank guy summer winter dawn ray drew
pat sue max jack ted don sky river lane park ford hall bell cook baker miller hunter mason carter cooper
price law love rich gold star early west north south east new old one two day days week time mon tue wed thu fri
sat sun jan feb mar apr jun jul aug sep sept oct nov dec admin administrator user users service support info
test team office sales finance security global remote the and for from with this that not all any other
analytics group data system systems online cloud mobile home help desk report reports inbox sent items
""".split())


def normal_name(value: str) -> str:
    """A name as its pseudonym is derived: lower case, apostrophes dropped, hyphens and spaces unified."""
    value = re.sub(_APOSTROPHES, "", value.lower())
    return " ".join(re.sub(_HYPHENS, "-", value).replace(".", " ").replace("_", " ").split())


def _token(ch: str) -> str:
    return _VARIANTS.get(ch, re.escape(ch))


def _trie_pattern(words: Iterable[str]) -> str:
    """One alternation for ``words`` (lower case) shaped as a trie: shared prefixes are matched once."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(_token(ch), {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        ends = "" in node
        branches = [k + build(v) for k, v in sorted(node.items()) if k]
        if not branches:
            return ""
        if ends:
            return "(?:" + "|".join(branches) + ")?"
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return build(trie)


def word_pattern(words: Iterable[str], before: str = r"(?<!\w)", after: str = r"(?!\w)") -> re.Pattern[str] | None:
    """A case-insensitive pattern matching any of ``words`` (longest first), or None when there are none.

    Words written in a script without spaces between words (Chinese, Japanese, Korean) match
    anywhere; the others only as whole words (``before`` / ``after``). Apostrophes, hyphens and
    spaces match each of the ways they are written (O'Brien, O’Brien; Anne-Marie, Anne–Marie).
    """
    spaced = sorted({w.lower() for w in words if w and not _CJK.search(w)})
    unspaced = sorted({w.lower() for w in words if w and _CJK.search(w)})
    parts = []
    if spaced:
        parts.append(before + "(?:" + _trie_pattern(spaced) + ")" + after)
    if unspaced:
        parts.append("(?:" + _trie_pattern(unspaced) + ")")
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def name_variants(name: str, given: str = "", surname: str = "") -> set[str]:
    """Every way a person's name is written that redaction must catch.

    The full name, "Last, First", "First Last" from the directory's given name and surname, and
    each part alone (first or last name) unless it is a common word (:data:`COMMON_WORDS`) or
    shorter than three characters (two in a script without spaces, e.g. a CJK surname + name).
    """
    name = " ".join(name.split())
    found = {name} if len(name) >= 2 else set()
    parts = [p.strip(",") for p in name.split(" ") if p.strip(",")]
    if len(parts) >= 2:
        found.add(f"{parts[-1]}, {' '.join(parts[:-1])}")
    given, surname = " ".join(given.split()), " ".join(surname.split())
    if given and surname:
        found |= {f"{given} {surname}", f"{surname}, {given}", f"{surname} {given}"}
    for part in (*parts, *given.split(" "), *surname.split(" ")):
        if is_specific(part):
            found.add(part)
    return found


def is_specific(word: str) -> bool:
    """True when ``word`` alone is specific enough to redact wherever it appears as a word."""
    word = word.strip(" ,.")
    if word.lower() in COMMON_WORDS or not any(c.isalpha() for c in word):
        return False
    return len(word) >= (2 if _CJK.search(word) else 3)
