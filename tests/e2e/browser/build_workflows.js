// Build workflows in ComfyUI's editor from compact specs and save them as the editor saves them: each graph is
// built, loaded back (so execution order and media previews settle as after opening the file), framed (a group
// around each spec group's nodes, and a stored view that shows the whole graph clear of the sidebar and the
// toolbars at the editor's default size) and serialized with app.graph.serialize(), the state the editor's Save
// writes. Usage: node build_workflows.js URL SPECS OUTDIR
"use strict";
const path = require("path");
const { openEditor, readJson, writeJson } = require("./editor");

const SETTLE_MS = 2000; // time for image/video previews of the Load* nodes to appear and resize them
// The editor's default window (the test viewport): px kept clear of the sidebar (left), the tab bar and the Run
// toolbar (top), the canvas info (bottom left), and the minimap with its controls (a box at the bottom right).
// Specs with `userFiles` (workflows naming model files the user adds) also keep clear of the "errors found" panel
// the editor shows at the top right while such a file is missing.
const VIEW = { width: 1600, height: 1000, left: 80, top: 120, right: 20, bottom: 80,
  minimap: [1330, 730, 270, 270], errors: [1225, 80, 375, 180] };
const GROUP_PAD = 16;
const GROUP_TITLE = 44;

function buildInPage(spec) {
  const { app, LiteGraph } = window;
  app.graph.clear();
  // the graph's id first: with the previous graph's id still set, a text widget of a node that gets the same id
  // as one of that graph lost its value (CLIPTextEncode built after CLIPTextEncode came out empty)
  app.graph.id = spec.uuid;
  const nodes = {};
  for (const n of spec.nodes) {
    const node = LiteGraph.createNode(n.type);
    if (!node) throw new Error(`the editor does not know node type ${n.type}`);
    node.pos = n.pos;
    app.graph.add(node);
    if (n.title) node.title = n.title;
    for (const [name, value] of Object.entries(n.widgets ?? {})) {
      const widget = node.widgets.find((w) => w.name === name);
      if (!widget) throw new Error(`${n.type} has no widget ${name}`);
      widget.setValue(value, { e: undefined, node, canvas: app.canvas });
    }
    if (n.size) node.setSize([n.size[0], Math.max(n.size[1], node.computeSize()[1])]);
    nodes[n.key] = node;
  }
  for (const [from, output, to, input] of spec.links) {
    const src = nodes[from], dst = nodes[to];
    const out = src.findOutputSlot(output), inp = dst.findInputSlot(input);
    if (out < 0 || inp < 0) throw new Error(`no slot for link ${from}.${output} -> ${to}.${input}`);
    if (!src.connect(out, dst, inp)) {
      throw new Error(`the editor refused link ${from}.${output} -> ${to}.${input}`);
    }
  }
  app.graph.id = spec.uuid;
  return app.graph.serialize();
}

// After the reload: one group per spec group around its nodes (title bars included), then the view.
function frameInPage({ spec, view, pad, titleHeight }) {
  const { app, LiteGraph } = window;
  const nodes = app.graph.nodes.slice().sort((a, b) => a.id - b.id); // ids follow the spec's node order
  const byKey = Object.fromEntries(spec.nodes.map((n, i) => [n.key, nodes[i]]));
  const boxes = [];
  for (const group of spec.groups ?? []) {
    const rects = group.members.map((key) => byKey[key].boundingRect); // [x, y, w, h], title included
    const x0 = Math.min(...rects.map((r) => r[0])) - pad;
    const y0 = Math.min(...rects.map((r) => r[1])) - pad - titleHeight;
    const x1 = Math.max(...rects.map((r) => r[0] + r[2])) + pad;
    const y1 = Math.max(...rects.map((r) => r[1] + r[3])) + pad;
    const g = new LiteGraph.LGraphGroup(group.title);
    app.graph.add(g);
    g.pos = [x0, y0];
    g.size = [x1 - x0, y1 - y0];
    boxes.push([x0, y0, x1 - x0, y1 - y0]);
  }
  for (const node of nodes) boxes.push(node.boundingRect);
  const bx = Math.min(...boxes.map((r) => r[0])), by = Math.min(...boxes.map((r) => r[1]));
  const bw = Math.max(...boxes.map((r) => r[0] + r[2])) - bx, bh = Math.max(...boxes.map((r) => r[1] + r[3])) - by;
  const fit = Math.min(1, (view.width - view.left - view.right) / bw, (view.height - view.top - view.bottom) / bh);
  const reserved = [view.minimap, ...(spec.userFiles ? [view.errors] : [])];
  const clearOf = (s, [px, py, pw, ph]) => boxes.every(([x, y, w, h]) => {
    const sx = view.left + (x - bx) * s, sy = view.top + (y - by) * s;
    return sx + w * s <= px || sy + h * s <= py || sx >= px + pw || sy >= py + ph;
  });
  let scale = Math.floor(fit * 100) / 100;
  while (scale > 0.5 && !reserved.every((box) => clearOf(scale, box))) scale -= 0.01;
  scale = Math.round(scale * 100) / 100;
  const workflow = app.graph.serialize();
  workflow.extra = { ...workflow.extra,
    ds: { scale, offset: [Math.round(view.left / scale - bx), Math.round(view.top / scale - by)] } };
  return workflow;
}

(async () => {
  const [url, specsFile, outDir] = process.argv.slice(2);
  const specs = await readJson(specsFile);
  const { browser, page, errors } = await openEditor(url);
  try {
    for (const spec of specs) {
      const built = await page.evaluate(buildInPage, spec);
      await page.evaluate((wf) => window.app.loadGraphData(wf), built);
      await page.waitForTimeout(SETTLE_MS);
      const framed = await page.evaluate(frameInPage,
        { spec, view: VIEW, pad: GROUP_PAD, titleHeight: GROUP_TITLE });
      await page.evaluate((wf) => window.app.loadGraphData(wf), framed);
      await page.waitForTimeout(SETTLE_MS);
      const workflow = await page.evaluate(() => window.app.graph.serialize());
      workflow.extra = { ...workflow.extra, ds: framed.extra.ds }; // the stored view, as the editor's Save keeps it
      writeJson(path.join(outDir, `${spec.name}.json`), workflow);
    }
  } finally {
    await browser.close();
  }
  if (errors.length) {
    console.error(errors.join("\n"));
    process.exit(1);
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
