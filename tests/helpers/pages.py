"""Test helpers: an HTML page (a report or a comparison) parsed with html.parser into its
elements, text and tables, with nesting problems and external URLs found."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
URL_ATTRIBUTES = {"src", "href", "data", "action", "formaction", "poster", "xlink:href",
                  "background", "srcset"}


class Html(HTMLParser):
    """Elements, text, tables (class -> rows of (tag, attrs, text) cells), nesting problems."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.tables: list[tuple[str, list[list[tuple[str, dict[str, str], str]]]]] = []
        self.problems: list[str] = []
        self.texts: list[str] = []
        self._stack: list[str] = []
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()
        self.problems += [f"<{tag}> never closed" for tag in self._stack]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag in VOID:
            return
        self._stack.append(tag)
        if tag == "table":
            self.tables.append((attributes.get("class", ""), []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th") and self.tables and self.tables[-1][1]:
            self._cell = []
            self.tables[-1][1][-1].append((tag, attributes, ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if not self._stack or self._stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self._stack[-1] if self._stack else None}>")
            return
        self._stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            row = self.tables[-1][1][-1]
            row[-1] = (row[-1][0], row[-1][1], "".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.elements if "id" in a}

    def find(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag]

    def table(self, cls: str) -> list[list[tuple[str, dict[str, str], str]]]:
        found = [rows for c, rows in self.tables if cls in c.split()]
        assert len(found) == 1, f"{len(found)} tables of class {cls}"
        return found[0]


def parse_html(text: str) -> Html:
    page = Html(text)
    assert page.problems == []
    return page


def external_urls(page: Html) -> list[str]:
    """URL attributes of the page and of its iframes' srcdoc documents that leave the page."""
    found = []
    for tag, attributes in page.elements:
        for name, value in attributes.items():
            if name in URL_ATTRIBUTES and not value.startswith("#"):
                found.append(f"<{tag} {name}={value[:60]!r}>")
            if name == "style" and "url(" in value:
                found.append(f"<{tag} style={value[:60]!r}>")
        if tag == "iframe" and "srcdoc" in attributes:
            found += external_urls(Html(attributes["srcdoc"]))
    return found


def row(table: list[list[tuple[str, dict[str, str], str]]], first: str
        ) -> list[tuple[str, dict[str, str], str]]:
    rows = [r for r in table if r and r[0][2] == first]
    assert len(rows) == 1, f"{len(rows)} rows {first!r}"
    return rows[0]


def texts(cells: list[tuple[str, dict[str, str], str]]) -> list[str]:
    return [c[2] for c in cells]
