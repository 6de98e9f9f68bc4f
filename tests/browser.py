"""Open a page in Debian's headless Chromium through Playwright; report what a user would see."""

import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium keeps trying to reach Google's services through a closed network.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


# For each table: its width, and whether all of it can be seen, either because it fits in the box
# around it (and that box in the window) or because that box scrolls sideways over all of it.
TABLES_JS = """els => els.map(t => {
  const box = t.parentElement, style = getComputedStyle(box);
  const width = t.getBoundingClientRect().width, right = box.getBoundingClientRect().right;
  const inWindow = right <= window.innerWidth + 0.5;
  const fits = width <= box.clientWidth + 0.5 && t.getBoundingClientRect().right <= window.innerWidth + 0.5;
  const scrolls = ["auto", "scroll"].includes(style.overflowX) && box.scrollWidth >= Math.floor(width);
  return {id: t.id, width: width, box_width: box.clientWidth, box_scroll_width: box.scrollWidth,
          overflow_x: style.overflowX, fits: fits, reachable: fits || (scrolls && inWindow)};
})"""


def open_report(path: Path, screenshot: Path, width: int = 1280) -> dict:
    """Open `path` in a window `width` px wide; what loaded, what failed, and what fits.

    Returns: images (count), broken (their alt texts), console_errors, doc_scroll_width (the
    page's full width: wider than `width` means a sideways-scrolling page) and tables (one dict
    per <table>: id, width, box_width, box_scroll_width, overflow_x, fits, reachable).
    """
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({alt: e.alt, ok: e.complete && e.naturalWidth > 0}))")
            doc_scroll_width = page.evaluate("document.documentElement.scrollWidth")
            tables = page.eval_on_selector_all("table", TABLES_JS)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"images": len(images), "broken": [i["alt"] for i in images if not i["ok"]], "console_errors": errors,
            "doc_scroll_width": doc_scroll_width, "tables": tables}
