// HarmonySampler (and HarmonyBestOfTakes, same inputs): show only the widgets and condition sockets that the
// chosen mode and guidance use, and mark the socket a mode needs as required (solid dot, "(required)" label).
//
// joint        : every widget; sockets audio_cond (reference voice) and reference (first frame)
// audio_driven : no audio-side guidance widgets (*_audio_scale, rescale_audio: the soundtrack is given);
//                sockets audio_cond, reference
// video_driven : no size / length / fps widgets (taken from the video) and no video-side guidance
//                (*_video_scale, rescale_video); sockets video_cond, audio_cond (reference voice)
//
// guidance "uniavgen" (UniAVGen's MA-CFG, which has no SyncCFG) also hides the sync_* widgets; its scales are
// text_video_scale / text_audio_scale. "default" hides nothing: the checkpoint decides, the editor cannot know.
//
// Hidden widgets keep their values (widgets_values never changes shape). A hidden socket is removed from the
// node and added back when the mode needs it again; a connected socket is never removed, so wiring that the
// mode does not use stays visible.
import { app } from "../../scripts/app.js";

const NODES = ["HarmonySampler", "HarmonyBestOfTakes"];
const MODE = "mode";
const GUIDANCE = "guidance";

const HIDDEN_WIDGETS = {
  joint: [],
  audio_driven: ["sync_audio_scale", "text_audio_scale", "rescale_audio"],
  video_driven: ["width", "height", "frames", "fps", "sync_video_scale", "text_video_scale", "rescale_video"],
};

const GUIDANCE_HIDDEN = {
  uniavgen: ["sync_video_scale", "sync_audio_scale", "sync_start", "sync_end"],
};

const SOCKETS = {
  audio_cond: { type: "HARMONY_AUDIO", modes: ["joint", "audio_driven", "video_driven"], needs: "audio_driven" },
  video_cond: { type: "HARMONY_VIDEO", modes: ["video_driven"], needs: "video_driven" },
  reference: { type: "HARMONY_IMAGE", modes: ["joint", "audio_driven"] },
};

const OPTIONAL_SHAPE = 7; // hollow circle, as the editor draws optional sockets
const REQUIRED_SHAPE = 2; // LiteGraph.ROUND_SHAPE: the filled dot of required sockets
const REQUIRED_LABEL = " (required)";

function currentValue(node, name, fallback) {
  return node.widgets?.find((w) => w.name === name)?.value ?? fallback;
}

function currentMode(node) {
  return currentValue(node, MODE, "joint");
}

const MANAGED = new Set([...Object.values(HIDDEN_WIDGETS).flat(), ...Object.values(GUIDANCE_HIDDEN).flat()]);

function applyWidgets(node, mode) {
  const guidance = currentValue(node, GUIDANCE, "default");
  const hidden = new Set([...(HIDDEN_WIDGETS[mode] ?? []), ...(GUIDANCE_HIDDEN[guidance] ?? [])]);
  let changed = false;
  for (const widget of node.widgets ?? []) {
    if (!MANAGED.has(widget.name) || Boolean(widget.hidden) === hidden.has(widget.name)) continue;
    widget.hidden = hidden.has(widget.name);
    changed = true;
  }
  return changed;
}

function markRequired(input, required) {
  const shape = required ? REQUIRED_SHAPE : OPTIONAL_SHAPE;
  const label = required ? `${input.name}${REQUIRED_LABEL}` : undefined;
  if (input.shape === shape && input.label === label) return false;
  input.shape = shape;
  input.label = label;
  return true;
}

function applySockets(node, mode) {
  let changed = false;
  for (const [name, { type, modes, needs }] of Object.entries(SOCKETS)) {
    let index = node.inputs?.findIndex((input) => input.name === name) ?? -1;
    const wanted = modes.includes(mode);
    if (wanted && index < 0) {
      node.addInput(name, type, { shape: OPTIONAL_SHAPE, localized_name: name });
      index = node.inputs.length - 1;
      changed = true;
    } else if (!wanted && index >= 0 && node.inputs[index].link == null) {
      node.removeInput(index);
      changed = true;
      continue;
    }
    if (index >= 0) changed = markRequired(node.inputs[index], needs === mode) || changed;
  }
  return changed;
}

function applyMode(node) {
  const mode = currentMode(node);
  const changed = applyWidgets(node, mode) | applySockets(node, mode);
  if (!changed) return;
  node.setSize([node.size[0], node.computeSize()[1]]);
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "Harmony.SamplerModes",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODES.includes(nodeData.name)) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      for (const widget of this.widgets?.filter((w) => w.name === MODE || w.name === GUIDANCE) ?? []) {
        const callback = widget.callback;
        widget.callback = (...args) => {
          const out = callback?.apply(widget, args);
          applyMode(this);
          return out;
        };
      }
      applyMode(this);
      return result;
    };
  },
  loadedGraphNode(node) {
    if (NODES.includes(node.comfyClass) || NODES.includes(node.type)) applyMode(node);
  },
});
