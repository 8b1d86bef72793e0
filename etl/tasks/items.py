"""What a task says about its items: how many are done, partly done, failed, unavailable or
not reached, and why. The summary line, ``--json`` and the exit code all read this one count.

An *item* is what a task is asked for one by one: a symbol (klines, statements), a market
(instruments sync), a calendar, a snapshot. Every item ends in exactly one category:

- ``done``: everything it needed is stored, or the vendor answered that there is nothing
  (a suspension), or is not complete yet and will be fetched by a later run;
- ``partly_done``: some of it is stored, and some is not (a failure, a stop, beyond the
  vendor's depth), with the reason;
- ``failed``: nothing of it could be stored because the vendor (or validation) refused;
- ``unavailable``: the vendor answered, and it has none of it (beyond its depth, not served,
  confirmed empty), with the reason;
- ``not_reached``: the task stopped (Ctrl-C, cancel, a fatal error) before asking for it.

Why the exit code is 1 for some reasons and 0 for others: "not complete yet", "confirmed
empty" and "beyond depth" ask nothing of the user that a rerun would change (wait; nothing
exists; the vendor's answer showed it keeps no older data: the summary says so, by item, and
the gap ledger keeps the answer). Every other reason does: a failure to look at, a vendor
that does not serve the item, instruments or a calendar to sync. (A shipped job such as
``mdapi-1m`` asks on purpose for more than mdapi's 600-bar window: a healthy run of it says
"partly done (beyond depth)" and exits 0.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "CATEGORIES",
    "CONFIRMED_EMPTY",
    "NOT_COMPLETE",
    "NOT_REACHED",
    "ItemCounts",
    "actionable",
    "counted",
]

CATEGORIES: Final = ("done", "partly_done", "failed", "unavailable", "not_reached")
NOT_COMPLETE: Final = "not complete yet"
CONFIRMED_EMPTY: Final = "confirmed empty"
NOT_REACHED: Final = "not reached"
BEYOND_DEPTH: Final = "beyond depth"
NOT_SERVED: Final = "not served"
FAILED: Final = "failed"
STOPPED: Final = "stopped"
# Reasons that ask nothing of the user: the task did all it could.
# Reasons an item is still done for: nothing more exists yet, or at all.
_COMPLETE: Final = frozenset({NOT_COMPLETE, CONFIRMED_EMPTY})
# Reasons that ask nothing of the user (exit 0): those, and what the vendor keeps no more of.
_PASSIVE: Final = _COMPLETE | {BEYOND_DEPTH}


def classify(reason: str) -> str:
    """The item reason of a vendor's (or planner's) free-text reason for leaving a range:
    ``not complete yet at now`` -> not complete yet; "no bars" or "confirmed empty" ->
    confirmed empty; "does not serve" -> not served; anything else says the range is
    older than what the vendor keeps -> beyond depth (the text itself stays in the task's
    ``result.unavailable`` and the gap ledger)."""
    text = reason.lower()
    if text.startswith("not complete"):
        return NOT_COMPLETE
    if "confirmed empty" in text or "suspend" in text:
        return CONFIRMED_EMPTY
    if "not serve" in text or "does not" in text:
        return NOT_SERVED
    return BEYOND_DEPTH


def actionable(reason: str) -> bool:
    """Whether an item left for ``reason`` is something the user can act on (exit 1)."""
    return reason not in _PASSIVE


@dataclass
class ItemCounts:
    """The count of a task's items by category, and the reasons behind each category."""

    noun: str = "symbols"
    total: int = 0
    done: int = 0
    partly_done: int = 0
    failed: int = 0
    unavailable: int = 0
    not_reached: int = 0
    why: dict[str, dict[str, int]] = field(default_factory=dict)  # category -> reason -> n

    def add(self, category: str, reason: str | None = None, n: int = 1) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown item category {category!r}")
        setattr(self, category, getattr(self, category) + n)
        if reason:
            per = self.why.setdefault(category, {})
            per[reason] = per.get(reason, 0) + n

    @property
    def reached(self) -> int:
        return self.total - self.not_reached

    @property
    def needs_attention(self) -> bool:
        """Some item failed, or was left for a reason the user can act on."""
        if self.failed:
            return True
        return any(
            actionable(reason)
            for category in ("partly_done", "unavailable")
            for reason in self.why.get(category, {})
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "noun": self.noun,
            "total": self.total,
            **{c: getattr(self, c) for c in CATEGORIES},
            "why": {c: dict(sorted(r.items())) for c, r in self.why.items() if r},
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> ItemCounts | None:
        if not doc:
            return None
        out = cls(noun=str(doc.get("noun") or "items"), total=int(doc.get("total") or 0))
        for c in CATEGORIES:
            setattr(out, c, int(doc.get(c) or 0))
        why = doc.get("why") or {}
        out.why = {str(c): {str(k): int(v) for k, v in r.items()} for c, r in why.items()}
        return out

    def text(self) -> str:
        """``257 symbols: 4 done, 253 not reached`` (reasons in parentheses)."""
        parts = []
        for category in CATEGORIES:
            n = getattr(self, category)
            if not n and not (category == "done" and self.total == 0):
                continue
            label = category.replace("_", " ")
            reasons = self.why.get(category, {})
            detail = ""
            if reasons and list(reasons) != [label]:  # "1 failed", not "1 failed (failed 1)"
                ranked = Counter(reasons).most_common()
                detail = " (" + ", ".join(f"{r} {k}" for r, k in ranked) + ")"
            parts.append(f"{n} {label}{detail}")
        noun = self.noun[:-1] if self.total == 1 and self.noun.endswith("s") else self.noun
        return f"{self.total} {noun}: " + ", ".join(parts)


@dataclass(frozen=True)
class Item:
    """What a task knows of one item at its end, whatever run of it did the work.

    ``finished``: every call it needed is done (committed); ``started``: rows of it were
    committed, or some of its calls are done; ``failed``: a call of it failed for good in
    the last run; ``left``: the reasons (:func:`classify`) of ranges the vendor's answers
    put out of reach."""

    finished: bool
    started: bool
    failed: bool = False
    left: tuple[str, ...] = ()


def count_items(noun: str, items: dict[str, Item]) -> ItemCounts:
    """Each item in its one category (module doc): a failure first, then an item the task
    did not finish (stopped: partly done, or not reached if nothing of it was committed),
    then what the vendor left out of reach (partly done, or unavailable if nothing was
    stored), else done."""
    counts = ItemCounts(noun=noun, total=len(items))
    for item in items.values():
        if item.failed:
            counts.add("partly_done" if item.started else "failed", FAILED)
        elif not item.finished:
            if item.started:
                counts.add("partly_done", STOPPED)
            else:
                counts.add("not_reached", NOT_REACHED)
        elif reasons := [r for r in dict.fromkeys(item.left) if r not in _COMPLETE]:
            counts.add("partly_done" if item.started else "unavailable", reasons[0])
        else:
            counts.add("done", next(iter(item.left), None))
    return counts


def counted(n: int, noun: str) -> str:
    """``1 request``, ``2,000 requests``: how every summary line counts."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
