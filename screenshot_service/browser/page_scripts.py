"""The scripts behind PageDriver's own page operations, run in the service's isolated world.

pyppeteer runs ``waitForSelector`` and ``addStyleTag`` in the page's world, where a
page that replaces ``Promise``, ``MutationObserver``, ``document.querySelector`` or
``Node.prototype.appendChild`` breaks them; these use the isolated world's own
copies of everything.
"""

from __future__ import annotations

WAIT_SLICE = 2  # seconds one wait call may take before the driver asks again

ADD_STYLE = """(css) => {
  const style = document.createElement('style');
  style.textContent = css;
  (document.head || document.documentElement || document).appendChild(style);
}"""

# Visible as pyppeteer's waitForSelector(visible=True) judges it: not visibility:hidden, a box.
# Resolves true once it is, false when the slice ends without it.
WAIT_VISIBLE = """(selector, sliceMs) => new Promise(resolve => {
  const visible = () => {
    try {
      const el = document.querySelector(selector);
      if (!el) return false;
      const box = el.getBoundingClientRect();
      return getComputedStyle(el).visibility !== 'hidden' && !!(box.top || box.bottom || box.width || box.height);
    } catch (e) { return false; }
  };
  if (visible()) { resolve(true); return; }
  let observer = null, poll = 0, end = 0;
  const finish = found => {
    if (observer) observer.disconnect();
    clearInterval(poll); clearTimeout(end); resolve(found);
  };
  observer = new MutationObserver(() => { if (visible()) finish(true); });
  observer.observe(document, {childList: true, subtree: true, attributes: true, characterData: true});
  poll = setInterval(() => { if (visible()) finish(true); }, 100);
  end = setTimeout(() => finish(false), sliceMs);
})"""
