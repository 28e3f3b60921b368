"""A minimal, namespace-aware element tree shared by the XML and WBXML codecs.

SyncML has no mixed content and (apart from ``xmlns``) no attributes, so an element is a tag,
a namespace, child elements and an optional text or opaque value. The message model
(:mod:`sync.syncml.model`) is built from this tree and back; the codecs only ever see this tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Namespaces (SyncML RepPro 1.1/1.2 section 5; MetInf and DevInf name spaces).
NS_SYNCML_11 = "SYNCML:SYNCML1.1"
NS_SYNCML_12 = "SYNCML:SYNCML1.2"
NS_METINF = "syncml:metinf"
NS_DEVINF = "syncml:devinf"

SYNCML_NAMESPACES = {"1.1": NS_SYNCML_11, "1.2": NS_SYNCML_12}


@dataclass(slots=True)
class Element:
    """One element: ``text`` is str for character data, bytes for WBXML opaque data."""

    tag: str
    ns: str = ""
    children: list[Element] = field(default_factory=list)
    text: str | bytes | None = None

    def child(self, tag: str) -> Element | None:
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def all(self, tag: str) -> list[Element]:
        return [c for c in self.children if c.tag == tag]

    def iter(self):
        """Depth-first iteration without recursion (bounded by the tree, not the stack)."""
        stack = [self]
        while stack:
            e = stack.pop()
            yield e
            stack.extend(reversed(e.children))

    def text_str(self) -> str:
        if self.text is None:
            return ""
        if isinstance(self.text, bytes):
            return self.text.decode("utf-8", errors="replace")
        return self.text
