"""The default, offline knowledge-graph extractor: lexicon matching plus NegEx-style context.

Steps, per sentence (split at . ! ? ; and line breaks):

1. **Tokens and matches.** Lower-cased word tokens (commas kept as tokens) are matched greedily,
   longest phrase first, against the concept lexicon (finding / anatomy / device / modifier) and
   the trigger lexicon (negation, uncertainty, pseudo-negation, "suggestive of", scope
   terminators), all in :mod:`neural_builders.kg.lexicon`.
2. **Anatomy phrases.** Location words directly before an anatomy term join it:
   "right" + "lower" + "lobe" -> one anatomy entity "right lower lobe".
3. **Clauses.** A sentence is cut at scope terminators ("but", "however", "which", ...) and at a
   comma or "and" whose following words hold a verb ("..., the heart is normal"); a comma
   followed by "or"/"and"/"nor" continues a list ("no A, B, or C is seen"). A parenthesis is an
   aside with its own clause; the clause it interrupts continues after it.
4. **Assertion** of each finding, device and modifier: the nearest context trigger in its
   clause decides - a negation before it ("no", "without", "no evidence of") or after it
   ("is not seen", "has resolved") makes it *absent*; an uncertainty trigger ("possible",
   "cannot exclude", "suggestive of") makes it *uncertain*; otherwise *present*. Anatomy is
   always *present* ("no effusion in the right lung" still has a right lung). A finding that a
   limited examination could not assess ("evaluation for pneumothorax is limited") is dropped:
   the sentence asserts nothing about it.
5. **Relations.** ``located_at``: a finding or device -> the nearest anatomy in its clause
   without crossing a "suggestive of" trigger. ``modifies``: a modifier -> the finding, anatomy
   or device it precedes within three tokens, else the nearest one before it in the clause.
   ``suggestive_of``: the nearest finding before a "suggestive of / consistent with /
   concerning for" trigger -> the first finding after it in the same sentence.
6. **Merging.** Mentions with the same (text, type, assertion) become one entity (configurable).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from . import lexicon
from .graph import Entity, KnowledgeGraph, Relation

_SENTENCE = re.compile(r"(?:[^.!?;\n]|[.!?;](?=[^\s.!?;]))+")
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[,()]")
_LIST_CONTINUATION = {"or", "and", "nor"}
MODIFIER_REACH = 3  # tokens between a pre-nominal modifier and its head
# a modifier right after these words describes what came before it ("lungs are clear")
_PREDICATIVE_BEFORE = {"is", "are", "was", "were", "be", "been", "appears", "appear", "appeared", "remains",
                       "remain", "remained", "within", "mildly", "slightly", "otherwise", "grossly"}


def _build_table() -> tuple[dict, int]:
    table: dict[tuple[str, ...], dict] = {}

    def add(block, key, value):
        for phrase in lexicon.phrases(block):
            entry = table.setdefault(phrase, {"type": None, "roles": set()})
            if key == "type":
                entry["type"] = entry["type"] or value
            else:
                entry["roles"].add(value)

    for block, etype in ((lexicon.FINDINGS, "finding"), (lexicon.ANATOMY, "anatomy"),
                         (lexicon.DEVICES, "device"), (lexicon.MODIFIERS, "modifier")):
        add(block, "type", etype)
    for block, role in ((lexicon.NEGATION_PRE, "neg_pre"), (lexicon.NEGATION_POST, "neg_post"),
                        (lexicon.UNCERTAIN_PRE, "unc_pre"), (lexicon.UNCERTAIN_POST, "unc_post"),
                        (lexicon.PSEUDO, "pseudo"), (lexicon.SUGGESTIVE, "suggest"), (lexicon.ALTERNATIVE, "alt"),
                        (lexicon.TERMINATION, "term")):
        add(block, "role", role)
    return table, max(len(p) for p in table)


_TABLE, _MAX_LEN = _build_table()


@dataclass
class _Match:
    start: int          # token index, inclusive
    stop: int           # token index, exclusive
    text: str
    type: Optional[str]  # concept type, None for a pure trigger
    roles: set = field(default_factory=set)
    char_start: int = 0
    char_end: int = 0
    clause: int = 0
    assertion: str = "present"


def _match_sentence(tokens: list[tuple[str, int, int]]) -> list[_Match]:
    words = [t[0] for t in tokens]
    matches, i = [], 0
    while i < len(words):
        for length in range(min(_MAX_LEN, len(words) - i), 0, -1):
            entry = _TABLE.get(tuple(words[i:i + length]))
            if entry is not None:
                # a pseudo-negation consumes its words and triggers nothing
                roles = set() if "pseudo" in entry["roles"] else set(entry["roles"])
                matches.append(_Match(i, i + length, " ".join(words[i:i + length]), entry["type"], roles,
                                      tokens[i][1], tokens[i + length - 1][2]))
                i += length
                break
        else:
            i += 1
    return _merge_locations(matches, words)


def _merge_locations(matches: list[_Match], words: list[str]) -> list[_Match]:
    out: list[_Match] = []
    for m in matches:
        if m.type == "anatomy":
            while (out and out[-1].type == "modifier" and out[-1].text in lexicon.LOCATION_WORDS
                   and out[-1].stop == m.start):
                prev = out.pop()
                m = _Match(prev.start, m.stop, " ".join(words[prev.start:m.stop]), "anatomy", set(),
                           prev.char_start, m.char_end)
        out.append(m)
    return out


def _noun_phrase_head(i: int, words: list[str], starts: dict) -> Optional[_Match]:
    """The first non-modifier concept after token ``i`` when only modifiers and plain words
    (no verb, comma, conjunction or trigger) lead to it: the head of the noun phrase there."""
    j = i + 1
    while j < len(words):
        m = starts.get(j)
        if m is not None:
            if m.type == "modifier" and not m.roles:
                j = m.stop
                continue
            return m if m.type is not None and not m.roles else None
        if words[j] in lexicon.CLAUSE_VERBS or words[j] in _LIST_CONTINUATION or words[j] in (",", "(", ")", "there"):
            return None
        j += 1
    return None


def _clause_breaks(words: list[str], matches: list[_Match]) -> list[int]:
    """Token indices at which a new clause starts."""
    breaks = {m.start for m in matches if "term" in m.roles}
    starts = {m.start: m for m in matches}
    separators = [i for i, w in enumerate(words) if w in (",", "and")]
    for k, i in enumerate(separators):
        end = separators[k + 1] if k + 1 < len(separators) else len(words)
        following = words[i + 1:end]
        if words[i] == "," and following and following[0] in _LIST_CONTINUATION:
            continue
        # "no A, B or C is identified": a finding after a finding continues the list
        before = [m for m in matches if m.type is not None and m.stop <= i]
        if before and before[-1].type in ("finding", "device"):
            first = starts.get(i + 1)
            if first is not None and first.type in ("finding", "device"):
                continue
            head = _noun_phrase_head(i, words, starts)
            if head is not None and head.type in ("finding", "device"):
                # "A and mild B are seen": "and" joins two noun phrases, not two clauses;
                # "no A, large B or C is seen": a comma whose conjunct runs on to a coordinator
                # before any verb is a list comma ("no A, mild B is present" is two clauses)
                if words[i] == "and":
                    continue
                tail = following[:next((n for n, w in enumerate(following) if w in lexicon.CLAUSE_VERBS),
                                       len(following))]
                if any(w in _LIST_CONTINUATION for w in tail):
                    continue
        if any(w in lexicon.CLAUSE_VERBS for w in following):
            breaks.add(i)
    return sorted(breaks)


def _clause_ids(words: list[str], breaks: list[int]) -> list[int]:
    """The clause of every token. A parenthesis is an aside with its own clause, and the clause it
    interrupts goes on after it: in "no A identified (B may represent C)" the "no" does not reach
    C, and in "pneumonia seen on CT (not seen on the prior film) is not seen either" the
    pneumonia and its "is not seen" stay in one clause. An unclosed "(" runs to the sentence end."""
    ids, stack, current, fresh = [], [], 0, 0
    breaks_at = set(breaks)
    for i, w in enumerate(words):
        if w == "(":
            stack.append(current)
            fresh += 1
            current = fresh
        elif i in breaks_at and i > 0:
            fresh += 1
            current = fresh
        ids.append(current)
        if w == ")":
            fresh += 1
            current = stack.pop() if stack else fresh
    return ids


_NOUN_PHRASE_GLUE = {"a", "an", "the", "any", "xxxx", ",", "or", "and", "nor"}


def _exam_limited(m: _Match, words: list[str], clause_of: list[int], concept_tokens: set) -> bool:
    """True when ``m`` is what a limited examination could not assess: "evaluation for
    pneumothorax is limited", "limits evaluation for an effusion", "limited assessment of the
    pleural fluid". Such a sentence says nothing about the patient's finding (ConText's
    hypothetical class), so the finding is not asserted at all. The finding must be the object
    of the evaluation: only concepts, articles and list words may stand between "for"/"of" and
    it ("limited evaluation of the bases due to overlying soft tissue and atelectasis" still
    states the atelectasis)."""
    clause = [i for i in range(len(words)) if clause_of[i] == clause_of[m.start]]
    if not any(words[i] in lexicon.LIMITATION for i in clause):
        return False
    for i in reversed([i for i in clause if i < m.start]):
        if words[i] in ("for", "of") and i > 0 and words[i - 1] in lexicon.EVALUATION:
            return True
        if i not in concept_tokens and words[i] not in _NOUN_PHRASE_GLUE:
            return False
    return False


def _assert(matches: list[_Match]) -> None:
    triggers = [m for m in matches if m.roles & {"neg_pre", "neg_post", "unc_pre", "unc_post"}]
    for m in matches:
        if m.type in (None, "anatomy"):
            continue
        best, best_distance = None, None
        for t in triggers:
            if t.clause != m.clause:
                continue
            if t.stop <= m.start and t.roles & {"neg_pre", "unc_pre"}:
                distance, pre = m.start - t.stop, True
            elif t.start >= m.stop and t.roles & {"neg_post", "unc_post"}:
                distance, pre = t.start - m.stop, False
            else:
                continue
            if best_distance is None or distance < best_distance:
                best, best_distance = (t, pre), distance
        if best is None:
            continue
        t, pre = best
        negated = "neg_pre" in t.roles if pre else "neg_post" in t.roles
        if pre and not negated and "suggest" in t.roles:
            # "no focal opacity to suggest pneumonia": what a negated finding would suggest is
            # absent too; "blunting ... may represent small effusions" stays uncertain, even after
            # an earlier "no" in the clause (the finding doing the suggesting decides)
            heads = [c for c in matches if c.type in ("finding", "device") and c.clause == m.clause
                     and c.stop <= t.start]
            negated = bool(heads) and heads[-1].assertion == "absent"
        m.assertion = "absent" if negated else "uncertain"
    # "atelectasis versus pneumonia": the alternative before "versus" is as uncertain as the one after
    for t in (t for t in matches if "alt" in t.roles):
        before = [c for c in matches if c.type in ("finding", "device") and c.clause == t.clause and c.stop <= t.start]
        if before and before[-1].assertion == "present" and not any(
                x.roles and x is not t and before[-1].stop <= x.start < t.start for x in matches):
            before[-1].assertion = "uncertain"


def _relations(matches: list[_Match], words: list[str], emit) -> None:
    concepts = [m for m in matches if m.type is not None]
    suggest = [m for m in matches if "suggest" in m.roles]

    triggers = [m for m in matches if m.roles]

    def separated(a: _Match, b: _Match) -> bool:
        """A trigger (negation, uncertainty, "suggestive of", terminator) lies between a and b."""
        lo, hi = min(a.stop, b.stop), max(a.start, b.start)
        return any(lo <= t.start < hi for t in triggers)

    def plain_gap(a: _Match, b: _Match) -> bool:
        """Only modifier words or unmatched non-verb words between a and b (no comma)."""
        covered = {i for c in concepts if c.type == "modifier" for i in range(c.start, c.stop)}
        return all(i in covered or (words[i] not in (",", "(", ")") and words[i] not in lexicon.CLAUSE_VERBS
                                    and not any(t.start <= i < t.stop for t in triggers))
                   for i in range(a.stop, b.start))

    for m in concepts:
        same_clause = [c for c in concepts if c is not m and c.clause == m.clause]
        if m.type in ("finding", "device"):
            anatomy = [c for c in same_clause if c.type == "anatomy" and not separated(m, c)]
            if anatomy:
                # nearest; at equal distance prefer the one after ("opacity in the right base")
                target = min(anatomy, key=lambda c: (abs(c.start - m.start), c.start < m.start))
                emit(m, target, "located_at")
                # coordinated places: "in the right middle zone and the right upper zone"
                following = sorted((c for c in anatomy if c.start >= target.stop), key=lambda c: c.start)
                previous = target
                for nxt in following:
                    if not all(w in _LIST_CONTINUATION or w in (",", "the") for w in words[previous.stop:nxt.start]):
                        break
                    emit(m, nxt, "located_at")
                    previous = nxt
        elif m.type == "modifier":
            heads = [c for c in same_clause if c.type != "modifier"]
            predicative = m.start > 0 and words[m.start - 1] in _PREDICATIVE_BEFORE
            after = [] if predicative else [c for c in heads if c.start >= m.stop
                                            and c.start - m.stop <= MODIFIER_REACH and plain_gap(m, c)]
            before = [c for c in heads if c.stop <= m.start]
            later = [c for c in heads if c.start >= m.stop]
            # in a noun chain ("acute cardiopulmonary abnormality") the finding is the head
            modified = (min(after, key=lambda c: (c.type not in ("finding", "device"), c.start)) if after else
                        max(before, key=lambda c: c.start) if before else
                        min(later, key=lambda c: c.start) if later else None)
            if modified is not None:
                emit(m, modified, "modifies")
    findings = [c for c in concepts if c.type == "finding"]
    for s in suggest:
        source = [c for c in findings if c.stop <= s.start]
        later_findings = [c for c in findings if c.start >= s.stop]
        if not (source and later_findings):
            continue
        head = max(source, key=lambda c: c.start)
        later_findings.sort(key=lambda c: c.start)
        emit(head, later_findings[0], "suggestive_of")
        for prev, nxt in zip(later_findings, later_findings[1:]):  # "... may represent atelectasis or pneumonia"
            between = words[prev.stop:nxt.start]
            linked = all(w in _LIST_CONTINUATION or w == "," or (w, ) in _TABLE and _TABLE[(w, )]["type"] == "modifier"
                         for w in between)
            if not linked:
                break
            emit(head, nxt, "suggestive_of")


class RuleBasedExtractor:
    """Offline, deterministic KG extraction from radiology report text (see module docstring).

    ``merge_repeats`` (default True) folds mentions with the same text, type and assertion into
    one entity; ``drop_isolated_modifiers`` (default False) removes modifiers that modify nothing.
    """
    name = "neural-rules"
    # 1.1: list scope through modifiers, parentheses, versus, qualified resolution (issue 19);
    # 1.2: parentheses are asides (the outer clause resumes), exam-limited findings are not asserted,
    # hedges "suggestion of / concern for / may indicate / suspected / in the differential", haziness, opaque
    version = "1.2"

    def __init__(self, *, merge_repeats: bool = True, drop_isolated_modifiers: bool = False):
        self.merge_repeats = bool(merge_repeats)
        self.drop_isolated_modifiers = bool(drop_isolated_modifiers)
        self.config = {"merge_repeats": self.merge_repeats,
                       "drop_isolated_modifiers": self.drop_isolated_modifiers,
                       "scope": "clause", "lexicon_terms": len(_TABLE)}

    def extract(self, text: str) -> KnowledgeGraph:
        text = text or ""
        # lower-case character by character so that offsets stay valid in the original text
        # (str.lower can lengthen some characters, e.g. U+0130)
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
        mentions: list[_Match] = []
        pairs: list[tuple[_Match, _Match, str]] = []
        for sentence in _SENTENCE.finditer(lowered):
            tokens = [(t.group(0), sentence.start() + t.start(), sentence.start() + t.end())
                      for t in _TOKEN.finditer(sentence.group(0))]
            if not tokens:
                continue
            words = [t[0] for t in tokens]
            matches = _match_sentence(tokens)
            clause_of = _clause_ids(words, _clause_breaks(words, matches))
            for m in matches:
                m.clause = clause_of[m.start]
            _assert(matches)
            concept_tokens = {i for c in matches if c.type is not None for i in range(c.start, c.stop)}
            for m in matches:
                if m.type == "finding" and _exam_limited(m, words, clause_of, concept_tokens):
                    m.type = None  # not a statement about the patient: no entity, no relation
            _relations(matches, words, lambda a, b, kind: pairs.append((a, b, kind)))
            mentions += [m for m in matches if m.type is not None]
        return self._graph(mentions, pairs)

    def _graph(self, mentions, pairs) -> KnowledgeGraph:
        if self.drop_isolated_modifiers:
            used = {id(a) for a, _, k in pairs if k == "modifies"}
            mentions = [m for m in mentions if m.type != "modifier" or id(m) in used]
        entities: list[Entity] = []
        index_of: dict = {}
        mention_index: dict[int, int] = {}
        for m in mentions:
            key = (m.text, m.type, m.assertion) if self.merge_repeats else id(m)
            if key not in index_of:
                index_of[key] = len(entities)
                entities.append(Entity(m.text, m.type, m.assertion, m.char_start, m.char_end))
            mention_index[id(m)] = index_of[key]
        relations, seen = [], set()
        for a, b, kind in pairs:
            if id(a) not in mention_index or id(b) not in mention_index:
                continue
            edge = (mention_index[id(a)], mention_index[id(b)], kind)
            if edge[0] != edge[1] and edge not in seen:
                seen.add(edge)
                relations.append(Relation(*edge))
        return KnowledgeGraph(entities, relations)
