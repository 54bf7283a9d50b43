// gdlab explorer: the page. Every number it shows comes from the server (gdlab's core); this file only keeps the
// page state (mirrored in the URL), asks /api/descend for the runs, and draws them with plotly.js.
'use strict';

const COLORS = { A: '#1f5fbf', B: '#e07b00', data: '#d9534f', opt: '#2e7d32', start: '#1d2433' };
// the Hessian's slow and fast eigen-directions (the contour's arrows and the Eigen-directions card)
const EIGEN_COLORS = ['#7b1fa2', '#c62828'];
// the two classes of a classification data set: colours that stay apart for colour-blind readers, and two shapes
const CLASS_COLORS = ['#7b3294', '#008837'];
const CLASS_SYMBOLS = ['circle', 'x'];
const HYPER_LABELS = { beta: 'β (momentum)', beta1: 'β1', beta2: 'β2', decay: 'decay ρ', eps: 'ε' };
// a double click goes back to the plot's own axes (app.js does it: plotly's 'reset' would return to the first ones)
const PLOT_CONFIG = { displaylogo: false, responsive: true, doubleClick: false,
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

// The data set as the page uses it: its standardised twin when the toggle is ticked (the server sends both).
function activeInfo(id = state.dataset, standardize = state.standardize) {
  const ds = meta.datasets[id];
  return standardize && ds.twin ? ds.twin : ds;
}

function datasetDefaults(id) {
  const ds = activeInfo(id);
  return { lr: ds.defaults.lr ?? 0.1, iterations: ds.defaults.iterations ?? 50 };
}

function resetForDataset(id) {
  state.dataset = id;
  if (!meta.datasets[id].twin) state.standardize = false;
  const d = datasetDefaults(id);
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
  state.standardize = q.get('standardize') === '1';
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
  if (state.standardize) q.set('standardize', '1');
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
  sample = await getJson('/api/data?dataset=' + encodeURIComponent(state.dataset) + (state.standardize ? '&standardize=1' : ''));
}

// Ask for the runs of the current state; while one request is out, remember that another is wanted (the slider
// fires faster than the network answers: only the latest state matters).
async function update() {
  writeUrl();
  if (inFlight) { pending = true; return; }
  inFlight = true;
  const mine = ++seq;
  try {
    const body = await descend();
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

// The loss surface's grid (~35 KB of JSON) changes only with the data set, its axes, or a start outside the view:
// the page keeps the last one and asks /api/descend for the surface's description only, fetching the grid again
// (/api/surface) when the description says the view has moved.
let surfaceHeld = null;

async function descend() {
  const q = query().toString();
  const wanted = state.dataset + (state.standardize ? '|standardized' : '');
  const held = surfaceHeld && surfaceHeld.dataset === wanted ? surfaceHeld.surface : null;
  const body = await getJson('/api/descend?' + q + '&surface=' + (held ? 'view' : 'full'));
  const s = body.surface;
  if (!s.x) {
    if (held && surfaceKey(held) === surfaceKey(s)) {
      body.surface = held;
    } else {
      body.surface = await getJson('/api/surface?' + q);
    }
  }
  surfaceHeld = { dataset: body.dataset.key, surface: body.surface };
  return body;
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
function lrRange() { const r = activeInfo().lr_range; return [r.min, r.max]; }

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
  const ds = activeInfo();
  fillSelect($('dataset'), meta.order.map((id) => [id, meta.datasets[id].title]));
  $('dataset').value = state.dataset;
  $('dataset-description').textContent = ds.description + (ds.note ? ' (' + ds.note + ')' : '');
  const raw = meta.datasets[state.dataset];
  $('standardize-box').hidden = !raw.twin;
  $('standardize').checked = !!state.standardize;
  if (raw.twin) {
    const k = raw.condition_numbers || {};
    $('standardize-hint').textContent = `z = (x − mean)/std for each feature: the condition number κ goes from ` +
      `${fmt(k.raw, 3)} (raw) to ${fmt(k.standardized, 3)} (standardised). The learning rate keeps its ratio to ` +
      'the best constant step 2/(L+μ), and the start is the same model in the new coordinates.';
  }
  $('lr-hint').textContent = ds.task === 'classification'
    ? 'Log scale. Red: above 2/L, where the log-loss\'s curvature bound no longer promises that each gd step lowers it.'
    : 'Log scale. Red: the step is too large and the descent diverges.';
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
  const ds = activeInfo();
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
  if (ds.task !== 'classification') add(r.best_step, '2/(L+μ) = ' + fmt(r.best_step, 2), 'best left');
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
  $('step-box').addEventListener('toggle', renderStep);
  $('eigen-box').addEventListener('toggle', renderEigen);
  fillSelect($('optimizer'), Object.keys(meta.optimizers).map((k) => [k, k]));
  fillSelect($('race-optimizer'), Object.keys(meta.optimizers).map((k) => [k, k]));

  $('dataset').addEventListener('change', async () => {
    stopPlay();
    resetForDataset($('dataset').value);
    await switchDataset();
  });
  $('standardize').addEventListener('change', async () => {
    stopPlay();
    const from = activeInfo();
    state.standardize = $('standardize').checked;
    const to = activeInfo();
    // the same descent in the other coordinates: the same ratio to the best constant step, the same model as start
    const ratio = to.curvature.best_step / from.curvature.best_step;
    if (Number.isFinite(ratio) && ratio > 0) {
      state.lr = Number((state.lr * ratio).toPrecision(3));
      if (state.race) state.race_lr = Number((state.race_lr * ratio).toPrecision(3));
    }
    if (state.start) state.start = mapStart(state.start, state.standardize);
    await switchDataset(false);
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
  $('layer-surface').addEventListener('click', surfaceClick);
}

// A start [b, w1, ...] in the raw coordinates mapped into the standardised ones (b' = b + mean . w, w' = std w),
// or back: the same model, as gdlab.scaling.Scaling.to_descent / to_user.
function mapStart(start, toStandardized) {
  const sc = meta.datasets[state.dataset].twin.scaling;
  const out = start.slice();
  if (toStandardized) {
    for (let j = 0; j < sc.scale.length; j++) { out[0] += sc.center[j] * start[j + 1]; out[j + 1] = start[j + 1] * sc.scale[j]; }
  } else {
    for (let j = 0; j < sc.scale.length; j++) { out[j + 1] = start[j + 1] / sc.scale[j]; out[0] -= sc.center[j] * out[j + 1]; }
  }
  return out.map((v) => Number(v.toPrecision(6)));
}

async function switchDataset(clearNotice = true) {
  if (clearNotice) notice = '';
  syncControls();
  await loadSample();
  await update();
}

async function upload() {
  const status = $('upload-status');
  const file = $('upload-file').files[0];
  status.className = 'hint';
  if (!file) { status.className = 'hint error'; status.textContent = 'Choose a CSV or Parquet file first.'; return; }
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
  if ($('upload-task').value !== 'auto') q.set('task', $('upload-task').value);
  try {
    const parquet = /\.(parquet|pq)$/i.test(file.name);
    const body = await getJson('/api/upload?' + q.toString(), { method: 'POST', body: file,
      headers: { 'Content-Type': parquet ? 'application/vnd.apache.parquet' : 'text/csv' } });
    addDataset(body.dataset);
    status.className = 'hint ok';
    status.textContent = `Loaded ${body.dataset.title}: ${body.dataset.n_rows} rows, target ${body.dataset.target_name}` +
      (body.dataset.task === 'classification' ? ' (two classes: logistic regression)' : '') +
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
  const px = ev.clientX - rect.left - fl.xaxis._offset;
  const py = ev.clientY - rect.top - fl.yaxis._offset;
  if (px < 0 || py < 0 || px > fl.xaxis._length || py > fl.yaxis._length) return;  // a click on the axes or the scale
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
  const separable = runs.some((r) => r.verdict.separable);
  v.className = bad ? 'bad' : separable ? 'error' : 'ok';
  document.body.dataset.state = bad ? 'diverges' : separable ? 'separable' : 'converges';
}

// Each plot is two layers. Underneath, a plotly.js plot holds what stays put while a slider moves: axes, titles,
// the data points, the contour, and it is redrawn only when its key (data set, axis ranges, ...) changes; a
// plotly redraw costs 15-25 ms a plot in a software-rendered Chromium. Above it, a canvas holds what a slider move
// changes (paths, fitted lines, loss curves, markers), drawn in well under a millisecond through the plotly axes'
// own coordinate conversions, so that both layers always agree. Legends are HTML under each plot.

// Many points redraw far faster through WebGL than as SVG nodes (1500 points: ~35 ms against ~250 ms in a
// software-rendered Chromium); a few stay SVG, which looks crisper and needs no GPU context.
function scatterType() { return sample && sample.n_shown > 300 ? 'scattergl' : 'scatter'; }

const SURFACE_CONFIG = { displayModeBar: false, staticPlot: true, responsive: true };
const FONT = { family: 'system-ui, "DejaVu Sans", sans-serif', size: 12 };

function baseLayout() {
  return {
    margin: { l: 64, r: 20, t: 34, b: 46 },
    font: FONT,
    showlegend: false,
    // automargin keeps every tick label inside the plot: plotly's check for labels past its edge ('hide past div',
    // a measured box per label on every redraw) has nothing to hide, so it is skipped
    xaxis: { zeroline: false, automargin: true, title: { standoff: 4 }, ticklabeloverflow: 'allow' },
    yaxis: { zeroline: false, automargin: true, ticklabeloverflow: 'allow' },
    paper_bgcolor: '#fff', plot_bgcolor: '#fff',
    uirevision: current ? current.dataset.key : 'x',
  };
}

// The Content-Security-Policy refuses style attributes in HTML (style-src 'self'), but not styles set through the
// CSSOM: HTML built here carries its colours as data-css="...", and setHtml moves them onto each element's style.
function setHtml(el, html) {
  el.innerHTML = html;
  for (const node of el.querySelectorAll('[data-css]')) { node.style.cssText = node.dataset.css; node.removeAttribute('data-css'); }
}

// A legend entry: a short line (solid, dashed or dotted), a dot, a cross or a star, then the words.
function key(mark, text) {
  let sw;
  if (mark.line) {
    const style = mark.dash === 'dot' ? 'dotted' : mark.dash === 'dash' ? 'dashed' : 'solid';
    sw = `<span class="swatch" data-css="border-top:${mark.width || 2}px ${style} ${mark.line};opacity:${mark.opacity ?? 1}"></span>`;
  } else if (mark.star) {
    sw = '<span class="star">★</span>';
  } else if (mark.cross) {
    sw = `<span class="cross" data-css="color:${mark.cross}">×</span>`;
  } else if (mark.ring) {
    sw = '<span class="ring"></span>';
  } else {
    sw = `<span class="dot-fill" data-css="background:${mark.dot}"></span>`;
  }
  return `<span class="key">${sw}${esc(text)}</span>`;
}

// ---- the light layer ------------------------------------------------------------------------------------------------

const plots = {};  // name -> { bg (plotly div), layer, canvas, tip, notes, key, spec, job }

function plotOf(name) {
  if (!plots[name]) {
    const layer = $('layer-' + name);
    const p = { name, bg: $('plot-' + name), layer, canvas: layer.querySelector('canvas'), tip: layer.querySelector('.tip'),
      notes: layer.querySelector('.notes'), key: null, spec: null, job: null };
    layer.traces = [];
    plots[name] = p;
    const stack = p.layer.parentElement;
    stack.addEventListener('mousemove', (ev) => hover(p, ev));
    stack.addEventListener('mouseleave', () => { p.tip.hidden = true; });
  }
  return plots[name];
}

function toPx(ax, v) {
  if (v === null || v === undefined) return NaN;
  const lin = ax.type === 'log' ? (v > 0 ? Math.log10(v) : NaN) : v;
  return Number.isFinite(lin) ? ax._offset + ax.l2p(lin) : NaN;
}

// plotly's dash patterns (Drawing.dashStyle)
function dashOf(dash, width) {
  const d = Math.max(width, 3);
  return dash === 'dot' ? [d, d] : dash === 'dash' ? [3 * d, 3 * d] : [];
}

// The part of segment a-b inside box (Liang-Barsky), or null: far-away points (a diverging run reaches 1e300)
// never reach the canvas as coordinates.
function clipSegment(ax, ay, bx, by, box) {
  let t0 = 0, t1 = 1;
  const dx = bx - ax, dy = by - ay;
  const edges = [[-dx, ax - box.x0], [dx, box.x1 - ax], [-dy, ay - box.y0], [dy, box.y1 - ay]];
  for (const [p, q] of edges) {
    if (p === 0) { if (q < 0) return null; continue; }
    const r = q / p;
    if (p < 0) { if (r > t1) return null; if (r > t0) t0 = r; } else { if (r < t0) return null; if (r < t1) t1 = r; }
  }
  if (!Number.isFinite(t0) || !Number.isFinite(t1)) return null;
  return [ax + t0 * dx, ay + t0 * dy, ax + t1 * dx, ay + t1 * dy, t0 === 0, t1 === 1];
}

function strokeLine(ctx, tr, box) {
  const { px, py } = tr;
  const far = { x0: box.x0 - 50, x1: box.x1 + 50, y0: box.y0 - 50, y1: box.y1 + 50 };
  ctx.beginPath();
  let open = false;
  for (let n = 1; n < px.length; n++) {
    if (!(Number.isFinite(px[n - 1]) && Number.isFinite(py[n - 1]) && Number.isFinite(px[n]) && Number.isFinite(py[n]))) {
      open = false;
      continue;
    }
    const s = clipSegment(px[n - 1], py[n - 1], px[n], py[n], far);
    if (!s) { open = false; continue; }
    if (!open || !s[4]) ctx.moveTo(s[0], s[1]);
    ctx.lineTo(s[2], s[3]);
    open = s[5];
  }
  ctx.lineWidth = tr.width || 2;
  ctx.strokeStyle = tr.color;
  ctx.globalAlpha = tr.opacity ?? 1;
  ctx.setLineDash(dashOf(tr.dash, tr.width || 2));
  ctx.lineJoin = 'round';
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
}

// A filled head at the trace's last point, pointing along its last segment (in pixels: the plot's own aspect).
function arrowHead(ctx, tr) {
  const n = tr.px.length - 1;
  const x = tr.px[n], y = tr.py[n], dx = x - tr.px[n - 1], dy = y - tr.py[n - 1], len = Math.hypot(dx, dy);
  if (!(len > 0) || !Number.isFinite(x) || !Number.isFinite(y)) return;
  const ux = dx / len, uy = dy / len, size = Math.min(11, 0.5 * len + 5);
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x - size * ux + 0.45 * size * uy, y - size * uy - 0.45 * size * ux);
  ctx.lineTo(x - size * ux - 0.45 * size * uy, y - size * uy + 0.45 * size * ux);
  ctx.closePath();
  ctx.fillStyle = tr.color;
  ctx.globalAlpha = tr.opacity ?? 1;
  ctx.fill();
  ctx.globalAlpha = 1;
}

function starPath(ctx, x, y, r) {
  for (let k = 0; k < 10; k++) {
    const a = -Math.PI / 2 + (k * Math.PI) / 5, rr = k % 2 ? 0.45 * r : r;
    if (k) ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a)); else ctx.moveTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
  }
  ctx.closePath();
}

function drawMarkers(ctx, tr, box) {
  const m = tr.marker;
  const r = m.size / 2;
  ctx.globalAlpha = m.opacity ?? 1;
  for (let n = 0; n < tr.px.length; n++) {
    const x = tr.px[n], y = tr.py[n];
    if (!(x >= box.x0 - 0.5 && x <= box.x1 + 0.5 && y >= box.y0 - 0.5 && y <= box.y1 + 0.5)) continue;
    ctx.beginPath();
    if (m.symbol === 'star') starPath(ctx, x, y, 1.15 * r); else ctx.arc(x, y, r, 0, 2 * Math.PI);
    if (m.symbol === 'circle-open') {
      ctx.lineWidth = m.line.width;
      ctx.strokeStyle = m.color;
      ctx.stroke();
      continue;
    }
    ctx.fillStyle = m.color;
    ctx.fill();
    if (m.line) { ctx.lineWidth = m.line.width; ctx.strokeStyle = m.line.color; ctx.stroke(); }
  }
  ctx.globalAlpha = 1;
}

// While the learner drags (pan, an axis end, a scroll zoom), plotly sets its axes' ranges at every mouse move and
// shifts its drawing to match, but keeps their pixel conversions (l2p) as they were until the drag ends: the layer
// then converts through the ranges themselves, as plotly does once the drag is over. A zoom box leaves the ranges
// alone until the mouse is released (its 'plotly_relayouting' names the box, not the axes), and so does the layer.
function liveAxis(ax) {
  const r0 = ax.r2l(ax.range[0]), r1 = ax.r2l(ax.range[1]);
  if (!(Number.isFinite(r0) && Number.isFinite(r1)) || r0 === r1) return ax;
  const m = ax._id.charAt(0) === 'y' ? ax._length / (r0 - r1) : ax._length / (r1 - r0);
  const b = -m * (ax._id.charAt(0) === 'y' ? r1 : r0);
  return { type: ax.type, _offset: ax._offset, _length: ax._length, l2p: (v) => b + m * v };
}

// 'plotly_relayouting': redraw the layer on the live axes, at most once per animation frame (a mouse fires
// faster than the screen paints).
function followDrag(p) {
  p.live = true;
  if (p.liveFrame) return;
  p.liveFrame = requestAnimationFrame(() => {
    p.liveFrame = 0;
    if (p.live && !p.job) paintLayer(p);
  });
}

// The drag is over ('plotly_relayout', 'plotly_afterplot'): plotly's axes are final, the layer is drawn on them
// and a frame still owed to the drag is dropped.
function settleLayer(p) {
  p.live = false;
  if (p.liveFrame) { cancelAnimationFrame(p.liveFrame); p.liveFrame = 0; }
  if (!p.job) paintLayer(p);
}

// Draws the layer of plot p over its background's axes (as they are now: zoomed or not, or dragged).
function paintLayer(p) {
  const fl = p.bg._fullLayout;
  if (!fl || !fl.xaxis || !fl.yaxis) return;
  // the layer has the size of the plot under it: plotly knows it (asking the page would force a layout)
  const w = fl.width, h = fl.height, dpr = window.devicePixelRatio || 1;
  const c = p.canvas;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    c.style.width = w + 'px';
    c.style.height = h + 'px';
  }
  const ctx = c.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const spec = p.spec;
  if (!spec) return;
  const xa = p.live ? liveAxis(fl.xaxis) : fl.xaxis, ya = p.live ? liveAxis(fl.yaxis) : fl.yaxis;
  const box = { x0: xa._offset, x1: xa._offset + xa._length, y0: ya._offset, y1: ya._offset + ya._length };
  p.box = box;
  // lines are clipped to the plot area; a marker is drawn whole when its centre is inside it (as plotly draws them)
  for (const tr of spec.traces) {
    if (tr.vline) {
      tr.px = [toPx(xa, tr.x[0]), toPx(xa, tr.x[0])];
      tr.py = [box.y0, box.y1];
    } else {
      tr.px = tr.x.map((v) => toPx(xa, v));
      tr.py = tr.y.map((v) => toPx(ya, v));
    }
    if (tr.mode.includes('lines')) {
      ctx.save();
      ctx.beginPath();
      ctx.rect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
      ctx.clip();
      strokeLine(ctx, tr, box);
      if (tr.arrow) arrowHead(ctx, tr);
      ctx.restore();
    }
    if (tr.mode.includes('markers')) drawMarkers(ctx, tr, box);
  }
  p.layer.traces = spec.traces;  // what is drawn, in data coordinates (as plotly's gd.data): tests read it
  const notes = (spec.notes || []).map((n) => `<div data-css="color:${n.color}">${esc(n.text)}</div>`).join('');
  if (notes !== p.notesHtml) {
    p.notesHtml = notes;
    p.notes.style.left = (box.x0 + 6) + 'px';
    p.notes.style.top = (box.y0 + 6) + 'px';
    setHtml(p.notes, notes);
    p.notes.hidden = !notes;
  }
  if (!p.tip.hidden) p.tip.hidden = true;
}

// The hover label of the layer: the nearest point (within 12 px) of a trace that has one, or for a trace marked
// 'along' (a fitted line), the nearest point of the line itself: tr.hover(n, u) then names the point a fraction u
// of the way from its point n to point n + 1.
function hover(p, ev) {
  if (!p.spec || !p.box) return;
  const r = p.layer.getBoundingClientRect();
  const x = ev.clientX - r.left, y = ev.clientY - r.top;
  const box = p.box;
  const inside = (qx, qy) => qx >= box.x0 && qx <= box.x1 && qy >= box.y0 && qy <= box.y1;
  let best = null, bestD = 144;
  for (const tr of p.spec.traces) {
    if (!tr.hover || !tr.px) continue;
    if (tr.along) {
      const far = { x0: box.x0 - 50, x1: box.x1 + 50, y0: box.y0 - 50, y1: box.y1 + 50 };
      for (let n = 1; n < tr.px.length; n++) {
        const ax = tr.px[n - 1], ay = tr.py[n - 1], bx = tr.px[n], by = tr.py[n];
        if (!(Number.isFinite(ax) && Number.isFinite(ay) && Number.isFinite(bx) && Number.isFinite(by))) continue;
        const s = clipSegment(ax, ay, bx, by, far);  // the part on screen: a steep line's far end stays far away
        if (!s) continue;
        const dx = s[2] - s[0], dy = s[3] - s[1], len2 = dx * dx + dy * dy;
        const v = len2 > 0 ? Math.max(0, Math.min(1, ((x - s[0]) * dx + (y - s[1]) * dy) / len2)) : 0;
        const qx = s[0] + v * dx, qy = s[1] + v * dy, d = (qx - x) ** 2 + (qy - y) ** 2;
        if (d < bestD && inside(qx, qy)) {
          const u = Math.abs(bx - ax) >= 1 ? (qx - ax) / (bx - ax) : by !== ay ? (qy - ay) / (by - ay) : 0;
          bestD = d;
          best = [tr, n - 1, Math.max(0, Math.min(1, u)), qx, qy];
        }
      }
      continue;
    }
    for (let n = 0; n < tr.px.length; n++) {
      const dx = tr.px[n] - x, dy = tr.py[n] - y, d = dx * dx + dy * dy;
      if (d < bestD && inside(tr.px[n], tr.py[n])) {
        bestD = d;
        best = [tr, n, 0, tr.px[n], tr.py[n]];
      }
    }
  }
  if (!best) { p.tip.hidden = true; return; }
  const [tr, n, u, qx, qy] = best;
  p.tip.innerHTML = tr.hover(n, u);
  p.tip.style.background = tr.color;
  p.tip.hidden = false;
  const left = qx + 10, wide = p.tip.offsetWidth;
  p.tip.style.left = (left + wide > p.layer.clientWidth ? qx - 10 - wide : left) + 'px';
  p.tip.style.top = (qy - p.tip.offsetHeight / 2) + 'px';
}

// ---- what each plot shows -------------------------------------------------------------------------------------------

function dataSpec() {
  const ds = current.dataset;
  const runs = current.runs;
  if (!sample || sample.key !== ds.key) return null;
  const layout = baseLayout();
  const bg = [];
  const traces = [];
  const legend = [];
  const notes = [];
  const shown = sample.n_shown < sample.n_rows ? ` (${sample.n_shown} of ${sample.n_rows} rows shown)` : '';
  const many = runs.length > 1;
  if (ds.task === 'classification') {
    classesView(ds, runs, layout, bg, traces, legend, notes, shown);
  } else if (ds.kind === 'mean') {
    bg.push({ x: sample.y, y: sample.jitter, mode: 'markers', type: scatterType(), name: 'data x',
      marker: { symbol: 'x', size: 5, color: '#6c8ebf', opacity: 0.6 }, hoverinfo: 'x' });
    const vline = (x, color, dash, name, width = 2) => ({ x: [x, x], y: [0, 1], mode: 'lines', name,
      line: { color, dash, width }, hoverinfo: 'name+x' });
    (sample.lines || []).forEach((x) => bg.push(vline(x, '#333', 'dash', 'candidate', 1.5)));
    bg.push(vline(ds.optimum.params[0], COLORS.opt, 'dash', 'optimum (the mean)'));
    legend.push(key({ cross: '#6c8ebf' }, 'data x'));
    if ((sample.lines || []).length) legend.push(key({ line: '#333', dash: 'dash', width: 1.5 }, 'candidates ' + sample.lines.join(', ')));
    legend.push(key({ line: COLORS.opt, dash: 'dash' }, 'optimum (the mean)'));
    for (const run of runs) {
      const c = run.params[upTo(run)][0];
      traces.push({ name: `c ${run.label}`, x: [c, c], y: [0, 1], mode: 'lines', color: COLORS[run.label], width: 3,
        along: true, hover: () => `c = ${fmt(c, 5)} at iteration ${upTo(run)}` });
      legend.push(key({ line: COLORS[run.label], width: 3 }, `c at iteration ${upTo(run)}${many ? ' (' + run.label + ')' : ''}`));
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
    const yr = [ylo - ypad, yhi + ypad];
    bg.push({ x: xs, y: ys, mode: 'markers', type: scatterType(), name: 'data', marker: { color: COLORS.data, size: 6 } });
    const o = ds.optimum.params;
    bg.push({ x: xl, y: xl.map((x) => o[0] + o[1] * x), mode: 'lines', name: 'closed form (Normal Equation)',
      line: { color: COLORS.opt, dash: 'dash', width: 2 } });
    legend.push(key({ dot: COLORS.data }, 'data'));
    legend.push(key({ line: COLORS.opt, dash: 'dash' }, 'closed form (Normal Equation)'));
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
    traces.push({ name: 'earlier iterations (A)', x: gx, y: gy, mode: 'lines', color: COLORS.A, width: 1, opacity: 0.3 });
    legend.push(key({ line: COLORS.A, width: 1, opacity: 0.5 }, 'earlier iterations (A)'));
    for (const run of runs) {
      const p = run.params[upTo(run)];
      const name = `fit at iteration ${upTo(run)}${many ? ' (' + run.label + ')' : ''}`;
      legend.push(key({ line: COLORS[run.label], width: 3 }, name));
      const ends = p[0] === null || p[1] === null ? [null, null] : xl.map((x) => p[0] + p[1] * x);
      const at = (u) => xl[0] + u * (xl[1] - xl[0]);
      traces.push({ name, x: xl, y: ends, mode: 'lines', color: COLORS[run.label], width: 3, along: true,
        hover: (n, u) => `${name}<br>x = ${fmt(at(u), 3)}, y = ${fmt(p[0] + p[1] * at(u), 4)}` });
      if (ends[0] === null || (ends[0] < yr[0] && ends[1] < yr[0]) || (ends[0] > yr[1] && ends[1] > yr[1])) {
        notes.push({ color: COLORS[run.label],
          text: `fit ${run.label} at iteration ${upTo(run)} is off the chart: w0 = ${fmt(p[0], 3)}, w1 = ${fmt(p[1], 3)}` });
      }
    }
    layout.title = { text: 'Data and the fitted line y = w0 + w1 x' + shown, font: { size: 14 } };
    layout.xaxis = { ...layout.xaxis, title: { text: ds.feature_names[0], standoff: 4 }, range: xl };
    layout.yaxis = { ...layout.yaxis, title: { text: ds.target_name }, range: yr };
  } else {
    const ys = sample.y;
    const lo = Math.min(...ys), hi = Math.max(...ys), pad = 0.1 * (hi - lo || 1);
    bg.push({ x: [lo - pad, hi + pad], y: [lo - pad, hi + pad], mode: 'lines', name: 'perfect fit (predicted = actual)',
      line: { color: COLORS.opt, dash: 'dash' } });
    legend.push(key({ line: COLORS.opt, dash: 'dash' }, 'perfect fit (predicted = actual)'));
    for (const run of runs) {
      const p = run.params[upTo(run)];
      const name = `predicted at iteration ${upTo(run)}${many ? ' (' + run.label + ')' : ''}`;
      legend.push(key({ dot: COLORS[run.label] }, name));
      if (p.some((v) => v === null)) {
        notes.push({ color: COLORS[run.label], text: `run ${run.label} has diverged: no prediction at iteration ${upTo(run)}` });
        continue;
      }
      const pred = sample.X.map((row) => row.reduce((s, v, j) => s + v * p[j + 1], p[0]));
      traces.push({ name, x: ys, y: pred, mode: 'markers', color: COLORS[run.label],
        marker: { size: 5, color: COLORS[run.label], opacity: 0.6 },
        hover: (n) => `actual ${fmt(ys[n], 4)}<br>predicted ${fmt(pred[n], 4)}` });
    }
    layout.title = { text: 'Predicted against actual' + shown, font: { size: 14 } };
    layout.xaxis = { ...layout.xaxis, title: { text: 'actual ' + ds.target_name, standoff: 4 }, range: [lo - pad, hi + pad] };
    layout.yaxis = { ...layout.yaxis, title: { text: 'predicted ' + ds.target_name }, range: [lo - pad, hi + pad] };
  }
  const home = layout.xaxis.range ? { 'xaxis.range': layout.xaxis.range, 'yaxis.range': layout.yaxis.range }
    : { 'xaxis.autorange': true, 'yaxis.autorange': true };
  return { key: JSON.stringify([ds.key, sample.n_shown, plane(runs)]), bg: [bg, clone(layout), PLOT_CONFIG], traces, legend, notes, home };
}

function plane(runs) { return runs[0].boundary ? runs[0].boundary.features : null; }

// Logistic regression's data view: the points coloured (and shaped) by class, and the decision boundary
// P(class 1) = 1/2 at the iteration shown, where the server placed it (runs[].boundary). One feature: the classes at
// 0 and 1 against x, the fitted probability curve σ(w0 + w1 x) and the boundary as a vertical line.
function classesView(ds, runs, layout, bg, traces, legend, notes, shown) {
  const box = sample.box;
  const names = sample.classes;
  const many = runs.length > 1;
  const feats = plane(runs);
  const one = feats.length === 1;
  const [fi, fj] = one ? [feats[0], null] : feats;
  for (const c of [0, 1]) {
    const rows = sample.y.map((v, n) => (v === c ? n : -1)).filter((n) => n >= 0);
    const x = rows.map((n) => sample.X[n][fi]);
    const y = one ? rows.map((n) => c + sample.jitter[n]) : rows.map((n) => sample.X[n][fj]);
    bg.push({ x, y, mode: 'markers', type: scatterType(), name: names[c], hoverinfo: 'x+y+name',
      marker: { symbol: CLASS_SYMBOLS[c], size: 7, color: CLASS_COLORS[c], opacity: 0.75, line: { width: c ? 1.6 : 0, color: CLASS_COLORS[c] } } });
    const label = names[c] === String(c) ? `${ds.target_name} ${c}` : `${names[c]} (${ds.target_name} class ${c})`;
    legend.push(`<span class="key"><span class="${c ? 'cross' : 'dot-fill'}" data-css="${c ? 'color' : 'background'}:${CLASS_COLORS[c]}">${c ? '×' : ''}</span>${esc(label)}</span>`);
  }
  for (const run of runs) {
    const k = upTo(run);
    const seg = run.boundary.segments[k];
    const p = run.params[k];
    const name = `boundary at iteration ${k}${many ? ' (' + run.label + ')' : ''}`;
    if (one && p[0] !== null && p[1] !== null) {
      const xs = [], ys = [];
      for (let n = 0; n <= 120; n++) {
        const x = box[fi][0] + (n / 120) * (box[fi][1] - box[fi][0]);
        xs.push(x);
        ys.push(1 / (1 + Math.exp(-(p[0] + p[1 + fi] * x))));
      }
      traces.push({ name: `P(${names[1]}) ${run.label}`, x: xs, y: ys, mode: 'lines', color: COLORS[run.label], width: 2.5,
        along: true, hover: (n, u) => `P(${esc(names[1])}) at iteration ${k}<br>x = ${fmt(xs[n] + u * (xs[n + 1] - xs[n]), 3)}: ${fmt(ys[n] + u * (ys[n + 1] - ys[n]), 3)}` });
      legend.push(key({ line: COLORS[run.label], width: 2.5 }, `P(${names[1]}) = σ(w0 + w1 x) at iteration ${k}${many ? ' (' + run.label + ')' : ''}`));
    }
    if (seg) {
      traces.push({ name, x: [seg[0], seg[2]], y: [seg[1], seg[3]], mode: 'lines', color: COLORS[run.label], width: 3,
        dash: one ? 'dash' : undefined, along: true, hover: () => `${name}<br>w0 + w·x = 0 (P = 0.5)` });
      legend.push(key({ line: COLORS[run.label], width: 3, dash: one ? 'dash' : undefined }, name + ' (P = 0.5)'));
    } else {
      notes.push({ color: COLORS[run.label], text: `the boundary of ${run.label} at iteration ${k} is outside this view` +
        (p.every((v) => v !== null) ? '' : ' (the run diverged)') });
    }
  }
  const held = !one && ds.n_features > 2 ? ' (other features at their means)' : '';
  layout.title = { text: (one ? 'Data and the fitted probability' : 'Data and the decision boundary') + held + shown, font: { size: 14 } };
  layout.xaxis = { ...layout.xaxis, title: { text: ds.feature_names[fi] + (ds.standardized ? ' (standardised)' : ''), standoff: 4 }, range: box[fi] };
  if (one) {
    layout.yaxis = { ...layout.yaxis, title: { text: `P(${names[1]})` }, range: [-0.12, 1.12],
      tickvals: [0, 0.5, 1] };
  } else {
    layout.yaxis = { ...layout.yaxis, title: { text: ds.feature_names[fj] + (ds.standardized ? ' (standardised)' : '') }, range: box[fj] };
  }
}

const SURFACE_MARGIN = { l: 62, r: 16, t: 34, b: 46 };
const SURFACE_DOMAIN = [0, 0.84];

function surfaceLayout(surf) {
  const axis = (title, range, domain) => ({ title: { text: title, standoff: 6 }, range, domain, automargin: false,
    zeroline: false, ticks: 'outside', showline: true, linecolor: '#999', fixedrange: true });
  const layout = { margin: SURFACE_MARGIN, showlegend: false, dragmode: false, hovermode: false, font: FONT,
    paper_bgcolor: '#fff', plot_bgcolor: '#fff' };
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

function surfaceBackground(surf) {
  const layout = surfaceLayout(surf);
  const traces = [];
  if (surf.kind === 'contour') {
    traces.push({ type: 'contour', x: surf.x, y: surf.y, z: surf.z, colorscale: 'YlGnBu', reversescale: true,
      ncontours: 22, contours: { coloring: 'fill', showlines: true }, line: { width: 0.5, color: 'rgba(255,255,255,0.6)' },
      opacity: 0.85, hoverinfo: 'skip', showscale: true,
      colorbar: { title: { text: surfaceScaleLabel(surf), side: 'right' }, thickness: 12, len: 0.95, x: 0.86,
        xanchor: 'left', y: 0.5, yanchor: 'middle' } });
    const held = surf.held && surf.held.length ? ` (others held at ${surf.held_at === 'start' ? 'the start' : 'their optimum'})` : '';
    const what = surf.loss_name === 'log_loss' ? 'Log-loss surface and the path' : 'Loss surface and the path';
    // a phone's width holds the title or the note on what is held, not both: the note goes under the plot
    layout.title = { text: what + (narrowSurface() ? '' : held), font: { size: 14 }, y: 0.98 };
  } else {
    traces.push({ x: surf.x, y: surf.loss, mode: 'lines', line: { color: '#555', width: 2 }, hoverinfo: 'skip' });
    layout.title = { text: 'The error curve MSE(c) and the steps walking down it', font: { size: 14 }, y: 0.98 };
  }
  return [traces, layout, SURFACE_CONFIG];
}

function narrowSurface() { return $('plot-surface').clientWidth < 560; }

function surfaceScaleLabel(surf) {
  if (surf.loss_name !== 'log_loss') return 'log10(loss − loss*)';
  return surf.loss_star > 0 ? 'log10(log-loss − its minimum)' : 'log10(log-loss)  (no minimum)';
}

function surfaceKey(surf) { return JSON.stringify([surf.kind, surf.axes, surf.view, surf.grid, surf.held_values || null]); }

function surfaceSpec() {
  const surf = current.surface;
  const ds = current.dataset;
  const runs = current.runs;
  const traces = [];
  const [i, j] = surf.kind === 'contour' ? surf.axes : [0, null];
  const legend = [];
  const contour = surf.kind === 'contour';
  for (const run of runs) {
    const k = upTo(run);
    const pts = run.params.slice(0, k + 1);
    const xs = pts.map((p) => p[i]);
    const ys = contour ? pts.map((p) => p[j]) : run.loss.slice(0, k + 1);
    const its = run.iteration.slice(0, k + 1);
    const what = contour ? 'path' : 'steps';
    traces.push({ name: `${what} ${run.label}: ${run.optimizer}`, x: xs, y: ys, mode: 'lines+markers',
      color: COLORS[run.label], width: contour ? 2 : 1.5, marker: { size: contour ? 5 : 8, color: COLORS[run.label] },
      hover: contour ? (n) => `iteration ${its[n]}<br>(${fmt(xs[n], 4)}, ${fmt(ys[n], 4)})`
        : (n) => `iteration ${its[n]}<br>c = ${fmt(xs[n], 4)}<br>MSE = ${fmt(ys[n], 4)}` });
    traces.push({ name: `now ${run.label}`, x: [xs[xs.length - 1]], y: [ys[ys.length - 1]], mode: 'markers',
      marker: { size: 12, color: COLORS[run.label], line: { color: '#fff', width: 2 } } });
    legend.push(`<span class="key"><span class="swatch" data-css="border-top:3px solid ${COLORS[run.label]}"></span>${what} ${run.label}: ${esc(run.optimizer)}, η = ${fmt(run.learning_rate, 3)}</span>`);
  }
  if (contour) {
    traces.push({ name: 'start', x: [current.start[i]], y: [current.start[j]], mode: 'markers', color: COLORS.start,
      marker: { size: 12, symbol: 'circle-open', color: COLORS.start, line: { width: 3 } } });
    legend.push(key({ ring: true }, 'start (click to move)'));
    if (narrowSurface() && surf.held && surf.held.length) {
      legend.push(`<span class="key">${esc(surf.held.join(', '))} held at ${surf.held_at === 'start' ? 'the start' : 'the optimum'}</span>`);
    }
  }
  if (contour && current.directions) {
    // the Hessian's eigen-directions in this plane: the axes of the contour's ellipses, through the optimum, each
    // as long as the semi-axis of the contour line through the start (the server's half_length)
    const d = current.directions;
    const v = surf.view, diag = Math.hypot(v[1] - v[0], v[3] - v[2]);
    d.directions.forEach((dir, n) => {
      const a = dir.half_length ?? 0.4 * diag;
      const [cx, cy] = d.center, [ux, uy] = dir.vector;
      const color = EIGEN_COLORS[n];
      // underneath the paths (drawn first): the runs' own marks stay on top
      traces.splice(n, 0, { name: dir.label, x: [cx - a * ux, cx + a * ux], y: [cy - a * uy, cy + a * uy], mode: 'lines',
        color, width: 2.5, arrow: true, along: true, eigen: dir.name,
        hover: () => `${esc(dir.label)}<br>direction (${fmt(ux, 3)}, ${fmt(uy, 3)}), to the contour through the start` });
      legend.push(key({ line: color, width: 2.5 }, dir.label));
    });
  }
  if (contour && !ds.optimum) {
    legend.push('<span class="key">no minimum: the classes are separable</span>');
  } else if (contour) {
    traces.push({ name: 'optimum', x: [ds.optimum.params[i]], y: [ds.optimum.params[j]], mode: 'markers', color: '#6d5a00',
      marker: { size: 16, symbol: 'star', color: '#ffd54f', line: { color: '#333', width: 1 } },
      hover: () => `${optimumName(ds)}<br>(${fmt(ds.optimum.params[i], 4)}, ${fmt(ds.optimum.params[j], 4)})` });
    legend.push(key({ star: true }, optimumName(ds)));
  } else {
    traces.push({ name: 'bottom', x: [ds.optimum.params[0]], y: [ds.optimum.loss], mode: 'markers', color: '#6d5a00',
      marker: { size: 16, symbol: 'star', color: '#ffd54f', line: { color: '#333', width: 1 } },
      hover: () => `the mean c = ${fmt(ds.optimum.params[0], 5)}<br>MSE = ${fmt(ds.optimum.loss, 4)}` });
    legend.push(key({ star: true }, 'bottom of the curve (the mean)'));
  }
  return { key: JSON.stringify([ds.key, surfaceKey(surf), narrowSurface()]), bg: surfaceBackground(surf), traces, legend };
}

function optimumName(ds) { return ds.task === 'classification' ? "minimum (Newton's method)" : 'optimum (closed form)'; }

// The loss plot's axes change only when they must: x runs over the iterations asked for, y over whole decades that
// hold every curve, kept while the curves still fit in them with no more than two decades to spare. Its background
// holds no trace: a change of axes is a relayout (~3 ms), not a new plot.
let lossRange = null;

function lossSpec() {
  const runs = current.runs;
  const logLoss = current.dataset.task === 'classification';
  const gapName = !logLoss ? 'loss − loss*' : current.dataset.optimum ? 'log-loss − minimum' : 'log-loss';
  const traces = [];
  const legend = [];
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
    const name = `${run.label}: ${run.optimizer}, η = ${fmt(run.learning_rate, 3)}`;
    const its = run.iteration;
    traces.push({ name, x: its, y: gap, mode: 'lines', color: COLORS[run.label], width: 2,
      hover: (n) => `${run.label}: iteration ${its[n]}<br>${gapName} = ${fmt(gap[n], 4)}` });
    legend.push(key({ line: COLORS[run.label], width: 2 }, name));
    const rate = run.verdict.rate;
    if (rate !== null && rate !== undefined && gap[0] !== null && rate > 0) {
      const ys = its.map((k) => gap[0] * Math.pow(rate, 2 * k));
      const keep = ys.map((y) => y >= floorOf(run) && y <= 1e300);
      const tx = its.filter((_, n) => keep[n]), ty = ys.filter((_, n) => keep[n]);
      traces.push({ name: `theory ${run.label}`, x: tx, y: ty, mode: 'lines', color: COLORS[run.label], width: 1.5, dash: 'dot',
        hover: (n) => `theory (${run.label}): iteration ${tx[n]}<br>gap ≤ ${fmt(ty[n], 4)}` });
      legend.push(key({ line: COLORS[run.label], dash: 'dot', width: 1.5 },
        `theory (${run.label}${current.batch_size ? ', for full batches' : ''}): gap ≤ gap₀ · ${rate > 0.999 && rate < 1 ? '(1 − ' + fmt(1 - rate, 2) + ')' : fmt(rate, 3)}^(2t)`));
    }
    const k = upTo(run);
    traces.push({ name: `now ${run.label}`, x: [its[k]], y: [gap[k]], mode: 'markers',
      marker: { size: 10, color: COLORS[run.label], line: { color: '#fff', width: 2 } } });
  }
  traces.push({ name: 'iteration shown', vline: true, x: [t], y: [], mode: 'lines', color: '#999', dash: 'dot', width: 1 });
  let yr = null;
  if (Number.isFinite(ymin) && ymax > 0) {
    const lo = Math.log10(ymin), hi = Math.log10(ymax);
    const ideal = [Math.floor(lo - 0.15), Math.ceil(hi + 0.15)];
    const old = lossRange && lossRange.id === current.dataset.key ? lossRange.range : null;
    yr = old && old[0] <= lo - 0.1 && old[1] >= hi + 0.1 && (old[1] - old[0]) - (ideal[1] - ideal[0]) <= 2 ? old : ideal;
    lossRange = { id: current.dataset.key, range: yr };
  }
  layout.title = { text: !logLoss ? 'Loss above the optimum, loss − loss* (log scale)'
    : current.dataset.optimum ? 'Log-loss above its minimum (log scale)' : 'Log-loss (log scale; no minimum: it falls towards 0)', font: { size: 14 } };
  layout.xaxis = { ...layout.xaxis, type: 'linear', title: { text: 'iteration', standoff: 4 }, range: [0, Math.max(1, current.iterations)] };
  layout.yaxis = { ...layout.yaxis, type: 'log', title: { text: gapName }, exponentformat: 'power', range: yr || [-1, 1] };
  const decades = yr ? yr[1] - yr[0] : 2;
  if (decades >= 2) layout.yaxis.dtick = Math.max(1, Math.ceil(decades / 7));
  const axes = { 'xaxis.range': layout.xaxis.range, 'yaxis.range': layout.yaxis.range, 'yaxis.dtick': layout.yaxis.dtick ?? null };
  return { key: current.dataset.key, bg: [[], clone(layout), PLOT_CONFIG], traces, legend, axes, home: axes };
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
  const logLoss = ds.task === 'classification';
  const k = ds.condition_numbers;
  const other = k ? (ds.standardized ? ` (raw features: ${fmt(k.raw, 3)})` : k.standardized ? ` (standardised: ${fmt(k.standardized, 3)})` : '') : '';
  let html = logLoss ? '<h3>Curvature of the log-loss (a bound, from X alone)</h3><table>'
    : '<h3>Curvature of the loss (from X alone)</h3><table>';
  html += logLoss ? row('L', fmt(c.L), 'largest eigenvalue of (1/(4m)) X_bᵀX_b, which bounds the Hessian')
    : row('L', fmt(c.L), 'largest eigenvalue of the Hessian (2/m) X_bᵀX_b');
  html += row('μ', fmt(c.mu), 'smallest eigenvalue' + (logLoss ? ' of that bound' : ''));
  html += row('κ = L/μ', fmt(c.condition_number), 'condition number: how stretched the valley is' + other);
  html += row('2/L', fmt(c.stable_step), logLoss ? 'every constant gd step below it lowers the log-loss'
    : 'every constant step below it converges (gd)');
  if (!logLoss) html += row('2/(L+μ)', fmt(c.best_step), `the fastest constant step: error × ${fmt(c.best_rate, 3)} per iteration`);
  html += '</table><h3>Iteration ' + t + ': where the descent is</h3><table>';
  const best = logLoss ? (ds.optimum ? 'minimum' : 'no minimum') : 'optimum';
  html += '<tr><td></td>' + current.runs.map((r) => `<td class="num ${r.label}">${r.label}: ${esc(r.optimizer)}</td>`).join('') +
    `<td class="num">${best}</td></tr>`;
  const opt = (v) => (ds.optimum ? fmt(v, 5) : '—');
  names.forEach((n, j) => {
    html += `<tr><td>${esc(n)}</td>` + current.runs.map((r) => `<td class="num">${fmt(r.params[upTo(r)][j], 5)}</td>`).join('') +
      `<td class="num">${ds.optimum ? opt(ds.optimum.params[j]) : '—'}</td></tr>`;
  });
  html += `<tr><td>${logLoss ? 'log-loss' : 'loss (MSE)'}</td>` + current.runs.map((r) => `<td class="num">${fmt(r.loss[upTo(r)], 5)}</td>`).join('') +
    `<td class="num">${ds.optimum ? fmt(ds.optimum.loss, 5) : '→ 0'}</td></tr>`;
  if (logLoss) {
    html += '<tr><td>accuracy</td>' + current.runs.map((r) => `<td class="num">${fmt(100 * r.accuracy[upTo(r)], 3)}%</td>`).join('') +
      '<td class="num"></td></tr>';
  }
  html += '<tr><td>|gradient|</td>' + current.runs.map((r) => `<td class="num">${fmt(r.grad_norm[upTo(r)], 3)}</td>`).join('') + '<td class="num">0</td></tr>';
  html += '</table><h3>The runs</h3>';
  for (const r of current.runs) {
    html += `<p><span class="${r.label}">${r.label}</span>: ${esc(r.message.replace(/\.+$/, ''))}.</p>`;
  }
  const src = logLoss && !current.batch_size
    ? `each iteration read all ${ds.n_rows.toLocaleString()} rows (the log-loss has no statistics shortcut)`
    : current.runs[0].source === 'gram' || logLoss && !current.batch_size
      ? `each iteration used the cached statistics of all ${ds.n_rows.toLocaleString()} rows (O(d²) per iteration)`
      : `each iteration read the rows in mini-batches of ${current.batch_size}`;
  const std = ds.standardized ? ' on the standardised features' : '';
  html += `<p class="hint">Computed by gdlab.descend${std} in ${fmt(current.timing_ms.descent, 2)} ms: ${src}.</p>`;
  $('facts').innerHTML = html;
}

function renderPlaybar() {
  const n = maxT();
  $('t-slider').max = String(n);
  $('t-slider').value = String(t);
  const total = current.iterations;
  const short = current.runs.filter((r) => r.iteration.length - 1 < total);
  const stopped = !short.length ? '' : short.every((r) => r.status === 6) ? ' (stopped early: classes separable)'
    : ' (stopped early: diverged)';
  $('iteration-label').textContent = `iteration ${t} of ${n}${stopped}`;
}

let renders = 0;
let booted = false;
let drawGen = 0, owed = false;

const clone = (o) => JSON.parse(JSON.stringify(o));  // plotly keeps (and a zoom changes) the arrays it is given
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

// Brings plot p up to its spec. A slider move changes only the light layer: drawn at once, in the same frame as the
// verdict. When only the axis ranges change (the loss plot's decades), a plotly relayout (~3 ms) comes first. A new
// background (another data set, other axes: a plotly redraw, 15-25 ms or more) is drawn after the words have been
// painted, and the layer after it. While one of these is under way the layer waits; its end syncs again.
function syncPlot(p) {
  if (p.job) return;
  const spec = p.spec;
  const done = () => {
    p.job = null;
    if (!p.listening && p.bg.on) {
      // zoom, pan, a resized window: plotly redraws the background, and the layer follows its axes
      p.bg.on('plotly_afterplot', () => settleLayer(p));
      p.bg.on('plotly_relayout', () => settleLayer(p));
      // during a drag (pan, an axis dragged, a scroll zoom) plotly moves its axes at every mouse move: the layer
      // follows them, once a frame
      p.bg.on('plotly_relayouting', () => followDrag(p));
      p.bg.on('plotly_doubleclick', () => { if (p.spec.home && !p.job) Plotly.relayout(p.bg, clone(p.spec.home)); });
      p.listening = true;
    }
    syncPlot(p);
  };
  if (spec.key !== p.key) {
    p.job = nextFrame().then(() => {
      const s = p.spec;
      p.key = s.key;
      p.axes = s.axes;
      return Plotly.react(p.bg, ...s.bg);
    }).catch((err) => console.error(err)).then(done);
  } else if (spec.axes && JSON.stringify(spec.axes) !== JSON.stringify(p.axes)) {
    p.axes = spec.axes;
    p.job = Promise.resolve(Plotly.relayout(p.bg, clone(spec.axes))).catch((err) => console.error(err)).then(done);
  } else {
    paintLayer(p);
  }
}

// Draws the three plots; 'renders' counts the answers whose plots are all drawn (the latest drawing counts for any
// earlier one still unfinished); 'ready' says the first one is.
function drawPlots(counted) {
  const gen = ++drawGen;
  owed = owed || counted;
  const specs = { data: dataSpec(), surface: surfaceSpec(), loss: lossSpec() };
  for (const [name, spec] of Object.entries(specs)) {
    if (!spec) continue;
    const p = plotOf(name);
    p.spec = spec;
    const legend = spec.legend.join('');
    if (legend !== p.legendHtml) { p.legendHtml = legend; setHtml($('legend-' + name), legend); }
    syncPlot(p);
  }
  const settle = () => {
    if (gen !== drawGen) return;
    const jobs = Object.values(plots).map((p) => p.job).filter(Boolean);
    if (jobs.length) { Promise.all(jobs).then(settle); return; }
    if (owed) { owed = false; document.body.dataset.renders = String(++renders); }  // lets tests wait for it
    if (booted) document.body.dataset.ready = '1';
  };
  settle();
}

function drawingNow() { return Object.values(plots).some((p) => p.job); }

function render(onlyT = false) {
  if (!current) return;
  document.body.dataset.iteration = String(t);
  renderPlaybar();
  renderFacts();
  if (!onlyT) {
    renderVerdict();
    drawMarks();
    const d = current.directions;
    $('surface-hint').textContent = 'Click anywhere on this plot to start the descent from there.' +
      (d ? ` The two arrows: ${d.note}.` : '');
    document.body.dataset.verdicts = String(renders + 1);
  }
  drawPlots(!onlyT);
  renderStep();
  renderEigen();
}

// ---- step by step: one update as arithmetic (GET /api/step) ------------------------------------------------------

let stepTimer = null, stepSeq = 0;
function renderStep() {
  const box = $('step-box');
  if (!box || !box.open || !current) return;
  clearTimeout(stepTimer);
  stepTimer = setTimeout(fetchStep, 120);
}

async function fetchStep() {
  const body = $('step-body');
  const run = current.runs[0];
  const last = run.iteration.length - 2;
  if (last < 0) { body.textContent = 'The run has no update to show.'; return; }
  const shown = Math.min(t, last);
  const my = ++stepSeq;
  try {
    const q = query({ t: String(shown) });
    q.delete('race'); q.delete('race_lr');
    const ans = await getJson('/api/step?' + q.toString());
    if (my !== stepSeq) return;
    const head = '<tr><th>quantity</th>' + ans.names.map((n) => `<th>${esc(n)}</th>`).join('') + '</tr>';
    const rows = ans.rows.map((r, i) => `<tr class="${i === ans.rows.length - 1 ? 'result' : ''}"><td>`
      + `<span class="step-name">${esc(r.name)}</span>${r.note ? `<span class="step-note">${esc(r.note)}</span>` : ''}</td>`
      + r.values.map((v) => `<td class="num">${v === null ? '–' : esc(fmt(v, 6))}</td>`).join('')
      + '</tr>').join('');
    setHtml(body, `<p class="step-title">Update ${ans.t} → ${ans.t + 1} (${esc(ans.optimizer)}):</p>`
      + `<table class="step-table"><thead>${head}</thead><tbody>${rows}</tbody></table>`);
    document.body.dataset.stepShown = String(ans.t);
  } catch (err) {
    if (my !== stepSeq) return;
    body.textContent = err.message || String(err);
    document.body.dataset.stepShown = 'error';
  }
}

// ---- eigen-directions: the error along the Hessian's eigenvectors, and momentum's region (GET /api/eigen) -------

let eigenTimer = null, eigenSeq = 0, eigenHeld = null;
// The card asks the server only when what it shows has changed (the run, not the iteration shown: that moves its
// marker line, a relayout).
function renderEigen() {
  const box = $('eigen-box');
  if (!box || !box.open || !current) return;
  const q = query();
  q.delete('race'); q.delete('race_lr');
  for (const k of [...q.keys()]) if (k.startsWith('race_')) q.delete(k);
  const wanted = q.toString();
  if (eigenHeld && eigenHeld.query === wanted) { markEigenT(); return; }
  clearTimeout(eigenTimer);
  eigenTimer = setTimeout(() => fetchEigen(wanted), 120);
}

async function fetchEigen(wanted) {
  const my = ++eigenSeq;
  try {
    const ans = await getJson('/api/eigen?' + wanted);
    if (my !== eigenSeq) return;
    eigenHeld = { query: wanted, ans };
    await drawEigen(ans);
    if (my !== eigenSeq) return;
    document.body.dataset.eigenShown = String(my);
  } catch (err) {
    if (my !== eigenSeq) return;
    eigenHeld = null;
    Plotly.purge($('plot-eigen'));
    Plotly.purge($('plot-region'));
    $('eigen-text').innerHTML = '';
    const p = document.createElement('p');
    p.className = 'hint error';
    p.textContent = err.message || String(err);
    $('eigen-text').appendChild(p);
    document.body.dataset.eigenShown = 'error';
  }
}

function eigenShape() {
  return { type: 'line', xref: 'x', yref: 'paper', x0: t, x1: t, y0: 0, y1: 1, line: { color: '#999', width: 1, dash: 'dot' } };
}

function markEigenT() {
  const gd = $('plot-eigen');
  if (gd._fullLayout) Plotly.relayout(gd, { shapes: [eigenShape()] });
}

// Direction i's colour: the slowest and the fastest as on the contour; the others from a palette (up to 8), grey past it.
function eigenColor(ans, i) {
  if (i === ans.slowest) return EIGEN_COLORS[0];
  if (i === ans.fastest) return EIGEN_COLORS[1];
  const palette = ['#1f77b4', '#2ca02c', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
  return ans.eigenvalues.length <= 8 ? palette[i % palette.length] : '#b0b0b0';
}

async function drawEigen(ans) {
  const p = ans.eigenvalues.length;
  const narrow = $('plot-eigen').clientWidth < 560;
  const traces = [];
  const many = p > 8;
  let others = false;
  for (let i = 0; i < p; i++) {
    const color = eigenColor(ans, i);
    const special = i === ans.slowest || i === ans.fastest;
    const f = ans.factors ? ans.factors[i] : null;
    const tag = i === ans.slowest ? 'slowest, ' : i === ans.fastest ? 'fastest, ' : '';
    const name = `${tag}λ = ${fmt(ans.eigenvalues[i], 3)}` + (f === null ? '' : `: ×${f > 0.999 && f < 1 ? '(1 − ' + fmt(1 - f, 2) + ')' : fmt(f, 3)}/step`);
    const show = !many || special;
    if (many && !special && !others) others = true;
    traces.push({ x: ans.iteration, y: ans.measured[i], mode: 'lines', name: show ? name : `other direction (λ = ${fmt(ans.eigenvalues[i], 3)})`,
      line: { color, width: special ? 2.4 : 1.4 }, showlegend: show, legendgroup: 'd' + i,
      hovertemplate: `${esc(name)}<br>iteration %{x}: |c| = %{y:.3e}<extra>measured</extra>` });
    if (ans.predicted) {
      traces.push({ x: ans.iteration, y: ans.predicted[i], mode: 'lines', name: 'predicted', showlegend: false, legendgroup: 'd' + i,
        line: { color, width: special ? 2 : 1, dash: 'dot' },
        hovertemplate: `predicted, ${esc(name)}<br>iteration %{x}: |c| = %{y:.3e}<extra>theory</extra>` });
    }
  }
  if (others) traces.push({ x: [null], y: [null], mode: 'lines', name: `the other ${p - 2} directions`, line: { color: '#b0b0b0', width: 1.4 } });
  if (ans.predicted) {
    const law = ans.optimizer === 'gd' || !ans.beta ? '|1 − ηλ|^t |c(0)|' : 'the 2 × 2 recurrence';
    traces.push({ x: [null], y: [null], mode: 'lines', name: `dotted: predicted, ${law}`, line: { color: '#555', width: 1.5, dash: 'dot' } });
  }
  const title = (ans.local ? 'Error along the Hessian-at-the-minimum eigenvectors' : 'Error along each eigen-direction')
    + (narrow ? '' : ', |c_i(t)| (log scale)');
  const layout = { ...baseLayout(), showlegend: true, title: { text: title, font: { size: 14 } },
    legend: { orientation: 'h', x: 0, y: -0.22, yanchor: 'top', font: { size: 11 } },
    margin: { l: 64, r: 16, t: 34, b: 20 }, shapes: [eigenShape()] };
  layout.xaxis = { ...layout.xaxis, title: { text: 'iteration', standoff: 4 } };
  layout.yaxis = { ...layout.yaxis, type: 'log', title: { text: '|c_i(t)| = |v_iᵀ(w_t − w*)|' }, exponentformat: 'power' };
  await Plotly.react($('plot-eigen'), traces, layout, PLOT_CONFIG);
  await drawRegion(ans.region, narrow);
  setHtml($('eigen-text'), ans.text.map((x) => `<p>${esc(x)}</p>`).join(''));
}

async function drawRegion(reg, narrow) {
  const traces = [];
  // the error kept per step (spectral radius) over (η, β); 1 and above (the run diverges) in pink
  traces.push({ type: 'heatmap', x: reg.etas, y: reg.betas, z: reg.radius, zmin: 0, zmax: 1.2, hoverongaps: false,
    colorscale: [[0, '#2166ac'], [0.35, '#67a9cf'], [0.6, '#a6dba0'], [0.8332, '#f7f7d0'], [0.8334, '#f6c9c9'], [1, '#f6c9c9']],
    colorbar: { title: { text: 'error kept per step', side: 'right' }, thickness: 10, len: 0.9, tickvals: [0, 0.5, 1], ticktext: ['0', '0.5', '≥ 1'] },
    hovertemplate: 'η = %{x:.3g}, β = %{y:.3f}<br>error kept per step %{z:.4f}<extra></extra>', showlegend: false });
  const edge = reg.optimizer === 'nesterov' ? 'rate 1: η = 2(1+β)/((1+2β)L)' : 'rate 1: η = 2(1+β)/L';
  traces.push({ x: reg.edge.eta, y: reg.edge.beta, mode: 'lines', name: edge, line: { color: '#c62828', width: 2 } });
  if (reg.critical_slow) {
    traces.push({ x: reg.critical_slow.eta, y: reg.critical_slow.beta, mode: 'lines', name: 'flattest direction critically damped',
      line: { color: '#1d2433', width: 2, dash: 'dash' } });
    traces.push({ x: reg.critical_fast.eta, y: reg.critical_fast.beta, mode: 'lines', name: 'steepest direction critically damped',
      line: { color: '#1d2433', width: 2, dash: 'dot' } });
  }
  if (reg.polyak) {
    traces.push({ x: [reg.polyak.eta], y: [reg.polyak.beta], mode: 'markers', name: `Polyak: η = ${fmt(reg.polyak.eta, 3)}, β* = ${fmt(reg.polyak.beta, 3)}`,
      marker: { symbol: 'star', size: 15, color: '#ffd54f', line: { color: '#333', width: 1 } } });
  }
  if (reg.current) {
    const c = reg.current;
    traces.push({ x: [c.eta], y: [c.beta], mode: 'markers', name: `run A: η = ${fmt(c.eta, 3)}, β = ${fmt(c.beta, 3)} (rate ${fmt(c.radius, 4)})`,
      marker: { symbol: 'circle', size: 12, color: COLORS.A, line: { color: '#fff', width: 2 } } });
  }
  const what = reg.optimizer === 'nesterov' ? "Nesterov's" : 'Momentum\'s';
  const layout = { ...baseLayout(), showlegend: true, title: { text: `${what} stability region${narrow ? '' : ' on this data'}`, font: { size: 14 } },
    legend: { orientation: 'h', x: 0, y: -0.22, yanchor: 'top', font: { size: 11 } }, margin: { l: 56, r: 10, t: 34, b: 20 } };
  layout.xaxis = { ...layout.xaxis, title: { text: 'learning rate η', standoff: 4 }, range: [0, reg.etas[reg.etas.length - 1]] };
  layout.yaxis = { ...layout.yaxis, title: { text: 'momentum β' }, range: [0, 1] };
  await Plotly.react($('plot-region'), traces, layout, PLOT_CONFIG);
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
  if (!drawingNow()) document.body.dataset.ready = '1';
}

main();
