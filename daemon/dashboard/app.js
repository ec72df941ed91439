// pnnd dashboard: read-only. State comes from /api/snapshot (devices and jobs), then from the
// telemetry stream /api/events (Server-Sent Events, resumed by sequence number after a
// reconnect); run history from /api/runs. No framework, no build step.
'use strict';

const state = {
  instance: '',
  seq: 0,            // newest event applied
  devices: new Map(),
  jobs: new Map(),   // job_id -> JobInfo with all its metrics
  charts: new Map(), // element id -> uPlot
  snapshotPending: null,
  buffered: null,    // events that arrived before the first snapshot
};
const hasCharts = typeof uPlot !== 'undefined';
// For tests and the curious: what the page has taken in.
window.pnnDashboard = {
  jobPoints: {}, devicesShown: 0, snapshots: 0, events: 0, resets: 0, firstPaintMs: null,
  hasCharts,
};

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return e;
};
const num = (v) => (v === undefined || v === null || v === '' ? 0 : Number(v));
const fmt = (v, d = 4) => (v === null || v === undefined || Number.isNaN(v) ? '—' : Number(v).toFixed(d));
const short = (v) => {  // limits: 3.142, 1e+12, 0
  if (v === undefined || v === null) return '—';
  const n = Number(v);
  return Math.abs(n) >= 1e5 || (n !== 0 && Math.abs(n) < 1e-3) ? n.toExponential(2) : String(Number(n.toPrecision(4)));
};
const when = (ns) => (num(ns) ? new Date(num(ns) / 1e6).toLocaleString() : '—');

function notice(text) {
  const n = $('#notice');
  n.hidden = !text;
  n.textContent = text || '';
}

async function getJson(path) {
  const r = await fetch(path, { cache: 'no-store', credentials: 'same-origin' });
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status + ' ' + (await r.text()).trim());
  return r.json();
}

// ---- snapshot and events ------------------------------------------------------------------

function refreshSnapshot() {
  if (state.snapshotPending) return state.snapshotPending;
  state.snapshotPending = getJson('/api/snapshot').then((s) => {
    state.instance = s.instance_id;
    state.seq = num(s.seq);
    state.devices = new Map((s.devices || []).map((d) => [d.name, d]));
    state.jobs = new Map((s.jobs || []).map((j) => [num(j.job_id), j]));
    window.pnnDashboard.snapshots++;
    $('#instance').textContent = 'instance ' + s.instance_id;
    const buffered = state.buffered || [];
    state.buffered = null;
    for (const e of buffered) applyEvent(e.type, e.seq, e.data);
    render();
  }).catch((err) => notice('Cannot read the daemon state: ' + err.message + ' (retrying)'))
    .finally(() => { state.snapshotPending = null; });
  return state.snapshotPending;
}

function applyEvent(type, seq, data) {
  if (seq && seq <= state.seq) return;  // the snapshot already has it
  if (seq) state.seq = Math.max(state.seq, seq);
  if (type === 'device') {
    state.devices.set(data.name, data);
    scheduleRender('devices');
  } else if (type === 'job') {
    const incoming = data.job;
    const id = num(incoming.job_id);
    const from = num(data.metrics_from);
    const known = state.jobs.get(id);
    const metrics = known ? (known.metrics || []) : [];
    if (metrics.length < from) { refreshSnapshot(); return; }  // missed some: start again from a snapshot
    metrics.length = from;
    for (const m of incoming.metrics || []) metrics.push(m);
    incoming.metrics = metrics;
    state.jobs.set(id, incoming);
    scheduleRender('jobs');
  }
}

let eventSource = null;
function connectEvents() {
  if (eventSource) eventSource.close();
  const source = new EventSource('/api/events');
  eventSource = source;
  const live = $('#live');
  let lastSeq = 0;
  source.onopen = () => { live.textContent = 'live'; live.className = 'live on'; };
  source.onerror = () => { live.textContent = 'reconnecting…'; live.className = 'live off'; };
  source.addEventListener('hello', (ev) => {
    const h = JSON.parse(ev.data);
    if (state.instance && h.instance_id !== state.instance) {
      notice('pnnd restarted (new instance ' + h.instance_id + ')');
      refreshSnapshot();
    }
  });
  source.addEventListener('reset', () => { window.pnnDashboard.resets++; lastSeq = 0; refreshSnapshot(); });
  for (const type of ['device', 'job', 'log', 'hb']) {
    source.addEventListener(type, (ev) => {
      window.pnnDashboard.events++;
      const seq = Number(String(ev.lastEventId).split('/').pop()) || 0;
      if (lastSeq && seq !== lastSeq + 1) refreshSnapshot();  // a gap: some events were lost
      lastSeq = seq;
      const data = JSON.parse(ev.data);
      if (type === 'hb' || type === 'log') { state.seq = Math.max(state.seq, seq); return; }
      if (state.buffered) { state.buffered.push({ type, seq, data }); return; }
      applyEvent(type, seq, data);
    });
  }
}

// ---- rendering -----------------------------------------------------------------------------

// Live updates redraw at most every 250 ms: a job can finish an epoch every few milliseconds,
// and the browser (often on the lab PC itself) should not compete with the devices for the CPU.
let renderQueued = new Set();
let lastLiveRender = 0;
function scheduleRender(what) {
  if (renderQueued.size === 0) {
    const wait = Math.max(0, 250 - (performance.now() - lastLiveRender));
    setTimeout(() => requestAnimationFrame(() => {
      lastLiveRender = performance.now();
      const w = renderQueued;
      renderQueued = new Set();
      render(w);
    }), wait);
  }
  renderQueued.add(what);
}

function page() { return (location.hash || '#devices').slice(1); }

function render(what) {
  const p = page();
  for (const s of document.querySelectorAll('.page')) s.hidden = true;
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.id === 'nav-' + p.split('/')[0]);
  if (p === 'jobs') { $('#page-jobs').hidden = false; if (!what || what.has('jobs')) renderJobs(); }
  else if (p === 'runs') { $('#page-runs').hidden = false; if (!what) renderRuns(); }
  else if (p.startsWith('run/')) { $('#page-run').hidden = false; if (!what) renderRun(p.slice(4)); }
  else { $('#page-devices').hidden = false; }
  if (!what || what.has('devices')) renderDevices();
  for (const [id, j] of state.jobs) window.pnnDashboard.jobPoints[id] = (j.metrics || []).length;
}

function limitsText(spec) {
  if (!spec) return '';
  const parts = ['input ' + short(spec.input_min) + '…' + short(spec.input_max) + ' ' + (spec.input_unit || '')];
  for (const b of spec.params || []) {
    parts.push(b.name + '[' + b.count + '] ' + short(b.hard_min) + '…' + short(b.hard_max) + ' ' + (b.unit || ''));
  }
  return parts.join('; ');
}

// The drift monitor's rolling NMSE between the twin and the measured outputs (DeviceInfo.drift).
function driftText(drift) {
  if (!drift.enabled) return 'off';
  if (!num(drift.samples)) return '—';
  return fmt(drift.nmse, 3) + (drift.over_bound ? ' !' : '');
}

function driftTitle(drift) {
  if (!drift.enabled) return 'drift monitor off (devices.NAME.drift in the daemon config)';
  const parts = ['rolling NMSE, twin vs measured, over ' + num(drift.samples) + ' of ' + num(drift.window) + ' sampled forwards'];
  if (num(drift.baseline_nmse)) parts.push('first window ' + fmt(drift.baseline_nmse, 3));
  if (num(drift.warn_nmse)) parts.push('warns past ' + fmt(drift.warn_nmse, 3));
  return parts.join('; ');
}

function renderDevices() {
  const body = $('#devices tbody');
  body.replaceChildren();
  for (const d of [...state.devices.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const spec = d.spec || {};
    const lease = d.lease_holder ? d.lease_holder + (num(d.lease_expires_in_ms) ? ' (' + (num(d.lease_expires_in_ms) / 1000).toFixed(1) + ' s left)' : '') : '—';
    const twin = num(d.twin_id) ? 'learned #' + d.twin_id
      : d.no_twin ? 'none' : num(d.calibration_id) ? 'calibrated #' + d.calibration_id : 'nominal';
    const drift = d.drift || {};
    body.append(el('tr', { dataset: { device: d.name } },
      el('td', { class: 'name' }, d.name),
      el('td', { class: 'state state-' + d.state }, d.state),
      el('td', { class: 'health health-' + d.health }, String(d.health || '').replace('HEALTH_', '')),
      el('td', { class: 'message' }, d.health_message || ''),
      el('td', {}, spec.kind || ''),
      el('td', {}, spec.serial || ''),
      el('td', {}, (spec.num_inputs || 0) + '→' + (spec.num_outputs || 0)),
      el('td', { class: 'lease' }, lease),
      el('td', {}, twin),
      el('td', { class: 'drift' + (drift.over_bound ? ' health-WARNING' : ''), title: driftTitle(drift) }, driftText(drift)),
      el('td', {}, String(num(d.forward_calls))),
      el('td', { class: 'limits' }, limitsText(spec))));
  }
  window.pnnDashboard.devicesShown = state.devices.size;
}

// Metrics (one row per phase and epoch) as uPlot's aligned columns: x = epoch, one series per
// phase (a learning rule or a baseline) and quantity.
function columns(metrics, quantity) {
  const phases = [...new Set(metrics.map((m) => m.phase))];
  const maxEpoch = metrics.reduce((a, m) => Math.max(a, num(m.epoch)), 0);
  const xs = Array.from({ length: maxEpoch }, (_, i) => i + 1);
  const series = phases.map(() => new Array(maxEpoch).fill(null));
  for (const m of metrics) {
    let v = m[quantity];
    if (quantity === 'test_accuracy' && (v === null || num(v) < 0)) v = null;
    series[phases.indexOf(m.phase)][num(m.epoch) - 1] = v === null ? null : Number(v);
  }
  return { phases, data: [xs, ...series] };
}

const palette = ['#1f5fbf', '#c0392b', '#27ae60', '#8e44ad', '#d35400', '#16a085'];

function chart(container, key, title, metrics, quantity) {
  const { phases, data } = columns(metrics, quantity);
  let box = container.querySelector('[data-chart="' + key + '"]');
  if (!box) {
    box = el('div', { class: 'chart', dataset: { chart: key } }, el('div', { class: 'chart-title' }, title));
    container.append(box);
  }
  box.dataset.points = String(data[0].length);
  const existing = state.charts.get(key);
  if (!hasCharts) {
    const last = metrics.slice(-5).map((m) => m.phase + ' ' + m.epoch + ': ' + fmt(m[quantity]));
    box.replaceChildren(el('div', { class: 'chart-title' }, title + ' (charts unavailable: uPlot not vendored; last points)'),
      el('pre', {}, last.join('\n')));
    return;
  }
  if (existing && existing.series.length === phases.length + 1) { existing.setData(data); return; }
  if (existing) { existing.destroy(); }
  const opts = {
    width: 460, height: 220,
    scales: { x: { time: false } },
    axes: [{ label: 'epoch' }, {}],
    series: [{ label: 'epoch' }, ...phases.map((p, i) => ({ label: p, stroke: palette[i % palette.length], width: 1.5, spanGaps: true }))],
  };
  state.charts.set(key, new uPlot(opts, data, box));
}

function renderJobs() {
  const root = $('#jobs');
  const jobs = [...state.jobs.values()].sort((a, b) => num(b.job_id) - num(a.job_id));
  if (!jobs.length) { root.replaceChildren(el('p', { class: 'muted' }, 'No jobs in this daemon instance. Past runs: Runs.')); return; }
  if (root.querySelector('p.muted')) root.replaceChildren();
  for (const j of jobs) {
    const id = num(j.job_id);
    let card = root.querySelector('[data-job="' + id + '"]');
    if (!card) {
      card = el('div', { class: 'job', dataset: { job: String(id) } }, el('h3'), el('div', { class: 'status' }), el('div', { class: 'charts' }));
      root.append(card);
    }
    card.querySelector('h3').replaceChildren('job ' + id + ' · run ', el('a', { href: '#run/' + j.run_id }, String(j.run_id)), ' · ' + j.name);
    const progress = j.state === 'RUNNING' && j.num_batches ? ' · ' + j.phase + ' epoch ' + j.epoch + ', batch ' + j.batch + '/' + j.num_batches + ', running loss ' + fmt(j.running_loss) : '';
    card.querySelector('.status').replaceChildren(el('span', { class: 'job-state' }, j.state), ' · ' + (j.epochs_done || 0) + '/' + (j.epochs_total || 0) + ' epochs' + progress + (j.message ? ' · ' + j.message : ''));
    const metrics = j.metrics || [];
    const charts = card.querySelector('.charts');
    charts.dataset.points = String(metrics.length);
    chart(charts, 'job' + id + '-loss', 'train loss', metrics, 'train_loss');
    chart(charts, 'job' + id + '-train', 'train accuracy', metrics, 'train_accuracy');
    chart(charts, 'job' + id + '-test', 'test accuracy (on the hardware for physical layers)', metrics, 'test_accuracy');
  }
}

async function renderRuns() {
  try {
    const { runs } = await getJson('/api/runs?limit=200');
    const body = $('#runs tbody');
    body.replaceChildren();
    for (const r of runs) {
      const s = r.summary && typeof r.summary === 'object' ? r.summary : {};
      const result = Object.entries(s).filter(([k, v]) => k.startsWith('acc_') && typeof v === 'number').map(([k, v]) => k + ' ' + (100 * v).toFixed(2) + '%').join(', ');
      const row = el('tr', { class: 'clickable', dataset: { run: String(r.run_id) } },
        el('td', {}, String(r.run_id)), el('td', {}, r.name), el('td', {}, r.state), el('td', {}, when(r.started_ns)),
        el('td', {}, String(r.epochs_done)), el('td', {}, (r.device_serials || []).join(', ')), el('td', {}, result || r.message || ''));
      row.addEventListener('click', () => { location.hash = '#run/' + r.run_id; });
      body.append(row);
    }
  } catch (err) { notice(err.message); }
}

async function renderRun(id) {
  const t0 = performance.now();
  try {
    const r = await getJson('/api/runs/' + encodeURIComponent(id));
    $('#run-title').textContent = 'Run ' + r.run_id + ' · ' + r.name + ' · ' + r.state;
    const facts = $('#run-facts');
    facts.replaceChildren();
    const add = (k, v) => facts.append(el('dt', {}, k), el('dd', {}, v));
    add('started', when(r.started_ns));
    add('finished', when(r.finished_ns));
    add('epochs done', String(r.epochs_done));
    add('devices (serials)', (r.device_serials || []).join(', ') || '—');
    add('owner', r.owner || '—');
    add('checkpoint', r.checkpoint_path || '—');
    if (r.message) add('message', r.message);
    if (r.summary && typeof r.summary === 'object') {
      for (const [k, v] of Object.entries(r.summary)) if (typeof v === 'number') add(k, String(v));
    }
    const charts = $('#run-charts');
    charts.replaceChildren();
    for (const k of [...state.charts.keys()].filter((k) => k.startsWith('run-'))) { state.charts.get(k).destroy(); state.charts.delete(k); }
    const metrics = [];
    for (const [phase, c] of Object.entries(r.curves || {})) {
      for (let i = 0; i < c.epoch.length; i++) {
        metrics.push({ phase, epoch: c.epoch[i], train_loss: c.train_loss[i], train_accuracy: c.train_accuracy[i], test_accuracy: c.test_accuracy[i] });
      }
    }
    const box = el('div', { class: 'charts', dataset: { points: String(metrics.length) } });
    charts.append(box);
    chart(box, 'run-loss', 'train loss', metrics, 'train_loss');
    chart(box, 'run-train', 'train accuracy', metrics, 'train_accuracy');
    chart(box, 'run-test', 'test accuracy', metrics, 'test_accuracy');
    $('#run-plot').replaceChildren(r.has_plot ? el('img', { src: '/api/runs/' + r.run_id + '/plot.svg', alt: 'plot of run ' + r.run_id }) : el('span', { class: 'muted' }, 'no plot (yet)'));
    $('#run-config').textContent = r.config_yaml || '';
    requestAnimationFrame(() => {
      window.pnnDashboard.runRenderMs = performance.now() - t0;
      window.pnnDashboard.runPaintedAt = performance.now();  // since navigation start
      window.pnnDashboard.runPoints = metrics.length;
    });
  } catch (err) { notice(err.message); }
}

// ---- start ---------------------------------------------------------------------------------

window.addEventListener('hashchange', () => render());
if (!hasCharts) notice('Charts are unavailable: uPlot was not vendored when pnnd was built (scripts/vendor_uplot.sh). Data is shown as text.');
state.buffered = [];
connectEvents();
// A browser allows 6 HTTP/1.1 connections per server: a page left (or kept in the back-forward
// cache) must give its stream's connection back, or a few visits later the next page's requests
// wait for a free one.
window.addEventListener('pagehide', () => { if (eventSource) { eventSource.close(); eventSource = null; } });
window.addEventListener('pageshow', (ev) => { if (ev.persisted) { connectEvents(); refreshSnapshot(); } });
refreshSnapshot().then(() => {
  requestAnimationFrame(() => { window.pnnDashboard.firstPaintMs = performance.now(); });
});
// Lease countdowns and anything not carried by an event (the snapshot is shared and cached by pnnd).
setInterval(() => { if (page() === 'devices' || page() === 'jobs') refreshSnapshot(); }, 5000);
