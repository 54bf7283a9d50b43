// gdlab explorer: the page. Every number it shows comes from the server (gdlab's core); this file only keeps the
// page state (mirrored in the URL), asks /api/descend for the runs, and draws them with plotly.js.
'use strict';

const COLORS = { A: '#1f5fbf', B: '#e07b00', data: '#d9534f', opt: '#2e7d32', start: '#1d2433' };
const HYPER_LABELS = { beta: 'β (momentum)', beta1: 'β1', beta2: 'β2', decay: 'decay ρ', eps: 'ε' };
const PLOT_CONFIG = { displaylogo: false, responsive: true,
  modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d', 'toggleSpikelines'] };

const meta = { datasets: {}, order: [], optimizers: {}, limits: {}, defaultDataset: 'line' };
const state = {};
let current = null;       // the last /api/descend answer
let sample = null;        // rows to draw (from /api/data)
let t = 0;                // iteration shown
let playTimer = null;
let inFlight = false, pending = false, seq = 0;
let notice = '';          // a message about the link itself (shown until the data set changes)

const $ = (id) => document.getElementById(id);

function fmt(x, digits = 4) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  if (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e6)) return x.toExponential(digits - 1);
  return String(Number(x.toPrecision(digits)));
}

// ---- state <-> URL ------------------------------------------------------------------------------------------------

function datasetDefaults(id) {
  const ds = meta.datasets[id];
  return { lr: ds.defaults.lr ?? 0.1, iterations: ds.defaults.iterations ?? 50 };
}

function resetForDataset(id) {
  const d = datasetDefaults(id);
  state.dataset = id;
  state.lr = d.lr;
  state.iterations = d.iterations;
  state.start = null;
  state.axes = null;
  state.t = null;
}

function readUrl() {
  const q = new URLSearchParams(window.location.search);
  const id = q.get('dataset') && meta.datasets[q.get('dataset')] ? q.get('dataset') : meta.defaultDataset;
  const unknownDataset = q.get('dataset') && !meta.datasets[q.get('dataset')] ? q.get('dataset') : null;
  state.optimizer = 'gd';
  state.hyper = {};
  state.race = '';
  state.race_lr = null;
  state.race_hyper = {};
  state.batch_size = 0;
  state.seed = 0;
  resetForDataset(id);
  if (unknownDataset) return unknownDataset;
  const num = (k) => (q.has(k) && q.get(k) !== '' && Number.isFinite(Number(q.get(k))) ? Number(q.get(k)) : null);
  if (q.get('optimizer') && meta.optimizers[q.get('optimizer')]) state.optimizer = q.get('optimizer');
  if (num('lr') !== null) state.lr = num('lr');
  if (num('iterations') !== null) state.iterations = num('iterations');
  if (num('batch_size') !== null) state.batch_size = num('batch_size');
  if (num('seed') !== null) state.seed = num('seed');
  if (q.get('start')) state.start = q.get('start').split(',').map(Number);
  if (q.get('axes')) state.axes = q.get('axes').split(',').map(Number);
  if (num('t') !== null) state.t = num('t');
  for (const h of Object.keys(HYPER_LABELS)) {
    if (num(h) !== null) state.hyper[h] = num(h);
    if (num('race_' + h) !== null) state.race_hyper[h] = num('race_' + h);
  }
  if (q.get('race') && meta.optimizers[q.get('race')]) {
    state.race = q.get('race');
    state.race_lr = num('race_lr') ?? state.lr;
  }
  return null;
}

function query(extra = {}) {
  const q = new URLSearchParams();
  q.set('dataset', state.dataset);
  q.set('optimizer', state.optimizer);
  q.set('lr', String(state.lr));
  q.set('iterations', String(state.iterations));
  if (state.batch_size > 0) { q.set('batch_size', String(state.batch_size)); q.set('seed', String(state.seed)); }
  for (const h of Object.keys(meta.optimizers[state.optimizer] || {})) {
    if (state.hyper[h] !== undefined) q.set(h, String(state.hyper[h]));
  }
  if (state.race) {
    q.set('race', state.race);
    q.set('race_lr', String(state.race_lr));
    for (const h of Object.keys(meta.optimizers[state.race] || {})) {
      if (state.race_hyper[h] !== undefined) q.set('race_' + h, String(state.race_hyper[h]));
    }
  }
  if (state.start) q.set('start', state.start.map((v) => String(Number(v.toPrecision(6)))).join(','));
  if (state.axes) q.set('axes', state.axes.join(','));
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q;
}

function writeUrlNow() {
  if (urlTimer) { clearTimeout(urlTimer); urlTimer = null; }
  delete document.body.dataset.urlPending;
  urlWritten = performance.now();
  const q = query();
  if (current && t < maxT()) q.set('t', String(t));
  history.replaceState(null, '', window.location.pathname + '?' + q.toString());
  $('export-csv').href = '/api/export?' + query({ format: 'csv' }).toString();
  $('export-json').href = '/api/export?' + query({ format: 'json' }).toString();
}

// A dragged slider fires dozens of events a second, and browsers refuse floods of history updates (Chrome allows
// about 200 in 10 s): the URL is written at most every 250 ms, always with the latest state.
let urlTimer = null, urlWritten = -1e9;
function writeUrl() {
  if (urlTimer) return;
  document.body.dataset.urlPending = '1';
  urlTimer = setTimeout(writeUrlNow, Math.max(0, 250 - (performance.now() - urlWritten)));
}

// ---- talking to the server ----------------------------------------------------------------------------------------

async function getJson(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = { error: `the server answered ${response.status}` }; }
  if (!response.ok) {
    const err = new Error(body.error || `the server answered ${response.status}`);
    err.parameter = body.parameter;
    throw err;
  }
  return body;
}

async function loadMeta() {
  const body = await getJson('/api/datasets');
  meta.optimizers = body.optimizers;
  meta.limits = body.limits;
  meta.defaultDataset = body.default;
  meta.order = [];
  meta.datasets = {};
  for (const ds of body.datasets) addDataset(ds);
}

function addDataset(ds) {
  if (!meta.datasets[ds.id]) meta.order.push(ds.id);
  meta.datasets[ds.id] = ds;
}

async function loadSample() {
  sample = await getJson('/api/data?dataset=' + encodeURIComponent(state.dataset));
}

// Ask for the runs of the current state; while one request is out, remember that another is wanted (the slider
// fires faster than the network answers: only the latest state matters).
async function update() {
  writeUrl();
  if (inFlight) { pending = true; return; }
  inFlight = true;
  const mine = ++seq;
  try {
    const body = await getJson('/api/descend?' + query().toString());
    if (mine === seq) {
      current = body;
      const n = maxT();
      t = state.t !== null && state.t !== undefined ? Math.max(0, Math.min(state.t, n)) : n;
      state.t = null;
      render();
      writeUrl();
    }
  } catch (err) {
    showError(err);
  } finally {
    inFlight = false;
    if (pending) { pending = false; update(); }
  }
}

function showError(err) {
  const v = $('verdict');
  v.className = 'error';
  v.textContent = 'Cannot compute this: ' + err.message;
  document.body.dataset.state = 'error';
}

// ---- controls ------------------------------------------------------------------------------------------------------

function logSliderToValue(pos, lo, hi) { return Math.exp(Math.log(lo) + (pos / 1000) * (Math.log(hi) - Math.log(lo))); }
function valueToLogSlider(v, lo, hi) {
  return Math.max(0, Math.min(1000, (1000 * (Math.log(v) - Math.log(lo))) / (Math.log(hi) - Math.log(lo))));
}
function lrRange() { const r = meta.datasets[state.dataset].lr_range; return [r.min, r.max]; }

function fillSelect(select, items) {
  select.innerHTML = '';
  for (const [value, text] of items) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    select.appendChild(o);
  }
}

function buildHyper(box, optimizer, values, prefix) {
  box.innerHTML = '';
  const spec = meta.optimizers[optimizer] || {};
  for (const [name, s] of Object.entries(spec)) {
    const label = document.createElement('label');
    label.textContent = HYPER_LABELS[name] || name;
    const input = document.createElement('input');
    input.type = 'number';
    input.step = 'any';
    input.min = s.min;
    input.max = s.max;
    input.id = prefix + name;
    input.value = values[name] ?? s.default;
    input.addEventListener('change', () => {
      const v = Number(input.value);
      if (input.value === '' || !Number.isFinite(v)) return;
      values[name] = v;
      update();
    });
    label.appendChild(input);
    box.appendChild(label);
  }
}

function syncControls() {
  const ds = meta.datasets[state.dataset];
  fillSelect($('dataset'), meta.order.map((id) => [id, meta.datasets[id].title]));
  $('dataset').value = state.dataset;
  $('dataset-description').textContent = ds.description + (ds.note ? ' (' + ds.note + ')' : '');
  const [lo, hi] = lrRange();
  $('lr-slider').value = valueToLogSlider(state.lr, lo, hi);
  $('lr-value').value = state.lr;
  $('lr-output').textContent = '= ' + fmt(state.lr, 3);
  const maxIt = meta.limits.max_iterations;
  $('iterations').max = maxIt;
  $('iterations').value = state.iterations;
  $('iter-slider').value = valueToLogSlider(state.iterations, 1, maxIt);
  $('optimizer').value = state.optimizer;
  buildHyper($('hyper'), state.optimizer, state.hyper, 'hp-');
  $('batch-size').value = state.batch_size > 0 ? state.batch_size : '';
  $('batch-size').max = ds.n_rows;
  $('seed').value = state.seed;
  $('seed').disabled = !(state.batch_size > 0);
  $('race-on').checked = !!state.race;
  $('race-box').hidden = !state.race;
  if (state.race) {
    $('race-optimizer').value = state.race;
    $('race-lr').value = state.race_lr;
    buildHyper($('race-hyper'), state.race, state.race_hyper, 'race-hp-');
  }
  const names = ds.param_names;
  $('axes-box').hidden = names.length <= 2;
  if (names.length > 2) {
    const items = names.map((n, i) => [String(i), n]);
    fillSelect($('axis-x'), items);
    fillSelect($('axis-y'), items);
    const axes = state.axes || ds.defaults.axes || [0, 1];
    $('axis-x').value = String(axes[0]);
    $('axis-y').value = String(axes[1]);
  }
  drawMarks();
}

function drawMarks() {
  const ds = meta.datasets[state.dataset];
  const [lo, hi] = lrRange();
  const r = ds.lr_range;
  const marks = $('lr-marks');
  marks.innerHTML = '';
  const add = (value, text, cls) => {
    const m = document.createElement('div');
    m.className = 'mark ' + cls;
    m.style.left = (valueToLogSlider(value, lo, hi) / 10) + '%';
    const s = document.createElement('span');
    s.textContent = text;
    m.appendChild(s);
    marks.appendChild(m);
  };
  add(r.best_step, '2/(L+μ) = ' + fmt(r.best_step, 2), 'best left');
  add(r.stable_step, '2/L = ' + fmt(r.stable_step, 2), 'stable right');
  // the red zone starts at the bound of the optimizer in use (2/L for gd; none for the adaptive methods)
  let bound = r.stable_step;
  const own = current && current.runs[0].optimizer === state.optimizer ? current.runs[0].verdict.bound : undefined;
  if (own) {
    bound = own.value;
    if (Math.abs(bound - r.stable_step) > 1e-9 * r.stable_step && bound > lo && bound < hi) {
      add(bound, `${state.optimizer} bound = ${fmt(bound, 2)}`, 'own above');
    }
  } else if (current && own === null) {
    bound = null;
  }
  const at = bound === null ? 100 : valueToLogSlider(bound, lo, hi) / 10;
  $('lr-slider').style.setProperty('--danger-at', at + '%');
}

function bindControls() {
  fillSelect($('optimizer'), Object.keys(meta.optimizers).map((k) => [k, k]));
  fillSelect($('race-optimizer'), Object.keys(meta.optimizers).map((k) => [k, k]));

  $('dataset').addEventListener('change', async () => {
    stopPlay();
    resetForDataset($('dataset').value);
    await switchDataset();
  });
  $('lr-slider').addEventListener('input', () => {
    const [lo, hi] = lrRange();
    state.lr = Number(logSliderToValue(Number($('lr-slider').value), lo, hi).toPrecision(3));
    $('lr-value').value = state.lr;
    $('lr-output').textContent = '= ' + fmt(state.lr, 3);
    update();
  });
  $('lr-value').addEventListener('change', () => {
    const v = Number($('lr-value').value);
    if (!(v > 0)) { showError(new Error('the learning rate must be a positive number.')); return; }
    state.lr = v;
    const [lo, hi] = lrRange();
    $('lr-slider').value = valueToLogSlider(v, lo, hi);
    $('lr-output').textContent = '= ' + fmt(v, 3);
    update();
  });
  $('iter-slider').addEventListener('input', () => {
    state.iterations = Math.max(1, Math.round(logSliderToValue(Number($('iter-slider').value), 1, meta.limits.max_iterations)));
    $('iterations').value = state.iterations;
    update();
  });
  $('iterations').addEventListener('change', () => {
    const v = Math.round(Number($('iterations').value));
    if (!(v >= 1)) { showError(new Error('iterations must be a whole number of at least 1.')); return; }
    state.iterations = v;
    $('iter-slider').value = valueToLogSlider(v, 1, meta.limits.max_iterations);
    update();
  });
  $('optimizer').addEventListener('change', () => {
    state.optimizer = $('optimizer').value;
    state.hyper = {};
    buildHyper($('hyper'), state.optimizer, state.hyper, 'hp-');
    update();
  });
  $('batch-size').addEventListener('change', () => {
    const v = $('batch-size').value === '' ? 0 : Math.round(Number($('batch-size').value));
    state.batch_size = Number.isFinite(v) && v > 0 ? v : 0;
    $('seed').disabled = !(state.batch_size > 0);
    update();
  });
  $('seed').addEventListener('change', () => { state.seed = Math.max(0, Math.round(Number($('seed').value) || 0)); update(); });
  $('race-on').addEventListener('change', () => {
    if ($('race-on').checked) {
      state.race = state.optimizer === 'momentum' ? 'gd' : 'momentum';
      state.race_lr = state.lr;
      state.race_hyper = {};
    } else {
      state.race = '';
    }
    syncControls();
    update();
  });
  $('race-optimizer').addEventListener('change', () => {
    state.race = $('race-optimizer').value;
    state.race_hyper = {};
    buildHyper($('race-hyper'), state.race, state.race_hyper, 'race-hp-');
    update();
  });
  $('race-lr').addEventListener('change', () => {
    const v = Number($('race-lr').value);
    if (!(v > 0)) { showError(new Error('the second learning rate must be a positive number.')); return; }
    state.race_lr = v;
    update();
  });
  for (const id of ['axis-x', 'axis-y']) {
    $(id).addEventListener('change', () => {
      const a = [Number($('axis-x').value), Number($('axis-y').value)];
      if (a[0] === a[1]) { showError(new Error('choose two different parameters for the surface axes.')); return; }
      state.axes = a;
      update();
    });
  }
  $('reset-start').addEventListener('click', () => { state.start = null; update(); });
  $('play').addEventListener('click', () => (playTimer ? stopPlay() : startPlay()));
  $('step-forward').addEventListener('click', () => { stopPlay(); setT(t + 1); });
  $('step-back').addEventListener('click', () => { stopPlay(); setT(t - 1); });
  $('t-slider').addEventListener('input', () => { stopPlay(); setT(Number($('t-slider').value)); });
  $('copy-link').addEventListener('click', async () => {
    writeUrlNow();
    try {
      await navigator.clipboard.writeText(window.location.href);
      $('copy-link').textContent = 'Link copied';
    } catch (e) {
      window.prompt('Copy this link:', window.location.href);
    }
    setTimeout(() => { $('copy-link').textContent = 'Copy link'; }, 1500);
  });
  $('upload-button').addEventListener('click', upload);
  $('plot-surface').addEventListener('click', surfaceClick);
}

async function switchDataset() {
  notice = '';
  syncControls();
  await loadSample();
  await update();
}

async function upload() {
  const status = $('upload-status');
  const file = $('upload-file').files[0];
  status.className = 'hint';
  if (!file) { status.className = 'hint error'; status.textContent = 'Choose a CSV file first.'; return; }
  const limit = meta.limits.max_upload_bytes;
  if (file.size > limit) {
    status.className = 'hint error';
    status.textContent = `${file.name} is ${(file.size / 1e6).toFixed(1)} MB; the upload limit is ${(limit / 1e6).toFixed(1)} MB.`;
    return;
  }
  status.textContent = 'Uploading ' + file.name + '…';
  const q = new URLSearchParams({ name: file.name });
  const target = $('upload-target').value.trim();
  if (target) q.set('target', target);
  try {
    const body = await getJson('/api/upload?' + q.toString(), { method: 'POST', body: file,
      headers: { 'Content-Type': 'text/csv' } });
    addDataset(body.dataset);
    status.className = 'hint ok';
    status.textContent = `Loaded ${body.dataset.title}: ${body.dataset.n_rows} rows, target ${body.dataset.target_name}` +
      (body.dataset.note ? ` (${body.dataset.note})` : '') + '.';
    stopPlay();
    resetForDataset(body.dataset.id);
    await switchDataset();
  } catch (err) {
    status.className = 'hint error';
    status.textContent = 'Upload refused: ' + err.message;
  }
}

function surfaceClick(ev) {
  if (!current) return;
  const gd = $('plot-surface');
  const fl = gd._fullLayout;
  if (!fl || !fl.xaxis) return;
  const rect = gd.getBoundingClientRect();
  const px = ev.clientX - rect.left - fl._size.l;
  const py = ev.clientY - rect.top - fl._size.t;
  if (px < 0 || py < 0 || px > fl._size.w || py > fl._size.h) return;  // a click on the axes or the legend
  const x = fl.xaxis.p2l(px);
  const y = fl.yaxis.p2l(py);
  const surf = current.surface;
  const start = current.start.slice();
  start[surf.axes[0]] = x;
  if (surf.kind === 'contour') start[surf.axes[1]] = y;
  state.start = start.map((v) => Number(v.toPrecision(4)));
  stopPlay();
  update();
}

// ---- playback -----------------------------------------------------------------------------------------------------

function maxT() { return current ? Math.max(...current.runs.map((r) => r.iteration.length - 1)) : 0; }

function setT(value) {
  t = Math.max(0, Math.min(maxT(), value));
  render(true);
  if (!playTimer) writeUrl();
}

function startPlay() {
  if (!current) return;
  if (t >= maxT()) t = 0;
  const n = maxT();
  const every = Math.max(30, Math.min(400, 6000 / Math.max(n, 1)));
  $('play').textContent = '❚❚ pause';
  playTimer = setInterval(() => {
    setT(t + 1);
    if (t >= maxT()) stopPlay();
  }, every);
}

function stopPlay() {
  if (playTimer) clearInterval(playTimer);
  playTimer = null;
  $('play').textContent = '▶ play';
  if (current) writeUrl();
}

// ---- drawing ------------------------------------------------------------------------------------------------------

function upTo(run) { return Math.min(t, run.iteration.length - 1); }

function renderVerdict() {
  const v = $('verdict');
  v.innerHTML = '';
  const runs = current.runs;
  let bad = false, bounded = false;
  for (const run of runs) {
    const line = document.createElement('span');
    line.className = 'line';
    if (runs.length > 1) {
      const tag = document.createElement('span');
      tag.className = 'tag ' + run.label;
      tag.textContent = run.label + ' ';
      line.appendChild(tag);
      line.appendChild(document.createTextNode(run.optimizer + ' — '));
    }
    line.appendChild(document.createTextNode(run.verdict.text));
    v.appendChild(line);
    bad = bad || run.verdict.diverges;
    bounded = bounded || !!run.verdict.bound;
  }
  if (notice) {
    const line = document.createElement('span');
    line.className = 'line notice';
    line.textContent = notice;
    v.appendChild(line);
  }
  v.className = bad ? 'bad' : 'ok';
  document.body.dataset.state = bad ? 'diverges' : 'converges';
}

// Many points redraw far faster through WebGL than as SVG nodes (1500 points: ~35 ms against ~250 ms in a
// software-rendered Chromium); a few stay SVG, which looks crisper and needs no GPU context.
function scatterType() { return sample && sample.n_shown > 300 ? 'scattergl' : 'scatter'; }

function renderData() {
  const ds = current.dataset;
  const traces = [];
  const layout = baseLayout();
  const runs = current.runs;
  if (!sample || sample.id !== ds.id) return;
  const shown = sample.n_shown < sample.n_rows ? ` (${sample.n_shown} of ${sample.n_rows} rows shown)` : '';
  if (ds.kind === 'mean') {
    traces.push({ x: sample.y, y: sample.jitter, mode: 'markers', type: scatterType(), name: 'data x',
      marker: { symbol: 'x', size: 5, color: '#6c8ebf', opacity: 0.6 }, hoverinfo: 'x' });
    const vline = (x, color, dash, name, width = 2, show = true) => ({ x: [x, x], y: [0, 1], mode: 'lines', name,
      line: { color, dash, width }, showlegend: show, hoverinfo: 'name+x' });
    (sample.lines || []).forEach((x, i) => traces.push(vline(x, '#333', 'dash', 'candidates 1.5, 2.5', 1.5, i === 0)));
    traces.push(vline(ds.optimum.params[0], COLORS.opt, 'dash', 'optimum (the mean)'));
    for (const run of runs) {
      traces.push(vline(run.params[upTo(run)][0], COLORS[run.label], 'solid', `c at iteration ${upTo(run)} (${run.label})`, 3));
    }
    const what = ds.id === 'mean' ? 'Data (the workshop\'s first figure)' : 'Data';
    layout.title = { text: what + ' and the candidate mean c' + shown, font: { size: 14 } };
    layout.xaxis.title = { text: ds.target_name, standoff: 4 };
    layout.yaxis.title = { text: 'random jitter (for display only)' };
  } else if (ds.kind === 'line') {
    const xs = sample.X.map((r) => r[0]);
    const lo = Math.min(...xs), hi = Math.max(...xs), pad = 0.05 * (hi - lo || 1);
    const xl = [lo - pad, hi + pad];
    const ys = sample.y;
    const ylo = Math.min(...ys), yhi = Math.max(...ys), ypad = 0.12 * (yhi - ylo || 1);
    traces.push({ x: xs, y: ys, mode: 'markers', type: scatterType(), name: 'data', marker: { color: COLORS.data, size: 6 } });
    const A = runs[0];
    const k = upTo(A);
    const stride = Math.max(1, Math.ceil(k / 25));
    const gx = [], gy = [];
    for (let i = 0; i < k; i += stride) {
      const p = A.params[i];
      if (p[0] === null || p[1] === null) continue;
      gx.push(xl[0], xl[1], null);
      gy.push(p[0] + p[1] * xl[0], p[0] + p[1] * xl[1], null);
    }
    traces.push({ x: gx, y: gy, mode: 'lines', name: 'earlier iterations (A)', line: { color: COLORS.A, width: 1 },
      opacity: 0.3, hoverinfo: 'skip' });
    const o = ds.optimum.params;
    traces.push({ x: xl, y: xl.map((x) => o[0] + o[1] * x), mode: 'lines', name: 'closed form (Normal Equation)',
      line: { color: COLORS.opt, dash: 'dash', width: 2 } });
    for (const run of runs) {
      const p = run.params[upTo(run)];
      if (p[0] === null || p[1] === null) continue;
      traces.push({ x: xl, y: xl.map((x) => p[0] + p[1] * x), mode: 'lines', line: { color: COLORS[run.label], width: 3 },
        name: `fit at iteration ${upTo(run)}${runs.length > 1 ? ' (' + run.label + ')' : ''}` });
    }
    const yr = [ylo - ypad, yhi + ypad];
    const offChart = runs.filter((run) => {
      const p = run.params[upTo(run)];
      if (p[0] === null || p[1] === null) return true;
      const ends = xl.map((x) => p[0] + p[1] * x);
      return (ends[0] < yr[0] && ends[1] < yr[0]) || (ends[0] > yr[1] && ends[1] > yr[1]);
    });
    layout.annotations = offChart.map((run, n) => {
      const p = run.params[upTo(run)];
      return { xref: 'paper', yref: 'paper', x: 0.02, y: 0.98 - 0.09 * n, xanchor: 'left', showarrow: false,
        bgcolor: 'rgba(255,255,255,0.85)', font: { color: COLORS[run.label], size: 12 },
        text: `fit ${run.label} at iteration ${upTo(run)} is off the chart: w0 = ${fmt(p[0], 3)}, w1 = ${fmt(p[1], 3)}` };
    });
    layout.title = { text: 'Data and the fitted line y = w0 + w1 x' + shown, font: { size: 14 } };
    layout.xaxis = { ...layout.xaxis, title: { text: ds.feature_names[0], standoff: 4 }, range: xl };
    layout.yaxis = { ...layout.yaxis, title: { text: ds.target_name }, range: yr };
  } else {
    const ys = sample.y;
    const lo = Math.min(...ys), hi = Math.max(...ys), pad = 0.1 * (hi - lo || 1);
    traces.push({ x: [lo - pad, hi + pad], y: [lo - pad, hi + pad], mode: 'lines', name: 'perfect fit (predicted = actual)',
      line: { color: COLORS.opt, dash: 'dash' } });
    for (const run of runs) {
      const p = run.params[upTo(run)];
      if (p.some((v) => v === null)) continue;
      const pred = sample.X.map((row) => row.reduce((s, v, j) => s + v * p[j + 1], p[0]));
      traces.push({ x: ys, y: pred, mode: 'markers', type: scatterType(), marker: { color: COLORS[run.label], size: 5, opacity: 0.6 },
        name: `predicted at iteration ${upTo(run)}${runs.length > 1 ? ' (' + run.label + ')' : ''}` });
    }
    layout.title = { text: 'Predicted against actual' + shown, font: { size: 14 } };
    layout.xaxis = { ...layout.xaxis, title: { text: 'actual ' + ds.target_name, standoff: 4 }, range: [lo - pad, hi + pad] };
    layout.yaxis = { ...layout.yaxis, title: { text: 'predicted ' + ds.target_name }, range: [lo - pad, hi + pad] };
  }
  return draw('plot-data', traces, layout, PLOT_CONFIG);
}

// One update redraws three plots, each through Plotly.react's full replot (15-25 ms a plot in a software-rendered
// Chromium). The config is handed over on a plot's first drawing only: given one, react copies and compares the
// whole plot context on every call.
const SURFACE_CONFIG = { ...PLOT_CONFIG, displayModeBar: false, scrollZoom: false };
const configured = new Set();

function draw(id, traces, layout, config) {
  const gd = $(id);
  const first = !configured.has(id);
  configured.add(id);
  return first ? Plotly.react(gd, traces, layout, config) : Plotly.react(gd, traces, layout);
}

function baseLayout() {
  return {
    margin: { l: 60, r: 20, t: 40, b: 50 },
    font: { family: 'system-ui, "DejaVu Sans", sans-serif', size: 12 },
    legend: { orientation: 'h', x: 0, xanchor: 'left', y: -0.26, yanchor: 'top', font: { size: 11 } },
    // automargin keeps every tick label inside the plot: plotly's check for labels past its edge ('hide past div',
    // a measured box per label on every redraw) has nothing to hide, so it is skipped
    xaxis: { zeroline: false, automargin: true, title: { standoff: 4 }, ticklabeloverflow: 'allow' },
    yaxis: { zeroline: false, automargin: true, ticklabeloverflow: 'allow' },
    paper_bgcolor: '#fff', plot_bgcolor: '#fff',
    uirevision: current ? current.dataset.id : 'x',
  };
}

// The surface is drawn on #plot-surface-bg only when it changes (a filled contour is the costliest thing on the
// page); the paths, the start and the optimum go on the transparent #plot-surface above it, with the same fixed
// margins and axis ranges, so that a slider move redraws only the light layer.
let surfaceKey = null;
const SURFACE_MARGIN = { l: 62, r: 16, t: 34, b: 46 };
const SURFACE_DOMAIN = [0, 0.84];

function surfaceLayout(surf, withAxes) {
  const axis = (title, range, domain) => ({ title: withAxes ? { text: title, standoff: 6 } : undefined, range,
    domain, automargin: false, zeroline: false, showgrid: withAxes, showticklabels: withAxes, ticks: withAxes ? 'outside' : '',
    showline: withAxes, linecolor: '#999', fixedrange: true });
  const layout = {
    margin: SURFACE_MARGIN, showlegend: false, dragmode: false, hovermode: 'closest',
    font: { family: 'system-ui, "DejaVu Sans", sans-serif', size: 12 },
    paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)',
  };
  if (surf.kind === 'contour') {
    layout.xaxis = axis(surf.labels[0], [surf.view[0], surf.view[1]], SURFACE_DOMAIN);
    layout.yaxis = axis(surf.labels[1], [surf.view[2], surf.view[3]]);
  } else {
    layout.xaxis = axis('candidate mean c', [surf.view[0], surf.view[1]], [0, 1]);
    const top = Math.max(...surf.loss.filter((v) => v !== null));
    layout.yaxis = axis('mean squared error', [0, top * 1.05]);
  }
  return layout;
}

function renderSurfaceBackground(surf, ds) {
  const key = JSON.stringify([ds.id, surf.kind, surf.axes, surf.view, surf.x.length]);
  if (key === surfaceKey) return;
  surfaceKey = key;
  const layout = surfaceLayout(surf, true);
  layout.paper_bgcolor = '#fff';
  const traces = [];
  if (surf.kind === 'contour') {
    traces.push({ type: 'contour', x: surf.x, y: surf.y, z: surf.z, colorscale: 'YlGnBu', reversescale: true,
      ncontours: 22, contours: { coloring: 'fill', showlines: true }, line: { width: 0.5, color: 'rgba(255,255,255,0.6)' },
      opacity: 0.85, hoverinfo: 'skip', showscale: true,
      colorbar: { title: { text: 'log10(loss − loss*)', side: 'right' }, thickness: 12, len: 0.95, x: 0.86,
        xanchor: 'left', y: 0.5, yanchor: 'middle' } });
    const held = surf.held && surf.held.length ? ' (others held at their optimum)' : '';
    layout.title = { text: 'Loss surface and the path' + held, font: { size: 14 }, y: 0.98 };
  } else {
    traces.push({ x: surf.x, y: surf.loss, mode: 'lines', line: { color: '#555', width: 2 }, hoverinfo: 'skip' });
    layout.title = { text: 'The error curve MSE(c) and the steps walking down it', font: { size: 14 }, y: 0.98 };
  }
  Plotly.react('plot-surface-bg', traces, layout, { displayModeBar: false, staticPlot: true });
}

// The hover label of a point of a path is its iteration number. The runs record every iterate from 0, so it is the
// point's index: %{pointNumber} says it without a text array (one costs a slider move ~5 ms of redraw).
function iterationLabel(run, k) {
  for (let n = 0; n <= k; n++) if (run.iteration[n] !== n) return { text: run.iteration.slice(0, k + 1).map(String), tag: '%{text}' };
  return { text: undefined, tag: '%{pointNumber}' };
}

function renderSurface() {
  const surf = current.surface;
  const ds = current.dataset;
  const runs = current.runs;
  renderSurfaceBackground(surf, ds);
  const traces = [];
  const layout = surfaceLayout(surf, false);
  const [i, j] = surf.kind === 'contour' ? surf.axes : [0, null];
  const legend = [];
  for (const run of runs) {
    const k = upTo(run);
    const pts = run.params.slice(0, k + 1);
    const xs = pts.map((p) => p[i]);
    const ys = surf.kind === 'contour' ? pts.map((p) => p[j]) : run.loss.slice(0, k + 1);
    const what = surf.kind === 'contour' ? 'path' : 'steps';
    const label = iterationLabel(run, k);
    traces.push({ x: xs, y: ys, mode: 'lines+markers', name: `${what} ${run.label}: ${run.optimizer}`,
      line: { color: COLORS[run.label], width: surf.kind === 'contour' ? 2 : 1.5 },
      marker: { size: surf.kind === 'contour' ? 5 : 8, color: COLORS[run.label] },
      text: label.text,
      hovertemplate: surf.kind === 'contour' ? `iteration ${label.tag}<br>(%{x:.4g}, %{y:.4g})<extra></extra>`
        : `iteration ${label.tag}<br>c = %{x:.4g}<br>MSE = %{y:.4g}<extra></extra>` });
    traces.push({ x: [xs[xs.length - 1]], y: [ys[ys.length - 1]], mode: 'markers', hoverinfo: 'skip',
      marker: { size: 12, color: COLORS[run.label], line: { color: '#fff', width: 2 } } });
    legend.push(`<span class="key"><span class="swatch" style="background:${COLORS[run.label]}"></span>${what} ${run.label}: ${esc(run.optimizer)}, η = ${fmt(run.learning_rate, 3)}</span>`);
  }
  if (surf.kind === 'contour') {
    traces.push({ x: [current.start[i]], y: [current.start[j]], mode: 'markers', name: 'start', hoverinfo: 'skip',
      marker: { size: 12, symbol: 'circle-open', color: COLORS.start, line: { width: 3 } } });
    traces.push({ x: [ds.optimum.params[i]], y: [ds.optimum.params[j]], mode: 'markers', name: 'optimum', hoverinfo: 'skip',
      marker: { size: 16, symbol: 'star', color: '#ffd54f', line: { color: '#333', width: 1 } } });
    legend.push('<span class="key"><span class="dot"></span>start (click to move)</span>');
    legend.push('<span class="key"><span class="star">★</span>optimum (closed form)</span>');
  } else {
    traces.push({ x: [ds.optimum.params[0]], y: [ds.optimum.loss], mode: 'markers', name: 'bottom', hoverinfo: 'skip',
      marker: { size: 16, symbol: 'star', color: '#ffd54f', line: { color: '#333', width: 1 } } });
    legend.push('<span class="key"><span class="star">★</span>bottom of the curve (the mean)</span>');
  }
  $('surface-legend').innerHTML = legend.join('');
  return draw('plot-surface', traces, layout, SURFACE_CONFIG);
}

function renderLoss() {
  const runs = current.runs;
  const traces = [];
  const layout = baseLayout();
  let ymin = Infinity, ymax = 0;
  const floorOf = (run) => {
    const g = run.gap || run.loss;
    const first = g.find((v) => v !== null && v > 0) || 1;
    return first * 1e-16;
  };
  for (const run of runs) {
    const gap = (run.gap || run.loss).map((v) => (v === null ? null : Math.max(v, floorOf(run))));
    for (const v of gap) if (v !== null) { ymin = Math.min(ymin, v); ymax = Math.max(ymax, v); }
    traces.push({ x: run.iteration, y: gap, mode: 'lines', name: `${run.label}: ${run.optimizer}, η = ${fmt(run.learning_rate, 3)}`,
      line: { color: COLORS[run.label], width: 2 } });
    const rate = run.verdict.rate;
    if (rate !== null && rate !== undefined && gap[0] !== null && rate > 0) {
      const xs = run.iteration;
      const ys = xs.map((k) => gap[0] * Math.pow(rate, 2 * k));
      const keep = ys.map((y) => y >= floorOf(run) && y <= 1e300);
      traces.push({ x: xs.filter((_, n) => keep[n]), y: ys.filter((_, n) => keep[n]), mode: 'lines', name: `theory (${run.label}${current.batch_size ? ', for full batches' : ''}): gap ≤ gap₀ · ${fmt(rate, 3)}^(2t)`,
        line: { color: COLORS[run.label], dash: 'dot', width: 1.5 } });
    }
    const k = upTo(run);
    traces.push({ x: [run.iteration[k]], y: [gap[k]], mode: 'markers', showlegend: false, hoverinfo: 'skip',
      marker: { size: 10, color: COLORS[run.label], line: { color: '#fff', width: 2 } } });
  }
  layout.title = { text: 'Loss above the optimum, loss − loss* (log scale)', font: { size: 14 } };
  layout.xaxis.title = { text: 'iteration', standoff: 4 };
  layout.yaxis = { ...layout.yaxis, type: 'log', title: { text: 'loss − loss*' }, exponentformat: 'power' };
  if (Number.isFinite(ymin) && ymax > 0) {
    layout.yaxis.range = [Math.log10(ymin) - 0.3, Math.log10(ymax) + 0.3];
    const decades = Math.log10(ymax) - Math.log10(ymin);
    if (decades >= 2) layout.yaxis.dtick = Math.max(1, Math.ceil(decades / 7));
  }
  layout.shapes = [{ type: 'line', x0: t, x1: t, yref: 'paper', y0: 0, y1: 1, line: { color: '#999', dash: 'dot', width: 1 } }];
  return draw('plot-loss', traces, layout, PLOT_CONFIG);
}

function row(label, value, what = '') {
  return `<tr><td>${label}</td><td class="num">${value}</td><td class="what">${what}</td></tr>`;
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function renderFacts() {
  const ds = current.dataset;
  const c = ds.curvature;
  const names = ds.param_names;
  let html = '<h3>Curvature of the loss (from X alone)</h3><table>';
  html += row('L', fmt(c.L), 'largest eigenvalue of the Hessian (2/m) X_bᵀX_b');
  html += row('μ', fmt(c.mu), 'smallest eigenvalue');
  html += row('κ = L/μ', fmt(c.condition_number), 'condition number: how stretched the valley is');
  html += row('2/L', fmt(c.stable_step), 'every constant step below it converges (gd)');
  html += row('2/(L+μ)', fmt(c.best_step), `the fastest constant step: error × ${fmt(c.best_rate, 3)} per iteration`);
  html += '</table><h3>Iteration ' + t + ': where the descent is</h3><table>';
  html += '<tr><td></td>' + current.runs.map((r) => `<td class="num ${r.label}">${r.label}: ${esc(r.optimizer)}</td>`).join('') +
    '<td class="num">optimum</td></tr>';
  names.forEach((n, k) => {
    html += `<tr><td>${esc(n)}</td>` + current.runs.map((r) => `<td class="num">${fmt(r.params[upTo(r)][k], 5)}</td>`).join('') +
      `<td class="num">${fmt(ds.optimum.params[k], 5)}</td></tr>`;
  });
  html += '<tr><td>loss (MSE)</td>' + current.runs.map((r) => `<td class="num">${fmt(r.loss[upTo(r)], 5)}</td>`).join('') +
    `<td class="num">${fmt(ds.optimum.loss, 5)}</td></tr>`;
  html += '<tr><td>|gradient|</td>' + current.runs.map((r) => `<td class="num">${fmt(r.grad_norm[upTo(r)], 3)}</td>`).join('') + '<td class="num">0</td></tr>';
  html += '</table><h3>The runs</h3>';
  for (const r of current.runs) {
    html += `<p><span class="${r.label}">${r.label}</span>: ${esc(r.message.replace(/\.+$/, ''))}.</p>`;
  }
  const src = current.runs[0].source === 'gram'
    ? `each iteration used the cached statistics of all ${ds.n_rows.toLocaleString()} rows (O(d²) per iteration)`
    : `each iteration read the rows in mini-batches of ${current.batch_size}`;
  html += `<p class="hint">Computed by gdlab.descend in ${fmt(current.timing_ms.descent, 2)} ms: ${src}.</p>`;
  $('facts').innerHTML = html;
}

function renderPlaybar() {
  const n = maxT();
  $('t-slider').max = String(n);
  $('t-slider').value = String(t);
  const total = current.iterations;
  const stopped = current.runs.some((r) => r.iteration.length - 1 < total) ? ' (stopped early: diverged)' : '';
  $('iteration-label').textContent = `iteration ${t} of ${n}${stopped}`;
}

let renders = 0;

// The words and numbers first (they are what a slider move is about), the plots right after the browser has
// painted them: the verdict shows within a frame of the server's answer even where drawing is slow.
let plotsQueued = false;
let booted = false;
let drawing = false, drawGen = 0, owed = false;

// Draws the three plots; 'renders' counts the answers whose plots are all drawn, once Plotly.react's promises have
// settled (the latest drawing counts for any earlier one still unsettled).
function renderPlots(counted) {
  const gen = ++drawGen;
  drawing = true;
  owed = owed || counted;
  const finish = () => {
    if (gen !== drawGen) return;
    drawing = false;
    if (owed) { owed = false; document.body.dataset.renders = String(++renders); }  // lets tests wait for it
    if (booted) document.body.dataset.ready = '1';
  };
  Promise.all([renderLoss(), renderData(), renderSurface()]).then(finish, finish);
}

function render(onlyT = false) {
  if (!current) return;
  document.body.dataset.iteration = String(t);
  renderPlaybar();
  renderFacts();
  if (onlyT) { renderPlots(false); return; }
  renderVerdict();
  drawMarks();
  document.body.dataset.verdicts = String(renders + 1);
  if (plotsQueued) return;
  plotsQueued = true;
  requestAnimationFrame(() => setTimeout(() => {
    plotsQueued = false;
    renderPlots(true);
  }, 0));
}

// ---- start --------------------------------------------------------------------------------------------------------

async function main() {
  try {
    await loadMeta();
  } catch (err) {
    showError(err);
    return;
  }
  const missing = readUrl();
  bindControls();
  syncControls();
  if (missing) {
    notice = `The link names data set '${missing}', which this server does not have (an uploaded file is ` +
      'forgotten when the server restarts: upload it again). Showing the default data instead.';
  }
  await loadSample();
  await update();
  booted = true;  // 'ready' once the first answer is fully drawn (or now, if it already is, or if it failed)
  if (!plotsQueued && !drawing) document.body.dataset.ready = '1';
}

main();
