// logvault's web page: sign-in, the query view (editor with completion, results, charts),
// saved queries and functions, keys and health (with the revoked-key banner) and ingestion.
// It calls the same HTTP API as every other client; with the session cookie, each call carries
// the session's CSRF value in `x-logvault-csrf`.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const state = {
    csrf: null,
    workspaces: [],
    schema: null,
    result: null,
    controller: null,
    status: null,
    pollTimer: null,
    sort: null,
  };
  const KEYWORDS = ["where", "project", "project-away", "project-rename", "extend", "summarize",
    "count", "take", "limit", "top", "sort by", "order by", "join", "union", "render", "distinct",
    "parse", "mv-expand", "make-series", "let", "bin", "ago", "now", "by", "asc", "desc",
    "timechart", "barchart", "piechart", "columnchart", "contains", "has", "startswith",
    "between", "in", "and", "or", "not"];

  // ---- API -----------------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (state.csrf) headers["x-logvault-csrf"] = state.csrf;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      options.body = JSON.stringify(options.json);
    }
    const response = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.body,
      credentials: "same-origin",
      signal: options.signal,
      cache: "no-store",
    });
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = { error: { message: text } }; }
    if (response.status === 401 && path !== "/signin") {
      showSignIn("Your session ended: sign in again.");
    }
    if (!response.ok) throw new ApiFailure(response.status, body);
    return body;
  }

  // ---- Sign-in -------------------------------------------------------------------------------

  function showSignIn(message) {
    state.csrf = null;
    clearInterval(state.pollTimer);
    $("app").hidden = true;
    $("nav").hidden = true;
    $("who").hidden = true;
    $("banner").hidden = true;
    $("signin").hidden = false;
    const err = $("signin-error");
    err.hidden = !message;
    err.textContent = message || "";
  }

  async function start() {
    let session;
    try {
      session = await api("/web/api/session");
    } catch (e) {
      showSignIn(e.status === 401 ? "" : e.message);
      return;
    }
    state.csrf = session.csrf;
    $("principal").textContent = session.principal;
    $("signin").hidden = true;
    $("app").hidden = false;
    $("nav").hidden = false;
    $("who").hidden = false;
    await loadWorkspaces();
    pollStatus();
    state.pollTimer = setInterval(pollStatus, 3000);
  }

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("/signin", {
        method: "POST",
        json: { token: $("token").value },
        headers: { "x-logvault-csrf": "signin" },
      });
      $("token").value = "";
      await start();
    } catch (e) {
      showSignIn(`Sign-in refused: ${e.message}`);
    }
  });

  $("signout").addEventListener("click", async () => {
    try { await api("/signout", { method: "POST" }); } catch (_) { /* signed out anyway */ }
    showSignIn("Signed out.");
  });

  // ---- Views ---------------------------------------------------------------------------------

  function showView(name) {
    for (const b of document.querySelectorAll("nav button")) {
      if (b.dataset.view === name) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    }
    for (const v of ["query", "saved", "keys", "ingestion"]) $(`view-${v}`).hidden = v !== name;
    if (name === "saved") loadSaved();
    if (name === "keys") renderKeys();
    if (name === "ingestion") loadIngestion();
  }
  for (const b of document.querySelectorAll("nav button")) {
    b.addEventListener("click", () => showView(b.dataset.view));
  }

  function workspace() { return $("workspace").value; }

  async function loadWorkspaces() {
    const { workspaces } = await api("/web/api/workspaces");
    state.workspaces = workspaces;
    const select = $("workspace");
    const before = select.value || localStorage.getItem("logvault.workspace");
    select.replaceChildren(...workspaces.map((w) => {
      const o = document.createElement("option");
      o.value = w.name;
      o.textContent = w.name;
      return o;
    }));
    if (workspaces.some((w) => w.name === before)) select.value = before;
    await workspaceChanged();
  }

  async function workspaceChanged() {
    localStorage.setItem("logvault.workspace", workspace());
    state.schema = null;
    if (!workspace()) return;
    try {
      state.schema = await api(`/web/api/workspaces/${encodeURIComponent(workspace())}/schema`);
      if (!$("query").value && state.schema.tables.length) {
        $("query").value = `${state.schema.tables[0].name}\n| take 100`;
      }
    } catch (_) { state.schema = null; }
    renderWorkspaceKey();
    if (!$("view-saved").hidden) loadSaved();
    if (!$("view-ingestion").hidden) loadIngestion();
  }
  $("workspace").addEventListener("change", workspaceChanged);

  // ---- Query ---------------------------------------------------------------------------------

  function setRunning(running) {
    $("run").disabled = running;
    $("cancel").disabled = !running;
  }

  async function run() {
    if (state.controller) return;
    const query = $("query").value;
    if (!query.trim() || !workspace()) return;
    editor.hide();
    $("query-error").hidden = true;
    $("partial").hidden = true;
    const controller = new AbortController();
    state.controller = controller;
    setRunning(true);
    $("query-status").textContent = "Running…";
    const started = performance.now();
    const body = { query };
    if ($("timespan").value) body.timespan = $("timespan").value;
    try {
      const result = await api(`/v1/workspaces/${encodeURIComponent(workspace())}/query`, {
        method: "POST",
        json: body,
        headers: { prefer: "wait=600, include-statistics=true, include-render=true" },
        signal: controller.signal,
      });
      const ms = Math.round(performance.now() - started);
      const table = (result.tables || [])[0] || { columns: [], rows: [] };
      state.result = { columns: table.columns, rows: table.rows, render: result.render };
      state.sort = null;
      renderTable();
      $("query-status").textContent =
        `${table.rows.length} ${table.rows.length === 1 ? "row" : "rows"} in ${(ms / 1000).toFixed(2)} s`;
      if (result.error) {
        $("partial").hidden = false;
        $("partial").textContent = `Partial result: ${result.error.message}` +
          ((result.error.details || []).map((d) => ` ${d.message || ""}`).join(""));
      }
      $("csv").disabled = table.rows.length === 0;
      $("chart-button").disabled = table.rows.length === 0;
      const kind = result.render && result.render.visualization;
      if (kind && kind !== "table") drawChart(kind);
      else $("chart").hidden = true;
    } catch (e) {
      if (e.name === "AbortError") {
        $("query-status").textContent = "Cancelled.";
      } else {
        $("query-status").textContent = "";
        state.result = null;
        renderTable();
        $("chart").hidden = true;
        $("csv").disabled = true;
        $("chart-button").disabled = true;
        showQueryError(e);
      }
    } finally {
      state.controller = null;
      setRunning(false);
    }
  }

  function showQueryError(e) {
    const box = $("query-error");
    box.replaceChildren();
    const error = (e.body && e.body.error) || { message: e.message };
    const inner = error.innererror || {};
    const head = document.createElement("strong");
    const where = inner.line ? `Line ${inner.line}, column ${inner.pos}: ` : "";
    // The engine's message repeats the place; it is said once, first.
    const first = (inner.message || error.message || "").split("\n")[0]
      .replace(/ at line \d+, column \d+:?\s*$/, "");
    head.textContent = `${where}${first}`;
    box.appendChild(head);
    if (error.code || inner.code) {
      const code = document.createElement("div");
      code.className = "mono";
      code.textContent = [error.code, inner.code].filter(Boolean).join(" / ");
      box.appendChild(code);
    }
    if (inner.line) {
      const lines = $("query").value.split("\n");
      const line = lines[inner.line - 1];
      if (line !== undefined) {
        const pre = document.createElement("pre");
        pre.textContent = `${line}\n${" ".repeat(Math.max(0, inner.pos - 1))}^`;
        box.appendChild(pre);
        let offset = 0;
        for (let i = 0; i < inner.line - 1; i++) offset += lines[i].length + 1;
        offset += Math.max(0, inner.pos - 1);
        const q = $("query");
        q.focus();
        q.setSelectionRange(offset, Math.min(q.value.length, offset + 1));
      }
    } else if (error.message && inner.message && error.message !== inner.message) {
      const more = document.createElement("div");
      more.textContent = error.message;
      box.appendChild(more);
    }
    box.hidden = false;
  }

  $("run").addEventListener("click", run);
  $("cancel").addEventListener("click", () => {
    if (state.controller) state.controller.abort();
  });
  $("chart-button").addEventListener("click", () => drawChart(""));

  function drawChart(kind) {
    const chart = $("chart");
    chart.hidden = false;
    const r = state.result;
    if (!r || !LvChart.draw(chart, kind, r.columns, r.rows)) {
      chart.replaceChildren();
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "Nothing to chart: a chart needs a numeric column (and a datetime column for a time chart).";
      chart.appendChild(p);
    }
  }

  // ---- Results table -------------------------------------------------------------------------

  const NUMERIC = new Set(["long", "int", "real", "decimal"]);

  function cell(value, type) {
    const td = document.createElement("td");
    if (value === null || value === undefined) {
      td.className = "muted";
      td.textContent = "";
      return td;
    }
    if (type === "dynamic" || typeof value === "object") {
      const v = typeof value === "string" ? tryParse(value) : value;
      if (v !== null && typeof v === "object") {
        const details = document.createElement("details");
        const summary = document.createElement("summary");
        const short = JSON.stringify(v);
        summary.textContent = short.length > 60 ? short.slice(0, 59) + "…" : short;
        const pre = document.createElement("pre");
        pre.textContent = JSON.stringify(v, null, 2);
        details.append(summary, pre);
        td.appendChild(details);
        return td;
      }
    }
    if (NUMERIC.has(type)) td.className = "num";
    td.textContent = String(value);
    return td;
  }

  function tryParse(s) {
    try { return JSON.parse(s); } catch (_) { return s; }
  }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return -1;
    if (b === null || b === undefined) return 1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  function renderTable() {
    const r = state.result;
    const holder = $("results");
    if (!r) { holder.replaceChildren(); return; }
    const table = document.createElement("table");
    const caption = document.createElement("caption");
    caption.className = "muted";
    caption.textContent = "Results";
    caption.hidden = true;
    table.appendChild(caption);
    const thead = table.createTHead();
    const tr = thead.insertRow();
    r.columns.forEach((c, i) => {
      const th = document.createElement("th");
      th.scope = "col";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = c.name;
      button.title = `Sort by ${c.name}`;
      button.addEventListener("click", () => {
        const desc = state.sort && state.sort.col === i && !state.sort.desc;
        state.sort = { col: i, desc };
        renderTable();
        const again = $("results").querySelectorAll("th button.sort")[i];
        if (again) again.focus();
      });
      const type = document.createElement("span");
      type.className = "type";
      type.textContent = c.type;
      th.append(button, type);
      th.setAttribute("aria-sort", state.sort && state.sort.col === i
        ? (state.sort.desc ? "descending" : "ascending") : "none");
      tr.appendChild(th);
    });
    let rows = r.rows;
    if (state.sort) {
      const { col, desc } = state.sort;
      rows = rows.slice().sort((a, b) => (desc ? -1 : 1) * compare(a[col], b[col]));
    }
    const tbody = table.createTBody();
    const limit = 5000;
    for (const row of rows.slice(0, limit)) {
      const tr2 = tbody.insertRow();
      row.forEach((v, i) => tr2.appendChild(cell(v, r.columns[i] && r.columns[i].type)));
    }
    holder.replaceChildren(table);
    if (rows.length > limit) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = `Showing the first ${limit} of ${rows.length} rows (Copy as CSV has them all).`;
      holder.appendChild(p);
    }
  }

  function csv() {
    const r = state.result;
    const quote = (v) => {
      if (v === null || v === undefined) return "";
      const s = typeof v === "object" ? JSON.stringify(v) : String(v);
      return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    };
    return [r.columns.map((c) => quote(c.name)).join(","),
      ...r.rows.map((row) => row.map(quote).join(","))].join("\r\n") + "\r\n";
  }

  $("csv").addEventListener("click", async () => {
    if (!state.result) return;
    const text = csv();
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const t = document.createElement("textarea");
      t.value = text;
      document.body.appendChild(t);
      t.select();
      document.execCommand("copy");
      t.remove();
    }
    $("query-status").textContent = `Copied ${state.result.rows.length} rows as CSV.`;
  });

  // ---- Completion ----------------------------------------------------------------------------

  function candidates() {
    const out = [];
    const s = state.schema;
    if (s) {
      for (const t of s.tables) out.push({ name: t.name, kind: "table" });
      const seen = new Set();
      for (const t of s.tables) {
        for (const c of t.columns) {
          if (!seen.has(c.name)) { seen.add(c.name); out.push({ name: c.name, kind: c.type }); }
        }
      }
      for (const f of s.storedFunctions) out.push({ name: f, kind: "function (saved)" });
      for (const f of s.functions) out.push({ name: f, kind: "function" });
    }
    for (const k of KEYWORDS) out.push({ name: k, kind: "keyword" });
    return out;
  }

  const editor = LvEditor.attach($("query"), $("completions"), { candidates, run });

  // ---- Saved queries and functions -----------------------------------------------------------

  async function loadSaved() {
    const holder = $("saved-list");
    holder.replaceChildren();
    if (!workspace()) return;
    let list;
    try {
      list = (await api(`/web/api/workspaces/${encodeURIComponent(workspace())}/savedSearches`)).savedSearches;
    } catch (e) {
      holder.appendChild(errorBox(e.message));
      return;
    }
    if (list.length === 0) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = `Workspace ${workspace()} has no saved queries yet.`;
      holder.appendChild(p);
      return;
    }
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const h of ["Display name", "Category", "Function", "Query", ""]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = h;
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const s of list) {
      const tr = body.insertRow();
      for (const v of [s.displayName, s.category, s.functionAlias || ""]) {
        const td = tr.insertCell();
        td.textContent = v;
      }
      const q = tr.insertCell();
      q.className = "mono";
      q.textContent = s.query.length > 80 ? s.query.slice(0, 79) + "…" : s.query;
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Open";
      b.setAttribute("aria-label", `Open ${s.displayName}`);
      b.addEventListener("click", () => {
        $("query").value = s.query;
        $("save-id").value = s.id;
        $("save-name").value = s.displayName;
        $("save-category").value = s.category;
        $("save-alias").value = s.functionAlias || "";
        showView("query");
        $("query").focus();
      });
      tr.insertCell().appendChild(b);
    }
    holder.appendChild(table);
  }

  function errorBox(text) {
    const d = document.createElement("div");
    d.className = "error";
    d.setAttribute("role", "alert");
    d.textContent = text;
    return d;
  }

  $("save-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("save-error").hidden = true;
    $("save-status").textContent = "";
    const id = $("save-id").value.trim();
    try {
      await api(`/web/api/workspaces/${encodeURIComponent(workspace())}/savedSearches/${encodeURIComponent(id)}`, {
        method: "PUT",
        json: {
          displayName: $("save-name").value,
          category: $("save-category").value,
          query: $("query").value,
          functionAlias: $("save-alias").value || null,
        },
      });
      $("save-status").textContent = `Saved ${id} in ${workspace()}.`;
      await loadSaved();
      await workspaceChanged();
    } catch (e) {
      $("save-error").hidden = false;
      $("save-error").textContent = `Not saved: ${e.message}`;
    }
  });

  // ---- Keys and health -----------------------------------------------------------------------

  async function pollStatus() {
    if (!state.csrf) return;
    try {
      state.status = await api("/status");
    } catch (_) {
      return;
    }
    renderBanner();
    renderWorkspaceKey();
    if (!$("view-keys").hidden) renderKeys();
  }

  function protectionText(w) {
    const p = w.protection;
    if (p.kind === "serviceKey") return "service key";
    return `cluster ${p.cluster}, vault ${p.vault}, key ${p.key}${p.version ? `, version ${p.version}` : ""}`;
  }

  function renderBanner() {
    const s = state.status;
    const mine = new Set(state.workspaces.map((w) => w.name));
    const revoked = s ? s.workspaces.filter((w) => w.keyState === "revoked" && mine.has(w.name)) : [];
    const banner = $("banner");
    if (revoked.length === 0) {
      banner.hidden = true;
      banner.textContent = "";
      return;
    }
    banner.textContent = "Customer-managed key revoked: " + revoked.map((w) =>
      `workspace ${w.name} (${protectionText(w)})${w.since ? ` since ${w.since}` : ""}`).join("; ") +
      ". Queries and ingestion of these workspaces are refused until the key is restored.";
    banner.hidden = false;
  }

  function renderWorkspaceKey() {
    const s = state.status;
    const w = s && s.workspaces.find((x) => x.name === workspace());
    $("ws-key").textContent = w ? `new data protected by ${protectionText(w)}: ${w.keyState}` : "";
  }

  function table(headers, rows) {
    const t = document.createElement("table");
    const head = t.createTHead().insertRow();
    for (const h of headers) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = h;
      head.appendChild(th);
    }
    const body = t.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      for (const v of row) {
        const td = tr.insertCell();
        if (v instanceof Node) td.appendChild(v);
        else td.textContent = v === null || v === undefined ? "" : String(v);
      }
    }
    return t;
  }

  function stateBadge(s) {
    const span = document.createElement("span");
    span.className = `state-${s}`;
    span.textContent = s;
    return span;
  }

  function renderKeys() {
    const s = state.status;
    if (!s) return;
    $("keys-time").textContent = `As of ${s.time}.`;
    $("keys-workspaces").replaceChildren(table(
      ["Workspace", "Key protecting new data", "State", "Since", "Reason", "Rows", "Dropped rows", "Last drop"],
      s.workspaces.map((w) => [w.name, protectionText(w), stateBadge(w.keyState), w.since, w.reason,
        w.rows, w.droppedRows, w.lastDropReason])));
    $("keys-clusters").replaceChildren(s.clusters.length === 0
      ? Object.assign(document.createElement("p"), { className: "muted", textContent: "No clusters." })
      : table(["Cluster", "Identity", "Key vault", "Key", "Version in use", "State", "Since",
        "Last unwrap", "Next check", "Unwraps", "Failures", "Reason"],
      s.clusters.map((c) => {
        const id = c.identity || {};
        const kv = c.keyVaultProperties || {};
        return [c.name, `${id.type || ""}${id.principalId ? ` ${id.principalId}` : ""}`,
          kv.keyVaultUri || "", kv.keyName || "", c.keyVersionInUse, stateBadge(c.keyState), c.since,
          c.lastUnwrap, c.nextCheck, c.counters.unwraps, c.counters.failures, c.reason];
      })));
  }

  // ---- Ingestion -----------------------------------------------------------------------------

  async function loadIngestion() {
    const holder = $("ingestion");
    if (!workspace()) return;
    let data;
    try {
      data = await api(`/web/api/workspaces/${encodeURIComponent(workspace())}/ingestion?hours=${$("ingestion-hours").value}`);
    } catch (e) {
      holder.replaceChildren(errorBox(e.message));
      return;
    }
    const grid = document.createElement("div");
    grid.className = "ingest-table";
    for (const t of data.tables) {
      const fig = document.createElement("figure");
      const cap = document.createElement("figcaption");
      const rows = t.hours.reduce((a, h) => a + h.rows, 0);
      const bytes = t.hours.reduce((a, h) => a + h.bytes, 0);
      cap.textContent = `${t.name}: ${LvChart.fmt(rows)} rows, ${LvChart.fmt(bytes)}B stored`;
      const labels = t.hours.map((h) => h.hour.slice(5, 16).replace("T", " "));
      fig.append(cap,
        LvChart.bars(t.hours.map((h) => h.rows), labels, `Rows per hour stored in ${t.name}`, "#0b5cad", "rows per hour"),
        LvChart.bars(t.hours.map((h) => h.bytes), labels, `Bytes per hour stored in ${t.name}`, "#2a9d8f", "bytes per hour"));
      grid.appendChild(fig);
    }
    if (data.tables.length === 0) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = `Workspace ${data.workspace} has no tables yet.`;
      grid.appendChild(p);
    }
    holder.replaceChildren(grid);
  }
  $("ingestion-hours").addEventListener("change", loadIngestion);

  start();
})();
