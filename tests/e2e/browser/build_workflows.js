// Build workflows in ComfyUI's editor from compact specs and save them as the editor saves them: each graph is
// built, loaded back (so execution order and media previews settle as after opening the file) and serialized with
// app.graph.serialize(), the state the editor's Save writes. Usage: node build_workflows.js URL SPECS OUTDIR
"use strict";
const path = require("path");
const { openEditor, readJson, writeJson } = require("./editor");

const SETTLE_MS = 2000; // time for image/video previews of the Load* nodes to appear and resize them

function buildInPage(spec) {
  const { app, LiteGraph } = window;
  app.graph.clear();
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
    if (n.size) node.setSize(n.size);
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

(async () => {
  const [url, specsFile, outDir] = process.argv.slice(2);
  const specs = await readJson(specsFile);
  const { browser, page, errors } = await openEditor(url);
  try {
    for (const spec of specs) {
      const built = await page.evaluate(buildInPage, spec);
      await page.evaluate((wf) => window.app.loadGraphData(wf), built);
      await page.waitForTimeout(SETTLE_MS);
      const workflow = await page.evaluate(() => window.app.graph.serialize());
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
