// Audio + video preview for HarmonySaveAV / HarmonyMux outputs (a core Save Video node fed by HarmonyMux shows
// it too), made to judge synchronization:
// a player (play/pause + scrub bar), a strip of frames across the clip and, under it on the same time axis,
// the soundtrack's waveform. A playhead runs over both strips; clicking or dragging a strip scrubs.
// The clips are the mp4 files the node reports in its UI output ({filename, subfolder, type} entries); with
// several takes (batch > 1) a selector switches between them.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODES = ["HarmonySaveAV", "HarmonyMux"];
const MUX_CONSUMERS = ["SaveVideo"]; // core nodes that get the preview when their video comes from HarmonyMux
const WIDGET = "harmony_av_preview";
const STRIP_FRAMES = 8;
const STRIP_HEIGHT = 48;
const WAVE_HEIGHT = 48;
const VIDEO_EXT = /\.(mp4|webm|mkv|mov)$/i;

const PREVIEW_KEY = "harmony_av"; // HarmonySaveAV's own UI key (under "images" the editor adds a second player)

function clipUrls(message) {
  const entries = [message?.[PREVIEW_KEY], message?.images, message?.video, message?.gifs].flat()
    .filter(Boolean);
  return entries
    .filter((e) => typeof e?.filename === "string" && VIDEO_EXT.test(e.filename))
    .map((e) => {
      const query = new URLSearchParams({
        filename: e.filename, subfolder: e.subfolder ?? "", type: e.type ?? "output",
      });
      return api.apiURL(`/view?${query}`);
    });
}

function element(tag, className, style = {}) {
  const el = document.createElement(tag);
  el.className = className;
  Object.assign(el.style, style);
  return el;
}

function seek(video, time) {
  return new Promise((resolve) => {
    video.addEventListener("seeked", resolve, { once: true });
    video.currentTime = time;
  });
}

async function drawFrameStrip(canvas, url, stale) {
  const video = element("video", "", {});
  video.muted = true;
  video.preload = "auto";
  video.src = url;
  await new Promise((resolve, reject) => {
    video.addEventListener("loadeddata", resolve, { once: true });
    video.addEventListener("error", () => reject(new Error(`cannot decode ${url}`)), { once: true });
  });
  const ctx = canvas.getContext("2d");
  const cell = canvas.width / STRIP_FRAMES;
  for (let i = 0; i < STRIP_FRAMES; i++) {
    await seek(video, ((i + 0.5) / STRIP_FRAMES) * video.duration);
    if (stale()) return null;
    ctx.drawImage(video, i * cell, 0, cell, canvas.height);
  }
  canvas.dataset.frames = String(STRIP_FRAMES);
  return video.duration;
}

function peaks(buffer, columns) {
  const data = buffer.getChannelData(0);
  const per = Math.max(1, Math.floor(data.length / columns));
  const out = [];
  for (let c = 0; c < columns; c++) {
    let lo = 0, hi = 0;
    for (let i = c * per; i < Math.min(data.length, (c + 1) * per); i++) {
      lo = Math.min(lo, data[i]);
      hi = Math.max(hi, data[i]);
    }
    out.push([lo, hi]);
  }
  return out;
}

async function drawWaveform(canvas, url, videoSeconds, stale) {
  const bytes = await (await fetch(url)).arrayBuffer();
  const buffer = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(bytes);
  if (stale()) return;
  // the strip spans the video's duration, so sound and frames share one time axis
  const span = Math.max(videoSeconds || buffer.duration, 1e-6);
  const width = Math.max(1, Math.round(canvas.width * Math.min(1, buffer.duration / span)));
  const ctx = canvas.getContext("2d");
  const mid = canvas.height / 2;
  const columns = peaks(buffer, width);
  const scale = Math.max(1e-6, ...columns.flat().map(Math.abs));
  ctx.fillStyle = "#6cf";
  columns.forEach(([lo, hi], x) => {
    const top = mid - (hi / scale) * mid;
    ctx.fillRect(x, top, 1, Math.max(1, ((hi - lo) / scale) * mid));
  });
  ctx.fillStyle = "rgba(255, 255, 255, 0.25)"; // the frame strip's cell borders, to relate sounds to frames
  for (let i = 1; i < STRIP_FRAMES; i++) {
    ctx.fillRect(Math.round((i * canvas.width) / STRIP_FRAMES), 0, 1, canvas.height);
  }
  canvas.dataset.peaks = String(width);
}

function buildPreview() {
  const root = element("div", "harmony-av-preview",
    { display: "flex", flexDirection: "column", gap: "4px", width: "100%" });
  const video = element("video", "harmony-av-video", { width: "100%", maxHeight: "256px", background: "#000" });
  video.playsInline = true;
  const bar = element("div", "harmony-av-controls", { display: "flex", gap: "6px", alignItems: "center" });
  const play = element("button", "harmony-av-play");
  play.textContent = "▶";
  const scrub = element("input", "harmony-av-scrub", { flex: "1" });
  Object.assign(scrub, { type: "range", min: "0", max: "1000", value: "0" });
  const time = element("span", "harmony-av-time", { fontFamily: "monospace", fontSize: "11px" });
  const takes = element("select", "harmony-av-takes", { display: "none" });
  const mute = element("button", "harmony-av-mute");
  mute.textContent = "Mute";
  mute.title = "Mute / unmute the preview";
  const volume = element("input", "harmony-av-volume", { width: "64px" });
  Object.assign(volume, { type: "range", min: "0", max: "100", value: "80", title: "Volume" });
  bar.append(play, scrub, time, mute, volume, takes);
  const strips = element("div", "harmony-av-strips", { position: "relative", cursor: "pointer" });
  const frames = element("canvas", "harmony-frame-strip",
    { width: "100%", height: `${STRIP_HEIGHT}px`, display: "block" });
  const wave = element("canvas", "harmony-waveform",
    { width: "100%", height: `${WAVE_HEIGHT}px`, display: "block", background: "#111" });
  const head = element("div", "harmony-av-playhead",
    { position: "absolute", top: "0", bottom: "0", left: "0", width: "2px", background: "#f44" });
  frames.width = 512; frames.height = STRIP_HEIGHT;
  wave.width = 512; wave.height = WAVE_HEIGHT;
  strips.append(frames, wave, head);
  root.append(video, bar, strips);
  const state = { video, frames, wave, head, scrub, time, takes, mute, volume, urls: [] };
  takes.addEventListener("change", () => showClip(state, state.urls[Number(takes.value)]));
  wireControls(state, play, strips);
  wireSound(state);
  return { root, state };
}

function wireControls({ video, head, scrub, time }, play, strips) {
  const update = () => {
    const f = video.duration ? video.currentTime / video.duration : 0;
    head.style.left = `${(f * 100).toFixed(2)}%`;
    scrub.value = String(Math.round(f * 1000));
    time.textContent = `${video.currentTime.toFixed(2)} / ${(video.duration || 0).toFixed(2)} s`;
  };
  video.addEventListener("timeupdate", update);
  video.addEventListener("loadedmetadata", update);
  video.addEventListener("play", () => (play.textContent = "⏸"));
  video.addEventListener("pause", () => (play.textContent = "▶"));
  play.addEventListener("click", () => (video.paused ? video.play() : video.pause()));
  scrub.addEventListener("input", () => {
    if (video.duration) video.currentTime = (Number(scrub.value) / 1000) * video.duration;
  });
  const scrubTo = (event) => {
    const rect = strips.getBoundingClientRect();
    if (!video.duration || !rect.width) return;
    video.currentTime = ((event.clientX - rect.left) / rect.width) * video.duration;
  };
  strips.addEventListener("pointerdown", (event) => {
    scrubTo(event);
    const move = (e) => scrubTo(e);
    strips.addEventListener("pointermove", move);
    strips.addEventListener("pointerup", () => strips.removeEventListener("pointermove", move), { once: true });
  });
}

function wireSound({ video, mute, volume }) {
  const show = () => {
    const silent = video.muted || video.volume === 0;
    mute.textContent = silent ? "Unmute" : "Mute";
    mute.dataset.muted = String(video.muted);
    volume.value = String(Math.round(video.volume * 100));
  };
  video.volume = Number(volume.value) / 100;
  video.addEventListener("volumechange", show);
  mute.addEventListener("click", () => (video.muted = !video.muted));
  volume.addEventListener("input", () => {
    video.volume = Number(volume.value) / 100;
    if (video.volume > 0) video.muted = false;
  });
  show();
}

async function showClip(state, url) {
  const token = (state.token = {});
  const stale = () => state.token !== token; // a newer clip replaced this one meanwhile
  state.video.src = url;
  for (const canvas of [state.frames, state.wave]) {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    delete canvas.dataset.frames;
    delete canvas.dataset.peaks;
  }
  try {
    const seconds = await drawFrameStrip(state.frames, url, stale);
    if (seconds !== null) await drawWaveform(state.wave, url, seconds, stale);
  } catch (err) {
    state.wave.dataset.error = String(err);
    console.warn("[Harmony] preview:", err);
  }
}

function showClips(state, urls) {
  state.urls = urls;
  state.takes.replaceChildren(...urls.map((_, i) => Object.assign(document.createElement("option"),
    { value: String(i), textContent: `take ${i + 1}/${urls.length}` })));
  state.takes.style.display = urls.length > 1 ? "" : "none";
  state.takes.value = "0";
  showClip(state, urls[0]);
}

function previewWidget(node) {
  let widget = node.widgets?.find((w) => w.name === WIDGET);
  if (widget) return widget;
  const { root, state } = buildPreview();
  widget = node.addDOMWidget(WIDGET, "harmony_av_preview", root, { serialize: false, hideOnZoom: false });
  widget.serialize = false;
  widget.computeLayoutSize = () => ({ minHeight: 360, minWidth: 256 });
  widget.harmony = state;
  node.setSize([Math.max(node.size[0], 320), node.computeSize()[1]]);
  return widget;
}

function fedByMux(node) {
  const slot = node.inputs?.findIndex((input) => input.type === "VIDEO" && input.link != null) ?? -1;
  return slot >= 0 && node.getInputNode(slot)?.type === "HarmonyMux";
}

app.registerExtension({
  name: "Harmony.AVPreview",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const own = NODES.includes(nodeData.name);
    if (!own && !MUX_CONSUMERS.includes(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      const result = onExecuted?.apply(this, arguments);
      const urls = clipUrls(message);
      if (urls.length && (own || fedByMux(this))) showClips(previewWidget(this).harmony, urls);
      return result;
    };
  },
});
