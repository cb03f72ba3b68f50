// The s2s translation page: everything it shows comes from the JSON API (see README, "Demo").
"use strict";

const $ = (id) => document.getElementById(id);
const FONT = getComputedStyle(document.documentElement).getPropertyValue("--cjk");
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
const DEBOUNCE_MS = 250;

let info = null;
let latest = 0; // number of the last request sent; older answers are dropped
let result = null; // the last translate answer shown
let chosen = { line: 0, hyp: 0 };
let automaton = null;
let timer = null;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(`${response.status}: ${data.detail || response.statusText}`);
  return data;
}

// Plotly reads labels as HTML: "</s>" would vanish and "<unk>" could too.
const escape = (piece) => piece.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function status(message, error = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", error);
}

function request() {
  const req = { text: $("source").value, nbest: Math.max(1, +$("nbest").value || 1) };
  if ($("sample").checked) {
    req.nbest = 1;
    req.sampling = { temperature: +$("temperature").value, top_k: +$("topk").value, seed: +$("seed").value };
  } else if (info.features.search) {
    req.beam_size = +$("beam").value;
    req.alpha = +$("alpha").value;
    req.nbest = Math.min(req.nbest, req.beam_size);
  } else {
    req.nbest = Math.min(req.nbest, info.beam_size);
  }
  req.attention = info.features.attention;
  return req;
}

function schedule() {
  document.body.dataset.pending = "1";
  clearTimeout(timer);
  timer = setTimeout(translate, DEBOUNCE_MS);
}

async function translate() {
  const id = ++latest;
  const req = request();
  try {
    if (!req.text.trim()) {
      result = null;
      show();
      status("");
      return;
    }
    status("translating…");
    const answer = await api("/api/translate", req);
    if (id !== latest) return;
    result = answer;
    if (chosen.line >= answer.lines.length) chosen = { line: 0, hyp: 0 };
    chosen.hyp = 0;
    show();
    const s = answer.settings;
    const how = s.sampling ? `sampling at temperature ${s.sampling.temperature}, top-k ${s.sampling.top_k}, seed ${s.sampling.seed}`
      : s.beam_size === 1 ? "greedy" : `beam ${s.beam_size}, alpha ${s.alpha}`;
    const n = answer.lines.length;
    status(`${n} line${n > 1 ? "s" : ""} in ${answer.milliseconds.toFixed(0)} ms (${how})`);
    if (info.features.states) await showStates(req.text, id);
  } catch (error) {
    if (id === latest) status(error.message, true);
  } finally {
    if (id === latest) document.body.dataset.pending = "0";
  }
}

function show() {
  const box = $("lines");
  box.replaceChildren();
  const lines = result ? result.lines : [];
  lines.forEach((line, i) => {
    const row = el("div", "line" + (i === chosen.line ? " selected" : ""));
    row.id = `line-${i}`;
    const text = el("span", "translation", line.translation);
    text.id = `translation-${i}`;
    row.append(text);
    if (line.hypotheses.length) row.append(el("span", "score", line.score.toFixed(3)));
    if (line.truncated) {
      row.append(el("span", "note", `too long: its first ${info.max_src_pieces} pieces translated`));
    }
    row.onclick = () => { chosen = { line: i, hyp: 0 }; show(); };
    box.append(row);
  });
  showDetail(lines[chosen.line]);
}

function showDetail(line) {
  const table = $("nbest-table");
  table.replaceChildren();
  const hyps = line ? line.hypotheses : [];
  hyps.forEach((hyp, j) => {
    const tr = el("tr", j === chosen.hyp ? "chosen" : "");
    tr.append(el("td", "num", `${j + 1}`), el("td", "", hyp.text), el("td", "num", hyp.score.toFixed(3)));
    tr.onclick = () => { chosen.hyp = j; showDetail(line); };
    table.append(tr);
  });
  const hyp = hyps[chosen.hyp];
  $("why").hidden = !info.features.attention;
  if (hyp && hyp.attention) showAttention(line, hyp);
  else { Plotly.purge("heatmap"); $("target-strip").replaceChildren(); $("source-strip").replaceChildren(); }
}

function showAttention(line, hyp) {
  const rows = hyp.pieces.map((_, t) => t);
  const cols = line.source_pieces.map((_, s) => s);
  const hover = hyp.attention.map((row, t) => row.map((w, s) =>
    `${escape(hyp.pieces[t])} ← ${escape(line.source_pieces[s])}: ${w.toFixed(3)}`));
  const longest = Math.max(...hyp.pieces.map((p) => p.length));
  const column = Math.max(40, 16 * Math.max(...line.source_pieces.map((p) => p.length)));
  const slanted = column * cols.length > 900; // long pieces: slant the labels, keep them all
  const layout = {
    font: { family: FONT, size: 14 },
    height: (slanted ? 160 : 110) + 28 * rows.length,
    width: Math.min(1100, 140 + 10 * longest + (slanted ? 40 : column) * cols.length),
    margin: { l: 40 + 10 * longest, r: 20, t: slanted ? 130 : 80, b: 20 },
    xaxis: { tickvals: cols, ticktext: line.source_pieces.map(escape), side: "top",
      tickangle: slanted ? -60 : 0, fixedrange: true },
    yaxis: { tickvals: rows, ticktext: hyp.pieces.map(escape), autorange: "reversed", fixedrange: true },
  };
  const trace = {
    type: "heatmap", z: hyp.attention, x: cols, y: rows, zmin: 0, zmax: 1,
    colorscale: [[0, "#ffffff"], [0.5, "#6baed6"], [1, "#08306b"]],
    customdata: hover, hovertemplate: "%{customdata}<extra></extra>", colorbar: { thickness: 12 },
  };
  const plot = $("heatmap");
  Plotly.react(plot, [trace], layout, { displayModeBar: false });
  plot.removeAllListeners?.("plotly_hover");
  plot.removeAllListeners?.("plotly_unhover");
  plot.on("plotly_hover", (event) => highlight(line, hyp, event.points[0].y));
  plot.on("plotly_unhover", () => highlight(line, hyp, null));

  const target = $("target-strip");
  target.replaceChildren(...hyp.pieces.map((piece, t) => {
    const span = el("span", "", piece);
    span.onmouseenter = () => highlight(line, hyp, t);
    span.onmouseleave = () => highlight(line, hyp, null);
    return span;
  }));
  $("source-strip").replaceChildren(...line.source_pieces.map((piece) => el("span", "", piece)));
}

// Target piece t (null: none) and the source pieces it attended to, shaded by weight.
function highlight(line, hyp, t) {
  [...$("target-strip").children].forEach((span, i) => span.classList.toggle("active", i === t));
  [...$("source-strip").children].forEach((span, s) => {
    const w = t === null ? 0 : hyp.attention[t][s];
    span.style.background = `rgba(31, 119, 180, ${w.toFixed(3)})`;
    span.style.color = w > 0.5 ? "#fff" : "";
  });
  const shapes = t === null ? [] : [{
    type: "rect", xref: "paper", x0: 0, x1: 1, y0: t - 0.5, y1: t + 0.5,
    line: { color: "#d62728", width: 2 },
  }];
  Plotly.relayout("heatmap", { shapes });
}

async function showStates(text, id) {
  if (!automaton) automaton = await api("/api/automaton");
  const sentence = await api("/api/states", { text });
  if (id !== latest) return;
  const map = automaton;
  const traces = [];
  for (let c = 0; c < map.k; c++) {
    const idx = map.clusters.flatMap((label, i) => (label === c ? [i] : []));
    traces.push({
      type: "scatter", mode: "markers", name: `cluster ${c}`, hoverinfo: "text",
      x: idx.map((i) => map.points[i][0]), y: idx.map((i) => map.points[i][1]),
      text: idx.map((i) => escape(map.pieces[i])),
      marker: { size: 5, opacity: 0.25, color: PALETTE[c % PALETTE.length] },
    });
  }
  traces.push({
    type: "scatter", mode: "lines+markers+text", name: "this sentence",
    x: sentence.points.map((p) => p[0]), y: sentence.points.map((p) => p[1]),
    text: sentence.pieces.map(escape), textposition: "top center", textfont: { size: 15 },
    hovertext: sentence.pieces.map((p, i) => `${i + 1}. ${escape(p)}: cluster ${sentence.clusters[i]}`),
    hoverinfo: "text", line: { color: "#444", width: 1 },
    marker: { size: 11, color: sentence.clusters.map((c) => PALETTE[c % PALETTE.length]),
      line: { color: "#000", width: 1 } },
  });
  const [a, b] = map.explained.map((e) => (100 * e).toFixed(0));
  $("states-caption").textContent = `the sentence's path over ${map.sentences} dev sentences' ` +
    `states: PCA (${a}% + ${b}% of the variance), colours are ${map.k} k-means clusters`;
  Plotly.react("states", traces, {
    font: { family: FONT }, height: 460, margin: { l: 40, r: 20, t: 20, b: 30 },
    xaxis: { zeroline: false }, yaxis: { zeroline: false }, legend: { orientation: "h" },
  }, { displayModeBar: false });
}

function controls() {
  const sampling = $("sample").checked;
  $("search").disabled = sampling || !info.features.search;
  $("sampling").disabled = !info.features.sampling;
  for (const id of ["temperature", "topk", "seed"]) $(id).disabled = !sampling;
  $("nbest").disabled = sampling;
}

async function start() {
  info = await api("/api/info");
  $("model").textContent = `${info.src_lang} → ${info.tgt_lang} · ${info.kind} ${info.run}`;
  $("beam").value = info.beam_size;
  $("beam").max = info.max_beam;
  $("alpha").value = info.alpha;
  $("nbest").max = info.max_beam;
  controls();
  $("source").addEventListener("input", schedule);
  for (const input of document.querySelectorAll("fieldset input")) {
    input.addEventListener("change", () => { controls(); schedule(); });
  }
  document.body.dataset.ready = "1";
  if ($("source").value.trim()) schedule();
}

start().catch((error) => status(`cannot reach the server: ${error.message}`, true));
