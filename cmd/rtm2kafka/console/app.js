// rtm2kafka console: polls /api/console once a second and renders it; the
// control form posts one command to /api/control with the token in the
// Authorization header. Plain JS, no dependencies. Data from the server is
// only ever set as text (textContent), never parsed as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;

// ---- formatting -----------------------------------------------------------

function fmtNum(n) {
  if (n === null || n === undefined) return '—';
  return Math.round(n).toLocaleString('en-US');
}
function fmtRate(x) {
  if (x === null || x === undefined) return '—';
  if (x < 10) return x.toFixed(1);
  return Math.round(x).toLocaleString('en-US');
}
function fmtMs(x) {
  if (x === null || x === undefined) return '—';
  if (x < 10) return x.toFixed(2);
  if (x < 100) return x.toFixed(1);
  return Math.round(x).toLocaleString('en-US');
}
function fmtBytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + u[i];
}
function fmtDur(ms) {
  if (ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ' + (s % 60) + 's';
  const h = Math.floor(m / 60);
  if (h < 48) return h + 'h ' + (m % 60) + 'm';
  return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
}
function fmtTime(ms) {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function fillBody(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
}

// ---- sparklines -----------------------------------------------------------

// spark draws values (null = gap) as one path scaled to the svg's viewBox.
function spark(svg, values) {
  const W = 200, H = 40, pad = 2;
  let hi = 0;
  for (const v of values) if (v !== null && v > hi) hi = v;
  if (hi === 0) hi = 1;
  const n = values.length;
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    const x = n <= 1 ? W : (i / (n - 1)) * W;
    const y = H - pad - (v / hi) * (H - 2 * pad);
    d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
    pen = true;
  });
  let path = svg.querySelector('path');
  if (!path) {
    path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    svg.appendChild(path);
  }
  path.setAttribute('d', d);
  svg.setAttribute('data-max', String(hi));
}

// ---- rendering ------------------------------------------------------------

function linkClass(state) {
  if (state === 'listening') return 'ok';
  if (state === 'connecting' || state === 'connected' || state === 'starting') return 'warn';
  return 'bad';
}

function describeListen(l) {
  const parts = [];
  for (const f of ['p2p', 'group', 'room', 'ev']) if (l[f]) parts.push(f);
  for (const k of ['gids', 'rids', 'uids', 'events']) {
    if (l.counts[k] > 0) {
      const more = l.counts[k] > l[k].length ? ' …+' + (l.counts[k] - l[k].length) : '';
      parts.push(k + ' ' + l[k].join(',') + more);
    }
  }
  return parts.length ? parts.join('; ') : 'nothing';
}

function renderListen(l) {
  const flags = $('listen-flags');
  const lists = $('listen-lists');
  if (!l) {
    flags.replaceChildren(el('span', 'not started yet', 'note'));
    lists.replaceChildren();
    return;
  }
  flags.replaceChildren(...['p2p', 'group', 'room', 'ev'].map((f) => {
    const s = el('span', (l[f] ? '✓ ' : '✗ ') + f + (l[f] ? ' (all)' : ''), 'flag' + (l[f] ? ' on' : ''));
    s.dataset.flag = f;
    s.dataset.on = String(l[f]);
    return s;
  }));
  const items = [];
  for (const k of ['gids', 'rids', 'uids', 'events']) {
    items.push(el('dt', k));
    const n = l.counts[k];
    const text = n === 0 ? '—' : l[k].join(', ') + (n > l[k].length ? ' … (' + n + ' in all)' : '');
    const dd = el('dd', text);
    dd.id = 'listen-' + k;
    items.push(dd);
  }
  lists.replaceChildren(...items);
}

function renderBars(b) {
  const pr = b.max_records ? b.records / b.max_records : 0;
  const pb = b.max_bytes ? b.bytes / b.max_bytes : 0;
  for (const [id, p] of [['buf-records-bar', pr], ['buf-bytes-bar', pb]]) {
    const bar = $(id);
    bar.style.width = Math.min(100, p * 100).toFixed(1) + '%';
    bar.className = p > 0.9 ? 'bad' : p > 0.5 ? 'warn' : '';
  }
  setText('buf-records', fmtNum(b.records) + ' / ' + fmtNum(b.max_records) + ' (' + (pr * 100).toFixed(1) + '%)');
  setText('buf-bytes', fmtBytes(b.bytes) + ' / ' + fmtBytes(b.max_bytes) + ' (' + (pb * 100).toFixed(1) + '%)');
}

function renderSpool(s) {
  if (!s.enabled) {
    setText('spool-state', 'off (SPOOL_DIR not set)');
    for (const id of ['spool-records', 'spool-bytes', 'spool-age', 'spool-moved']) setText(id, '—');
    return;
  }
  let state = s.spilling ? 'SPILLING since ' + s.spilling_since : 'idle (fast path)';
  if (s.full) state += ', FULL: gateway back-pressured';
  if (s.broken) state += ', BROKEN: ' + s.broken;
  setText('spool-state', state);
  setText('spool-records', fmtNum(s.records));
  setText('spool-bytes', fmtBytes(s.bytes) + ' / ' + fmtBytes(s.max_bytes));
  setText('spool-age', s.records > 0 ? fmtDur(s.oldest_age_ms) : '—');
  setText('spool-moved', fmtNum(s.spilled) + ' / ' + fmtNum(s.drained));
}

function renderRates(v) {
  const r = v.rates;
  setText('pushes-rate', fmtRate(r.pushes_per_sec));
  setText('answered-rate', fmtRate(r.answered_per_sec));
  const rows = [];
  let map = r.by_topic;
  if (map) {
    setText('by-title', 'Records acked by topic (per second)');
    setText('by-note', '');
  } else {
    map = r.by_kind || {};
    setText('by-title', 'Pushes by scope and kind (per second)');
    setText('by-note', 'Records acked by topic appear once the bridge exports rtm2kafka_records_produced_total.');
  }
  for (const k of Object.keys(map).sort()) {
    const tr = el('tr');
    tr.append(el('td', k), el('td', fmtRate(map[k]), 'num'));
    rows.push(tr);
  }
  if (rows.length === 0) rows.push(el('tr', ''));
  fillBody($('by-table'), rows);
}

function renderDead(list) {
  const rows = (list || []).map((d) => {
    const tr = el('tr');
    tr.append(el('td', fmtTime(Date.parse(d.at))), el('td', fmtNum(d.bytes), 'num'), el('td', d.error));
    return tr;
  });
  fillBody($('dead-table'), rows);
  $('dead-empty').hidden = rows.length > 0;
}

function renderResults(list) {
  const rows = (list || []).map((r) => {
    const tr = el('tr');
    tr.dataset.id = r.id;
    tr.append(el('td', fmtTime(r.applied_at)), el('td', r.id || '(offset ' + r.offset + ')'),
      el('td', r.ok ? 'ok' : 'rejected: ' + r.error, r.ok ? 'ok' : 'bad'), el('td', describeListen(r.listen)));
    return tr;
  });
  fillBody($('results-table'), rows);
  $('results-empty').hidden = rows.length > 0;
}

let controlEnabled = null;

function renderControl(c) {
  if (controlEnabled === c.enabled) return;
  controlEnabled = c.enabled;
  $('send').disabled = !c.enabled;
  $('token').disabled = !c.enabled;
  setText('control-note', c.enabled
    ? 'Writes the command to the control topic, as rtm2kafka ctl does, and shows the bridge\'s result. The token is sent in a header and never stored.'
    : 'Read-only: start the bridge with HTTP_CONTROL_TOKEN (or HTTP_CONTROL_TOKEN_FILE) to change the listen state from here.');
}

function render(v) {
  const link = v.link;
  setText('link-state', link.state);
  $('link-pill').dataset.state = linkClass(link.state);
  setText('link-detail', link.state + (link.reason ? ' — ' + link.reason : ''));
  setText('link-since', link.since ? fmtTime(link.since) + ' (' + fmtDur(v.now - link.since) + ' ago)' : '—');
  setText('gateway', link.gateway);
  setText('role', v.role);
  setText('version', v.version);
  setText('uptime', fmtDur(v.now - v.started_at));
  const ready = v.stopping ? 'draining' : v.ready.ok ? (v.ready.degraded ? 'ready, degraded' : 'ready') : 'not ready';
  setText('ready', ready);
  $('ready-pill').dataset.state = v.ready.ok && !v.ready.degraded && !v.stopping ? 'ok' : v.ready.ok ? 'warn' : 'bad';
  setText('ready-reason', v.ready.reason || (v.ready.ok ? 'ready' : '—'));

  const t = v.totals;
  setText('reconnects', fmtNum(t.reconnects));
  setText('pushes-total', fmtNum(t.pushes));
  setText('answered-total', fmtNum(t.answered));
  setText('dead-total', fmtNum(t.dead_letters));
  setText('rejected-total', fmtNum(t.rejected));
  setText('lost-total', fmtNum(t.answers_lost));
  setText('dropped-total', fmtNum(t.dropped));
  setText('dups-total', fmtNum(t.duplicates_dropped));
  const pe = Object.entries(v.produce_errors || {}).map(([k, n]) => k + ' ' + fmtNum(n));
  setText('produce-errors', pe.length ? pe.join(', ') : '0');

  setText('p50', fmtMs(v.latency.p50_ms));
  setText('p99', fmtMs(v.latency.p99_ms));
  setText('latency-note', v.latency.window_sec
    ? fmtNum(v.latency.count) + ' acks in the last ' + v.latency.window_sec.toFixed(1) + ' s'
    : fmtNum(v.latency.count) + ' acks since the start');

  renderRates(v);
  renderBars(v.buffer);
  renderSpool(v.spool);
  renderListen(v.listen);
  renderDead(v.dead_letters);
  renderResults(v.results);
  renderControl(v.control);

  const h = v.history;
  spark($('spark-pushes'), h.pushes_per_sec);
  spark($('spark-answered'), h.answered_per_sec);
  spark($('spark-p99'), h.p99_ms);
  spark($('spark-inflight'), h.inflight);
}

// ---- polling --------------------------------------------------------------

function setConn(ok, why) {
  const c = $('conn');
  c.dataset.state = ok ? 'ok' : 'lost';
  c.textContent = ok ? 'updated ' + new Date().toLocaleTimeString() : 'no answer from the bridge: ' + why;
}

async function poll() {
  try {
    const res = await fetch('/api/console', { cache: 'no-store' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    render(await res.json());
    setConn(true);
  } catch (e) {
    setConn(false, e.message);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// ---- control form ---------------------------------------------------------

// listJSON turns "1, 2,x" into a JSON array text. Number-like tokens are
// written as they are typed (ids beyond 2^53 stay exact, and -5 or 1.5 get
// the bridge's precise error); anything else becomes a string, which the
// bridge rejects for ids with the element's position.
function listJSON(text, numeric) {
  const toks = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return '[' + toks.map((t) => (numeric && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t) ? t : JSON.stringify(t))).join(',') + ']';
}

function newID() {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return 'console-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// buildCommand writes the command the way rtm2kafka ctl builds it: add and
// remove carry the lists given, set carries all four (an empty one means
// "none"), set_all carries the flags not left at "keep".
function buildCommand() {
  const op = $('op').value;
  const parts = ['"id":' + JSON.stringify(newID()), '"op":' + JSON.stringify(op)];
  if (op === 'set_all') {
    for (const f of ['p2p', 'group', 'room', 'ev']) {
      const v = $('f-' + f).value;
      if (v !== '') parts.push('"' + f + '":' + v);
    }
  } else {
    for (const k of ['gids', 'rids', 'uids', 'events']) {
      const text = $(k).value;
      if (op === 'set' || text.trim() !== '') parts.push('"' + k + '":' + listJSON(text, k !== 'events'));
    }
  }
  return '{' + parts.join(',') + '}';
}

function status(state, text) {
  const s = $('control-status');
  s.dataset.state = state;
  s.textContent = text;
}

async function submit(ev) {
  ev.preventDefault();
  const body = buildCommand();
  const headers = { 'Content-Type': 'application/json' };
  const tok = $('token').value;
  if (tok !== '') headers.Authorization = 'Bearer ' + tok;
  $('send').disabled = true;
  status('sending', 'sending…');
  try {
    const res = await fetch('/api/control', { method: 'POST', headers, body, cache: 'no-store' });
    const out = await res.json().catch(() => ({ error: 'HTTP ' + res.status }));
    if (res.status === 401 || res.status === 403) {
      status('refused', 'refused (' + res.status + '): ' + out.error);
    } else if (!res.ok) {
      status('error', 'error (' + res.status + '): ' + out.error);
    } else if (!out.ok) {
      status('rejected', out.id + ' rejected: ' + out.error);
    } else {
      status('ok', out.id + ' applied — now listening to: ' + describeListen(out.listen));
    }
  } catch (e) {
    status('error', 'error: ' + e.message);
  } finally {
    $('send').disabled = !controlEnabled;
  }
}

function init() {
  const form = $('control-form');
  const syncOp = () => { form.dataset.op = $('op').value; };
  $('op').addEventListener('change', syncOp);
  syncOp();
  form.addEventListener('submit', submit);
  poll();
}

init();
