"""The one slug function, pinned per caller: track ids, folder and file names of delivered libraries."""

import pytest

from generator.corpus.sources import slug as job_slug
from generator.library.export import safe_name
from generator.library.recipe_fields import safe_name as library_name
from generator.names import slug

# title -> (export.safe_name, recipe_fields.safe_name, corpus job slug), computed before they became one
PINNED = {
    "Café Jazz": ("cafe-jazz", "caf_jazz", "caf-jazz"),
    "Smørrebrød Straße": ("smorrebrod-strasse", "sm_rrebr_d_stra_e", "sm-rrebr-d-stra-e"),
    "Ünïcødé ☃ 日本語": ("unicode-4d7247", "n_c_d", "n-c-d"),
    "日本語": ("c12140", "library", "untitled"),
    "": ("da39a3", "library", "untitled"),
    "../../etc/passwd": ("etc-passwd", "etc_passwd", "etc-passwd"),
    "A" * 70: ("a" * 48, "a" * 60, "a" * 60),
    "Morning  Light!!": ("morning-light", "morning_light", "morning-light"),
    "x-" * 40: ("x-" * 23 + "x", "x_" * 29 + "x", "x-" * 30),  # the job slug keeps the '-' its cut leaves
    "Ça va -- déjà": ("ca-va-deja", "a_va_d_j", "a-va-d-j"),
    "Ｆｕｌｌｗｉｄｔｈ": ("fullwidth", "library", "untitled"),
    "naïve_bass": ("naive-bass", "na_ve_bass", "na-ve-bass"),
    "Lead Synth (2)": ("lead-synth-2", "lead_synth_2", "lead-synth-2"),
}


@pytest.mark.parametrize("title", PINNED)
def test_every_caller_keeps_its_names(title):
    assert (safe_name(title), library_name(title), job_slug(title)) == PINNED[title]


def test_slug_defaults():
    assert slug("  Hello, World!  ") == "hello-world"
    assert slug("ÅÅÅ", fallback="x") == "x"
    assert slug("Åbc", fold=True) == "abc"
