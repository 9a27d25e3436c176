"""The live redraw path (frontend/js/redraw.js, via js/dom.js draw) in the real browser: which Plotly call an update
takes, and that what Plotly then shows is the new figure's data. The paths matter for speed (python -m bench
ui_alpha_history); this checks they also draw the right thing."""
from __future__ import annotations

import numpy as np
import pytest

from tests.browser.test_figures import EDGES, OPS, alpha_event

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def redraw_page(browser, static_ui):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{static_ui}/css/app.css")
    page.set_content('<html><head><script src="/vendor/plotly.min.js"></script></head><body>'
                     '<div id="history" style="width:1320px"></div><div id="heat" style="width:1320px"></div></body></html>')
    page.wait_for_function("() => window.Plotly !== undefined")
    page.evaluate("""async () => { window.av = await import('/js/alpha_view.js'); window.rs = await import('/js/runstate.js');
                                   window.dom = await import('/js/dom.js'); window.fig = await import('/js/figures.js'); }""")
    yield page
    context.close()


def _events(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [alpha_event(i + 1, i, {ct: rng.normal(size=(len(EDGES), len(OPS))) for ct in ("normal", "down")}) for i in range(n)]


_STEP = """async (evs) => {
  const {av, rs, dom} = window; const s = rs.createRunState(); const h = document.getElementById('history'), m = document.getElementById('heat');
  Plotly.purge(h); Plotly.purge(m); delete h._nfDrawn; delete m._nfDrawn;
  const out = [];
  for (const [i, ev] of evs.entries()) {
    rs.applyEvent(s, ev);
    const hist = av.historyFigure(s, {width: 1320}), heat = av.heatmapsFigure(s, s.alpha.frames.length - 1, {compact: true, width: 1320});
    const how = [dom.draw(h, hist), dom.draw(m, heat)];
    await Promise.all(how);
    // What Plotly holds after the draw, against the figure just asked for.
    const shown = h._fullData.map((t) => Array.from(t.y)), wanted = hist.data.map((t) => t.y);
    const zShown = m._fullData.map((t) => t.z.map((r) => Array.from(r))), zWanted = heat.data.map((t) => t.z);
    out.push({paths: [h._nfHow, m._nfHow], range: h._fullLayout.xaxis.range, wantRange: hist.layout.xaxis.range,
              linesMatch: JSON.stringify(shown) === JSON.stringify(wanted), zMatch: JSON.stringify(zShown) === JSON.stringify(zWanted),
              pathD: h.querySelector('.scatterlayer .trace path.js-line').getAttribute('d')});
  }
  return out;
}"""


def test_live_updates_move_lines_by_animate_and_restyle_heatmaps_and_show_the_new_data(redraw_page):
    out = redraw_page.evaluate(_STEP, _events(24))
    paths = [o["paths"] for o in out]
    assert paths[0] == ["react", "react"]  # the first draw builds the plots
    # Later draws restyle the heatmaps' z. The history's lines are moved (Plotly.animate) while its x axis keeps
    # its range; where the range grows (figures.js epochAxis: in steps, once past 10 epochs) it is re-laid out.
    assert all(p[1] == "restyle" for p in paths[1:]), paths
    for prev, cur in zip(out, out[1:]):
        assert cur["paths"][0] == ("animate" if cur["range"] == prev["range"] else "react"), paths
    assert sum(p[0] == "animate" for p in paths) >= 10, paths  # 15..20 and 20..25: most epochs past 10 animate
    for o in out:
        assert o["linesMatch"] and o["zMatch"], o["paths"]
        assert o["range"] == o["wantRange"]
    # The SVG itself changed with the data, not only Plotly's copy of it.
    assert len({o["pathD"] for o in out}) == len(out)


def test_lines_on_an_autoranged_axis_are_never_animated(redraw_page):
    """Plotly.animate leaves axes as they are: a plot whose range Plotly computes (the loss curves' y axis) must
    take a path that recomputes it, or its lines would leave the plot."""
    out = redraw_page.evaluate("""async () => {
      const {dom, fig} = window; const h = document.getElementById('history'); Plotly.purge(h); delete h._nfDrawn;
      const metrics = (n, scale) => Array.from({length: n}, (_, e) => ({epoch: e, stage: 'search', train_loss: scale * (e + 1)}));
      const hows = [];
      for (const [n, scale] of [[4, 1], [5, 1], [5, 100]]) { dom.draw(h, fig.lossCurves(metrics(n, scale))); await h._nfDone; hows.push(h._nfHow); }
      return {hows, yrange: h._fullLayout.yaxis.range};
    }""")
    assert "animate" not in out["hows"], out
    assert out["yrange"][1] >= 500  # the y axis followed the 100x larger losses
