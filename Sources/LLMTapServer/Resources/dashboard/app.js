// llmtap's dashboard: one page, no dependencies, talking to the query API it is served by.
// Every view has its own URL (/, /sessions, /sessions/<id>, /calls/<id>, /live); with
// --api-token the token is asked once and kept in this browser session.
"use strict";

const main = document.getElementById("main");
let stopLive = null;

// ---------------------------------------------------------------- API and formatting

class Unauthorized extends Error {}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem("llmtap-token");
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { headers });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  return body;
}

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function money(usd, unpriced, requests) {
  if (usd === null || usd === undefined || (unpriced && unpriced === requests)) return "unpriced";
  const text = usd >= 100 ? "$" + usd.toFixed(0) : usd >= 1 ? "$" + usd.toFixed(2) : "$" + usd.toFixed(usd >= 0.01 ? 4 : 6);
  return unpriced ? text + ` <span class="muted">(+${unpriced} unpriced)</span>` : text;
}

const number = (n) => (n ?? 0).toLocaleString("en-US");
const seconds = (s) => (s === null || s === undefined ? "–" : s < 1 ? (s * 1000).toFixed(0) + " ms" : s.toFixed(2) + " s");
const time = (unix) => new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z";
const dayStart = () => Math.floor(Date.now() / 86400000) * 86400;
const link = (href, text) => `<a href="${esc(href)}" data-link>${esc(text)}</a>`;
const palette = ["#2f6fde", "#e07b39", "#3aa57a", "#9b59b6", "#d64c6f", "#c9a227", "#4aa3c9", "#7f8c8d"];

function table(headers, rows) {
  const head = headers.map((h) => `<th class="${h.endsWith(" ") ? "num" : ""}">${esc(h.trim())}</th>`).join("");
  const body = rows.map((cells) => "<tr>" + cells.map((c, i) => `<td class="${headers[i].endsWith(" ") ? "num" : ""}">${c}</td>`).join("") + "</tr>").join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body || `<tr><td colspan="${headers.length}" class="muted">nothing yet</td></tr>`}</tbody></table>`;
}

// A stacked bar chart: bars = [{label, parts: [{key, value}]}], as SVG.
function stackedBars(bars, valueText) {
  const width = 1100, height = 220, pad = 40, keys = [];
  for (const bar of bars) for (const part of bar.parts) if (!keys.includes(part.key)) keys.push(part.key);
  const max = Math.max(1e-12, ...bars.map((b) => b.parts.reduce((sum, p) => sum + p.value, 0)));
  const step = Math.min((width - pad * 2) / Math.max(bars.length, 1), 60);
  let svg = `<svg viewBox="0 0 ${width} ${height}" width="100%" role="img">`;
  svg += `<text x="4" y="14" font-size="11" fill="#6b7385">${esc(valueText(max))}</text>`;
  bars.forEach((bar, i) => {
    let y = height - 24;
    for (const part of bar.parts) {
      const h = ((height - 50) * part.value) / max;
      y -= h;
      const color = palette[keys.indexOf(part.key) % palette.length];
      svg += `<rect x="${pad + i * step + 2}" y="${y.toFixed(1)}" width="${Math.max(step - 4, 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}"><title>${esc(bar.label)} · ${esc(part.key)}: ${esc(valueText(part.value))}</title></rect>`;
    }
    if (bars.length <= 31 && (i % Math.ceil(bars.length / 10) === 0)) {
      svg += `<text x="${pad + i * step + step / 2}" y="${height - 8}" font-size="10" text-anchor="middle" fill="#6b7385">${esc(bar.label)}</text>`;
    }
  });
  svg += "</svg>";
  const legend = keys.map((k, i) => `<span><i style="background:${palette[i % palette.length]}"></i>${esc(k)}</span>`).join("");
  return `<div class="chart">${svg}<div class="legend">${legend}</div></div>`;
}

// ---------------------------------------------------------------- views

async function overview() {
  const now = Math.floor(Date.now() / 1000);
  const month = now - 30 * 86400;
  const [today, week, monthly, byDay, providers, keys, recent, lastDay, lastDayOK] = await Promise.all([
    api(`/api/cost?group_by=model&from=${dayStart()}`),
    api(`/api/cost?group_by=model&from=${now - 7 * 86400}`),
    api(`/api/cost?group_by=model&from=${month}`),
    api(`/api/cost?group_by=day&series=model&from=${dayStart() - 29 * 86400}`),
    api(`/api/cost?group_by=provider&from=${month}`),
    api(`/api/cost?group_by=api_key&from=${month}`),
    api(`/api/requests?limit=100`),
    api(`/api/cost?group_by=provider&from=${now - 86400}`),
    api(`/api/cost?group_by=provider&from=${now - 86400}&outcome=ok`),
  ]);
  const errorRate = lastDay.requests ? (100 * (lastDay.requests - lastDayOK.requests)) / lastDay.requests : 0;
  const tagKeys = {};
  for (const call of recent.requests) for (const key of Object.keys(call.tags || {})) tagKeys[key] = (tagKeys[key] || 0) + 1;
  const tagKey = Object.keys(tagKeys).sort((a, b) => tagKeys[b] - tagKeys[a])[0];
  // Tag sums are not pre-aggregated: a week keeps this one query cheap at millions of calls.
  const tags = tagKey ? await api(`/api/cost?group_by=${encodeURIComponent("tag:" + tagKey)}&from=${now - 7 * 86400}`) : null;

  const days = [];
  for (let d = dayStart() - 29 * 86400; d <= dayStart(); d += 86400) days.push(new Date(d * 1000).toISOString().slice(0, 10));
  const perDay = Object.fromEntries(byDay.groups.map((g) => [g.key, g]));
  const bars = days.map((day) => ({
    label: day.slice(5),
    parts: (perDay[day]?.series || []).map((s) => ({ key: s.key ?? "(none)", value: s.cost_usd ?? 0 })),
  }));
  const groupRows = (report, name) =>
    report.groups.slice(0, 8).map((g) => [esc(g.key ?? "(none)"), number(g.requests), number(g.input_tokens + g.output_tokens), money(g.cost_usd, g.unpriced_requests, g.requests)]);
  const unpriced = monthly.unpriced.length
    ? `<h2>Unpriced models (not counted as free)</h2>` + table(["model", "calls ", "tokens in ", "tokens out "], monthly.unpriced.map((u) => [esc(u.model), number(u.requests), number(u.input_tokens), number(u.output_tokens)]))
    : "";
  main.innerHTML = `
    <h1>Overview</h1>
    <div class="cards">
      <div class="card" id="spend-today"><div class="label">Spend today</div><div class="value">${money(today.total_cost_usd)}</div></div>
      <div class="card" id="spend-7d"><div class="label">Spend 7 days</div><div class="value">${money(week.total_cost_usd)}</div></div>
      <div class="card" id="spend-30d"><div class="label">Spend 30 days</div><div class="value">${money(monthly.total_cost_usd)}</div></div>
      <div class="card" id="calls-30d"><div class="label">Calls 30 days</div><div class="value">${number(monthly.requests)}</div></div>
      <div class="card" id="tokens-30d"><div class="label">Tokens 30 days</div><div class="value">${number(monthly.input_tokens + monthly.output_tokens)}</div></div>
      <div class="card" id="errors-24h"><div class="label">Errors 24 h</div><div class="value">${errorRate.toFixed(1)}%</div></div>
    </div>
    <h2>Cost per day by model, last 30 days</h2>
    ${stackedBars(bars, (v) => "$" + v.toFixed(v >= 1 ? 2 : 4))}
    <div class="grid2">
      <div><h2>Top models, 30 days</h2>${table(["model", "calls ", "tokens ", "cost "], groupRows(monthly))}</div>
      <div><h2>Providers</h2>${table(["provider", "calls ", "tokens ", "cost "], groupRows(providers))}</div>
      <div><h2>Keys (fingerprints)</h2>${table(["key", "calls ", "tokens ", "cost "], groupRows(keys))}</div>
      ${tags ? `<div><h2>Tag ${esc(tagKey)}, 7 days</h2>${table([tagKey, "calls ", "tokens ", "cost "], groupRows(tags))}</div>` : ""}
    </div>
    ${unpriced}`;
}

function filterQuery(form) {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (!value) continue;
    if (name === "from" || name === "to") params.set(name, String(Date.parse(value + "T00:00:00Z") / 1000));
    else params.set(name, value);
  }
  return params;
}

async function sessions() {
  const search = new URLSearchParams(location.search);
  const field = (name, placeholder, type = "text") =>
    `<input name="${name}" type="${type}" placeholder="${placeholder}" value="${esc(search.get(name) || "")}">`;
  main.innerHTML = `
    <h1>Sessions</h1>
    <form class="filters" id="filters">
      ${field("q", "words in input or output")} ${field("model", "model")} ${field("provider", "provider")}
      ${field("tag", "tag key or key:value")} ${field("from", "from", "date")} ${field("to", "to", "date")}
      <button type="submit">Filter</button>
    </form>
    <div id="list"></div>
    <p><button class="secondary" id="more" hidden>More</button></p>`;
  const form = document.getElementById("filters");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) query.set(name, value);
    navigate("/sessions" + (query.toString() ? "?" + query : ""));
  });
  const params = filterQuery(form);
  params.set("limit", "50");
  const rows = [];
  const more = document.getElementById("more");
  async function page(cursor) {
    if (cursor) params.set("cursor", cursor);
    const result = await api("/api/sessions?" + params);
    for (const s of result.sessions) {
      rows.push([link("/sessions/" + encodeURIComponent(s.id), s.id), esc(time(s.last_at)), number(s.requests),
        `${number(s.input_tokens)} / ${number(s.output_tokens)}`, money(s.cost_usd, s.unpriced_requests, s.requests), esc(s.models.join(", "))]);
    }
    document.getElementById("list").innerHTML = table(["session", "last active", "calls ", "tokens in / out ", "cost ", "models"], rows);
    more.hidden = !result.next_cursor;
    more.onclick = () => page(result.next_cursor).catch(show);
  }
  await page(null);
}

function contextSizeChart(calls) {
  const bars = calls.map((c, i) => ({ label: String(i + 1), parts: [{ key: "input tokens", value: c.metrics.input_tokens ?? 0 }, { key: "output tokens", value: c.metrics.output_tokens ?? 0 }] }));
  return stackedBars(bars, (v) => number(Math.round(v)) + " tokens");
}

function messageText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === "string" ? p : p.text ?? `[${p.type}]`)).join("\n");
  return content == null ? "" : JSON.stringify(content);
}

async function session(id) {
  const s = await api("/api/sessions/" + encodeURIComponent(id));
  const turns = s.calls.map((call, i) => {
    const m = call.metrics;
    const system = i === 0 ? (call.context || []).filter((msg) => msg.role === "system" || msg.role === "developer") : [];
    const tools = call.choices?.[0]?.message?.tool_calls;
    return `<div class="turn">
      <div class="meta">turn ${i + 1} · ${esc(time(call.timestamp))} · ${esc(call.model ?? "?")} · ${esc(call.outcome)}
        · ${number(m.input_tokens)} → ${number(m.output_tokens)} tokens · ${money(m.cost_usd)} · latency ${seconds(m.latency_s)}
        · TTFT ${seconds(m.time_to_first_token_s)} · ${m.tokens_per_second ? m.tokens_per_second.toFixed(1) + " tok/s" : "– tok/s"}
        · ${link("/calls/" + call.id, "call")}</div>
      ${system.map((msg) => `<div class="msg system"><b>system</b>${esc(messageText(msg.content))}</div>`).join("")}
      <div class="msg"><b>user</b>${esc(call.chat_input ?? "")}</div>
      ${call.chat_output != null ? `<div class="msg"><b>assistant</b>${esc(call.chat_output)}</div>` : ""}
      ${tools ? `<div class="msg tool"><b>tool calls</b>${esc(JSON.stringify(tools))}</div>` : ""}
      ${call.error ? `<div class="msg error"><b>error</b>${esc(call.error.type)}: ${esc(call.error.message)}</div>` : ""}
    </div>`;
  });
  main.innerHTML = `
    <h1>Session ${esc(s.id)}</h1>
    <div class="cards">
      <div class="card"><div class="label">Calls</div><div class="value" id="session-calls">${number(s.requests)}</div></div>
      <div class="card"><div class="label">Cost</div><div class="value">${money(s.cost_usd, s.unpriced_requests, s.requests)}</div></div>
      <div class="card"><div class="label">Tokens in / out</div><div class="value">${number(s.input_tokens)} / ${number(s.output_tokens)}</div></div>
      <div class="card"><div class="label">Models</div><div class="value" style="font-size:14px">${esc(s.models.join(", "))}</div></div>
    </div>
    <h2>Context size per turn</h2>${contextSizeChart(s.calls)}
    <h2>Transcript</h2>${turns.join("")}`;
}

function decode(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function pretty(bytes) {
  const text = new TextDecoder().decode(bytes);
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

async function call(id) {
  const [c, raw] = await Promise.all([api("/api/requests/" + encodeURIComponent(id)), api("/api/requests/" + encodeURIComponent(id) + "/raw")]);
  const m = c.metrics;
  const facts = [
    ["provider", c.provider], ["endpoint", c.endpoint], ["api format", c.api_format], ["model", c.model],
    ["requested model", c.requested_model], ["outcome", c.outcome], ["HTTP status", c.http_status], ["stream", c.is_stream],
    ["session", c.session_id ? link("/sessions/" + encodeURIComponent(c.session_id), c.session_id) : "–"],
    ["tokens in / out", `${number(m.input_tokens)} / ${number(m.output_tokens)} (${esc(m.usage_source ?? "none")})`],
    ["cached / reasoning tokens", `${number(m.cached_tokens)} / ${number(m.reasoning_tokens)}`],
    ["cost", money(m.cost_usd) + (m.pricing_version ? ` <span class="muted">(prices of ${esc(m.pricing_version)})</span>` : "")],
    ["latency", seconds(m.latency_s)], ["time to first token", seconds(m.time_to_first_token_s)],
    ["inter-token latency (mean / p95)", `${seconds(m.inter_token_latency_s)} / ${seconds(m.inter_token_latency_p95_s)}`],
    ["tokens/s", m.tokens_per_second ? m.tokens_per_second.toFixed(1) : "–"], ["usage checks", (c.usage_checks || []).join(", ") || "–"],
    ["key fingerprint", c.key_fingerprint ?? "–"], ["tags", Object.entries(c.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "–"],
  ];
  const request = decode(raw.request_base64), response = decode(raw.response_base64);
  main.innerHTML = `
    <h1>Call ${esc(c.id)}</h1>
    <p class="muted">${esc(time(c.timestamp))}</p>
    <dl class="facts">${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${typeof v === "string" && v.startsWith("<") ? v : k === "cost" || k === "session" ? v : esc(v ?? "–")}</dd>`).join("")}</dl>
    ${c.error ? `<p class="error">${esc(c.error.type)}: ${esc(c.error.message)}</p>` : ""}
    <h2>Parameters</h2><pre>${esc(JSON.stringify(c.parameters, null, 2))}</pre>
    <h2>Output</h2><pre>${esc(c.chat_output ?? "")}</pre>
    <h2>Raw request (${number(raw.request_size)} bytes) <button class="secondary" id="get-request">download</button></h2><pre>${esc(pretty(request))}</pre>
    <h2>Raw response (${number(raw.response_size)} bytes${raw.response_content_encoding ? ", " + esc(raw.response_content_encoding) : ""}) <button class="secondary" id="get-response">download</button></h2>
    <pre>${raw.response_content_encoding ? "(content-encoded: download to read)" : esc(pretty(response))}</pre>`;
  const download = (bytes, name) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
    a.download = name;
    a.click();
  };
  document.getElementById("get-request").onclick = () => download(request, `${c.id}.request`);
  document.getElementById("get-response").onclick = () => download(response, `${c.id}.response`);
}

async function live() {
  main.innerHTML = `<h1>Live</h1><p class="muted" id="live-status">Waiting for calls…</p><div id="feed"></div>`;
  const rows = [];
  const controller = new AbortController();
  stopLive = () => controller.abort();
  const headers = {};
  const token = sessionStorage.getItem("llmtap-token");
  if (token) headers.Authorization = "Bearer " + token;
  // fetch, not EventSource: EventSource cannot send the Authorization header.
  const response = await fetch("/api/events", { headers, signal: controller.signal });
  if (response.status === 401) throw new Unauthorized();
  document.body.setAttribute("data-ready", "/live");  // listening: the feed fills as calls arrive
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (!data) continue;
        const c = JSON.parse(data);
        rows.unshift([esc(time(c.timestamp)), esc(c.provider), esc(c.model ?? "–"), esc(c.outcome),
          `${number(c.metrics.input_tokens)} → ${number(c.metrics.output_tokens)}`, money(c.metrics.cost_usd), seconds(c.metrics.latency_s),
          c.session_id ? link("/sessions/" + encodeURIComponent(c.session_id), c.session_id) : "–", link("/calls/" + c.id, "call")]);
        rows.length = Math.min(rows.length, 200);
        document.getElementById("live-status").textContent = `${rows.length} new calls (newest first)`;
        document.getElementById("feed").innerHTML = table(["time", "provider", "model", "outcome", "tokens ", "cost ", "latency ", "session", ""], rows);
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") throw error;
  }
}

// ---------------------------------------------------------------- token and routing

function askToken() {
  main.innerHTML = `
    <h1>This llmtap needs its API token</h1>
    <form id="token-form" class="filters"><input class="token" name="token" type="password" placeholder="--api-token" autofocus>
    <button type="submit">Open</button></form>
    <p class="muted">Kept in this browser tab's session storage only.</p>`;
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("llmtap-token", new FormData(event.target).get("token"));
    route();
  });
}

function show(error) {
  if (error instanceof Unauthorized) return askToken();
  main.innerHTML = `<h1>Something went wrong</h1><p class="error">${esc(error.message)}</p>`;
  console.warn("llmtap dashboard:", error);
}

function route() {
  if (stopLive) { stopLive(); stopLive = null; }
  document.body.removeAttribute("data-ready");
  const path = location.pathname;
  for (const a of document.querySelectorAll("nav a")) {
    const href = a.getAttribute("href");
    a.classList.toggle("active", href === "/" ? path === "/" : path.startsWith(href));
  }
  let view;
  let match;
  if (path === "/") view = overview();
  else if (path === "/sessions") view = sessions();
  else if ((match = path.match(/^\/sessions\/(.+)$/))) view = session(decodeURIComponent(match[1]));
  else if ((match = path.match(/^\/calls\/(.+)$/))) view = call(decodeURIComponent(match[1]));
  else if (path === "/live") view = live();
  else view = Promise.reject(new Error("no such page: " + path));
  view.then(() => document.body.setAttribute("data-ready", path)).catch(show);
}

function navigate(href) {
  history.pushState(null, "", href);
  route();
}

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[data-link]");
  if (!a || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", route);
route();
