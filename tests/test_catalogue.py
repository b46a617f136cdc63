import json
import logging

import pytest
from typer.testing import CliRunner

from generator.errors import GeneratorError
from generator.library.catalogue import build_catalogue
from generator.library.export import ExportSettings
from html_page import parse
from track_fixtures import export_small, make_info

SMALL = ExportSettings(cutdowns_s=(1,), write_stems=True)
EVIL = "<script>window.pwned=1</script>"


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """Two batch folders, three genres, one track exported into both, one title that is HTML."""
    root = tmp_path_factory.mktemp("batches")
    a, b = root / "batch-a", root / "batch-b"
    export_small(a, make_info("Morning Light", "ambient", 1, 1.5, tags=("calm", "pads")), SMALL)
    export_small(a, make_info(EVIL, "rock", 2, 1.2, tags=("loud",)), SMALL)
    export_small(b, make_info("Night Drive", "synthwave", 1, 2.5, tags=("retro", "driving")), SMALL)
    export_small(b, make_info("Morning Light", "ambient", 1, 1.5, tags=("calm", "pads")), SMALL)  # duplicate
    return root, a, b


def test_catalogue_merges_two_folders_with_one_card_per_track(batches, tmp_path):
    root, a, b = batches
    index = build_catalogue([a, b], tmp_path / "site")
    page = parse(index)
    assert index == tmp_path / "site" / "index.html"
    assert sorted(c["data-genre"] for c in page.cards) == ["ambient", "rock", "synthwave"]
    assert len({c["data-track-id"] for c in page.cards}) == 3
    assert sorted(page.titles) == sorted(["Morning Light", EVIL, "Night Drive"])
    assert page.tags.count("audio") == 3


def test_links_are_relative_local_and_resolve_from_the_page(batches, tmp_path):
    root, a, b = batches
    index = build_catalogue([a, b], tmp_path / "site")
    page = parse(index)
    assert page.urls
    for url in page.urls:
        assert ":" not in url and not url.startswith("/"), url  # no http:, https:, //, file:, javascript:
        assert (index.parent / url).resolve().is_file(), url
    mp3s = [u for u in page.urls if u.endswith(".mp3")]
    wavs = [u for u in page.urls if u.endswith(".wav")]
    assert len([u for u in page.urls if u.endswith(".mid")]) == 3
    assert len(mp3s) == 3 * 3  # full mix (player + download) and the 1 s cut-down
    assert len(wavs) == 3 * (1 + 3 + 1)  # mix, three stems, cut-down
    text = index.read_text()
    assert "http" not in text and "<link" not in text and "@import" not in text and "url(" not in text


def test_html_in_a_title_is_escaped_and_only_the_inline_script_exists(batches, tmp_path):
    root, a, b = batches
    page = parse(build_catalogue([a], tmp_path))
    assert EVIL in page.titles
    assert page.tags.count("script") == 1  # ours; the title's <script> is text


def test_cards_draw_piano_roll_and_waveform_from_the_sidecar(batches, tmp_path):
    root, a, b = batches
    text = build_catalogue([b], tmp_path).read_text()
    assert text.count('class="roll"') == 2 and text.count('class="envelope"') == 2
    for colour in ('fill="#0072B2"', 'fill="#E69F00"', 'fill="#777777"'):  # lead, bass, drums
        assert text.count(colour) == 2


def test_corrupt_and_foreign_sidecars_are_skipped_with_a_warning(batches, tmp_path, caplog):
    root, a, b = batches
    extra = tmp_path / "extra"
    (extra / "bad").mkdir(parents=True)
    (extra / "bad" / "broken.json").write_text('{"schema": "gen.track", "schema_ver')
    (extra / "bad" / "old.json").write_text(json.dumps({"schema": "gen.track", "schema_version": 99}))
    (extra / "report.json").write_text(json.dumps({"tracks": 3}))  # not a sidecar: ignored quietly
    (extra / ".partial-x").mkdir()
    (extra / ".partial-x" / "x.json").write_text("{")  # unfinished export: not even read
    with caplog.at_level(logging.WARNING, logger="generator.library.catalogue"):
        page = parse(build_catalogue([a, extra], tmp_path / "site"))
    assert len(page.cards) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and any("broken.json" in w for w in warnings) and any("old.json" in w for w in warnings)


def test_a_missing_audio_file_drops_its_link_not_the_card(tmp_path, caplog):
    files = export_small(tmp_path / "batch", make_info("Lonely", "jazz", 3, 1.0), ExportSettings(cutdowns_s=()))
    files.stems["drums"].unlink()
    page = parse(build_catalogue([tmp_path / "batch"], tmp_path / "site"))
    assert len(page.cards) == 1 and not any("drums" in u for u in page.urls)
    assert "is missing" in caplog.text


def test_no_sidecars_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GeneratorError) as error:
        build_catalogue([tmp_path / "empty"], tmp_path)
    assert "\n" not in str(error.value) and "no track sidecars" in str(error.value)
    assert not (tmp_path / "index.html").exists()
    with pytest.raises(GeneratorError, match="missing: not a folder"):
        build_catalogue([tmp_path / "missing"], tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


def test_gen_catalogue_rebuilds_from_sidecars_and_prints_the_path(batches, tmp_path):
    from cli import app

    root, a, b = batches
    result = CliRunner().invoke(app, ["catalogue", str(a), str(b), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == str(tmp_path / "out" / "index.html")  # then the upload sheet
    assert len(parse(tmp_path / "out" / "index.html").cards) == 3
    default = CliRunner().invoke(app, ["catalogue", str(a)])
    assert default.exit_code == 0 and default.output.splitlines()[0] == str(a / "index.html")
    (a / "index.html").unlink()


BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.slow
def test_catalogue_in_a_headless_browser(batches, tmp_path):
    from playwright.sync_api import sync_playwright

    root, a, b = batches
    index = build_catalogue([a, b], tmp_path / "site")
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(index.as_uri())
        page.wait_for_function(
            "() => [...document.querySelectorAll('audio')].every(a => a.readyState >= 1 || a.error)", timeout=15000)
        audio = page.evaluate("() => [...document.querySelectorAll('audio')].map(a => [a.readyState, !!a.error,"
                              " a.duration])")
        assert len(audio) == 3 and all(ready >= 1 and not err for ready, err, _ in audio), audio
        assert sorted(round(d, 1) for *_, d in audio) == [1.2, 1.5, 2.5]
        assert all(url.startswith("file://") for url in requests), requests

        assert page.evaluate("() => window.pwned") is None
        evil = page.locator("article.card", has=page.locator("h2.title", has_text="window.pwned"))
        assert evil.locator("h2.title").evaluate("e => e.textContent") == EVIL

        def visible_genres():
            return sorted(page.evaluate("() => [...document.querySelectorAll('article.card')]"
                                        ".filter(c => !c.hidden && c.offsetParent !== null).map(c => c.dataset.genre)"))

        assert visible_genres() == ["ambient", "rock", "synthwave"]
        page.select_option("#genre-filter", "rock")
        assert visible_genres() == ["rock"]
        assert page.locator("#count").text_content() == "1 of 3 tracks"
        page.select_option("#genre-filter", "")
        page.fill("#search", "RETRO")  # a tag, any case
        assert visible_genres() == ["synthwave"]
        page.fill("#search", "morning light")
        assert visible_genres() == ["ambient"]
        page.fill("#search", "no such track")
        assert visible_genres() == [] and page.locator("#no-match").is_visible()
        page.fill("#search", "")
        page.fill("#min-duration", "1.4")
        page.fill("#max-duration", "2")
        assert visible_genres() == ["ambient"]
        page.click("#reset")
        page.wait_for_function("() => document.getElementById('count').textContent === '3 of 3 tracks'")
        assert page.evaluate("() => window.pwned") is None
        browser.close()
    assert errors == []
