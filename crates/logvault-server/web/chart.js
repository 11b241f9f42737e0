// Charts drawn as SVG by hand (nothing is fetched): time charts (lines over a datetime
// column, one line per numeric column or per value of a string column), bar charts and pie
// charts, as KQL's `render` asks; and the small bars of the ingestion view.
"use strict";

const LvChart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#0b5cad", "#d1495b", "#2a9d8f", "#e9a800", "#7b2cbf", "#3d405b",
    "#ef6f6c", "#118ab2", "#8a5a44", "#6a994e"];
  const NUMERIC = new Set(["long", "int", "real", "decimal"]);

  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svgRoot(width, height, label) {
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
    svg.appendChild(el("title", {}, label));
    return svg;
  }

  function fmt(v) {
    if (typeof v !== "number" || !isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  }

  function niceTicks(lo, hi, n) {
    if (lo === hi) { hi = lo + 1; }
    const step0 = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
    const ticks = [];
    const top = Math.ceil(hi / step - 1e-9) * step;
    for (let t = Math.floor(lo / step + 1e-9) * step; t <= top + step * 1e-9; t += step) ticks.push(t);
    return ticks;
  }

  function legend(names) {
    const div = document.createElement("div");
    div.className = "legend";
    names.forEach((name, i) => {
      const item = document.createElement("span");
      const sw = el("svg", { viewBox: "0 0 12 12", width: 12, height: 12, "aria-hidden": "true", class: "swatch" });
      sw.appendChild(el("rect", { width: 12, height: 12, fill: COLORS[i % COLORS.length] }));
      item.appendChild(sw);
      item.appendChild(document.createTextNode(" " + name));
      div.appendChild(item);
    });
    return div;
  }

  // Which columns play which part: x (datetime or first), values (numeric), series (string).
  function roles(columns) {
    const idx = (pred) => columns.findIndex(pred);
    const time = idx((c) => c.type === "datetime");
    const values = columns.map((c, i) => (NUMERIC.has(c.type) ? i : -1)).filter((i) => i >= 0);
    const label = idx((c, i) => !NUMERIC.has(c.type) && i !== time);
    return { time, values, label };
  }

  function timechart(columns, rows, title) {
    const r = roles(columns);
    if (r.time < 0 || r.values.length === 0) {
      return null;
    }
    const series = new Map();
    for (const row of rows) {
      const t = Date.parse(row[r.time]);
      if (isNaN(t)) continue;
      for (const vi of r.values) {
        const v = row[vi];
        if (v === null || v === undefined || isNaN(Number(v))) continue;
        let name = columns[vi].name;
        if (r.label >= 0) {
          const l = String(row[r.label]);
          name = r.values.length > 1 ? `${l} ${name}` : l;
        }
        if (!series.has(name)) series.set(name, []);
        series.get(name).push([t, Number(v)]);
      }
    }
    if (series.size === 0) return null;
    const W = 900, H = 320, L = 60, R = 16, T = 12, B = 40;
    let x0 = Infinity, x1 = -Infinity, y0 = 0, y1 = -Infinity;
    for (const pts of series.values()) {
      pts.sort((a, b) => a[0] - b[0]);
      for (const [x, y] of pts) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
    if (x0 === x1) { x0 -= 1000; x1 += 1000; }
    if (y1 <= y0) y1 = y0 + 1;
    const ticks = niceTicks(y0, y1, 5);
    y0 = Math.min(y0, ticks[0]);
    y1 = Math.max(y1, ticks[ticks.length - 1]);
    const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const sy = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
    const svg = svgRoot(W, H, title);
    for (const t of ticks) {
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), stroke: "#e3e6ea" }));
      svg.appendChild(el("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end", "font-size": 11, fill: "#57606a" }, fmt(t)));
    }
    for (let i = 0; i <= 4; i++) {
      const x = x0 + ((x1 - x0) * i) / 4;
      const d = new Date(x);
      const span = x1 - x0;
      const iso = d.toISOString();
      const text = span > 2 * 86400000 ? iso.slice(5, 10)
        : span > 3600000 ? iso.slice(11, 16) : iso.slice(11, 19);
      svg.appendChild(el("text", { x: sx(x), y: H - B + 16, "text-anchor": "middle", "font-size": 11, fill: "#57606a" }, text));
    }
    svg.appendChild(el("text", { x: W - R, y: H - 6, "text-anchor": "end", "font-size": 11, fill: "#57606a" },
      new Date(x0).toISOString().slice(0, 16).replace("T", " ") + " to " + new Date(x1).toISOString().slice(0, 16).replace("T", " ") + " UTC"));
    svg.appendChild(el("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#8c959f" }));
    svg.appendChild(el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#8c959f" }));
    let i = 0;
    for (const [name, pts] of series) {
      const color = COLORS[i++ % COLORS.length];
      const d = pts.map(([x, y], j) => `${j ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
      const path = el("path", { d, fill: "none", stroke: color, "stroke-width": 2, class: "series" });
      path.appendChild(el("title", {}, name));
      svg.appendChild(path);
      if (pts.length <= 60) {
        for (const [x, y] of pts) {
          const c = el("circle", { cx: sx(x).toFixed(1), cy: sy(y).toFixed(1), r: 2.5, fill: color });
          c.appendChild(el("title", {}, `${name}: ${fmt(y)} at ${new Date(x).toISOString()}`));
          svg.appendChild(c);
        }
      }
    }
    return { svg, legend: legend([...series.keys()]) };
  }

  function categories(columns, rows) {
    const r = roles(columns);
    const vi = r.values[0];
    if (vi === undefined) return null;
    const li = r.label >= 0 ? r.label : (r.time >= 0 ? r.time : -1);
    return rows.slice(0, 50).map((row, i) => [li >= 0 ? String(row[li]) : String(i + 1), Number(row[vi]) || 0]);
  }

  function barchart(columns, rows, title) {
    const data = categories(columns, rows);
    if (!data || data.length === 0) return null;
    const W = 900, rowH = 22, L = 180, R = 60, T = 6;
    const H = T * 2 + rowH * data.length;
    const max = Math.max(1, ...data.map((d) => d[1]));
    const svg = svgRoot(W, H, title);
    data.forEach(([name, v], i) => {
      const y = T + i * rowH;
      const w = Math.max(0, (v / max) * (W - L - R));
      svg.appendChild(el("text", { x: L - 6, y: y + 15, "text-anchor": "end", "font-size": 12, fill: "#1b1f24" }, name.length > 26 ? name.slice(0, 25) + "…" : name));
      const bar = el("rect", { x: L, y: y + 3, width: w.toFixed(1), height: rowH - 6, fill: COLORS[0], class: "series" });
      bar.appendChild(el("title", {}, `${name}: ${fmt(v)}`));
      svg.appendChild(bar);
      svg.appendChild(el("text", { x: L + w + 4, y: y + 15, "font-size": 11, fill: "#57606a" }, fmt(v)));
    });
    return { svg, legend: null };
  }

  function piechart(columns, rows, title) {
    const data = categories(columns, rows);
    if (!data || data.length === 0) return null;
    const total = data.reduce((a, d) => a + Math.max(0, d[1]), 0);
    if (total <= 0) return null;
    const W = 420, H = 320, cx = 160, cy = 160, rad = 140;
    const svg = svgRoot(W, H, title);
    let a0 = -Math.PI / 2;
    data.forEach(([name, v], i) => {
      const frac = Math.max(0, v) / total;
      const a1 = a0 + frac * 2 * Math.PI;
      const large = a1 - a0 > Math.PI ? 1 : 0;
      const p = (a) => `${(cx + rad * Math.cos(a)).toFixed(1)},${(cy + rad * Math.sin(a)).toFixed(1)}`;
      const d = frac >= 0.9999
        ? `M${cx - rad},${cy}A${rad},${rad} 0 1 1 ${cx + rad},${cy}A${rad},${rad} 0 1 1 ${cx - rad},${cy}Z`
        : `M${cx},${cy}L${p(a0)}A${rad},${rad} 0 ${large} 1 ${p(a1)}Z`;
      const slice = el("path", { d, fill: COLORS[i % COLORS.length], stroke: "#fff", class: "series" });
      slice.appendChild(el("title", {}, `${name}: ${fmt(v)} (${(frac * 100).toFixed(1)}%)`));
      svg.appendChild(slice);
      a0 = a1;
    });
    return { svg, legend: legend(data.map((d) => d[0])) };
  }

  // Draws `kind` for a result into `container`; false when the result has nothing to chart.
  function draw(container, kind, columns, rows) {
    let k = (kind || "").toLowerCase();
    if (!k) k = roles(columns).time >= 0 ? "timechart" : "barchart";
    const title = `${k} of ${rows.length} rows`;
    let made;
    if (k === "piechart") made = piechart(columns, rows, title);
    else if (k === "barchart" || k === "columnchart") made = barchart(columns, rows, title);
    else made = timechart(columns, rows, title) || barchart(columns, rows, title);
    container.replaceChildren();
    if (!made) return false;
    container.appendChild(made.svg);
    if (made.legend) container.appendChild(made.legend);
    return true;
  }

  // Small bars of one series over hours (the ingestion view).
  function bars(values, labels, title, color, what) {
    const W = 360, H = 100, B = 16, T = 18;
    const max = Math.max(1, ...values);
    const w = (W - 2) / Math.max(1, values.length);
    const svg = svgRoot(W, H, title);
    values.forEach((v, i) => {
      const h = (v / max) * (H - B - T);
      const r = el("rect", { x: (1 + i * w).toFixed(1), y: (H - B - h).toFixed(1), width: Math.max(1, w - 1).toFixed(1), height: h.toFixed(1), fill: color || COLORS[0] });
      r.appendChild(el("title", {}, `${labels[i]}: ${fmt(v)}`));
      svg.appendChild(r);
    });
    svg.appendChild(el("line", { x1: 0, x2: W, y1: H - B, y2: H - B, stroke: "#8c959f" }));
    svg.appendChild(el("text", { x: 2, y: H - 3, "font-size": 10, fill: "#57606a" }, labels[0] || ""));
    svg.appendChild(el("text", { x: W - 2, y: H - 3, "font-size": 10, fill: "#57606a", "text-anchor": "end" }, labels[labels.length - 1] || ""));
    svg.appendChild(el("text", { x: 2, y: 12, "font-size": 11, fill: "#1b1f24" }, what || ""));
    svg.appendChild(el("text", { x: W - 2, y: 12, "font-size": 10, fill: "#57606a", "text-anchor": "end" }, "max " + fmt(max)));
    return svg;
  }

  return { draw, bars, fmt };
})();
