// The operator's dashboard: a client of the admin API, nothing more.
//
// Everything a connector or a sender controls (names, descriptions,
// payloads, errors, logs) reaches the page as text nodes: `h` never parses
// HTML, and the Content-Security-Policy forbids inline script anyway.
'use strict';

const TOKEN_KEY = 'triggerhost.admin-token';
const main = document.getElementById('main');
const notice = document.getElementById('notice');
let refreshTimer = null;

// ---- DOM ---------------------------------------------------------------

/** An element; strings and numbers among `children` become text nodes. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function show(...children) {
  main.replaceChildren();
  append(main, children);
}

function say(text, ok) {
  notice.textContent = text;
  notice.className = ok ? 'ok' : '';
  notice.hidden = !text;
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : '—';
}

function badge(text, kind) {
  return h('span', { class: 'badge ' + (kind || '') }, text);
}

function statusBadge(status) {
  const kind = { enabled: 'good', connected: 'good', disabled: '', error: 'bad', 'needs-reauth': 'bad' }[status];
  return badge(status, kind === undefined ? 'warn' : kind);
}

/** A polyline of `values` (events per minute, oldest first). */
function sparkline(values, large) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', large ? 'sparkline large' : 'sparkline');
  svg.setAttribute('viewBox', '0 0 120 24');
  svg.setAttribute('preserveAspectRatio', 'none');
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? 120 / (values.length - 1) : 120;
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', values.map((v, i) => `${(i * step).toFixed(1)},${(23 - (v / max) * 22).toFixed(1)}`).join(' '));
  svg.append(line);
  const title = document.createElementNS(ns, 'title');
  title.textContent = `events per minute, last ${values.length} minutes (peak ${max})`;
  svg.append(title);
  return svg;
}

// ---- API ---------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.details = error.details;
  }

  /** The message with what the server added: missing grants, breakages. */
  describe() {
    let text = `${this.code || 'error'}: ${this.message}`;
    if (this.details !== undefined) text += '\n' + JSON.stringify(this.details, null, 2);
    return text;
  }
}

async function api(method, path, body, contentType) {
  const headers = { Authorization: 'Bearer ' + sessionStorage.getItem(TOKEN_KEY) };
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = contentType || 'application/json';
    payload = contentType ? body : JSON.stringify(body);
  }
  const response = await fetch('/api/v1' + path, { method, headers, body: payload });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    location.hash = '#/login';
    throw new ApiError(401, { error: { code: 'unauthorized', message: 'sign in again' } });
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Runs `action`; a failure is shown in the notice, never thrown. */
async function attempt(action) {
  try {
    return await action();
  } catch (error) {
    say(error instanceof ApiError ? error.describe() : String(error));
    return undefined;
  }
}

// ---- Routing -------------------------------------------------------------

const routes = [
  [/^#\/login$/, loginPage],
  [/^#\/plugins$/, pluginsPage],
  [/^#\/connections$/, connectionsPage],
  [/^#\/deliveries$/, deliveriesPage],
  [/^#\/triggers$/, triggersPage],
  [/^#\/triggers\/([^/]+)(?:\/(\w+))?$/, triggerPage],
];

async function route() {
  clearInterval(refreshTimer);
  say('');
  const signedIn = !!sessionStorage.getItem(TOKEN_KEY);
  const hash = signedIn ? (location.hash && location.hash !== '#/login' ? location.hash : '#/triggers') : '#/login';
  if (hash !== location.hash) {
    location.hash = hash;
    return;
  }
  document.getElementById('nav').hidden = !signedIn;
  for (const link of document.querySelectorAll('#nav a')) {
    link.classList.toggle('current', hash.startsWith(link.getAttribute('href')));
  }
  for (const [pattern, page] of routes) {
    const match = hash.match(pattern);
    if (match) {
      await attempt(() => page(...match.slice(1).map((part) => part && decodeURIComponent(part))));
      return;
    }
  }
  show(h('p', {}, 'No such page.'));
}

window.addEventListener('hashchange', route);
document.getElementById('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = '#/login';
});

// ---- Pages ---------------------------------------------------------------

function loginPage() {
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', placeholder: 'admin token' });
  const form = h('form', { class: 'card login', id: 'login' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'The admin token: --admin-token, or the one the server generated in its data dir. It stays in this tab only.'),
    input, h('p', {}, h('button', { class: 'primary', type: 'submit', id: 'sign-in' }, 'Sign in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      await api('GET', '/plugins');
      location.hash = '#/triggers';
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      location.hash = '#/login';
      say('That token was refused.');
    }
  });
  show(form);
  input.focus();
}

async function pluginsPage() {
  const { plugins } = await api('GET', '/plugins');
  const file = h('input', { type: 'file', id: 'upload-file', accept: '.wasm,application/wasm' });
  const preview = h('div', { id: 'upload-preview' });
  const zone = h('div', { class: 'dropzone', id: 'dropzone' }, 'Drop a .wasm component here, or ', file);
  file.addEventListener('change', () => file.files[0] && inspectUpload(file.files[0], preview));
  zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    const dropped = event.dataTransfer.files[0];
    if (dropped) inspectUpload(dropped, preview);
  });
  show(h('h1', {}, 'Plugins'),
    h('section', { class: 'card' }, h('h3', {}, 'Upload a connector'), zone, preview),
    plugins.length ? plugins.map(pluginCard) : h('p', { class: 'muted' }, 'No plugins yet.'));
}

/** Checks the file on the server (nothing stored) and shows its manifest before the upload. */
async function inspectUpload(file, preview) {
  const bytes = await file.arrayBuffer();
  preview.replaceChildren(h('p', { class: 'muted' }, `Checking ${file.name}…`));
  const inspected = await attempt(() => api('POST', '/plugins?dry_run=true', bytes, 'application/wasm'));
  if (!inspected) {
    preview.replaceChildren();
    return;
  }
  const m = inspected.manifest;
  const confirm = h('button', { class: 'primary', id: 'upload-confirm', disabled: inspected.registered !== 'new' }, 'Upload');
  confirm.addEventListener('click', async () => {
    const registered = await attempt(() => api('POST', '/plugins', bytes, 'application/wasm'));
    if (registered) {
      await pluginsPage();
      say(`Uploaded ${registered.name}@${registered.version}${registered.active ? ' (active)' : ''}.`, true);
    }
  });
  const cancel = h('button', { onclick: () => preview.replaceChildren() }, 'Cancel');
  const registeredNote = { new: '', same: 'This exact version is already registered.', conflict: 'This version is registered with other bytes: give it a new version.' }[inspected.registered];
  preview.replaceChildren(h('div', { id: 'manifest' },
    h('h3', {}, `${m.display_name || m.name} `, h('span', { class: 'mono', id: 'manifest-name' }, `${m.name}@${m.version}`)),
    h('p', {}, m.description),
    h('p', { class: 'muted mono' }, `${inspected.digest} · ${inspected.size_bytes} bytes · contract ${inspected.contract}`),
    h('table', {}, h('tr', {}, h('th', {}, 'Trigger'), h('th', {}, 'Kind'), h('th', {}, 'Description')),
      m.triggers.map((t) => h('tr', {}, h('td', { class: 'mono' }, t.name), h('td', {}, t.strategy), h('td', {}, t.description)))),
    h('p', {}, 'Asks for: ', requestText(m.capabilities)),
    registeredNote && h('p', { class: 'error-text' }, registeredNote),
    h('div', { class: 'row' }, confirm, cancel)));
}

function requestText(request) {
  const parts = [];
  if (request.outbound_hosts && request.outbound_hosts.length) parts.push('outbound HTTP to ' + request.outbound_hosts.join(', '));
  if (request.key_value) parts.push('key-value storage');
  return parts.length ? parts.join('; ') : 'nothing';
}

function pluginCard(plugin) {
  const rows = plugin.versions.map((v) => {
    const missing = (v.granted && v.granted.missing) || [];
    const label = v.active ? null : v.version === plugin.previous_version ? 'Roll back' : 'Activate';
    const button = label && h('button', {
      'data-test': `activate-${plugin.name}-${v.version}`,
      onclick: () => activate(plugin.name, v.version),
    }, label);
    return h('tr', {},
      h('td', { class: 'mono' }, v.version, ' ', v.active ? badge('active', 'good') : null),
      h('td', { class: 'mono', title: v.digest }, v.digest.slice(0, 19) + '…'),
      h('td', {}, (v.triggers || []).map((t) => t.name).join(', ')),
      h('td', {}, requestText(v.requested || {})),
      h('td', {}, missing.length ? h('span', { class: 'error-text' }, 'missing: ' + missing.join(', ')) : 'all granted'),
      h('td', {}, when(v.created_at_ms)),
      h('td', {}, button));
  });
  return h('section', { class: 'card', 'data-plugin': plugin.name },
    h('h3', {}, plugin.name, ' ', h('span', { class: 'muted mono' }, 'active ' + plugin.active_version)),
    h('p', { class: 'muted' }, 'Allowed: ', requestText({ outbound_hosts: plugin.allowed.outbound_hosts, key_value: plugin.allowed.key_value })),
    h('table', {}, h('tr', {}, ['Version', 'Digest', 'Triggers', 'Requested', 'Granted', 'Uploaded', ''].map((c) => h('th', {}, c))), rows));
}

async function activate(name, version) {
  const result = await attempt(() => api('POST', `/plugins/${encodeURIComponent(name)}/activate`, { version }));
  if (result) {
    await pluginsPage();
    const disabled = result.disabled_triggers || [];
    say(`${name}@${version} is active.` + (disabled.length ? ` Disabled: ${disabled.join(', ')}` : ''), true);
  }
}

async function triggersPage() {
  const [{ triggers }, { plugins }] = await Promise.all([api('GET', '/triggers'), api('GET', '/plugins')]);
  const stats = await Promise.all(triggers.slice(0, 100).map((t) => api('GET', `/triggers/${t.id}/stats`).catch(() => null)));
  const rows = triggers.map((t, i) => {
    const health = t.health;
    return h('tr', { class: 'clickable', 'data-trigger': t.id, onclick: () => { location.hash = `#/triggers/${t.id}`; } },
      h('td', { class: 'mono' }, h('a', { href: `#/triggers/${t.id}` }, t.id)),
      h('td', {}, `${t.plugin} / ${t.trigger}`),
      h('td', {}, statusBadge(t.status)),
      h('td', {}, health ? badge(health.healthy ? 'healthy' : 'unhealthy', health.healthy ? 'good' : 'bad') : t.last_error ? h('span', { class: 'error-text' }, t.last_error) : '—'),
      h('td', {}, health ? when(health.last_success_at_ms) : '—'),
      h('td', {}, health && health.next_poll_at_ms ? when(health.next_poll_at_ms) : t.renewal ? 'renew ' + when(t.renewal.renew_at_ms) : '—'),
      h('td', { class: 'nowrap' }, stats[i] ? [sparkline(stats[i].events_per_minute), ' ', stats[i].accepted] : '—'));
  });
  show(h('h1', {}, 'Triggers'),
    h('table', { id: 'triggers' }, h('tr', {}, ['Id', 'Plugin / trigger', 'Status', 'Health', 'Last success', 'Next poll / renewal', 'Events (1 h)'].map((c) => h('th', {}, c))), rows),
    createTriggerForm(plugins));
}

function createTriggerForm(plugins) {
  const plugin = h('select', { id: 'new-plugin' }, plugins.map((p) => h('option', { value: p.name }, p.name)));
  const trigger = h('select', { id: 'new-trigger' });
  const fillTriggers = () => {
    const chosen = plugins.find((p) => p.name === plugin.value);
    const active = chosen && chosen.versions.find((v) => v.active);
    trigger.replaceChildren(...((active && active.triggers) || []).map((t) => h('option', { value: t.name }, `${t.name} (${t.strategy})`)));
  };
  plugin.addEventListener('change', fillTriggers);
  fillTriggers();
  const config = h('textarea', { id: 'new-config' }, '{}');
  const secret = h('input', { id: 'new-secret', type: 'password', autocomplete: 'off', placeholder: 'signing secret (optional)' });
  const interval = h('input', { id: 'new-interval', type: 'number', min: 1, placeholder: 'poll interval, s (polling triggers)' });
  const enable = h('input', { id: 'new-enable', type: 'checkbox', checked: true });
  const form = h('form', { class: 'card', id: 'create-trigger' },
    h('h3', {}, 'New trigger'),
    h('div', { class: 'row' }, h('div', {}, h('label', {}, 'Plugin'), plugin), h('div', {}, h('label', {}, 'Trigger'), trigger)),
    h('label', {}, 'Config (JSON)'), config,
    h('div', { class: 'row' }, h('div', {}, h('label', {}, 'Secret'), secret), h('div', {}, h('label', {}, 'Poll interval'), interval)),
    h('label', {}, enable, ' Enable now'),
    h('p', {}, h('button', { class: 'primary', type: 'submit' }, 'Create')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    let parsed;
    try {
      parsed = JSON.parse(config.value || '{}');
    } catch (error) {
      say('Config is not JSON: ' + error.message);
      return;
    }
    const body = { plugin: plugin.value, trigger: trigger.value, config: parsed };
    if (secret.value) body.secret = secret.value;
    if (interval.value) body.poll_interval_s = Number(interval.value);
    const created = await attempt(() => api('POST', '/triggers', body));
    if (!created) return;
    if (enable.checked && !(await attempt(() => api('POST', `/triggers/${created.id}/enable`)))) return;
    location.hash = `#/triggers/${created.id}`;
  });
  return form;
}

const TABS = ['events', 'failures', 'logs', 'kv', 'destinations'];

async function triggerPage(id, tab) {
  tab = TABS.includes(tab) ? tab : 'events';
  const trigger = await api('GET', `/triggers/${id}`);
  const toggle = trigger.status === 'disabled'
    ? h('button', { id: 'enable', class: 'primary', onclick: () => lifecycle(id, 'enable') }, 'Enable')
    : h('button', { id: 'disable', onclick: () => lifecycle(id, 'disable') }, 'Disable');
  const body = h('div', { id: 'tab-body' });
  const tabs = h('div', { class: 'tabs' }, TABS.map((name) =>
    h('button', { class: name === tab ? 'current' : '', 'data-tab': name, onclick: () => { location.hash = `#/triggers/${id}/${name}`; } }, name)));
  show(h('h1', {}, `${trigger.plugin} / ${trigger.trigger} `, h('span', { class: 'mono muted' }, id), ' ', statusBadge(trigger.status)),
    h('div', { class: 'row' }, toggle, h('span', { class: 'muted' }, 'Webhook URL: '), h('code', { id: 'webhook-url' }, trigger.webhook_url)),
    trigger.last_error && h('p', { class: 'error-text' }, trigger.last_error),
    await triggerSummary(id), tabs, body);
  const refreshTab = await { events: eventsTab, failures: failuresTab, logs: logsTab, kv: kvTab, destinations: destinationsTab }[tab](id, body);
  // Health, stats and new events follow what happens, without a reload.
  refreshTimer = setInterval(() => attempt(async () => {
    const summary = await triggerSummary(id);
    const shown = document.getElementById('summary');
    if (shown) shown.replaceWith(summary);
    if (refreshTab) await refreshTab();
  }), 2000);
}

/** A trigger's health and stats, with its events per minute. */
async function triggerSummary(id) {
  const [stats, health] = await Promise.all([api('GET', `/triggers/${id}/stats`), api('GET', `/triggers/${id}/health`)]);
  const failure = health.last_failure;
  const stat = (label, value) => h('div', { class: 'stat' }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
  return h('div', { id: 'summary' },
    h('h2', {}, 'Health'),
    h('div', { class: 'grid', id: 'health' },
      stat('now', health.healthy ? badge('healthy', 'good') : badge('unhealthy', 'bad')),
      stat(health.polling ? 'last successful poll' : 'last event', when(health.polling ? health.last_success_at_ms : health.last_event_at_ms)),
      stat('last failure', failure ? [badge(failure.code, 'bad'), ' ', when(failure.at_ms)] : '—'),
      health.polling && stat('consecutive failures', health.consecutive_failures),
      health.polling && stat('next poll', when(health.next_poll_at_ms)),
      health.renewal && stat('renewal due', when(health.renewal.renew_at_ms)),
      health.sync_error && stat('registration', health.sync_error),
      health.connection && stat('connection', statusBadge(health.connection.status))),
    h('h2', {}, 'Stats'),
    h('div', { class: 'grid', id: 'stats' },
      stat('received', stats.received), stat('accepted', stats.accepted), stat('rejected', stats.rejected),
      stat('duplicates', stats.duplicates), stat('errors', stats.errors), stat('fuel used', stats.fuel_used)),
    h('p', {}, 'Events per minute, last hour: ', sparkline(stats.events_per_minute, true)));
}

async function lifecycle(id, verb) {
  if (await attempt(() => api('POST', `/triggers/${id}/${verb}`))) await route();
}

/** Newest events first, a page at a time; a row opens its payload. New events appear as they are stored. */
async function eventsTab(id, body) {
  const table = h('table', { id: 'events' }, h('tr', {}, ['Received', 'Type', 'Id', 'Dedupe key', 'Version'].map((c) => h('th', {}, c))));
  const viewer = h('pre', { id: 'payload', hidden: true });
  const more = h('button', { id: 'older', hidden: true }, 'Older');
  let cursor = null;
  let newest = null;
  const row = (event) => h('tr', {
    class: 'clickable', 'data-event': event.id,
    onclick: (click) => {
      for (const selected of table.querySelectorAll('tr.selected')) selected.classList.remove('selected');
      click.currentTarget.classList.add('selected');
      viewer.textContent = JSON.stringify(event.payload, null, 2);
      viewer.hidden = false;
    },
  }, h('td', {}, when(event.received_at_ms)), h('td', { class: 'mono' }, event.type), h('td', { class: 'mono' }, event.id),
  h('td', { class: 'mono' }, event.dedupe_key || '—'), h('td', { class: 'mono' }, event.plugin_version));
  const load = async () => {
    const page = await api('GET', `/triggers/${id}/events?limit=25${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`);
    if (newest === null && page.events.length) newest = page.events[0].id;
    append(table, page.events.map(row));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener('click', () => attempt(load));
  body.replaceChildren(table, more, viewer);
  await load();
  // New events go on top as they arrive.
  return async () => {
    const page = await api('GET', `/triggers/${id}/events?limit=25`);
    const fresh = [];
    for (const event of page.events) {
      if (event.id === newest) break;
      fresh.push(event);
    }
    if (!fresh.length) return;
    newest = fresh[0].id;
    table.rows[0].after(...fresh.map(row));
  };
}

async function failuresTab(id, body) {
  const { failures } = await api('GET', `/triggers/${id}/failures?limit=50`);
  body.replaceChildren(failures.length
    ? h('table', { id: 'failures' }, h('tr', {}, ['When', 'Call', 'Error', 'Message', 'Connector log'].map((c) => h('th', {}, c))),
      failures.map((f) => h('tr', { 'data-code': f.code },
        h('td', {}, when(f.at_ms)), h('td', { class: 'mono' }, f.export), h('td', {}, badge(f.code, 'bad')),
        h('td', {}, f.message), h('td', {}, f.log ? h('pre', {}, f.log) : '—'))))
    : h('p', { class: 'muted' }, 'No failures recorded.'));
}

/** What the connector wrote on its newest calls, newest first; new calls appear on top. */
async function logsTab(id, body) {
  const list = h('div', { id: 'logs' });
  const entry = (log) => h('div', { class: 'log', 'data-seq': log.seq },
    h('div', { class: 'row muted' }, when(log.at_ms), h('span', { class: 'mono' }, log.export), badge(log.outcome, /^(accepted|polled|responded|rejected)$/.test(log.outcome) ? '' : 'bad'),
      h('span', { class: 'mono' }, log.plugin_version),
      log.skipped_calls > 0 && `${log.skipped_calls} calls before not kept (over the rate)`,
      log.dropped_bytes > 0 && `${log.dropped_bytes} bytes past the cap dropped`),
    h('pre', {}, log.text));
  const { logs } = await api('GET', `/triggers/${id}/logs?limit=50`);
  let newest = logs.length ? logs[0].seq : 0;
  append(list, logs.map(entry));
  body.replaceChildren(logs.length ? list : h('p', { class: 'muted', id: 'no-logs' }, 'Nothing logged yet.'), logs.length ? null : list);
  return async () => {
    const fresh = await api('GET', `/triggers/${id}/logs?after=${newest}&limit=50`);
    if (!fresh.logs.length) return;
    const empty = document.getElementById('no-logs');
    if (empty) empty.remove();
    newest = fresh.logs[fresh.logs.length - 1].seq;
    list.prepend(...fresh.logs.reverse().map(entry));
  };
}

async function kvTab(id, body) {
  const { entries } = await api('GET', `/triggers/${id}/kv`);
  body.replaceChildren(entries.length
    ? h('table', { id: 'kv' }, h('tr', {}, h('th', {}, 'Key'), h('th', {}, 'Bytes')),
      entries.map((e) => h('tr', {}, h('td', { class: 'mono' }, e.key), h('td', {}, e.size_bytes))))
    : h('p', { class: 'muted' }, 'No keys.'));
}

async function destinationsTab(id, body) {
  const [{ destinations }, { deliveries }] = await Promise.all([
    api('GET', `/triggers/${id}/destinations`), api('GET', `/deliveries?trigger=${encodeURIComponent(id)}&limit=50`)]);
  body.replaceChildren(
    destinations.length
      ? h('table', { id: 'destinations' }, h('tr', {}, ['Id', 'URL', 'Event types', 'Status', 'Last error'].map((c) => h('th', {}, c))),
        destinations.map((d) => h('tr', {}, h('td', { class: 'mono' }, d.id), h('td', { class: 'mono' }, d.url),
          h('td', {}, (d.event_types || []).join(', ') || 'all'), h('td', {}, statusBadge(d.status), ' ', d.disabled_reason || ''),
          h('td', {}, d.last_error || '—'))))
      : h('p', { class: 'muted' }, 'No destinations: events are pulled through the events API.'),
    h('h2', {}, 'Deliveries'),
    deliveriesTable(deliveries));
}

function deliveriesTable(deliveries) {
  if (!deliveries.length) return h('p', { class: 'muted' }, 'No deliveries.');
  const attempts = h('div', { id: 'attempts' });
  return h('div', {},
    h('table', { id: 'deliveries' }, h('tr', {}, ['Job', 'Event', 'Destination', 'Status', 'Attempts', 'Last error', ''].map((c) => h('th', {}, c))),
      deliveries.map((d) => h('tr', {},
        h('td', { class: 'mono' }, d.id), h('td', { class: 'mono' }, d.event_id), h('td', { class: 'mono' }, d.destination_id),
        h('td', {}, badge(d.status, { delivered: 'good', dead: 'bad' }[d.status] || 'warn')), h('td', {}, d.attempts),
        h('td', {}, d.last_error || '—'),
        h('td', {}, h('button', { onclick: () => showAttempts(d.id, attempts) }, 'Attempts'),
          d.status === 'dead' ? h('button', { onclick: () => retry(d.id) }, 'Retry') : null)))),
    attempts);
}

async function showAttempts(id, into) {
  const { attempts } = await api('GET', `/deliveries/${id}/attempts`);
  into.replaceChildren(h('h3', {}, 'Attempts of ', h('span', { class: 'mono' }, id)),
    h('table', {}, h('tr', {}, ['When', 'Status', 'Duration', 'Error'].map((c) => h('th', {}, c))),
      attempts.map((a) => h('tr', {}, h('td', {}, when(a.started_at_ms)), h('td', {}, a.status_code === null ? '—' : a.status_code),
        h('td', {}, `${a.duration_ms} ms`), h('td', {}, a.error || '—')))));
}

async function retry(id) {
  if (await attempt(() => api('POST', `/deliveries/${id}/retry`))) await route();
}

async function deliveriesPage() {
  const { deliveries } = await api('GET', '/deliveries?status=dead&limit=100');
  show(h('h1', {}, 'Dead letters'), h('p', { class: 'muted' }, 'Deliveries that ran out of attempts; retry one to queue it again.'), deliveriesTable(deliveries));
}

async function connectionsPage() {
  const [{ connections }, { plugins }] = await Promise.all([api('GET', '/connections'), api('GET', '/plugins')]);
  const rows = connections.map((c) => h('tr', { 'data-connection': c.id },
    h('td', { class: 'mono' }, c.id), h('td', {}, c.plugin), h('td', {}, c.display_name), h('td', {}, c.kind),
    h('td', {}, statusBadge(c.status)), h('td', {}, c.last_error || '—'),
    h('td', {}, c.kind === 'oauth2' ? h('button', { onclick: () => authorize({ connection: c.id }) }, 'Re-authorize') : null)));
  const plugin = h('select', { id: 'connect-plugin' }, plugins.map((p) => h('option', { value: p.name }, p.name)));
  const name = h('input', { id: 'connect-name', placeholder: 'display name, e.g. Acme production' });
  const credentials = h('textarea', { id: 'connect-credentials', placeholder: '{"api_key": "..."} for an API-key connection' });
  show(h('h1', {}, 'Connections'),
    connections.length
      ? h('table', {}, h('tr', {}, ['Id', 'Plugin', 'Name', 'Kind', 'Status', 'Last error', ''].map((c) => h('th', {}, c))), rows)
      : h('p', { class: 'muted' }, 'No connections yet.'),
    h('section', { class: 'card' }, h('h3', {}, 'New connection'),
      h('div', { class: 'row' }, plugin, name),
      h('label', {}, 'Credentials (JSON, for API keys)'), credentials,
      h('div', { class: 'row' },
        h('button', { onclick: () => createConnection(plugin.value, name.value, credentials.value) }, 'Save credentials'),
        h('button', { class: 'primary', onclick: () => authorize({ plugin: plugin.value, display_name: name.value }) }, 'Connect with OAuth2'))));
}

async function createConnection(plugin, displayName, credentialsText) {
  let credentials;
  try {
    credentials = JSON.parse(credentialsText || '{}');
  } catch (error) {
    say('Credentials are not JSON: ' + error.message);
    return;
  }
  if (await attempt(() => api('POST', '/connections', { plugin, display_name: displayName, credentials }))) await route();
}

/** Opens the provider's consent page; the callback completes the connection. */
async function authorize(query) {
  const started = await attempt(() => api('GET', '/connections/oauth/start?' + new URLSearchParams(query)));
  if (started && started.authorize_url) {
    window.open(started.authorize_url, '_blank', 'noopener');
    say('Finish in the window that opened, then reload this page.', true);
  }
}

route();
