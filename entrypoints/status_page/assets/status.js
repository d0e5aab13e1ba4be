// The status page: the signed-in user's library with live progress (the libraryProgress
// subscription over graphql-transport-ws), and the backlog for operators (/status/backlog).
// Plain browser JavaScript, no build step and nothing from elsewhere (ADR 0031).
"use strict";

const TOKEN_KEY = "libingest.token";
const OPERATOR_KEY = "libingest.operatorToken";
const PROTOCOL = "graphql-transport-ws";
const LIBRARY_PAGES = 10; // at most 10 pages of 100 items are listed
const BACKLOG_EVERY_MS = 5000;

const ITEM_FIELDS = `id kind catalogId title artistNames
  ingestion { state tracksTotal tracksRequested tracksIndexed tracksSkipped tracksFailed lastError }`;
const LIBRARY_QUERY = `query Library($after: String) {
  library(first: 100, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { ${ITEM_FIELDS} } } } }`;
const LIBRARY_SUBSCRIPTION = `subscription { libraryProgress {
  itemId removed item { ${ITEM_FIELDS} } } }`;

const items = new Map(); // item id -> { item, updates }
let socket = null;
let retryDelay = 1000;
let retryTimer = null;

const $ = (id) => document.getElementById(id);

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

// The token may come in the address's fragment (never sent to the server); it is moved into
// this tab's storage and taken out of the address at once.
function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given.trim());
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function showConnection(state, text) {
  const line = $("connection");
  line.dataset.state = state;
  line.textContent = text;
}

async function graphql(query, variables) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token()}` },
    body: JSON.stringify({ query, variables }),
  });
  const answer = await response.json();
  if (answer.errors && answer.errors.length) {
    throw new Error(answer.errors[0].message);
  }
  return answer.data;
}

async function loadLibrary() {
  let after = null;
  for (let page = 0; page < LIBRARY_PAGES; page += 1) {
    const data = await graphql(LIBRARY_QUERY, { after });
    for (const edge of data.library.edges) {
      // An update the subscription delivered meanwhile is newer than this page: keep it.
      if (!items.has(edge.node.id)) items.set(edge.node.id, { item: edge.node, updates: 0 });
    }
    if (!data.library.pageInfo.hasNextPage) break;
    after = data.library.pageInfo.endCursor;
  }
  render();
}

function applyUpdate(update) {
  if (update.removed) {
    items.delete(update.itemId);
  } else {
    const known = items.get(update.itemId);
    items.set(update.itemId, { item: update.item, updates: (known ? known.updates : 0) + 1 });
  }
  render();
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function render() {
  const body = document.querySelector("#items tbody");
  const rows = [];
  for (const { item, updates } of items.values()) {
    const p = item.ingestion;
    const row = document.createElement("tr");
    row.dataset.itemId = item.id;
    row.dataset.state = p.state;
    row.dataset.indexed = p.tracksIndexed;
    row.dataset.total = p.tracksTotal;
    row.dataset.updates = updates;

    const name = cell(item.title || `${item.kind.toLowerCase()} ${item.catalogId}`, "title");
    if (item.artistNames.length) {
      const artists = document.createElement("div");
      artists.className = "muted";
      artists.textContent = item.artistNames.join(", ");
      name.appendChild(artists);
    }
    row.appendChild(name);
    row.appendChild(cell(item.kind.toLowerCase()));
    const state = cell(p.state, `state state-${p.state.toLowerCase()}`);
    if (p.lastError) state.title = p.lastError;
    row.appendChild(state);

    const progress = document.createElement("td");
    const bar = document.createElement("progress");
    bar.max = Math.max(p.tracksTotal, 1);
    bar.value = p.tracksIndexed;
    bar.setAttribute("aria-label", `${p.tracksIndexed} of ${p.tracksTotal} tracks indexed`);
    progress.appendChild(bar);
    row.appendChild(progress);

    const counts = [`${p.tracksIndexed}/${p.tracksTotal} indexed`];
    if (p.tracksRequested) counts.push(`${p.tracksRequested} requested`);
    if (p.tracksSkipped) counts.push(`${p.tracksSkipped} skipped`);
    if (p.tracksFailed) counts.push(`${p.tracksFailed} failed`);
    row.appendChild(cell(counts.join(" · "), "counts"));
    rows.push(row);
  }
  body.replaceChildren(...rows);
  $("library-count").textContent = token() ? `(${rows.length})` : "";
  $("library-empty").hidden = rows.length > 0 || !token();
}

function connect() {
  clearTimeout(retryTimer);
  const previous = socket;
  socket = null;
  if (previous) previous.close(1000);
  if (!token()) {
    showConnection("signed-out", "Not signed in.");
    return;
  }
  showConnection("connecting", "Connecting…");
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  const ws = new WebSocket(url, PROTOCOL);
  socket = ws;
  ws.onopen = () => {
    ws.send(JSON.stringify({
      type: "connection_init", payload: { authorization: `Bearer ${token()}` },
    }));
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "connection_ack") {
      retryDelay = 1000;
      // Subscribe first, then read the library: nothing committed in between is missed.
      ws.send(JSON.stringify({
        id: "library", type: "subscribe", payload: { query: LIBRARY_SUBSCRIPTION },
      }));
      showConnection("live", "Live: progress appears as it is committed.");
      loadLibrary().catch((error) => showConnection("error", `Library: ${error.message}`));
    } else if (message.type === "next" && message.id === "library") {
      if (message.payload.errors) {
        showConnection("error", message.payload.errors[0].message);
      } else {
        applyUpdate(message.payload.data.libraryProgress);
      }
    } else if (message.type === "error") {
      showConnection("error", message.payload[0].message);
    } else if (message.type === "ping") {
      ws.send(JSON.stringify({ type: "pong" }));
    }
  };
  ws.onclose = (event) => {
    if (socket !== ws) return; // replaced on purpose
    socket = null;
    if (event.code === 4403) {
      showConnection("refused", "The token was refused (expired or not valid): sign in again.");
      return;
    }
    showConnection("retrying", `Connection lost; retrying in ${retryDelay / 1000} s.`);
    retryTimer = setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  };
}

function signIn(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value.trim());
  items.clear();
  render();
  connect();
}

function definitions(list, entries) {
  const rows = [];
  for (const [name, value] of entries) {
    const term = document.createElement("dt");
    term.textContent = name;
    const detail = document.createElement("dd");
    detail.textContent = value;
    detail.dataset.name = name;
    rows.push(term, detail);
  }
  $(list).replaceChildren(...rows);
}

async function loadBacklog() {
  const operatorToken = sessionStorage.getItem(OPERATOR_KEY);
  const headers = operatorToken ? { authorization: `Bearer ${operatorToken}` } : {};
  let response;
  try {
    response = await fetch("/status/backlog", { headers });
  } catch (error) {
    $("backlog-status").textContent = "The service cannot be reached.";
    return;
  }
  const status = $("backlog-status");
  if (response.status === 401) {
    status.textContent = "Operators only: give the operator token (the service's METRICS_TOKEN).";
    $("backlog").hidden = true;
    return;
  }
  if (!response.ok) {
    status.textContent = "The backlog is not served here (production without an operator token).";
    $("backlog").hidden = true;
    return;
  }
  const backlog = await response.json();
  status.textContent = `As of ${new Date().toLocaleTimeString()}; every ${BACKLOG_EVERY_MS / 1000} s.`;
  definitions("jobs", Object.entries(backlog.jobsByStatus));
  definitions("pending", Object.entries(backlog.pendingByAge));
  definitions("ledger", Object.entries(backlog.ledgerByState));
  const pace = backlog.pace;
  definitions("pace", pace ? [
    ["tokens", `${pace.tokens.toFixed(1)} of ${pace.capacity}`],
    ["rate", `${pace.requestsPerSecond} requests/s`],
    ["blocked until", pace.blockedUntil || "not blocked"],
  ] : [["pace", "no TIDAL call paced yet"]]);
  const failures = backlog.recentFailures.map((failure) => {
    const entry = document.createElement("li");
    entry.textContent = `${failure.at} · ${failure.what}: ${failure.reason}`;
    return entry;
  });
  if (!failures.length) {
    const none = document.createElement("li");
    none.className = "muted";
    none.textContent = "none";
    failures.push(none);
  }
  $("failures").replaceChildren(...failures);
  $("backlog").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromFragment();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value);
    $("token").value = "";
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    signIn(null);
  });
  $("operator-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(OPERATOR_KEY, $("operator-token").value.trim());
    $("operator-token").value = "";
    loadBacklog();
  });
  render();
  connect();
  loadBacklog();
  setInterval(loadBacklog, BACKLOG_EVERY_MS);
});
