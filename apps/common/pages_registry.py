"""The suite's pages, in the order the sidebar shows them: one registration per application.

A page is named here by the module that draws it (a string), so this list imports no page
and no streamlit; :mod:`apps.navigation` imports each module when it builds the pages.
Pages link to each other by key (:func:`apps.shell.pages.links.page_link`).

An application adds its pages with one :func:`register_pages` call at the end of this file::

    register_pages(
        "Finance",
        PageSpec("news", "News", ":material/newspaper:", "apps.finance.pages.news", "news_"),
    )
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PAGES", "PageSpec", "page_spec", "register_pages", "sections"]


@dataclass(frozen=True)
class PageSpec:
    """One page of the suite."""

    key: str
    """Its name in links and in the URL (``/train``); unique across the suite."""
    title: str
    icon: str
    """A Material icon (``:material/home:``) or an emoji."""
    module: str
    """The module that draws it (``apps.studio.pages.train``): a page module whose
    ``render`` function shows the page."""
    kept_prefix: str = ""
    """Widget keys of the page start with it; their values survive a visit to another page
    (empty: none are kept)."""
    actions: tuple[str, ...] = ()
    """Keys of its buttons and uploads (one ending in ``_`` stands for every key it starts):
    Streamlit cannot assign them, and none needs to survive a page switch."""
    section: str = ""
    """The sidebar section (set by :func:`register_pages`)."""


PAGES: list[PageSpec] = []
"""Every registered page, in sidebar order."""


def register_pages(section: str, *pages: PageSpec) -> list[PageSpec]:
    """Add an application's ``pages`` under the sidebar heading ``section``.

    Raises:
        ValueError: a page key is taken already, or a module path is not a dotted name.
    """
    taken = {page.key: page for page in PAGES}
    added = []
    for page in pages:
        if page.key in taken:
            raise ValueError(
                f"Page key {page.key!r} ({page.module}) is taken by {taken[page.key].module}; "
                "give the page another key."
            )
        if not all(part.isidentifier() for part in page.module.split(".")):
            raise ValueError(
                f"Page {page.key!r}: {page.module!r} is not a module path; write it as "
                "apps.<application>.pages.<page>."
            )
        spec = PageSpec(**{**page.__dict__, "section": section})
        taken[spec.key] = spec
        added.append(spec)
    PAGES.extend(added)
    return added


def sections() -> dict[str, list[PageSpec]]:
    """The registered pages by sidebar section, in order."""
    out: dict[str, list[PageSpec]] = {}
    for page in PAGES:
        out.setdefault(page.section, []).append(page)
    return out


def page_spec(key: str) -> PageSpec:
    """The registered page of ``key``.

    Raises:
        KeyError: no page has this key; the message lists the keys there are.
    """
    for page in PAGES:
        if page.key == key:
            return page
    raise KeyError(f"No page {key!r}; pages: {[p.key for p in PAGES]}")


# --- the applications' pages ----------------------------------------------------------------

register_pages(
    "Suite",
    PageSpec("home", "Home", ":material/home:", "apps.shell.pages.home"),
)
register_pages(
    "Model Studio",
    PageSpec(
        "data",
        "Data",
        ":material/table:",
        "apps.studio.pages.data",
        "data_",
        ("data_use", "data_upload"),
    ),
    PageSpec(
        "train",
        "Train",
        ":material/model_training:",
        "apps.studio.pages.train",
        "train_",
        ("train_start", "train_stop"),
    ),
    PageSpec(
        "evaluate",
        "Evaluate",
        ":material/fact_check:",
        "apps.studio.pages.evaluate",
        "eval_",
        ("eval_run", "eval_fit_"),
    ),
    PageSpec(
        "compare",
        "Compare",
        ":material/compare:",
        "apps.studio.pages.compare",
        "cmp_",
        ("cmp_baseline_",),
    ),
    PageSpec(
        "try",
        "Try",
        ":material/keyboard:",
        "apps.studio.pages.try_model",
        "try_",
        ("try_predict", "try_download"),
    ),
)
register_pages(
    "Support",
    PageSpec(
        "support",
        "Support chat",
        ":material/support_agent:",
        "apps.support.pages.chat",
        "",
        ("support_btn_", "support_audio", "support_upload", "support_send_", "support_close_"),
    ),
)
register_pages(
    "Finance",
    PageSpec(
        "finance",
        "Finance monitor",
        ":material/monitoring:",
        "apps.finance.pages.monitor",
        "fin_",
        ("fin_score", "fin_upload", "fin_graph"),
    ),
)
register_pages(
    "Recommender",
    PageSpec(
        "recommender",
        "Recommender",
        ":material/recommend:",
        "apps.recommender.pages.recommend",
        "rec_",
        ("rec_like_", "rec_dismiss_", "rec_upload_", "rec_train", "rec_reset"),
    ),
)
