"""The catalogue page as the tests see it: cards, titles and every URL, parsed rather than grepped."""

from html.parser import HTMLParser
from pathlib import Path


class Page(HTMLParser):
    """Cards, their titles, every src/href, the page's <title> and <h1>, each select's option values,
    and the section buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, str]] = []
        self.titles: list[str] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.title = self.h1 = ""
        self.options: dict[str, list[str]] = {}
        self.sections: list[dict[str, str]] = []
        self._text: str | None = None  # which text is being collected
        self._select = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.urls += [v for k, v in attrs.items() if k in ("src", "href", "action", "xlink:href") and v is not None]
        if tag == "article" and "card" in (attrs.get("class") or "").split():
            self.cards.append(attrs)
        if tag == "h2" and attrs.get("class") == "title":
            self._text, self.titles = "card", self.titles + [""]
        if tag in ("title", "h1"):
            self._text = tag
        if tag == "select":
            self._select = attrs.get("id") or ""
            self.options[self._select] = []
        if tag == "option":
            self.options[self._select].append(attrs.get("value") or "")
        if tag == "button" and "data-start" in attrs:
            self.sections.append(attrs)

    def handle_endtag(self, tag):
        if tag in ("h2", "title", "h1"):
            self._text = None

    def handle_data(self, data):
        if self._text == "card":
            self.titles[-1] += data
        elif self._text in ("title", "h1"):
            setattr(self, self._text, getattr(self, self._text) + data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page
