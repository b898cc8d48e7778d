"""Test-site pages for extracted content (tests/test_content.py)."""

from __future__ import annotations

from aiohttp import web

# Headings, nested lists, a table, a code block, a relative link and image; hidden elements of
# each kind and a script, none of which may reach markdown; a script that writes to the DOM.
ARTICLE = """<!doctype html><html lang=en><head><title>Article</title>
<style>.gone { display: none } .ghost { visibility: hidden } p.styled { color: rgb(1, 2, 3) }</style>
<script>window.addEventListener('DOMContentLoaded', () => {
  document.getElementById('late').textContent = 'Written by script';
});</script></head>
<body>
<h1>Main Title</h1>
<p class=styled>Intro with a <a href="/docs/page?x=1">relative link</a> and
<img src="img/pic.png" alt="A picture"> inline.</p>
<h2>Lists</h2>
<ul><li>Apples<ul><li>Green apple</li><li>Red apple</li></ul></li><li>Pears</li></ul>
<ol><li>First step</li><li>Second step</li></ol>
<h3>Table</h3>
<table><thead><tr><th>Name</th><th>Count</th></tr></thead>
<tbody><tr><td>Alpha</td><td>1</td></tr><tr><td>Beta</td><td>2</td></tr></tbody></table>
<pre><code class="language-python">def answer():
    return 42
</code></pre>
<p id=late>Before script</p>
<div class=gone>Display none secret</div>
<div hidden>Hidden attribute secret</div>
<p class=ghost>Visibility hidden secret</p>
<span aria-hidden="true">Decorative secret</span>
<script>var inlineScriptSecret = 'Script secret';</script>
<noscript>Noscript secret</noscript>
</body></html>"""

HIDDEN_TEXTS = ("Display none secret", "Hidden attribute secret", "Visibility hidden secret", "Decorative secret",
                "Script secret", "Noscript secret", "rgb(1, 2, 3)")


def add_content_routes(routes: web.RouteTableDef) -> None:
    @routes.get("/content/article")
    async def article(request: web.Request) -> web.Response:
        return web.Response(text=ARTICLE, content_type="text/html")

    @routes.get("/content/long")
    async def long(request: web.Request) -> web.Response:
        # ``mb`` MB of visible text (default 11: past the 10 MB bound of each content kind).
        megabytes = float(request.query.get("mb", "11"))
        line = "<p>" + "long text é " * 100 + "</p>\n"  # é: cut on a character boundary, never inside
        count = int(megabytes * 1024 * 1024 / len(line.encode()))
        return web.Response(text="<!doctype html><body>" + line * count, content_type="text/html")
