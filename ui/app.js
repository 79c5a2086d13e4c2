// kvstore web console: the cluster as this node sees it (GET ready, every
// second) and a key browser (GET kv/?prefix=&limit=&cursor=). Every URL is
// resolved against the page's own directory, never against "/", so the page
// works behind kubectl port-forward and behind a proxy that mounts the node
// under a path of its own. Data from the node only ever reaches the page as
// text (textContent), never as markup.
'use strict';
(() => {
// A change must show within 2 s. The primary notices a dead replica at its
// next heartbeat, up to 1 s later, so the page asks twice a second.
const POLL_MS = 500;
const POLL_TIMEOUT_MS = 2500;
const PAGE = 100;		// keys per page (the API allows 1 to 1000)
const SHOW_TEXT = 65536;	// bytes of a value shown as text
const SHOW_HEX = 4096;		// bytes of a value shown as a hex dump
const LATE_MS = 3000;		// no answer for this long: worth a look
const MAX_EVENTS = 50;

const $ = id => document.getElementById(id);
const base = new URL('.', location.href);	// "/" for both / and /ui
const url = path => new URL(path, base);
const enc = new TextEncoder();
const strict = new TextDecoder('utf-8', {fatal: true});

let role = null;
let links = null;		// url -> link state, for the event log
let token = sessionStorage.getItem('kvstore.token') || '';
let asking = null;		// the pending token prompt's promise
let prefix = '';
let cursors = [''];		// cursors[i] opens page i
let page = 0;
let total = 0;
let current = null;		// the key shown in the detail panel
let follow = null;		// the EventSource following the prefix
let reload = null;		// the page's refresh, due after an event

// An element with attributes and children; strings become text nodes.
function h(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {}))
		if (v != null && v !== false)
			e.setAttribute(k, v === true ? '' : v);
	e.append(...kids.flat().filter(k => k != null && k !== false));
	return e;
}

const num = n => n == null ? '—' : Number(n).toLocaleString('en-US');
const plural = (n, one, many) => num(n) + ' ' + (n === 1 ? one : many);
function dur(ms) {
	if (ms == null)
		return '—';
	if (ms < 1000)
		return ms + ' ms';
	const s = ms / 1000;
	return s < 60 ? s.toFixed(1) + ' s' : s < 3600 ?
	    Math.floor(s / 60) + ' min ' + Math.floor(s % 60) + ' s' :
	    (s / 3600).toFixed(1) + ' h';
}
function size(n) {
	return n < 1024 ? plural(n, 'byte', 'bytes') : n < 1048576 ?
	    (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB';
}
const badge = (text, cls) => h('span', {class: 'badge ' + cls}, text);
const clock = () => new Date().toLocaleTimeString('en-GB');

// ---- Keys as bytes ----

// Listings give keys as JSON strings with each byte that is not UTF-8 as a
// lone surrogate U+DC80..U+DCFF (surrogateescape); turn one back into its
// bytes, then percent-encode them for the path.
function keyBytes(k) {
	const out = [];
	for (const ch of k) {
		const c = ch.codePointAt(0);
		if (c >= 0xdc80 && c <= 0xdcff)
			out.push(c & 0xff);
		else
			out.push(...enc.encode(ch));
	}
	return out;
}
const hex2 = b => b.toString(16).padStart(2, '0');
const keyPath = k => keyBytes(k).map(b => /[\w.~-]/.test(String.fromCharCode(b)) ?
    String.fromCharCode(b) : '%' + hex2(b).toUpperCase()).join('');
// A key's URL. The browser resolves "." and ".." as path segments (%2E
// too), so those two go in kv?key=.
const keyUrl = k => k === '.' || k === '..' ? 'kv?key=' + keyPath(k) :
    'kv/' + keyPath(k);
// Shown with invisible and non-UTF-8 bytes as \xNN.
const showKey = k => k.replace(/[\udc80-\udcff\x00-\x1f\x7f]/gu,
    c => '\\x' + hex2(c.codePointAt(0) & 0xff));

// ---- Requests ----

// A request to this node, with the write token when one is set. On 401 it
// asks for a token and tries again; null if the user gave up or the node
// did not answer (then msg says so).
async function api(method, path, body, headers, msg) {
	for (;;) {
		const hd = Object.assign({}, headers);
		if (token)
			hd.Authorization = 'Bearer ' + token;
		let r;
		try {
			r = await fetch(url(path), {method, body, headers: hd,
			    cache: 'no-store'});
		} catch (e) {
			msg('The node did not answer: ' + e.message);
			return null;
		}
		if (r.status !== 401)
			return r;
		if (!(await askToken(await r.text(), !!token))) {
			msg('Not done: this node wants a token.');
			return null;
		}
	}
}

function askToken(why, wrong) {
	if (asking)
		return asking;
	const f = $('auth');
	const back = document.activeElement;
	$('auth-why').textContent = (wrong ? 'That token was refused. ' : '') +
	    why.trim();
	f.hidden = false;
	$('token').value = '';
	$('token').focus();
	asking = new Promise(done => {
		const end = t => {
			f.hidden = true;
			f.onsubmit = $('auth-cancel').onclick = null;
			asking = null;
			if (back)
				back.focus();
			done(t);
		};
		f.onsubmit = e => {
			e.preventDefault();
			setToken($('token').value);
			end(true);
		};
		$('auth-cancel').onclick = () => end(false);
	});
	return asking;
}

function setToken(t) {
	token = t;
	if (t)
		sessionStorage.setItem('kvstore.token', t);
	else
		sessionStorage.removeItem('kvstore.token');
	$('w-token').hidden = !t;
}

// ---- Cluster ----

async function poll() {
	const began = Date.now();
	const ac = new AbortController();
	const t = setTimeout(() => ac.abort(), POLL_TIMEOUT_MS);
	if (!document.hidden) {
		try {
			const r = await fetch(url('ready'), {cache: 'no-store',
			    signal: ac.signal});
			render(await r.json());
			if (!$('down').hidden) {
				event('This node answers again.');
				load(page);
			}
			$('down').hidden = true;
		} catch (e) {
			if ($('down').hidden) {
				event('This node stopped answering.');
				$('down').textContent = 'This node has not ' +
				    'answered since ' + clock() + '; still trying.';
			}
			$('down').hidden = false;
			$('node').classList.add('muted');
		}
	}
	clearTimeout(t);
	setTimeout(poll, Math.max(0, began + POLL_MS - Date.now()));
}

function render(s) {
	const ok = s.status === 'ready';
	total = s.keys;
	$('node').classList.remove('muted');
	$('node').replaceChildren(badge(s.role, 'role'),
	    badge(s.status, ok ? 'ok' : 'warn'),
	    h('span', {class: 'mono'}, location.host));
	$('warning').hidden = !s.warning;
	$('warning').textContent = s.warning || '';
	const stat = (k, v) => h('div', null, h('dt', null, k), h('dd', null, v));
	$('stats').replaceChildren(stat('Keys', num(s.keys)),
	    stat('Sequence', num(s.seq)),
	    stat('On disk up to', num(s.durable_seq)),
	    stat('Data', size(s.data_bytes)),
	    stat('Connections', num(s.connections)),
	    stat('fsync', s.fsync));
	if (s.role !== role) {
		role = s.role;
		links = null;
		setRole(s);
	}
	if (role === 'primary')
		replicas(s.replicas || []);
	else
		primary(s.primary || {});
}

function setRole(s) {
	$('write').hidden = role !== 'primary';
	$('w-token').hidden = !token;
	const ro = $('readonly');
	ro.hidden = role === 'primary';
	if (role === 'primary')
		return;
	const p = s.primary && s.primary.url;
	ro.replaceChildren('This node is a read-only replica: it has no ' +
	    'write controls. Writes go to the primary', p ? ' at ' : '.',
	    p ? h('a', {href: p, class: 'url'}, p) : '', p ? '.' : '');
}

// A bar for lag in ms on a log scale: 1 ms, 10 ms, 100 ms, 1 s, 10 s.
function lagBar(ms, cls) {
	const bar = h('span');
	bar.style.width = Math.min(100, Math.log10(1 + ms) * 25) + '%';
	return h('span', {class: 'bar ' + cls, 'aria-hidden': 'true'}, bar);
}
const lagClass = ms => ms < 100 ? 'ok' : ms < 1000 ? 'warn' : 'bad';
const linkClass = st => st === 'streaming' || st === 'up' ? 'ok' :
    st === 'down' ? 'bad' : 'warn';

function track(name, state) {
	const was = links.get(name);
	if (was !== undefined && was !== state)
		event(name + ': ' + was + ' → ' + state);
	links.set(name, state);
}

function replicas(list) {
	const seen = new Set();
	const first = links === null;
	if (first)
		links = new Map();
	const rows = list.map(r => {
		if (!first && !links.has(r.url))
			event(r.url + ': joined (' + r.state + ')');
		track(r.url, r.state);
		seen.add(r.url);
		const late = r.state !== 'down' && r.last_contact_ms > LATE_MS;
		const td = (label, ...kids) =>
		    h('td', {'data-label': label}, h('span', null, ...kids));
		const lag = r.state === 'down' ? 'bad' : lagClass(r.lag_ms);
		return h('tr', {class: r.state === 'down' ? 'is-down' : null,
		    'data-url': r.url, 'data-state': r.state},
		    td('Replica', h('span', {class: 'url'}, r.url)),
		    td('Link', badge(r.state, linkClass(r.state))),
		    td('Acked seq', num(r.acked_seq)),
		    td('Lag', h('span', {class: 'lag ' + lag},
			lagBar(r.lag_ms, lag),
			plural(r.lag_writes, 'write', 'writes') + ' · ' +
			dur(r.lag_ms))),
		    td('Last contact', h('span', {class: late ? 'bad' : null},
			dur(r.last_contact_ms) + ' ago')),
		    td('Resyncs', plural(r.full_syncs + r.partial_syncs,
			'resync', 'resyncs'), h('span', {class: 'muted'},
			' (' + r.full_syncs + ' full, ' + r.partial_syncs +
			' partial)')));
	});
	for (const u of links.keys())
		if (!seen.has(u)) {
			event(u + ': no longer listed');
			links.delete(u);
		}
	const up = list.filter(r => r.state === 'streaming').length;
	$('repl').replaceChildren(list.length === 0 ?
	    h('p', {class: 'panel empty muted'}, 'No replicas yet. They ' +
	    'appear here once listed in REPLICA_URLS or once they register ' +
	    '(a replica with PRIMARY_URL set does so every 3 s).') :
	    h('div', null, h('p', {class: 'muted'}, plural(list.length,
	    'replica', 'replicas') + ', ' + up + ' streaming'),
	    h('table', {'aria-label': 'Replicas of this primary'}, h('thead', null, h('tr', null,
	    ['Replica', 'Link', 'Acked seq', 'Lag', 'Last contact',
	    'Resyncs'].map(t => h('th', {scope: 'col'}, t)))),
	    h('tbody', null, rows))));
}

function primary(p) {
	if (links === null)
		links = new Map();
	track('primary', p.link);
	const item = (k, ...v) => h('div', null, h('dt', null, k),
	    h('dd', null, ...v));
	const lag = p.lag_writes || 0;
	$('repl').replaceChildren(h('dl', {class: 'stats', id: 'primary'},
	    item('Primary', p.url ? h('a', {href: p.url, class: 'url'}, p.url) :
		h('span', {class: 'muted'}, 'unknown (PRIMARY_URL is not set)')),
	    item('Link', badge(p.link || 'down', linkClass(p.link))),
	    item('Applied seq', num(p.applied_seq)),
	    item('Primary seq', num(p.primary_seq)),
	    item('Lag', h('span', {class: 'lag ' + (lag ? 'warn' : 'ok')},
		plural(lag, 'write', 'writes'))),
	    item('Last heard', p.last_heard_ms == null ? 'never' :
		dur(p.last_heard_ms) + ' ago')));
}

function event(text) {
	const ol = $('events');
	ol.prepend(h('li', null, h('time', null, clock()), text));
	while (ol.children.length > MAX_EVENTS)
		ol.lastChild.remove();
	$('events-n').textContent = '(' + ol.children.length + ')';
}

// ---- Key browser ----

const listInfo = t => { $('list-info').textContent = t; };

async function load(i) {
	const c = cursors[i];
	const r = await api('GET', 'kv/?limit=' + PAGE +
	    (prefix ? '&prefix=' + keyPath(prefix) : '') +
	    (c ? '&cursor=' + c : ''), null, null, listInfo);
	if (!r)
		return;
	if (!r.ok) {
		listInfo(r.status + ': ' + (await r.text()).trim());
		return;
	}
	const j = await r.json();
	page = i;
	cursors.length = i + 1;
	if (j.next)
		cursors.push(j.next);
	$('list').replaceChildren(...j.keys.map(k => h('li', null,
	    h('button', {type: 'button', 'data-key': k,
	    'aria-current': k === current ? 'true' : null}, showKey(k)))));
	const n = j.keys.length;
	const from = i * PAGE + 1;
	listInfo(n === 0 ? (j.next ? 'No keys on this page; more may follow.' :
	    i > 0 ? 'No more keys.' : prefix ? 'No key starts with “' +
	    prefix + '”.' : 'No keys yet.') :
	    (prefix ? 'Keys starting with “' + prefix + '”, ' : 'Keys ') +
	    num(from) + '–' + num(from + n - 1) +
	    (prefix || role === null ? '' : ' of ' + num(total)) +
	    ' (hash order)');
	$('page-no').textContent = 'Page ' + (i + 1);
	$('prev').disabled = i === 0;
	$('next').disabled = !j.next;
}

async function show(k) {
	current = k;
	for (const b of $('list').querySelectorAll('button'))
		b.toggleAttribute('aria-current', b.dataset.key === k);
	const d = $('detail');
	const say = t => d.replaceChildren(h('h3', null, showKey(k)), h('p', null, t));
	d.hidden = false;
	const r = await api('GET', keyUrl(k), null, null, say);
	if (!r || current !== k)	// another key was picked meanwhile
		return;
	if (!r.ok) {
		say(r.status === 404 ? 'This key no longer exists.' :
		    r.status + ': ' + (await r.text()).trim());
		return;
	}
	const v = new Uint8Array(await r.arrayBuffer());
	if (current !== k)
		return;
	const ver = (r.headers.get('ETag') || '').replace(/"/g, '');
	const left = r.headers.get('X-Kv-Expires-In');	// seconds, or none
	let text = null;
	try {
		text = strict.decode(v);
	} catch (e) {
		text = null;
	}
	const shown = text === null ? Math.min(v.length, SHOW_HEX) :
	    Math.min(text.length, SHOW_TEXT);
	const meta = (k2, v2) => [h('dt', null, k2), h('dd', null, v2)];
	d.replaceChildren(...[h('h3', null, showKey(k)),
	    h('dl', {class: 'meta'}, meta('Size', size(v.length)),
	    meta('Version', ver), left === null ? null : meta('Expires in',
	    dur(Math.round(left * 1000))), meta('Shown as', text === null ?
	    'hex (not UTF-8)' : 'text (UTF-8)')),
	    v.length === 0 ? h('p', {class: 'muted'}, 'The value is empty.') :
	    h('pre', {class: text === null ? 'hex' : null, tabindex: 0,
	    'aria-label': 'Value'}, text === null ? hexdump(v.subarray(0,
	    SHOW_HEX)) : text.slice(0, SHOW_TEXT)),
	    (text === null ? v.length : text.length) > shown ?
	    h('p', {class: 'muted'}, 'Showing the first ' + num(shown) +
	    (text === null ? ' bytes.' : ' characters.')) : null,
	    role === 'primary' ? h('div', {class: 'row'},
	    text !== null ? h('button', {type: 'button', id: 'edit'}, 'Edit') :
	    null, h('button', {type: 'button', id: 'delete', class: 'danger'},
	    'Delete'), h('span', {id: 'd-msg', role: 'status'})) : null]
	    .filter(Boolean));
	if (role !== 'primary')
		return;
	if (text !== null)
		$('edit').onclick = () => {
			$('w-key').value = k;
			$('w-val').value = text;
			// A put without a ttl makes a key permanent: keep its
			// time on screen, for the user to keep or clear.
			$('w-ttl').value = left === null ? '' :
			    Math.ceil(left) + 's';
			$('w-val').focus();
		};
	$('delete').onclick = () => del(k, ver);
}

function hexdump(b) {
	let out = '';
	for (let i = 0; i < b.length; i += 16) {
		const row = [...b.subarray(i, i + 16)];
		out += i.toString(16).padStart(8, '0') + '  ' +
		    row.map(hex2).join(' ').padEnd(48) + ' ' +
		    row.map(c => c > 31 && c < 127 ? String.fromCharCode(c) :
		    '.').join('') + '\n';
	}
	return out;
}

// Deletes only the version on screen (If-Match): a key changed meanwhile
// is kept, and the user sees why.
async function del(k, ver) {
	if (!confirm('Delete “' + showKey(k) + '” (version ' + ver + ')?'))
		return;
	const say = t => { $('d-msg').textContent = t; };
	const r = await api('DELETE', keyUrl(k), null,
	    {'If-Match': '"' + ver + '"'}, say);
	if (!r)
		return;
	if (!r.ok) {
		say(r.status + ': ' + (await r.text()).trim());
		return;
	}
	$('detail').replaceChildren(h('p', null, 'Deleted “' + showKey(k) +
	    '”.'));
	current = null;
	load(page);
}

async function put(e) {
	e.preventDefault();
	const k = $('w-key').value;
	const say = t => { $('w-msg').textContent = t; };
	const ttl = $('w-ttl').value.trim();
	const url = keyUrl(k) + (ttl === '' ? '' : (keyUrl(k).includes('?') ?
	    '&' : '?') + 'ttl=' + encodeURIComponent(ttl));
	say('Writing…');
	const r = await api('PUT', url, $('w-val').value, null, say);
	if (!r)
		return;
	const t = (await r.text()).trim();
	if (!r.ok) {
		say(r.status + ': ' + t);
		return;
	}
	say(t + ', version ' + r.headers.get('X-Kv-Seq') + '.');
	load(page);
	show(k);
}

// Follow the prefix live: each write under it, from an event stream
// (kv/?watch=events), goes to the event log and refreshes the page, at
// most 4 times a second: a busy prefix costs no listing per write.
function following(on) {
	if (follow)
		follow.close();
	follow = on ? new EventSource(url('kv/?watch=events' +
	    (prefix ? '&prefix=' + keyPath(prefix) : ''))) : null;
	$('follow').setAttribute('aria-pressed', on);
	if (!on)
		return;
	follow.onmessage = m => {
		const e = JSON.parse(m.data);
		event(e.op + ' ' + showKey(e.key) + ' (seq ' + e.seq + ')');
		reload = reload || setTimeout(() => {
			reload = null;
			load(page);
		}, 250);
	};
	follow.onerror = () => follow.readyState === 2 && following(false);
}

// ---- Wiring ----

$('search').onsubmit = e => {
	e.preventDefault();
	prefix = $('prefix').value;
	cursors = [''];
	load(0);
	if (follow)
		following(true);
};
$('follow').onclick = () => following(!follow);
$('prev').onclick = () => load(page - 1);
$('next').onclick = () => load(page + 1);
$('list').onclick = e => {
	const b = e.target.closest('button');
	if (b)
		show(b.dataset.key);
};
$('write').onsubmit = put;
$('write').oninput = () => { $('w-msg').textContent = ''; };
$('forget').onclick = () => setToken('');
poll().then(() => load(0));
})();
