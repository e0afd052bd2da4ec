// Browser checks of the Harmony web extension against a running ComfyUI.
// Usage: node check_extension.js URL CASES.json RESULT.json
// CASES: {"workflows": {name: workflow}, "modes": [...], "run": name, "screenshots": dir?}. For every workflow:
// load it, save it again and convert it to a prompt as the editor does; on the "run" workflow: switch the
// sampler through `modes` and its guidance choices (reporting hidden widgets and condition sockets), queue it and
// wait for the A+V preview of HarmonySaveAV; then feed HarmonyMux into core Save Video, queue again and wait for
// its preview.
// Screenshots of each mode and of the previews go to `screenshots` when given.
"use strict";
const { openEditor, readJson, writeJson } = require("./editor");

// Where a workflow opens: every node and group of it on screen, none under the editor's own panels (sidebar,
// tab bar, Run toolbar, minimap). Points near each corner and the centre of every node and group are probed
// with elementFromPoint: the canvas itself or a node's own DOM widget may be there, nothing else.
async function framing(page) {
  return page.evaluate(() => {
    const { app } = window;
    const canvas = app.canvas.canvas;
    const box = canvas.getBoundingClientRect();
    const { scale, offset } = app.canvas.ds;
    const toScreen = ([x, y, w, h]) => [box.left + (x + offset[0]) * scale, box.top + (y + offset[1]) * scale,
      w * scale, h * scale];
    const items = [...app.graph.nodes.map((n) => [`node ${n.id} ${n.type}`, n.boundingRect]),
      ...app.graph.groups.map((g) => [`group ${g.title}`, [g.pos[0], g.pos[1], g.size[0], g.size[1]]])];
    const obstructed = [], outside = [];
    for (const [label, rect] of items) {
      const [x, y, w, h] = toScreen(rect);
      if (x < 0 || y < 0 || x + w > window.innerWidth || y + h > window.innerHeight) outside.push(label);
      const inset = 6;
      const points = [[x + inset, y + inset], [x + w - inset, y + inset], [x + inset, y + h - inset],
        [x + w - inset, y + h - inset], [x + w / 2, y + h / 2]];
      for (const [px, py] of points) {
        const el = document.elementFromPoint(px, py);
        const mine = el === canvas || el?.closest?.(".dom-widget, .comfy-img-preview, .dom-widget-container");
        if (!mine) {
          obstructed.push(`${label} at (${Math.round(px)}, ${Math.round(py)}) under ` +
            `${el?.tagName} ${String(el?.className ?? "").slice(0, 60)}`);
          break;
        }
      }
    }
    return { scale, offset: [...offset], groups: app.graph.groups.map((g) => g.title), obstructed, outside };
  });
}

async function roundTrip(page, workflow) {
  return page.evaluate(async (wf) => {
    await window.app.loadGraphData(structuredClone(wf));
    return { saved: window.app.graph.serialize(), prompt: (await window.app.graphToPrompt()).output };
  }, workflow);
}

async function switchWidget(page, name, value) {
  return page.evaluate(([name, value]) => {
    const { app } = window;
    const node = app.graph.nodes.find((n) => n.type === "HarmonySampler");
    const widget = node.widgets.find((w) => w.name === name);
    widget.setValue(value, { e: undefined, node, canvas: app.canvas });
    app.canvas.centerOnNode?.(node);
    app.canvas.setDirty(true, true);
    return {
      hidden: node.widgets.filter((w) => w.hidden).map((w) => w.name),
      sockets: node.inputs.filter((i) => !i.widget).map((i) => i.name),
      required: node.inputs.filter((i) => !i.widget && i.label?.endsWith("(required)")).map((i) => i.name),
      widgetsValues: node.serialize().widgets_values.length,
    };
  }, [name, value]);
}

async function switchModes(page, modes, screenshots) {
  const seen = {};
  for (const mode of modes) {
    seen[mode] = await switchWidget(page, "mode", mode);
    if (screenshots) await screenshot(page, `${screenshots}/sampler_${mode}.png`);
  }
  return seen;
}

async function runAndPreview(page, timeoutMs) {
  await page.evaluate(() => window.app.queuePrompt(0, 1));
  const selector = ".harmony-av-preview canvas.harmony-waveform[data-peaks]";
  await page.waitForSelector(".harmony-av-preview canvas.harmony-frame-strip[data-frames]", { timeout: timeoutMs,
    state: "attached" });
  await page.waitForSelector(selector, { timeout: 60000, state: "attached" });
  return page.evaluate(() => {
    const soundControls = (video, root) => {
      const mute = root.querySelector("button.harmony-av-mute");
      const volume = root.querySelector("input.harmony-av-volume");
      mute.click();
      const muted = video.muted;
      mute.click();
      volume.value = "30";
      volume.dispatchEvent(new Event("input"));
      return { mutedByButton: muted, unmutedAgain: !video.muted, volume: video.volume };
    };
    const root = document.querySelector(".harmony-av-preview");
    const inked = (canvas) => {
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      let count = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count++;
      return count / (canvas.width * canvas.height);
    };
    const video = root.querySelector("video.harmony-av-video");
    return {
      src: video.src,
      duration: video.duration,
      frames: Number(root.querySelector("canvas.harmony-frame-strip").dataset.frames),
      peaks: Number(root.querySelector("canvas.harmony-waveform").dataset.peaks),
      waveInk: inked(root.querySelector("canvas.harmony-waveform")),
      frameInk: inked(root.querySelector("canvas.harmony-frame-strip")),
      controls: ["button.harmony-av-play", "input.harmony-av-scrub", ".harmony-av-playhead",
        "button.harmony-av-mute", "input.harmony-av-volume"].filter((s) => root.querySelector(s)).length,
      sound: soundControls(video, root),
      // one preview: the editor's own video player (widget "video-preview") must not be added below ours
      corePlayers: window.app.graph.nodes.find((n) => n.type === "HarmonySaveAV").widgets
        .filter((w) => w.name === "video-preview").length,
    };
  });
}

async function screenshot(page, file) {
  await page.keyboard.press("Escape"); // closes the template browser a new user gets on first start
  await page.waitForTimeout(500);
  await page.screenshot({ path: file });
}

async function screenshotNode(page, type, file) {
  await page.evaluate((t) => {
    window.app.canvas.centerOnNode?.(window.app.graph.nodes.find((n) => n.type === t));
  }, type);
  await page.waitForTimeout(1000);
  await screenshot(page, file);
}

async function muxIntoSaveVideo(page, timeoutMs) {
  await page.evaluate(() => {
    const { app, LiteGraph } = window;
    const decode = app.graph.nodes.find((n) => n.type === "HarmonyDecode");
    const mux = LiteGraph.createNode("HarmonyMux");
    const save = LiteGraph.createNode("SaveVideo");
    mux.pos = [decode.pos[0], decode.pos[1] + 700];
    save.pos = [decode.pos[0] + 300, decode.pos[1] + 700];
    app.graph.add(mux);
    app.graph.add(save);
    for (const name of ["images", "audio", "fps"]) {
      decode.connect(decode.findOutputSlot(name), mux, mux.findInputSlot(name));
    }
    mux.connect(0, save, save.findInputSlot("video"));
    app.queuePrompt(0, 1);
  });
  const selector = ".harmony-av-preview canvas.harmony-waveform[data-peaks]";
  await page.waitForFunction((s) => document.querySelectorAll(s).length === 2, selector,
    { timeout: timeoutMs });
  return page.evaluate(() => ({
    previews: document.querySelectorAll(".harmony-av-preview").length,
    saveVideoHasPreview: window.app.graph.nodes.find((n) => n.type === "SaveVideo").widgets
      .some((w) => w.name === "harmony_av_preview"),
  }));
}

(async () => {
  const [url, casesFile, resultFile] = process.argv.slice(2);
  const cases = await readJson(casesFile);
  const { browser, page, errors } = await openEditor(url);
  const result = { workflows: {}, frontendVersion: null };
  try {
    result.frontendVersion = await page.evaluate(() => window.__COMFYUI_FRONTEND_VERSION__ ?? null);
    result.extensions = await page.evaluate(() =>
      window.app.extensions.map((e) => e.name).filter((n) => n.startsWith("Harmony.")));
    for (const [name, workflow] of Object.entries(cases.workflows)) {
      result.workflows[name] = await roundTrip(page, workflow);
      await page.keyboard.press("Escape"); // closes the template browser a new user gets on first start
      await page.waitForTimeout(1500); // media previews of Load* nodes settle
      result.workflows[name].framing = await framing(page);
      if (cases.screenshots) await page.screenshot({ path: `${cases.screenshots}/open_${name}.png` });
    }
    await roundTrip(page, cases.workflows[cases.run]);
    result.modes = await switchModes(page, cases.modes, cases.screenshots);
    result.guidance = {}; // ends on "default", the workflow's own, which is then run
    for (const value of ["uniavgen", "synccfg", "default"]) {
      result.guidance[value] = await switchWidget(page, "guidance", value);
    }
    result.preview = await runAndPreview(page, cases.timeoutMs ?? 300000);
    if (cases.screenshots) await screenshotNode(page, "HarmonySaveAV", `${cases.screenshots}/preview.png`);
    result.mux = await muxIntoSaveVideo(page, cases.timeoutMs ?? 300000);
    if (cases.screenshots) await screenshotNode(page, "SaveVideo", `${cases.screenshots}/mux_preview.png`);
  } catch (err) {
    result.error = String(err && err.stack || err);
  } finally {
    result.pageErrors = errors;
    writeJson(resultFile, result);
    await browser.close();
  }
})();
