// The warehouse's pages: plain JavaScript over /api/v1 with the sign-in's bearer token.
"use strict";

const API = "/api/v1";
const STATE_COLOURS = ["#f4f4f4", "#2e7d32", "#90a4ae", "#ffca28", "#8e24aa", "#e65100", "#d32f2f"];
let tasksTimer = null;

const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem("etl-token");

async function call(method, path, body) {
  const options = { method, headers: { Authorization: "Bearer " + token() } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const answer = await fetch(API + path, options);
  const doc = await answer.json();
  if (answer.status === 401) { signOut(); }
  if (doc.code !== 200) { throw new Error(doc.message); }
  return doc.data;
}

function ymd(iso) { return iso.replaceAll("-", ""); }
function isoDaysAgo(n) {
  const d = new Date(Date.now() - n * 86400000);
  return d.toISOString().slice(0, 10);
}

function show(page) {
  for (const name of ["signin", "coverage", "chart", "tasks"]) {
    $("page-" + name).hidden = name !== page;
    const button = $("nav-" + name);
    if (button) button.classList.toggle("active", name === page);
  }
  if (tasksTimer) { clearInterval(tasksTimer); tasksTimer = null; }
  if (page === "tasks") { refreshTasks(); tasksTimer = setInterval(refreshTasks, 1000); }
  location.hash = page;
}

function signOut() {
  sessionStorage.removeItem("etl-token");
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  show("signin");
}

async function signedIn() {
  const me = await call("GET", "/auth/me");
  $("who").textContent = me.username + " (" + me.role + ")";
  $("nav").hidden = false;
  $("signout").hidden = false;
  const page = location.hash.slice(1);
  show(["coverage", "chart", "tasks"].includes(page) ? page : "coverage");
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").textContent = "";
  const answer = await fetch(API + "/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("signin-user").value, password: $("signin-password").value }),
  });
  const doc = await answer.json();
  if (doc.code !== 200) { $("signin-error").textContent = doc.message; return; }
  sessionStorage.setItem("etl-token", doc.data.access_token);
  $("signin-password").value = "";
  await signedIn();
});
$("signout").addEventListener("click", signOut);
for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => show(button.dataset.page));
}

// -- coverage -----------------------------------------------------------------------------

$("coverage-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const params = new URLSearchParams({
    market: $("coverage-market").value, freq: $("coverage-freq").value,
    start: $("coverage-start").value, end: $("coverage-end").value,
  });
  $("coverage-summary").textContent = "…";
  let data;
  try { data = await call("GET", "/web/coverage?" + params); }
  catch (error) { $("coverage-summary").textContent = error.message; return; }
  const counts = Object.entries(data.counts).filter(([, n]) => n).map(([s, n]) => s + " " + n);
  $("coverage-summary").textContent =
    `${data.symbols.length} of ${data.total_symbols} symbols × ${data.days.length} days: ${counts.join(", ")}`;
  const n = data.states.length - 1;
  const scale = [];
  STATE_COLOURS.forEach((colour, i) => { scale.push([i / (n + 1), colour], [(i + 1) / (n + 1), colour]); });
  const text = data.z.map((row) => row.map((v) => data.states[v]));
  Plotly.newPlot("coverage-heatmap", [{
    type: "heatmap", x: data.days, y: data.symbols, z: data.z, text, zmin: -0.5, zmax: n + 0.5,
    colorscale: scale.map(([p, c]) => [Math.min(p, 1), c]), hovertemplate: "%{y} %{x}: %{text}<extra></extra>",
    colorbar: { tickvals: data.states.map((_, i) => i), ticktext: data.states },
  }], { margin: { l: 90, r: 20, t: 10, b: 60 }, yaxis: { autorange: "reversed" } }, { responsive: true });
  $("coverage-heatmap").on("plotly_click", (event) => {
    const point = event.points[0];
    $("chart-symbol").value = point.y;
    $("chart-start").value = data.start;
    $("chart-end").value = data.end;
    show("chart");
    $("chart-form").requestSubmit();
  });
});

// -- chart --------------------------------------------------------------------------------

const FUTURES = ["CFE", "SHF", "DCE", "CZC", "INE"];

$("chart-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const symbol = $("chart-symbol").value.trim().toUpperCase();
  const board = FUTURES.includes(symbol.split(".").pop()) ? "/future/kline" : "/stock/kline";
  const params = new URLSearchParams({
    codes: symbol, period: $("chart-period").value,
    start_date: ymd($("chart-start").value), end_date: ymd($("chart-end").value),
  });
  // adjusted prices (the warehouse's own `adjust` parameter) exist for stocks only
  const adjust = board === "/stock/kline" ? $("chart-adjust").value : "raw";
  if (adjust !== "raw") params.set("adjust", adjust);
  $("chart-summary").textContent = "…";
  let bars;
  try { bars = (await call("GET", board + "?" + params))[symbol]; }
  catch (error) { $("chart-summary").textContent = error.message; Plotly.purge("chart-plot"); return; }
  $("chart-summary").textContent = `${symbol}: ${bars.length} bars (${adjust})`;
  const x = bars.map((b) => b.trade_date);
  Plotly.newPlot("chart-plot", [
    { type: "candlestick", x, open: bars.map((b) => b.open), high: bars.map((b) => b.high),
      low: bars.map((b) => b.low), close: bars.map((b) => b.close), name: symbol, yaxis: "y2",
      // China's convention, as the volume bars below: a rising day red, a falling day green
      increasing: { line: { color: "#c62828" } }, decreasing: { line: { color: "#2e7d32" } } },
    { type: "bar", x, y: bars.map((b) => b.volume), name: "volume", yaxis: "y",
      marker: { color: bars.map((b) => (b.close >= b.open ? "#c62828" : "#2e7d32")) } },
  ], {
    margin: { l: 60, r: 20, t: 10, b: 40 }, showlegend: false, dragmode: "zoom",
    xaxis: { rangeslider: { visible: true }, type: "category" },
    yaxis: { domain: [0, 0.22], title: "volume" },
    yaxis2: { domain: [0.28, 1], title: "price" },
  }, { responsive: true });
});

// switching prices redraws the chart shown
$("chart-adjust").addEventListener("change", () => {
  if ($("chart-symbol").value.trim()) $("chart-form").requestSubmit();
});

// -- tasks --------------------------------------------------------------------------------

function fillBody(dryRun) {
  return {
    security_type: $("fill-board").value, period_type: $("fill-period").value,
    start_date: ymd($("fill-start").value), end_date: ymd($("fill-end").value), dry_run: dryRun,
  };
}

$("fill-preview").addEventListener("click", async () => {
  $("fill-error").textContent = "";
  $("fill-plan").textContent = "…";
  try {
    const plan = await call("POST", "/cache/fill-missing", fillBody(true));
    $("fill-plan").textContent =
      `plan: ${plan.requests} requests in ${plan.calls} calls for ${plan.rows_expected} slots; ` +
      `~${plan.seconds_at_rate_limit} s at ${plan.rate_limit_per_second}/s (${plan.vendor}); ` +
      `${plan.unfillable} unfillable`;
    $("fill-start-button").disabled = false;
  } catch (error) { $("fill-plan").textContent = ""; $("fill-error").textContent = error.message; }
});

$("fill-start-button").addEventListener("click", async () => {
  $("fill-error").textContent = "";
  try {
    const started = await call("POST", "/cache/fill-missing", fillBody(false));
    $("fill-plan").textContent = `task ${started.task_id} started (${started.missing_count} symbols with gaps)`;
    $("fill-start-button").disabled = true;
    refreshTasks();
  } catch (error) { $("fill-error").textContent = error.message; }
});

async function refreshTasks() {
  let page;
  try { page = await call("GET", "/cache/tasks?page=1&page_size=20"); } catch { return; }
  const body = $("tasks-table").querySelector("tbody");
  body.replaceChildren(...page.items.map((task) => {
    const row = document.createElement("tr");
    row.id = "task-" + task.id;
    row.dataset.status = task.status;
    row.dataset.progress = task.progress;
    const pct = Math.round(task.progress * 100);
    const cells = [task.id, task.kind + (task.params.action ? " " + task.params.action : ""), task.status,
      `<span class="bar"><span style="width:${pct}%"></span></span> ${pct}%`,
      `${task.success_count}/${task.total_count}`, task.rows_written, task.error_count,
      task.message || task.error_message || ""];
    row.innerHTML = cells.map((c, i) => "<td>" + (i === 3 ? c : String(c).replace(/[<>&]/g, "")) + "</td>").join("");
    const action = document.createElement("td");
    if (task.status === "running") {
      action.append(button("Cancel", () => call("POST", `/cache/tasks/${task.id}/cancel`)));
    } else if (["interrupted", "cancelled", "failed"].includes(task.status)) {
      action.append(button("Resume", () => call("POST", `/cache/tasks/${task.id}/resume`)));
    }
    row.append(action);
    return row;
  }));
}

function button(label, act) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", async () => { try { await act(); } catch (e) { $("fill-error").textContent = e.message; } refreshTasks(); });
  return b;
}

// -- start ----------------------------------------------------------------------------------

for (const [from, to] of [["coverage-start", "coverage-end"], ["chart-start", "chart-end"], ["fill-start", "fill-end"]]) {
  $(from).value = isoDaysAgo(60);
  $(to).value = isoDaysAgo(1);
}
if (token()) { signedIn().catch(signOut); } else { show("signin"); }
