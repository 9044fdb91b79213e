// Continuum admin web UI: a pure client of the admin API (docs/webui.md). No framework, no
// build step. Everything the router sends is untrusted: it only ever reaches the page
// through textContent, attributes and createElement, never innerHTML.
'use strict';
(() => {
  const VIEWS = ['backends', 'traffic', 'usage', 'models', 'config', 'playground'];
  const TITLES = { backends: 'Backends', traffic: 'Traffic', usage: 'Usage and cost', models: 'Models', config: 'Config', playground: 'Playground' };
  const POLLED = new Set(['backends', 'traffic', 'usage']);
  const POLL_MS = 2000;
  const AUTH_KEY = 'continuum.webui.auth';
  const SVGNS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const tbody = (id) => $(id).tBodies[0];

  let auth = null; // the Authorization header value; null when the admin API needs none
  let signedIn = false;
  let view = null;
  let timer = 0;
  let gen = 0; // bumped whenever the polling loop restarts; stale answers are dropped
  let lastBackends = [];
  let pgAbort = null;

  class AuthError extends Error {}

  // ---- small helpers ---------------------------------------------------------------

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const str = (v) => (v == null ? '' : String(v));
  const arr = (v) => (Array.isArray(v) ? v : []);
  const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
  const int = (v) => (isNum(v) ? String(Math.round(v)) : '—');
  const dash = (v) => (v == null || v === '' ? '—' : String(v));

  function ms(v) {
    if (!isNum(v)) return '—';
    if (v < 10) return v.toFixed(1) + ' ms';
    if (v < 1000) return Math.round(v) + ' ms';
    return (v / 1000).toFixed(2) + ' s';
  }
  function pct(r) {
    if (!isNum(r)) return '—';
    const p = r * 100;
    return (p === 0 ? '0' : p < 10 ? p.toFixed(1) : p.toFixed(0)) + '%';
  }
  function money(v) {
    if (!isNum(v)) return '—';
    if (v === 0) return '0';
    if (v < 0.0001) return '< 0.0001';
    if (v >= 100) return v.toFixed(2);
    return String(Number(v.toPrecision(4)));
  }
  function price(v) {
    return isNum(v) ? String(Number(v.toPrecision(6))) : '—';
  }
  function duration(s) {
    if (!isNum(s)) return '—';
    if (s < 120) return Math.round(s) + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' days';
  }
  const clock = () => new Date().toLocaleTimeString();
  const cls = (v) => str(v).toLowerCase().replace(/[^a-z0-9_-]/g, '');

  function setText(id, text) {
    const e = $(id);
    if (e && e.textContent !== text) e.textContent = text;
  }

  function tokens(t) {
    const o = obj(t);
    return `${int(o.input)} / ${int(o.output)}`;
  }

  // Brings a table body in line with `items`, one row per key (attribute `attr`), updating
  // cells in place so that nothing moves that did not change.
  function syncRows(body, attr, items, keyOf, cols, emptyText) {
    const rows = body._rows || (body._rows = new Map());
    const seen = new Set();
    const order = [];
    for (const it of items) {
      if (!it || typeof it !== 'object') continue;
      const key = keyOf(it);
      if (key == null || key === '' || seen.has(String(key))) continue;
      const k = String(key);
      seen.add(k);
      let tr = rows.get(k);
      if (!tr) {
        tr = document.createElement('tr');
        tr.setAttribute(attr, k);
        cols.forEach((c, i) => {
          const cell = document.createElement(i === 0 ? 'th' : 'td');
          if (i === 0) cell.scope = 'row';
          if (c.f) cell.dataset.field = c.f;
          tr.append(cell);
        });
        rows.set(k, tr);
      }
      cols.forEach((c, i) => {
        const cell = tr.cells[i];
        const text = c.t(it);
        if (cell.textContent !== text) cell.textContent = text;
        const className = [c.num ? 'num' : '', c.c ? c.c(it) : ''].join(' ').trim();
        if (cell.className !== className) cell.className = className;
        if (c.title) {
          const t = c.title(it);
          if (t) cell.title = t;
          else cell.removeAttribute('title');
        }
      });
      order.push(tr);
    }
    for (const [k, tr] of rows) {
      if (!seen.has(k)) {
        tr.remove();
        rows.delete(k);
      }
    }
    let empty = body._empty;
    if (!order.length) {
      if (!empty) {
        empty = body._empty = document.createElement('tr');
        empty.className = 'empty';
        const td = document.createElement('td');
        td.colSpan = cols.length;
        empty.append(td);
      }
      empty.cells[0].textContent = emptyText || 'Nothing yet.';
      if (empty.parentNode !== body) body.append(empty);
      return;
    }
    if (empty && empty.parentNode) empty.remove();
    const current = body.rows;
    let same = current.length === order.length;
    for (let i = 0; same && i < order.length; i++) same = current[i] === order[i];
    if (!same) for (const tr of order) body.append(tr);
  }

  function clearRows(body) {
    if (body._rows) body._rows.clear();
    body.replaceChildren();
  }

  // ---- the admin API ---------------------------------------------------------------

  async function api(path, init) {
    const headers = new Headers((init && init.headers) || {});
    const used = auth;
    if (used) headers.set('Authorization', used);
    const signal = typeof AbortSignal.timeout === 'function' ? AbortSignal.timeout(15000) : undefined;
    const r = await fetch(path, Object.assign({ cache: 'no-store', credentials: 'omit', signal }, init, { headers }));
    if (r.status === 401 || r.status === 403) {
      // An answer to a session that already ended does not end the next one.
      if (signedIn && auth === used) toLogin(`The admin API refused the credentials (HTTP ${r.status}). Sign in again.`);
      throw new AuthError('refused');
    }
    return r;
  }

  async function readJson(r) {
    const text = await r.text();
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }

  function errorText(body, r) {
    const e = body && body.error;
    if (typeof e === 'string' && e) return e;
    if (e && typeof e.message === 'string') return e.message;
    return `HTTP ${r.status}`;
  }

  async function getJson(path) {
    const r = await api(path);
    const body = await readJson(r);
    if (!r.ok) throw new Error(`${path}: ${errorText(body, r)}`);
    if (!body || typeof body !== 'object') throw new Error(`${path}: not JSON`);
    return { body, date: Date.parse(r.headers.get('date') || '') };
  }

  function setConn(text, bad) {
    const c = $('conn');
    setText('conn', text);
    const was = c.classList.contains('bad');
    c.className = 'conn' + (bad ? ' bad' : text ? ' ok' : '');
    // Only changes of the connection's state are announced, not every refresh.
    if (bad && !was) setText('conn-live', text);
    else if (!bad && was) setText('conn-live', 'Connection restored.');
    if (text) c.title = text;
    else c.removeAttribute('title');
  }

  // ---- signing in ------------------------------------------------------------------

  function loadAuth() {
    try {
      return sessionStorage.getItem(AUTH_KEY);
    } catch {
      return null;
    }
  }
  function saveAuth(v) {
    try {
      if (v == null) sessionStorage.removeItem(AUTH_KEY);
      else sessionStorage.setItem(AUTH_KEY, v);
    } catch {
      /* storage unavailable: the credential lives in memory only */
    }
  }
  function basic(user, pass) {
    let bin = '';
    for (const b of new TextEncoder().encode(`${user}:${pass}`)) bin += String.fromCharCode(b);
    return 'Basic ' + btoa(bin);
  }
  function probe(header) {
    const headers = header ? { Authorization: header } : {};
    // credentials: 'omit' keeps the browser from answering a Basic challenge with its own
    // sign-in dialog (and from sending anything but the header given here).
    return fetch('/admin/backends', { headers, cache: 'no-store', credentials: 'omit' });
  }
  const refused = (r) => r.status === 401 || r.status === 403;

  // The credential the admin API wants, as the router wrote it into the page (admin.auth:
  // bearer, basic, api_key; or none, loopback, ip_whitelist, which need none).
  function authMethod() {
    const m = document.querySelector('meta[name="continuum-admin-auth"]');
    return m ? str(m.getAttribute('content')) : '';
  }

  async function start() {
    const method = authMethod();
    const needsCredential = ['bearer', 'basic', 'api_key'].includes(method);
    if (!needsCredential) {
      let r;
      try {
        r = await probe(null);
      } catch (e) {
        showLogin(`The router did not answer (${e && e.message ? e.message : 'network error'}).`);
        return;
      }
      if (r.ok) return enter(null, await readJson(r));
      if (!refused(r)) return showLogin(`The admin API answered HTTP ${r.status}.`);
      methodHint(r.headers.get('www-authenticate'));
    } else {
      // Asking without the credential would only be refused (and logged by the browser).
      methodHint(method === 'basic' ? 'basic' : 'bearer');
    }
    const saved = loadAuth();
    if (saved) {
      try {
        const r2 = await probe(saved);
        if (r2.ok) return enter(saved, await readJson(r2));
        if (refused(r2)) saveAuth(null);
      } catch {
        /* fall through to the form */
      }
    }
    showLogin('');
  }

  function methodHint(header) {
    const h = str(header).toLowerCase();
    const hint = $('login-hint');
    if (h.startsWith('basic')) hint.textContent = 'This router asks for a user and password.';
    else if (h.startsWith('bearer')) hint.textContent = 'This router asks for a token (its bearer token or an admin API key).';
    $('login').dataset.method = h.startsWith('basic') ? 'basic' : 'bearer';
  }

  function showLogin(message) {
    $('boot').hidden = true;
    $('app').hidden = true;
    $('login-view').hidden = false;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    document.title = 'Sign in · Continuum admin';
    const first = $('login').dataset.method === 'basic' ? $('login-user') : $('login-token');
    first.focus();
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const token = $('login-token').value.trim();
    const user = $('login-user').value;
    const pass = $('login-password').value;
    const header = token ? 'Bearer ' + token : user || pass ? basic(user, pass) : null;
    const button = $('login-submit');
    button.disabled = true;
    $('login-error').textContent = '';
    try {
      const r = await probe(header);
      if (r.ok) {
        $('login-password').value = '';
        $('login-token').value = '';
        return enter(header, await readJson(r));
      }
      const body = await readJson(r);
      $('login-error').textContent = refused(r)
        ? `Those credentials were refused (HTTP ${r.status}): ${errorText(body, r)}`
        : `The admin API answered: ${errorText(body, r)}`;
      (token || !user ? $('login-token') : $('login-password')).focus();
    } catch (e) {
      $('login-error').textContent = `Could not ask the admin API (${e && e.message ? e.message : 'network error'}).`;
    } finally {
      button.disabled = false;
    }
  }

  function enter(header, backends) {
    auth = header;
    saveAuth(header);
    signedIn = true;
    $('boot').hidden = true;
    $('login').hidden = true;
    $('login-view').hidden = true;
    $('login-error').textContent = '';
    $('app').hidden = false;
    setConn('');
    if (backends && typeof backends === 'object') renderBackends(backends);
    route(false);
  }

  function toLogin(message) {
    signedIn = false;
    auth = null;
    saveAuth(null);
    clearTimeout(timer);
    gen++;
    if (pgAbort) pgAbort.abort();
    resetData();
    view = null;
    showLogin(message);
  }

  // Forgets everything shown, so that nothing stays in the page after signing out.
  function resetData() {
    for (const id of ['backends-table', 'traffic-models', 'traffic-backends', 'usage-keys', 'usage-models', 'models-table', 'models-aliases']) {
      clearRows(tbody(id));
    }
    for (const id of ['backends-summary', 'traffic-window', 'traffic-requests', 'traffic-rps', 'traffic-error-rate', 'traffic-p50',
      'traffic-p99', 'traffic-ttft', 'usage-window', 'usage-total-cost', 'usage-requests', 'usage-tokens-in', 'usage-tokens-out',
      'models-summary', 'config-file', 'config-hot-reload', 'config-last-reload', 'pg-backend']) {
      setText(id, '—');
    }
    for (const id of ['traffic-rps-span', 'config-reload-result', 'config-text', 'pg-status', 'pg-output', 'conn', 'conn-live', 'usage-note']) {
      setText(id, '');
    }
    $('usage-note').hidden = true;
    $('pg-model').replaceChildren();
    for (const c of Object.values(charts)) c.clear();
    lastBackends = [];
  }

  // ---- routing and polling ---------------------------------------------------------

  function route(focus) {
    if (!signedIn) return;
    const name = location.hash.slice(1);
    const next = VIEWS.includes(name) ? name : 'backends';
    for (const v of VIEWS) $('view-' + v).hidden = v !== next;
    for (const a of document.querySelectorAll('nav a')) {
      if (a.getAttribute('href') === '#' + next) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = `${TITLES[next]} · Continuum admin`;
    view = next;
    if (focus) $('h-' + next).focus();
    restart();
  }

  function restart() {
    clearTimeout(timer);
    const g = ++gen;
    run(g);
  }

  async function run(g) {
    if (!signedIn || g !== gen) return;
    const v = view;
    try {
      await LOADERS[v](g);
      if (g === gen) setConn(POLLED.has(v) ? `Updated ${clock()}` : '');
    } catch (e) {
      if (e instanceof AuthError) return;
      const why = e instanceof TypeError ? 'the router did not answer' : e && e.message ? e.message : 'network error';
      if (g === gen) setConn(`Could not load: ${why}${POLLED.has(v) ? ' (retrying)' : ''}`, true);
    }
    if (g === gen && signedIn && POLLED.has(v)) timer = setTimeout(() => run(g), POLL_MS);
  }

  const LOADERS = {
    async backends(g) {
      const { body } = await getJson('/admin/backends');
      if (g === gen) renderBackends(body);
    },
    async traffic(g) {
      const { body, date } = await getJson('/admin/stats?series=1');
      if (g === gen) renderTraffic(body, isNum(date) ? date / 1000 : Date.now() / 1000);
    },
    async usage(g) {
      const { body } = await getJson('/admin/stats');
      if (g === gen) renderUsage(body);
    },
    async models(g) {
      const { body } = await getJson('/admin/models');
      if (g === gen) renderModels(body);
    },
    async config(g) {
      const { body } = await getJson('/admin/config');
      if (g === gen) renderConfig(body);
    },
    async playground(g) {
      const { body } = await getJson('/admin/models');
      if (g === gen) fillModelSelect(body);
    },
  };

  // ---- backends --------------------------------------------------------------------

  function serverLoad(b) {
    const parts = [int(b.load)];
    const s = b.server_load;
    if (s && typeof s === 'object') {
      if (isNum(s.running)) parts.push(`running ${s.running}`);
      if (isNum(s.waiting)) parts.push(`waiting ${s.waiting}`);
      if (isNum(s.kv_cache_usage)) parts.push(`KV ${pct(s.kv_cache_usage)}`);
    }
    return parts.join(' · ');
  }
  function cache(b) {
    const prompt = isNum(b.prompt_tokens) ? b.prompt_tokens : 0;
    const cached = isNum(b.cached_prompt_tokens) ? b.cached_prompt_tokens : 0;
    if (!isNum(b.cache_hit_ratio)) return prompt ? `${cached} of ${prompt} tokens` : '—';
    return `${pct(b.cache_hit_ratio)} (${cached} of ${prompt} tokens)`;
  }

  const BACKEND_COLS = [
    { t: (b) => str(b.name) },
    { f: 'type', t: (b) => dash(b.type), title: (b) => str(b.url) },
    { f: 'status', t: (b) => dash(b.status), c: (b) => 'st st-' + cls(b.status) },
    { f: 'circuit', t: (b) => dash(b.circuit), c: (b) => 'ci ci-' + cls(b.circuit) },
    { f: 'latency', t: (b) => ms(b.latency_ewma_ms), num: true },
    { f: 'in_flight', t: (b) => int(b.in_flight), num: true },
    { f: 'load', t: serverLoad },
    { f: 'models', t: (b) => (arr(b.models).length ? arr(b.models).map(str).join(', ') : b.discovers_models ? '(discovering)' : '—'), c: () => 'wrap' },
    { f: 'cache', t: cache },
  ];

  function renderBackends(body) {
    const list = arr(body.backends);
    lastBackends = list;
    syncRows(tbody('backends-table'), 'data-backend', list, (b) => b.name, BACKEND_COLS, 'No backends configured.');
    const healthy = list.filter((b) => b && b.status === 'healthy').length;
    setText('backends-summary', `${list.length} backend${list.length === 1 ? '' : 's'}, ${healthy} healthy · refreshed every 2 s`);
  }

  // ---- charts ----------------------------------------------------------------------

  const CW = 400, CH = 170, PL = 46, PR = 8, PT = 10, PB = 22;

  function svg(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.append(e);
    return e;
  }

  function niceMax(v, floor) {
    const x = Math.max(v, floor);
    const p = Math.pow(10, Math.floor(Math.log10(x)));
    const m = x / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }

  // One chart: a fixed viewBox with gridlines, y labels, x labels and one path per line.
  function makeChart(id, lines, fmt, floor, label) {
    const root = $(id);
    root.setAttribute('viewBox', `0 0 ${CW} ${CH}`);
    root.setAttribute('role', 'img');
    root.setAttribute('aria-labelledby', id + '-title');
    const title = svg('title', { id: id + '-title' }, root);
    title.textContent = `${label}: no data yet`;
    const grid = [];
    for (let i = 0; i < 3; i++) {
      const y = PT + ((CH - PT - PB) * i) / 2;
      const g = svg('g', { class: 'grid', 'aria-hidden': 'true' }, root);
      svg('line', { x1: PL, x2: CW - PR, y1: y, y2: y }, g);
      const t = svg('text', { x: PL - 6, y: y + 4, 'text-anchor': 'end' }, g);
      grid.push(t);
    }
    const axis = svg('g', { class: 'axis', 'aria-hidden': 'true' }, root);
    const xl = svg('text', { x: PL, y: CH - 6, 'text-anchor': 'start' }, axis);
    const xr = svg('text', { x: CW - PR, y: CH - 6, 'text-anchor': 'end' }, axis);
    const paths = lines.map((l) => ({
      area: l.area ? svg('path', { class: 'area ' + l.cls, d: '' }, root) : null,
      line: svg('path', { class: 'line ' + l.cls, d: '' }, root),
      dots: svg('g', { class: 'dots ' + l.cls }, root),
    }));
    const empty = svg('text', { x: (PL + CW - PR) / 2, y: (PT + CH - PB) / 2 + 4, 'text-anchor': 'middle', class: 'nodata', 'aria-hidden': 'true' }, root);
    empty.textContent = 'No requests in this window';
    const chart = {
      clear() {
        for (const p of paths) {
          p.line.setAttribute('d', '');
          p.dots.replaceChildren();
          if (p.area) p.area.setAttribute('d', '');
        }
        for (const t of grid) t.textContent = '';
        xl.textContent = '';
        xr.textContent = '';
        title.textContent = `${label}: no data yet`;
      },
      // values: one array per line (numbers or null for gaps), all of the same length.
      // hasData: whether the window had requests (a flat 0% error rate is data too).
      draw(values, span, summary, hasData) {
        const n = values.length ? values[0].length : 0;
        let max = 0;
        for (const vs of values) for (const v of vs) if (isNum(v) && v > max) max = v;
        const top = niceMax(max, floor);
        grid.forEach((t, i) => {
          t.textContent = fmt((top * (2 - i)) / 2);
        });
        xl.textContent = '−' + duration(span);
        xr.textContent = 'now';
        const x = (i) => PL + (n <= 1 ? 0 : (i * (CW - PL - PR)) / (n - 1));
        const y = (v) => PT + (1 - v / top) * (CH - PT - PB);
        let any = false;
        values.forEach((vs, li) => {
          // Runs of consecutive values; a gap (null) breaks the line.
          const runs = [];
          let run = null;
          for (let i = 0; i < n; i++) {
            const v = vs[i];
            if (!isNum(v)) {
              run = null;
              continue;
            }
            if (!run) runs.push((run = []));
            run.push([x(i).toFixed(1), y(v).toFixed(1)]);
            if (v > 0) any = true;
          }
          const pts = (r) => r.map(([px, py], i) => (i ? 'L' : 'M') + px + ' ' + py).join('');
          paths[li].line.setAttribute('d', runs.map(pts).join(''));
          // A lone point (a bucket between gaps) is a dot.
          paths[li].dots.replaceChildren(...runs.filter((r) => r.length === 1).map(([[cx, cy]]) => svg('circle', { cx, cy, r: 3 })));
          const area = paths[li].area;
          if (area) {
            const base = y(0).toFixed(1);
            area.setAttribute('d', runs.filter((r) => r.length > 1).map((r) => `${pts(r)}L${r[r.length - 1][0]} ${base}L${r[0][0]} ${base}Z`).join(''));
          }
        });
        empty.textContent = (hasData ?? any) ? '' : 'No requests in this window';
        title.textContent = `${label} over the last ${duration(span)}: ${summary}`;
      },
    };
    return chart;
  }

  let charts = {};
  function initCharts() {
    const rate = (v) => (v >= 10 ? Math.round(v) : Number(v.toPrecision(2))).toString();
    charts = {
      requests: makeChart('chart-requests', [{ cls: 's-req', area: true }], rate, 0.1, 'Requests per second'),
      errors: makeChart('chart-errors', [{ cls: 's-err', area: true }], (v) => pct(v / 100), 1, 'Error rate'),
      latency: makeChart('chart-latency', [{ cls: 's-p50' }, { cls: 's-p99' }, { cls: 's-ttft' }], (v) => (v ? ms(v).replace(' ', '') : '0'), 10, 'Latency'),
    };
  }

  // The series put on a time axis ending now: one bin per bucket (merged when there are
  // too many), empty buckets as zero requests.
  function binSeries(series, now, windowSec) {
    const s = obj(series);
    const b = isNum(s.bucket_seconds) && s.bucket_seconds > 0 ? s.bucket_seconds : 60;
    const end = Math.floor(now / b) * b;
    const win = isNum(windowSec) && windowSec > 0 ? windowSec : 144 * b;
    const buckets = Math.max(2, Math.ceil(win / b));
    const k = Math.ceil(buckets / 240);
    const n = Math.ceil(buckets / k);
    const bins = Array.from({ length: n }, () => ({ req: 0, err: 0, p50: 0, p50n: 0, p99: null, tt: 0, ttn: 0 }));
    for (const p of arr(s.points)) {
      if (!p || !isNum(p.t)) continue;
      let i = n - 1 - Math.floor((end - p.t) / b / k);
      if (i >= n) i = n - 1;
      if (i < 0) continue;
      const bin = bins[i];
      const req = isNum(p.requests) ? p.requests : 0;
      bin.req += req;
      bin.err += isNum(p.errors) ? p.errors : 0;
      const l = obj(p.latency_ms);
      const w = Math.max(req, 1);
      if (isNum(l.p50)) {
        bin.p50 += l.p50 * w;
        bin.p50n += w;
      }
      if (isNum(l.p99)) bin.p99 = Math.max(bin.p99 || 0, l.p99);
      const t = obj(p.ttft_ms);
      if (isNum(t.p50)) {
        bin.tt += t.p50 * w;
        bin.ttn += w;
      }
    }
    // The last bin is still filling: its rate is over the time it has had so far.
    const lastSpan = (k - 1) * b + Math.min(b, Math.max(1, now - end));
    return {
      b, k, n, span: n * k * b,
      rps: bins.map((x, i) => x.req / (i === n - 1 ? lastSpan : k * b)),
      err: bins.map((x) => (x.req ? (100 * x.err) / x.req : null)),
      p50: bins.map((x) => (x.p50n ? x.p50 / x.p50n : null)),
      p99: bins.map((x) => x.p99),
      ttft: bins.map((x) => (x.ttn ? x.tt / x.ttn : null)),
      recent: bins[n - 1].req + (n > 1 ? bins[n - 2].req : 0),
      recentSpan: lastSpan + (n > 1 ? k * b : 0),
    };
  }

  const lastOf = (vs) => {
    for (let i = vs.length - 1; i >= 0; i--) if (isNum(vs[i])) return vs[i];
    return null;
  };
  const peakOf = (vs) => vs.reduce((m, v) => (isNum(v) && v > m ? v : m), 0);

  // ---- traffic ---------------------------------------------------------------------

  const statCols = () => [
    { t: (r) => str(r.name) },
    { f: 'requests', t: (r) => int(r.requests), num: true },
    { f: 'errors', t: (r) => int(r.errors), num: true },
    { f: 'error_rate', t: (r) => pct(r.error_rate), num: true },
    { f: 'p50', t: (r) => ms(obj(r.latency_ms).p50), num: true },
    { f: 'p99', t: (r) => ms(obj(r.latency_ms).p99), num: true },
    { f: 'ttft', t: (r) => ms(obj(r.ttft_ms).p50), num: true },
    { f: 'tokens', t: (r) => tokens(r.tokens), num: true },
  ];
  const TRAFFIC_COLS = statCols();

  function renderTraffic(s, now) {
    const total = isNum(s.total_requests) ? s.total_requests : 0;
    const errors = isNum(s.total_errors) ? s.total_errors : 0;
    setText('traffic-window', `Over the last ${duration(s.window_seconds)} · refreshed every 2 s`);
    setText('traffic-requests', int(s.total_requests));
    setText('traffic-error-rate', total ? pct(errors / total) : '—');
    setText('traffic-p50', ms(obj(s.latency_ms).p50));
    setText('traffic-p99', ms(obj(s.latency_ms).p99));
    setText('traffic-ttft', ms(obj(s.ttft_ms).p50));
    if (s.series && typeof s.series === 'object') {
      const d = binSeries(s.series, now, s.window_seconds);
      const rps = d.recent / d.recentSpan;
      setText('traffic-rps', rps >= 10 ? rps.toFixed(0) : rps.toFixed(2));
      setText('traffic-rps-span', `(last ${duration(d.recentSpan)})`);
      charts.requests.draw([d.rps], d.span, `latest ${lastOf(d.rps).toFixed(2)}/s, peak ${peakOf(d.rps).toFixed(2)}/s`, total > 0);
      const e = lastOf(d.err);
      charts.errors.draw([d.err], d.span, `latest ${e == null ? 'none' : pct(e / 100)}, peak ${pct(peakOf(d.err) / 100)}`, total > 0);
      const [a, b, c] = [lastOf(d.p50), lastOf(d.p99), lastOf(d.ttft)];
      charts.latency.draw([d.p50, d.p99, d.ttft], d.span, `latest p50 ${ms(a)}, p99 ${ms(b)}, first token p50 ${ms(c)}`, total > 0);
    } else {
      const span = Math.min(isNum(s.uptime) ? s.uptime : 0, isNum(s.window_seconds) ? s.window_seconds : Infinity);
      setText('traffic-rps', span > 0 ? (total / span).toFixed(2) : '—');
      setText('traffic-rps-span', '(average)');
    }
    syncRows(tbody('traffic-models'), 'data-model', arr(s.models), (r) => r.name, TRAFFIC_COLS, 'No requests in this window.');
    syncRows(tbody('traffic-backends'), 'data-backend', arr(s.backends), (r) => r.name, TRAFFIC_COLS, 'No requests in this window.');
  }

  // ---- usage -----------------------------------------------------------------------

  const KEY_COLS = [
    { t: (r) => str(r.name) },
    { f: 'requests', t: (r) => int(r.requests), num: true },
    { f: 'errors', t: (r) => int(r.errors), num: true },
    { f: 'input_tokens', t: (r) => int(obj(r.tokens).input), num: true },
    { f: 'output_tokens', t: (r) => int(obj(r.tokens).output), num: true },
    { f: 'p50', t: (r) => ms(obj(r.latency_ms).p50), num: true },
  ];
  const USAGE_MODEL_COLS = [
    { t: (r) => str(r.name) },
    { f: 'requests', t: (r) => int(r.requests), num: true },
    { f: 'errors', t: (r) => int(r.errors), num: true },
    { f: 'input_tokens', t: (r) => int(obj(r.tokens).input), num: true },
    { f: 'output_tokens', t: (r) => int(obj(r.tokens).output), num: true },
    { f: 'estimated_cost', t: (r) => money(r.estimated_cost), num: true },
  ];

  function renderUsage(s) {
    setText('usage-window', `Over the last ${duration(s.window_seconds)} · refreshed every 2 s`);
    setText('usage-total-cost', money(s.estimated_cost));
    setText('usage-requests', int(s.total_requests));
    setText('usage-tokens-in', int(obj(s.tokens).input));
    setText('usage-tokens-out', int(obj(s.tokens).output));
    const note = $('usage-note');
    const off = s.token_tracking === false;
    note.hidden = !off;
    setText('usage-note', off ? 'Token tracking is off (admin.stats.token_tracking): token counts and costs stay at zero.' : '');
    syncRows(tbody('usage-keys'), 'data-key', arr(s.keys), (r) => r.name, KEY_COLS, 'No requests with an API key in this window.');
    syncRows(tbody('usage-models'), 'data-model', arr(s.models), (r) => r.name, USAGE_MODEL_COLS, 'No requests in this window.');
  }

  // ---- models ----------------------------------------------------------------------

  function backendText(x) {
    if (typeof x === 'string') {
      const b = lastBackends.find((y) => y && y.name === x);
      return b && b.type ? `${x} (${b.type})` : x;
    }
    const o = obj(x);
    return o.type ? `${str(o.name)} (${o.type})` : str(o.name || o.id);
  }

  function details(md) {
    const out = [];
    for (const [k, v] of Object.entries(md)) {
      if (k === 'display_name' || k === 'pricing' || v == null || v === '') continue;
      if (k === 'limits') {
        for (const [lk, lv] of Object.entries(obj(v))) if (lk !== 'context_window' && lv != null) out.push(`${lk}: ${typeof lv === 'object' ? JSON.stringify(lv) : lv}`);
        continue;
      }
      const text = Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v);
      out.push(`${k}: ${text}`);
    }
    return out.join(' · ') || '—';
  }

  function renderModels(body) {
    const aliases = obj(body.aliases);
    const byTarget = new Map();
    for (const [a, t] of Object.entries(aliases)) {
      const k = str(t);
      if (!byTarget.has(k)) byTarget.set(k, []);
      byTarget.get(k).push(a);
    }
    const cols = [
      { t: (m) => str(m.id) },
      { f: 'display_name', t: (m) => dash(obj(m.metadata).display_name) },
      { f: 'backends', t: (m) => (arr(m.backends).length ? arr(m.backends).map(backendText).join(', ') : '—'), c: () => 'wrap' },
      { f: 'owned_by', t: (m) => dash(m.owned_by) },
      { f: 'context_window', t: (m) => int(obj(obj(m.metadata).limits).context_window), num: true },
      { f: 'input_price', t: (m) => price(obj(obj(m.metadata).pricing).input_tokens), num: true },
      { f: 'output_price', t: (m) => price(obj(obj(m.metadata).pricing).output_tokens), num: true },
      { f: 'aliases', t: (m) => (byTarget.get(str(m.id)) || []).join(', ') || '—', c: () => 'wrap' },
      { f: 'details', t: (m) => details(obj(m.metadata)), c: () => 'wrap' },
    ];
    const models = arr(body.models);
    syncRows(tbody('models-table'), 'data-model', models, (m) => m.id, cols, 'No routable models.');
    const pairs = Object.entries(aliases).map(([alias, target]) => ({ alias, target: str(target) }));
    syncRows(tbody('models-aliases'), 'data-alias', pairs, (p) => p.alias, [{ t: (p) => p.alias }, { f: 'target', t: (p) => p.target }], 'No aliases.');
    setText('models-summary', `${models.length} model${models.length === 1 ? '' : 's'}, ${pairs.length} alias${pairs.length === 1 ? '' : 'es'}`);
  }

  // ---- config ----------------------------------------------------------------------

  function reloadText(r) {
    const o = obj(r);
    const parts = [o.ok ? 'ok' : 'failed'];
    if (o.at) parts.push(`at ${o.at}`);
    let s = parts.join(' ');
    if (!o.ok && o.error) s += `: ${o.error}`;
    const restart = arr(o.restart_required);
    if (restart.length) s += ` · needs a restart to apply: ${restart.map(str).join(', ')}`;
    return s;
  }

  function renderConfig(body) {
    setText('config-file', body.file ? str(body.file) : '(not started from a file)');
    setText('config-hot-reload', body.hot_reload === true ? 'on' : body.hot_reload === false ? 'off' : '—');
    setText('config-last-reload', body.last_reload ? reloadText(body.last_reload) : 'none since start');
    let text;
    try {
      // What the router runs with (defaults filled in); the file as written when older
      // routers give only that.
      const shown = body.effective !== undefined ? body.effective : body.config;
      text = JSON.stringify(shown === undefined ? null : shown, null, 2);
    } catch {
      text = '(could not show the configuration)';
    }
    setText('config-text', text);
  }

  async function reloadConfig() {
    const button = $('config-reload');
    const out = $('config-reload-result');
    button.disabled = true;
    out.className = 'result';
    out.textContent = 'Reloading…';
    try {
      const r = await api('/admin/config/reload', { method: 'POST' });
      const body = obj(await readJson(r));
      const ok = r.ok && body.ok !== false;
      if (ok) {
        out.textContent = 'Reloaded: ' + reloadText(Object.assign({ ok: true }, body));
      } else {
        out.textContent = `Reload failed (HTTP ${r.status}): ${body.error ? (typeof body.error === 'string' ? body.error : errorText(body, r)) : 'no reason given'}`;
      }
      out.className = 'result ' + (ok ? 'good' : 'bad');
      if (view === 'config') restart();
    } catch (e) {
      if (e instanceof AuthError) return;
      out.textContent = `Reload failed: ${e && e.message ? e.message : 'network error'}`;
      out.className = 'result bad';
    } finally {
      button.disabled = false;
    }
  }

  // ---- playground ------------------------------------------------------------------

  function fillModelSelect(body) {
    const sel = $('pg-model');
    const keep = sel.value;
    const ids = arr(body.models).map((m) => str(m && m.id)).filter(Boolean);
    const aliases = Object.keys(obj(body.aliases)).filter((a) => !ids.includes(a));
    const frag = document.createDocumentFragment();
    const add = (parent, v) => {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = v;
      parent.append(o);
    };
    const g1 = document.createElement('optgroup');
    g1.label = 'Models';
    ids.forEach((v) => add(g1, v));
    if (ids.length) frag.append(g1);
    if (aliases.length) {
      const g2 = document.createElement('optgroup');
      g2.label = 'Aliases';
      aliases.forEach((v) => add(g2, v));
      frag.append(g2);
    }
    const same = [...sel.options].map((o) => o.value).join('\n') === ids.concat(aliases).join('\n');
    if (!same) {
      sel.replaceChildren(frag);
      if (keep && [...sel.options].some((o) => o.value === keep)) sel.value = keep;
    }
    if (!sel.options.length) setText('pg-status', 'No routable models.');
  }

  async function send(ev) {
    if (ev) ev.preventDefault();
    if (pgAbort) return;
    const model = $('pg-model').value;
    const prompt = $('pg-prompt').value;
    const status = $('pg-status');
    if (!model) return void (status.textContent = 'Choose a model first.');
    if (!prompt.trim()) return void (status.textContent = 'Write a prompt first.');
    const out = $('pg-output');
    out.replaceChildren();
    out.classList.remove('bad');
    setText('pg-backend', '—');
    status.textContent = 'streaming…';
    const headers = { 'Content-Type': 'application/json', Accept: 'text/event-stream' };
    const key = $('pg-api-key').value.trim();
    if (key) headers.Authorization = 'Bearer ' + key;
    const ctrl = (pgAbort = new AbortController());
    $('pg-send').disabled = true;
    $('pg-stop').disabled = false;
    let error = null;
    try {
      const r = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers,
        body: JSON.stringify({ model, messages: [{ role: 'user', content: prompt }], stream: true }),
        signal: ctrl.signal,
        cache: 'no-store',
        credentials: 'omit',
      });
      const backend = r.headers.get('x-continuum-backend');
      const upstream = r.headers.get('x-continuum-model');
      setText('pg-backend', backend ? (upstream ? `${backend} (model ${upstream})` : backend) : upstream ? `(model ${upstream})` : '(not reported)');
      const type = r.headers.get('content-type') || '';
      if (!r.ok || !r.body || !type.includes('text/event-stream')) {
        const body = await readJson(r);
        if (!r.ok) error = `HTTP ${r.status}: ${errorText(body, r)}`;
        else {
          const c = obj(obj(arr(obj(body).choices)[0]).message).content;
          if (typeof c === 'string') out.append(c);
          else error = 'the answer had no text';
        }
      } else {
        error = await readStream(r.body, out);
      }
      status.textContent = error ? `error: ${error}` : 'done';
    } catch (e) {
      status.textContent = e && e.name === 'AbortError' ? 'stopped' : `error: ${e && e.message ? e.message : 'network error'}`;
    } finally {
      pgAbort = null;
      $('pg-send').disabled = false;
      $('pg-stop').disabled = true;
    }
  }

  // Reads an SSE stream of chat.completion.chunk events into `out`; returns the error the
  // stream carried, if any.
  async function readStream(stream, out) {
    const reader = stream.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let error = null;
    const line = (l) => {
      if (!l.startsWith('data:')) return;
      const data = l.slice(5).trim();
      if (!data || data === '[DONE]') return;
      let j;
      try {
        j = JSON.parse(data);
      } catch {
        return;
      }
      if (!j || typeof j !== 'object') return;
      if (j.error) {
        error = typeof j.error === 'string' ? j.error : str(j.error.message) || JSON.stringify(j.error);
        return;
      }
      const c = obj(obj(arr(j.choices)[0]).delta).content;
      if (typeof c === 'string' && c) out.append(c);
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        line(buf.slice(0, i).replace(/\r$/, ''));
        buf = buf.slice(i + 1);
      }
    }
    buf += dec.decode();
    if (buf) line(buf.replace(/\r$/, ''));
    return error;
  }

  // ---- wiring ----------------------------------------------------------------------

  function init() {
    initCharts();
    $('login').addEventListener('submit', onLogin);
    $('sign-out').addEventListener('click', () => toLogin('Signed out.'));
    $('config-reload').addEventListener('click', reloadConfig);
    $('pg-form').addEventListener('submit', send);
    $('pg-stop').addEventListener('click', () => pgAbort && pgAbort.abort());
    $('pg-prompt').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        send();
      }
    });
    window.addEventListener('hashchange', () => route(true));
    start();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
