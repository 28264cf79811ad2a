// liverclick canvas view (webapp/canvas.py), second part, run after canvas.js in the same script: every input goes
// to server.canvas_act, queued in order, one call at a time (inputs made meanwhile go together in the next call);
// each answer is the tab's whole drawing, shown with its result panel. Downloads are made by server.canvas_file.

// --- the result panel, built from text nodes (no HTML from the server) --------------------------------------
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function bar(label, p, cls) {
  const row = el("div", `lc-bar ${cls || ""}`);
  row.append(el("span", "lc-bar-label", label), el("span", "lc-bar-value", `${(100 * p).toFixed(0)}%`));
  const track = el("span", "lc-bar-track");
  const fill = el("span", "lc-bar-fill");
  fill.style.width = `${(100 * p).toFixed(1)}%`;
  track.append(fill);
  row.append(track);
  return row;
}

function showResult() {
  const box = root.querySelector(".lc-result"), r = st.shown.result;
  box.replaceChildren();
  root.querySelector(".lc-status").textContent = st.shown.status || "";
  root.querySelector(".lc-review").textContent = st.shown.review || "";
  const msg = root.querySelector(".lc-message");
  msg.textContent = st.message || "";
  msg.hidden = !st.message;
  if (!r) return;
  const malignancy = el("div", "lc-malignancy");
  malignancy.append(bar(r.malignant_label, r.malignant_prob, "lc-malignant"), el("p", "lc-sentence", r.sentence));
  const details = el("details", "lc-details");
  details.append(el("summary", "", r.details_heading));
  for (const line of r.details) details.append(el("p", "lc-op", line));
  malignancy.append(details);
  const classes = el("div", "lc-classes");
  if (r.classes.length > 2) {
    // a benign/malignant model's malignant probability says it all
    classes.append(el("div", "lc-heading", r.classes_heading));
    for (const c of r.classes) classes.append(bar(c.label, c.p));
  }
  const table = el("table", "lc-lesion");
  for (const [label, value] of r.rows) {
    const tr = el("tr");
    tr.append(el("th", "", label), el("td", "", value));
    table.append(tr);
  }
  box.append(malignancy, classes, table);
}

// --- the server: one call at a time; inputs made meanwhile wait and go together ------------------------------
// An input is a prompt input's JSON (a click {x, y, positive}, a box {box: [x0, y0, x1, y1]}) or "undo" or "clear".
function enqueue(action, t0) {
  if (!st.picture || !st.key) return;
  const kind = typeof action === "string" ? action : action.box ? "box" : "click";
  st.pending.push({ action, kind, t0: t0 === undefined ? performance.now() : t0 });
  st.corner = null;
  draw();
  pump();
}

async function pump() {
  if (st.inflight.length || !st.pending.length) return;
  st.inflight = st.pending;
  st.pending = [];
  const busy = root.querySelector(".lc-busy"), key = st.key;
  busy.textContent = words.working;
  let answer;
  try {
    const actions = st.inflight.map((p) => p.action);
    answer = await server.canvas_act({ key, picture: st.drawnUrl, actions });
  } catch (e) {
    answer = undefined;
  }
  const done = st.inflight;
  st.inflight = [];
  if (!answer) {
    st.message = words.noAnswer;
  } else if (answer.error) {
    st.message = answer.error;
  } else if (key === st.key) { // not for a tab the page has left meanwhile
    st.message = answer.overlay.message || "";
    if (answer.overlay.version >= st.shown.version) st.shown = answer.overlay;
  }
  draw();
  showResult();
  busy.textContent = st.pending.length ? words.working : "";
  requestAnimationFrame(() => {
    const t1 = performance.now();
    for (const a of done) st.timings.push({ kind: a.kind, t0: a.t0, ms: t1 - a.t0, batch: done.length });
    st.drawn += done.length;
    root.dataset.drawn = String(st.drawn);
  });
  if (st.pending.length) pump();
}

// --- downloads: made by the server when asked for (server.canvas_file) ----------------------------------------
function save(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function download(kind) {
  if (!st.key) return;
  let file;
  try {
    file = await server.canvas_file({ key: st.key, kind });
  } catch (e) {
    file = undefined;
  }
  if (!file || file.error) {
    st.message = file ? file.error : words.noAnswer;
    return showResult();
  }
  const bytes = Uint8Array.from(atob(file.base64), (c) => c.charCodeAt(0));
  save(new Blob([bytes], { type: file.type }), file.name);
}

// --- what Python sends: a new picture, or a tab shown by the page's events (upload, frame, review) ------------
function fromValue() {
  const v = props.value;
  if (!v || typeof v !== "object") return;
  const another = (v.key || null) !== st.key; // another tab: its versions start afresh
  st.key = v.key || null;
  const image = v.image;
  if (!image) {
    st.picture = null;
    st.url = st.drawnUrl = null;
    st.width = 0;
  } else if (image.url !== st.url) {
    st.url = image.url;
    st.pending = [];
    st.corner = null;
    const picture = new Image();
    picture.onload = () => {
      if (st.url !== image.url) return;
      const resized = image.width !== st.width || image.height !== st.height;
      st.picture = picture;
      st.drawnUrl = image.url; // the picture the inputs are made on, until the next one has loaded
      st.width = image.width;
      st.height = image.height;
      st.name = image.name || "image";
      if (resized || !st.fitted) fit();
      draw();
      root.dataset.picture = image.url;
    };
    picture.src = new URL(image.url, document.baseURI).href;
  }
  if (v.overlay && (another || v.overlay.version >= st.shown.version || !image)) {
    st.shown = v.overlay;
    st.message = v.overlay.message || "";
  }
  draw();
  showResult();
}

watch("value", fromValue);
fromValue();
