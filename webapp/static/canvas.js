// liverclick canvas view (webapp/canvas.py), first part: the state, coordinates, drawing and gestures. Runs as gr.HTML's
// js_on_load, with element, props, server and watch in scope, followed by answers.js (the server's answers, the
// result panel, downloads), in one script. Draws the tab's picture and the server's drawing of it at any zoom; the
// server holds the tab and its history and answers each input with everything to show: the page keeps no prompt.
const root = element.querySelector(".lc-viewer");
const stage = root.querySelector(".lc-stage");
const canvas = root.querySelector(".lc-canvas");
const ctx = canvas.getContext("2d");
const LESION = "rgb(255,196,0)", FILL = "rgba(255,196,0,0.3)", POSITIVE = "rgb(0,200,90)";
const NEGATIVE = "rgb(235,50,50)", BOX = "rgb(80,170,255)", DRAG_PX = 4, MIN_SCALE = 0.05, MAX_SCALE = 40;

const words = root.dataset; // what the page says without the server (webapp/text.py, CANVAS)
const st = {
  key: null, picture: null, url: null, drawnUrl: null, width: 0, height: 0, name: "image",
  scale: 1, ox: 0, oy: 0, fitted: false,
  shown: { version: 0, inputs: [], outline: [], diameter: null, can_undo: false, result: null, status: "", review: null },
  pending: [], inflight: [], mode: "lesion", hover: null, press: null, corner: null, space: false,
  message: "", timings: [], drawn: 0,
};
root.__liverclick = st; // read by the browser tests and benchmarks/browser_latency.py

// --- coordinates: screen (CSS px in the stage) = image px * scale + offset ---------------------------------
function toImage(ev) {
  const r = canvas.getBoundingClientRect();
  return { x: (ev.clientX - r.left - st.ox) / st.scale, y: (ev.clientY - r.top - st.oy) / st.scale };
}
const inside = (p) => p.x >= 0 && p.y >= 0 && p.x < st.width && p.y < st.height;
const pixel = (v, n) => Math.min(Math.max(Math.floor(v), 0), n - 1);

function fit() {
  if (!st.width) return;
  const w = stage.clientWidth, h = stage.clientHeight;
  st.scale = Math.min(w / st.width, h / st.height);
  st.ox = (w - st.width * st.scale) / 2;
  st.oy = (h - st.height * st.scale) / 2;
  st.fitted = true;
}

function zoomAt(factor, sx, sy) {
  const scale = Math.min(Math.max(st.scale * factor, MIN_SCALE), MAX_SCALE);
  st.ox = sx - ((sx - st.ox) * scale) / st.scale;
  st.oy = sy - ((sy - st.oy) * scale) / st.scale;
  st.scale = scale;
  draw();
}
const zoomCentre = (factor) => zoomAt(factor, stage.clientWidth / 2, stage.clientHeight / 2);

// --- what is shown: the server's inputs in force, then the clicks and boxes not answered yet, as they were made --
function inputsShown() {
  const made = [...st.inflight, ...st.pending].map((p) => p.action).filter((a) => typeof a === "object");
  return [...st.shown.inputs, ...made];
}

st.inputsShown = inputsShown;

function draw() {
  const dpr = window.devicePixelRatio || 1, w = stage.clientWidth, h = stage.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, w, h);
  root.querySelector(".lc-zoom").textContent = `${Math.round(st.scale * 100)}%`;
  if (!st.picture) {
    ctx.fillStyle = "#aaa";
    ctx.font = "15px sans-serif";
    ctx.fillText(words.empty, 16, 28);
    return;
  }
  ctx.save();
  ctx.translate(st.ox, st.oy);
  ctx.scale(st.scale, st.scale);
  ctx.imageSmoothingEnabled = st.scale < 2;
  ctx.drawImage(st.picture, 0, 0, st.width, st.height);
  if (st.shown.outline.length) {
    ctx.beginPath();
    for (const poly of st.shown.outline) {
      poly.forEach(([x, y], i) => (i ? ctx.lineTo(x + 0.5, y + 0.5) : ctx.moveTo(x + 0.5, y + 0.5)));
      ctx.closePath();
    }
    ctx.fillStyle = FILL;
    ctx.fill();
    ctx.strokeStyle = LESION;
    ctx.lineWidth = 2 / st.scale;
    ctx.stroke();
  }
  if (st.shown.diameter) {
    const [[x0, y0], [x1, y1]] = st.shown.diameter;
    ctx.beginPath();
    ctx.moveTo(x0 + 0.5, y0 + 0.5);
    ctx.lineTo(x1 + 0.5, y1 + 0.5);
    ctx.strokeStyle = "white";
    ctx.lineWidth = 1 / st.scale;
    ctx.stroke();
  }
  ctx.restore();
  const inputs = inputsShown();
  for (const i of inputs) if (i.box) drawBox(i.box, false);
  for (const i of inputs) if (!i.box) drawMarker(i.x, i.y, i.positive);
  if (st.press && st.press.box) drawBox(st.press.box, true);
  if (st.corner) drawMarker(st.corner.x, st.corner.y, null);
  if (st.hover && !st.press) {
    const [sx, sy] = screenOf(st.hover.x, st.hover.y);
    ctx.strokeStyle = "rgba(255,255,255,0.45)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, sy);
    ctx.lineTo(w, sy);
    ctx.moveTo(sx, 0);
    ctx.lineTo(sx, h);
    ctx.stroke();
  }
}

const screenOf = (x, y) => [st.ox + x * st.scale, st.oy + y * st.scale];

function drawBox(b, dashed) {
  const [x0, y0] = screenOf(Math.min(b[0], b[2]), Math.min(b[1], b[3]));
  const [x1, y1] = screenOf(Math.max(b[0], b[2]) + 1, Math.max(b[1], b[3]) + 1);
  ctx.setLineDash(dashed ? [6, 4] : []);
  ctx.strokeStyle = BOX;
  ctx.lineWidth = 2;
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  ctx.setLineDash([]);
}

// A marker keeps its sign (+ lesion, - background) so that it reads without colour; null: a box's first corner.
function drawMarker(x, y, positive) {
  const [sx, sy] = screenOf(x + 0.5, y + 0.5), r = 7;
  ctx.beginPath();
  ctx.arc(sx, sy, r + 1.5, 0, 2 * Math.PI);
  ctx.fillStyle = "white";
  ctx.fill();
  ctx.beginPath();
  ctx.arc(sx, sy, r, 0, 2 * Math.PI);
  ctx.fillStyle = positive === null ? BOX : positive ? POSITIVE : NEGATIVE;
  ctx.fill();
  ctx.strokeStyle = "white";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(sx - 4, sy);
  ctx.lineTo(sx + 4, sy);
  if (positive !== false) {
    ctx.moveTo(sx, sy - 4);
    ctx.lineTo(sx, sy + 4);
  }
  ctx.stroke();
}

// --- gestures --------------------------------------------------------------------------------------------------
canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
canvas.addEventListener("mousedown", (ev) => {
  root.focus({ preventScroll: true });
  const r = canvas.getBoundingClientRect();
  const sx = ev.clientX - r.left, sy = ev.clientY - r.top;
  if (ev.button === 1 || (ev.button === 0 && st.space)) {
    ev.preventDefault();
    st.press = { pan: true, sx, sy, ox: st.ox, oy: st.oy };
  } else if (ev.button === 0 || ev.button === 2) {
    st.press = { button: ev.button, shift: ev.shiftKey, sx, sy, at: toImage(ev), box: null };
  }
});
window.addEventListener("mousemove", (ev) => {
  const r = canvas.getBoundingClientRect();
  const sx = ev.clientX - r.left, sy = ev.clientY - r.top;
  const p = st.press;
  if (p && p.pan) {
    st.ox = p.ox + sx - p.sx;
    st.oy = p.oy + sy - p.sy;
  } else if (p && p.button === 0 && (p.box || Math.hypot(sx - p.sx, sy - p.sy) > DRAG_PX)) {
    const q = toImage(ev);
    p.box = [p.at.x, p.at.y, q.x, q.y].map((v, i) => pixel(v, i % 2 ? st.height : st.width));
  }
  const over = ev.target === canvas;
  st.hover = over && st.picture ? toImage(ev) : null;
  if (over || p) draw();
});
window.addEventListener("mouseup", (ev) => {
  const p = st.press;
  st.press = null;
  if (!p || p.pan) return draw();
  if (p.box) {
    const b = p.box;
    if (b[0] !== b[2] && b[1] !== b[3]) enqueue({ box: b }, ev.timeStamp);
    return draw();
  }
  if (!inside(p.at)) return draw();
  const x = pixel(p.at.x, st.width), y = pixel(p.at.y, st.height);
  if (st.mode === "box" && p.button === 0 && !p.shift) {
    if (!st.corner) {
      st.corner = { x, y };
      return draw();
    }
    const c = st.corner;
    if (c.x !== x && c.y !== y) enqueue({ box: [c.x, c.y, x, y] }, ev.timeStamp);
    return draw();
  }
  const positive = p.button === 0 && !p.shift && st.mode !== "background";
  enqueue({ x, y, positive }, ev.timeStamp);
});
canvas.addEventListener("mouseleave", () => {
  st.hover = null;
  draw();
});
canvas.addEventListener(
  "wheel",
  (ev) => {
    if (!st.picture) return;
    ev.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  },
  { passive: false },
);
root.addEventListener("keydown", (ev) => {
  if (ev.target !== root) return;
  const k = ev.key;
  if ((k === "z" || k === "Z") && !ev.altKey) enqueue("undo", ev.timeStamp);
  else if (k === "Escape") {
    st.corner = null;
    enqueue("clear", ev.timeStamp);
  } else if (k === "+" || k === "=") zoomCentre(1.25);
  else if (k === "-" || k === "_") zoomCentre(0.8);
  else if (k === "0") {
    fit();
    draw();
  } else if (k === " ") st.space = true;
  else return;
  ev.preventDefault();
});
root.addEventListener("keyup", (ev) => {
  if (ev.key === " ") st.space = false;
});

root.querySelectorAll("[data-mode]").forEach((b) =>
  b.addEventListener("click", () => {
    st.mode = b.dataset.mode;
    st.corner = null;
    root.querySelectorAll("[data-mode]").forEach((o) => o.setAttribute("aria-pressed", String(o === b)));
    draw();
  }),
);
const buttons = {
  undo: () => enqueue("undo"),
  clear: () => enqueue("clear"),
  "zoom-in": () => zoomCentre(1.25),
  "zoom-out": () => zoomCentre(0.8),
  fit: () => {
    fit();
    draw();
  },
  save: () => canvas.toBlob((blob) => save(blob, `${st.name}_view.png`)),
  fullscreen: () => (document.fullscreenElement ? document.exitFullscreen() : root.requestFullscreen()),
};
root.querySelectorAll("[data-act]").forEach((b) => b.addEventListener("click", () => buttons[b.dataset.act]()));
root.querySelectorAll("[data-download]").forEach((b) => b.addEventListener("click", () => download(b.dataset.download)));
new ResizeObserver(() => {
  if (!st.fitted || !st.picture) fit();
  draw();
}).observe(stage);
