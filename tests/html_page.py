"""The catalogue page as the tests see it: cards, titles and every URL, parsed rather than grepped."""

from html.parser import HTMLParser
from pathlib import Path


class Page(HTMLParser):
    """Cards, their titles, and every src/href on the page."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, str]] = []
        self.titles: list[str] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.urls += [v for k, v in attrs.items() if k in ("src", "href", "action", "xlink:href") and v is not None]
        if tag == "article" and "card" in (attrs.get("class") or "").split():
            self.cards.append(attrs)
        if tag == "h2" and attrs.get("class") == "title":
            self._in_title, self.titles = True, self.titles + [""]

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.titles[-1] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page
