"""A scan rule compiled for speed over bytes, with the same answer as its regex on each line's text.

    rule = Rule("approval_failed", re.compile("Application approval failed"))
    rule.counter   # a bytes regex counting matching lines in a run of whole lines, or None
    rule.finder    # a bytes regex finding a literal every match contains, or None

A rule's regex is written for a line's text (str): searched line by line in
Python it costs about a microsecond per line and rule. Most rules can be run
over a whole chunk of bytes by the regex engine instead:

- counter: the regex gives the same answer on bytes as on the decoded line
  when it is built from ASCII literals, positive ASCII classes, groups,
  alternations, repeats, look-arounds, ^ and $ (a "." only as ".*" or ".+":
  one character of text may be several bytes). Followed by "[^\\n]*" it
  counts each matching line once, and it never crosses a line. A rule
  anchored with ^ is searched as "\\n^..." so the engine jumps from newline
  to newline; one that starts with a literal jumps from literal to literal.
- finder: otherwise, a literal the regex cannot match without (found with
  the regex parser) picks the candidate lines, and only those are decoded
  and searched with the regex itself.
- neither (no literal, case-insensitive, ...): every line is decoded and
  searched, as before.
"""

import re

try:  # Python 3.11+
    from re import _constants as sre
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as sre
    import sre_parse

# Characters str.splitlines() breaks on besides "\n": a literal holding one
# would be split across lines in the text.
LINE_BREAKS = set("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\n")


def _is_safe_literal(code):
    return code < 128 and chr(code) not in LINE_BREAKS


def _safe_class(items):
    """A positive class of ASCII characters and ranges (same in bytes and text)."""
    for op, av in items:
        if op is sre.LITERAL and _is_safe_literal(av):
            continue
        if op is sre.RANGE and av[1] < 128 and not any(chr(c) in LINE_BREAKS for c in range(av[0], av[1] + 1)):
            continue
        return False
    return True


def _bytes_safe(seq):
    """Whether the parsed regex matches the same lines when run over bytes (see the module's text)."""
    for op, av in seq:
        if op is sre.LITERAL:
            if not _is_safe_literal(av):
                return False
        elif op is sre.IN:
            if not _safe_class(av):
                return False
        elif op is sre.AT:
            if av not in (sre.AT_BEGINNING, sre.AT_END):
                return False
        elif op is sre.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags or not _bytes_safe(sub):
                return False
        elif op is sre.BRANCH:
            if not all(_bytes_safe(branch) for branch in av[1]):
                return False
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, sub = av
            if list(sub) == [(sre.ANY, None)]:
                # ".*" and ".+": any run of non-newline characters is any run of non-newline bytes.
                if high != sre.MAXREPEAT or low > 1:
                    return False
            elif not _bytes_safe(sub):
                return False
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            if not _bytes_safe(av[1]):
                return False
        elif op is sre.ATOMIC_GROUP:
            if not _bytes_safe(av):
                return False
        else:  # ANY alone, NOT_LITERAL, categories (\\d \\w \\s \\b are Unicode in text), backrefs, ...
            return False
    return True


def _starts_with_literal(seq):
    """The engine's own fast literal search applies: the regex begins with a literal character."""
    for op, av in seq:
        if op is sre.LITERAL:
            return True
        if op is sre.SUBPATTERN:
            return _starts_with_literal(av[3])
        return False
    return False


def _anchored(seq):
    """Begins with ^ followed by something the engine checks at once (not a repeat or a look-around)."""
    items = list(seq)
    if len(items) < 2 or items[0] != (sre.AT, sre.AT_BEGINNING):
        return False
    return items[1][0] in (sre.LITERAL, sre.SUBPATTERN, sre.BRANCH, sre.IN)


def _required_literals(seq):
    """Alternatives, one of which every match contains (a list of str), or None; the longest found."""
    best = None
    run = []

    def consider(found):
        nonlocal best
        if found and all(found) and (best is None or min(map(len, found)) > min(map(len, best))):
            best = found

    for op, av in seq:
        if op is sre.LITERAL:
            run.append(chr(av))
            continue
        consider(["".join(run)] if run else None)
        run = []
        if op is sre.SUBPATTERN:
            consider(_required_literals(av[3]) if not (av[1] or av[2]) else None)
        elif op is sre.BRANCH:
            branches = [_required_literals(branch) for branch in av[1]]
            if all(branches):
                consider([literal for found in branches for literal in found])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            consider(_required_literals(av[2]))
        elif op is sre.ATOMIC_GROUP:
            consider(_required_literals(av))
    consider(["".join(run)] if run else None)
    if best and any(LINE_BREAKS & set(literal) for literal in best):
        return None
    return best


class Rule:
    """One named regex, with what lets a scan skip the lines it cannot match."""

    __slots__ = ("name", "regex", "counter", "finder")

    def __init__(self, name, regex):
        self.name = name
        self.regex = regex
        self.counter = self.finder = None
        if regex.flags & (re.IGNORECASE | re.DOTALL | re.VERBOSE | re.ASCII | re.LOCALE):
            # Case folding and "." over newlines differ between bytes and text; left to the regex.
            # (The pattern's text is reparsed below; VERBOSE would need its flag again.)
            return
        try:
            parsed = sre_parse.parse(regex.pattern)
        except (re.error, TypeError):
            return
        if parsed.state.flags & (re.IGNORECASE | re.DOTALL | re.VERBOSE | re.ASCII | re.LOCALE):
            return
        seq = list(parsed)
        fast = _starts_with_literal(seq) or _anchored(seq)
        if fast and _bytes_safe(seq) and regex.pattern.isascii():
            try:
                prefix = b"\n" if _anchored(seq) else b""
                self.counter = re.compile(prefix + b"(?:" + regex.pattern.encode() + b")[^\n]*", re.MULTILINE)
            except re.error:  # an escape text accepts and bytes refuse (\\u, \\N{...})
                self.counter = None
            if self.counter is not None:
                return
        literals = _required_literals(seq)
        if literals:
            alternatives = sorted({literal.encode() for literal in literals}, key=len, reverse=True)
            self.finder = re.compile(b"|".join(re.escape(literal) for literal in alternatives))

    def count(self, data, start, end):
        """Lines matching in data[start:end], which is "\\n" followed by whole lines (counter rules only)."""
        return len(self.counter.findall(data, start, end))


def compile_rules(items):
    """{name: Rule} for a list of {name, regex} items."""
    return {item["name"]: Rule(item["name"], re.compile(item["regex"])) for item in items}
