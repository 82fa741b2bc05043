/* The kiosk page: one tap per question, idle reset, language toggle, and an offline queue that syncs exactly once.
 *
 * Everything shown comes from /kiosk/flow.json (the flow version and its words in each of the device's languages),
 * cached with the page by the service worker (/kiosk/sw.js), so the kiosk keeps working with no network and after
 * a reboot. Each visitor's session gets a client UUID and the device's time of every answer. A session is written
 * to IndexedDB at every answer (a reboot mid-survey keeps it as a partial session), queued when it is completed or
 * the idle timer clears it, and posted to POST /api/v1/kiosk/responses oldest first, in batches, whenever the
 * device is online, with exponential backoff. The page drops a queued session only when the server answered for
 * it: "stored" or "duplicate" (the server has it), or "rejected" (it never will: logged to the console and kept
 * in a short log in localStorage for staff). A malformed batch (4xx) is retried one session at a time, and a
 * single session the server refuses as malformed is dropped and logged, so one bad entry never blocks the queue.
 * While the page cannot show the survey (flow.json refused or out of reach) it says so, asks again every 30 s,
 * and keeps sending its queue.
 */
(() => {
  'use strict';

  const DB_NAME = 'survey-kiosk';
  const STORE = 'sessions';
  const API = '/api/v1/kiosk/responses';
  const BATCH = 25;
  const MAX_BACKOFF_MS = 5 * 60 * 1000;
  const THANKS_MS = 8000;
  const RELOAD_AFTER_MS = 12 * 3600 * 1000;
  const LOADED_AT = Date.now();

  const main = document.getElementById('kiosk');
  const statusLine = document.getElementById('kiosk-status');
  let doc = null;
  let lang = null;
  let current = null;
  let screen = 'loading';
  let questionId = null;
  let chosen = new Set();
  let idleTimer = null;
  let seq = 0;

  // -- IndexedDB: the queue ------------------------------------------------------------------------------------

  let dbPromise = null;
  function db() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const request = indexedDB.open(DB_NAME, 1);
        request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'client_uuid' });
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    }
    return dbPromise;
  }

  async function store(mode, work) {
    const database = await db();
    return new Promise((resolve, reject) => {
      const tx = database.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result && 'result' in result ? result.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }
  const put = (record) => store('readwrite', (s) => s.put(record));
  const remove = (id) => store('readwrite', (s) => s.delete(id));
  const everything = () => store('readonly', (s) => s.getAll());

  // -- sessions ------------------------------------------------------------------------------------------------

  function newId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function begin() {
    current = {
      client_uuid: newId(),
      seq: Date.now() * 1000 + (seq++ % 1000),
      state: 'open',
      skipped: [],
      session: {
        client_uuid: null, flow: { id: doc.flow.id, version: doc.flow.version }, language: lang,
        started_at: new Date().toISOString(), completed_at: null, answers: [],
      },
    };
    current.session.client_uuid = current.client_uuid;
  }

  async function save() {
    try {
      if (current && current.session.answers.length) await put(current);
    } catch (e) {
      console.warn('kiosk: could not keep the answer on the device', e);
    }
  }

  // End the visitor's session: completed, or cleared by the idle timer (kept as a partial session).
  async function finish(completed) {
    const ending = current;
    current = null;
    if (!ending || !ending.session.answers.length) {
      if (ending) await remove(ending.client_uuid).catch(() => undefined);
      return;
    }
    ending.state = 'queued';
    ending.session.language = lang;
    if (completed) ending.session.completed_at = new Date().toISOString();
    try {
      await put(ending);
    } catch (e) {
      console.warn('kiosk: could not queue the session on the device', e);
    }
    sync();
  }

  // Sessions left open by a reboot or a crash are partial sessions: queue them.
  async function recover() {
    for (const record of await everything()) {
      if (record.state === 'open') {
        record.state = 'queued';
        await put(record);
      }
    }
  }

  // -- the flow: which question comes next -----------------------------------------------------------------------

  function ratings() {
    const out = {};
    if (current) for (const a of current.session.answers) if ('value' in a) out[a.question_id] = a.value;
    return out;
  }

  function applies(q, given) {
    if (!q.show_if) return true;
    const r = given[q.show_if.question];
    if (r === undefined) return false;
    const positive = q.show_if.positive_values.includes(r);
    return q.show_if.rating === 'positive' ? positive : !positive;
  }

  function applicable() {
    const given = ratings();
    return doc.flow.questions.filter((q) => applies(q, given));
  }

  function nextQuestion() {
    const done = new Set([...current.session.answers.map((a) => a.question_id), ...current.skipped]);
    return applicable().find((q) => !done.has(q.id)) || null;
  }

  // -- rendering -------------------------------------------------------------------------------------------------

  function t() { return doc.text[lang]; }
  function fill(text, values) { return text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m)); }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function header() {
    const words = t();
    const others = doc.languages.filter((l) => l.code !== lang);
    return el('header', { class: 'bar' },
      el('p', { class: 'agency' }, words.agency, el('span', { class: 'service' }, words.service)),
      others.length ? el('nav', { class: 'languages', 'aria-label': words.ui.language },
        others.map((l) => el('button', { type: 'button', class: 'lang', lang: l.code, 'data-lang': l.code,
          onclick: () => switchLanguage(l.code) }, l.name))) : null);
  }

  function show(name, ...content) {
    screen = name;
    document.body.dataset.state = name;
    document.body.dataset.question = questionId || '';
    document.documentElement.lang = lang;
    main.replaceChildren(header(), el('div', { class: `screen screen-${name}` }, ...content));
    const heading = main.querySelector('h1');
    if (heading) { heading.setAttribute('tabindex', '-1'); heading.focus({ preventScroll: true }); }
    armIdle();
  }

  function pra() {
    const words = t();
    return el('section', { class: 'pra', 'aria-labelledby': 'pra-title' },
      el('h2', { id: 'pra-title' }, words.ui.pra_title), el('p', {}, words.pra.line), el('p', {}, words.pra.burden));
  }

  function startScreen() {
    questionId = null;
    chosen = new Set();
    const words = t();
    show('start',
      el('h1', {}, words.title),
      el('p', { class: 'intro' }, words.intro),
      el('button', { type: 'button', class: 'primary start', onclick: () => { begin(); ask(); } }, words.ui.start),
      el('p', { class: 'hint' }, words.ui.start_hint),
      pra());
  }

  function progress(q) {
    const list = applicable();
    const number = list.findIndex((x) => x.id === q.id) + 1;
    const total = list.length;
    const label = fill(t().ui.progress, { number, total });
    return el('div', { class: 'progress' },
      el('p', { class: 'progress-text' }, label),
      el('div', { class: 'progress-bar', role: 'progressbar', 'aria-label': label, 'aria-valuemin': '0',
        'aria-valuemax': String(total), 'aria-valuenow': String(number) },
        el('div', { class: 'progress-fill', style: null, 'data-fraction': String(number / total) })));
  }

  function ask() {
    const q = nextQuestion();
    if (!q) { complete(); return; }
    questionId = q.id;
    chosen = new Set();
    render(q);
  }

  function render(q) {
    const words = t();
    const text = words.questions[q.id];
    const labels = words.labels[q.id];
    const skip = q.required ? null
      : el('button', { type: 'button', class: 'secondary skip', onclick: () => skipQuestion(q) }, words.ui.skip);
    let body;
    if (q.kind === 'rating' || q.kind === 'choose_one') {
      body = el('div', { class: `options options-${q.kind} count-${q.values.length}`, role: 'group',
        'aria-labelledby': 'question-title' },
        q.values.map((v) => el('button', { type: 'button', class: 'option', 'data-value': String(v),
          onclick: () => answer(q, q.kind === 'rating' ? { value: v } : { choices: [v] }) }, labels[String(v)])));
    } else if (q.kind === 'choose_all') {
      body = el('div', {},
        el('p', { class: 'hint', id: 'question-hint' }, words.ui.choose_all),
        el('div', { class: 'options options-choose_all', role: 'group', 'aria-labelledby': 'question-title',
          'aria-describedby': 'question-hint' },
          q.values.map((v) => el('button', { type: 'button', class: 'option toggle', 'aria-pressed': 'false',
            'data-value': v, onclick: (e) => toggle(e.currentTarget, v) }, labels[v]))),
        el('button', { type: 'button', class: 'primary next',
          onclick: () => (chosen.size ? answer(q, { choices: [...chosen] }) : skipQuestion(q)) }, words.ui.next));
    } else {
      body = el('div', {},
        el('p', { class: 'hint', id: 'question-hint' }, words.ui.text_hint),
        el('textarea', { id: 'answer-text', rows: '4', maxlength: '2000', 'aria-labelledby': 'question-title',
          'aria-describedby': 'question-hint' }),
        el('button', { type: 'button', class: 'primary next', onclick: () => {
          const value = main.querySelector('#answer-text').value.trim();
          if (value) answer(q, { text: value }); else skipQuestion(q);
        } }, words.ui.finish));
    }
    show('question', progress(q), el('h1', { id: 'question-title' }, text), body, skip);
    const fillBar = main.querySelector('.progress-fill');
    if (fillBar) fillBar.style.width = `${Math.round(Number(fillBar.dataset.fraction) * 100)}%`;
  }

  function toggle(button, value) {
    if (chosen.has(value)) chosen.delete(value); else chosen.add(value);
    button.setAttribute('aria-pressed', chosen.has(value) ? 'true' : 'false');
  }

  async function answer(q, given) {
    if (!current || screen !== 'question' || questionId !== q.id) return;
    // Taken once: a second tap on this question's buttons (a double tap) before the next one shows is ignored, or the
    // session would answer it twice and the server would refuse the whole session.
    questionId = null;
    current.session.answers.push({ question_id: q.id, ...given, answered_at: new Date().toISOString() });
    current.session.language = lang;
    await save();
    ask();
  }

  function skipQuestion(q) {
    if (!current || questionId !== q.id) return;
    current.skipped.push(q.id);
    ask();
  }

  async function complete() {
    await finish(true);
    questionId = null;
    const words = t();
    show('thanks',
      el('div', { class: 'thanks', role: 'status' }, el('h1', {}, words.ui.thanks_title), el('p', {}, words.thanks)),
      el('button', { type: 'button', class: 'primary restart', onclick: () => restart() }, words.ui.restart),
      el('p', { class: 'hint' }, words.ui.restart_hint));
  }

  function restart() {
    if (Date.now() - LOADED_AT > RELOAD_AFTER_MS && navigator.onLine) { location.reload(); return; }
    lang = doc.languages[0].code;
    startScreen();
  }

  function switchLanguage(code) {
    lang = code;
    if (current) current.session.language = code;
    if (screen === 'question' && questionId) {
      const q = doc.flow.questions.find((x) => x.id === questionId);
      const keep = new Set(chosen);
      const typed = main.querySelector('#answer-text');
      const text = typed ? typed.value : null;
      render(q);
      chosen = keep;
      for (const b of main.querySelectorAll('.toggle')) b.setAttribute('aria-pressed', chosen.has(b.dataset.value) ? 'true' : 'false');
      if (text !== null) main.querySelector('#answer-text').value = text;  // a comment half-typed stays
    } else if (screen === 'thanks') {
      const words = t();
      show('thanks',
        el('div', { class: 'thanks', role: 'status' }, el('h1', {}, words.ui.thanks_title), el('p', {}, words.thanks)),
        el('button', { type: 'button', class: 'primary restart', onclick: () => restart() }, words.ui.restart),
        el('p', { class: 'hint' }, words.ui.restart_hint));
    } else {
      startScreen();
    }
  }

  function message(state, text) {
    screen = state;
    document.body.dataset.state = state;
    main.replaceChildren(el('div', { class: 'screen screen-message' }, el('h1', {}, text)));
  }

  // -- the idle timer --------------------------------------------------------------------------------------------

  function armIdle() {
    clearTimeout(idleTimer);
    if (!doc) return;
    const wait = screen === 'thanks' ? Math.min(THANKS_MS, doc.idle_reset_seconds * 1000) : doc.idle_reset_seconds * 1000;
    idleTimer = setTimeout(onIdle, wait);
  }

  async function onIdle() {
    if (screen === 'question') {
      await finish(false); // what was answered stays, as a partial session
      restart();
    } else if (screen === 'thanks') {
      restart();
    } else if (screen === 'start' && doc && lang !== doc.languages[0].code) {
      restart();
    }
  }

  for (const type of ['pointerdown', 'keydown', 'input', 'touchstart']) {
    document.addEventListener(type, () => { if (screen === 'question' || screen === 'start' || screen === 'thanks') armIdle(); },
      { passive: true, capture: true });
  }

  // -- sync ------------------------------------------------------------------------------------------------------

  let syncing = false;
  let again = false;
  let backoff = 0;
  let retryTimer = null;

  function logRejected(item) {
    console.warn('kiosk: the server refused a queued session; it is dropped', item);
    try {
      const log = JSON.parse(localStorage.getItem('survey-kiosk-rejected') || '[]');
      log.push({ at: new Date().toISOString(), ...item });
      localStorage.setItem('survey-kiosk-rejected', JSON.stringify(log.slice(-50)));
    } catch (e) { /* storage full or blocked: the console has it */ }
  }

  function retryLater() {
    backoff = Math.min(backoff ? backoff * 2 : 1000, MAX_BACKOFF_MS);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(sync, backoff * (0.75 + Math.random() * 0.5));
  }

  async function sync() {
    if (syncing) { again = true; return; }
    syncing = true;
    try {
      let size = BATCH;
      for (;;) {
        const queued = (await everything()).filter((r) => r.state === 'queued').sort((a, b) => a.seq - b.seq);
        if (!queued.length) { backoff = 0; break; }
        const batch = queued.slice(0, size);
        let response;
        try {
          response = await fetch(API, {
            method: 'POST', credentials: 'same-origin', cache: 'no-store',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ sessions: batch.map((r) => r.session) }),
          });
        } catch (e) {
          retryLater(); // offline, or the reply was lost: the server may have stored it; a retry is a duplicate
          return;
        }
        if (response.status === 200) {
          const body = await response.json();
          for (const result of body.results) {
            if (result.status === 'rejected') logRejected(result);
            await remove(result.client_uuid);
          }
          backoff = 0;
          continue;
        }
        if (response.status === 401) { message('revoked', doc ? t().ui.revoked : document.body.dataset.unavailable); return; }
        if ([400, 413, 415, 422].includes(response.status)) {
          if (batch.length > 1) { size = 1; continue; }
          let detail = null;
          try { detail = await response.json(); } catch (e) { /* not JSON */ }
          logRejected({ client_uuid: batch[0].client_uuid, status: response.status, problem: detail });
          await remove(batch[0].client_uuid);
          continue;
        }
        retryLater(); // 429, 5xx: try again later
        return;
      }
    } finally {
      syncing = false;
      await showQueue();
      if (again) { again = false; sync(); }
    }
  }

  async function showQueue() {
    const count = (await everything()).filter((r) => r.state === 'queued').length;
    document.body.dataset.queue = String(count);
    // Without a survey to show (flow.json refused), the page's own words say it: staff see answers are waiting.
    const words = doc ? t().ui.queued : document.body.dataset.queued;
    if (words && count) {
      statusLine.textContent = fill(words, { count });
      statusLine.hidden = false;
    } else {
      statusLine.hidden = true;
    }
  }

  window.addEventListener('online', () => { backoff = 0; sync(); });
  setInterval(sync, 60 * 1000);

  // -- start -----------------------------------------------------------------------------------------------------

  async function load() {
    if ('serviceWorker' in navigator) {
      navigator.serviceWorker.register('/kiosk/sw.js', { scope: '/kiosk' }).catch((e) => console.warn('kiosk: no service worker', e));
    }
    try {
      await recover();
    } catch (e) {
      console.warn('kiosk: no IndexedDB; answers cannot be kept while offline', e);
    }
    let response;
    try {
      response = await fetch('/kiosk/flow.json', { credentials: 'same-origin' });
    } catch (e) {
      response = null;
    }
    if (response && response.status === 401) { location.reload(); return; } // the server's refusal page says why
    if (!response || !response.ok) {
      // No survey to show (the PRA approval lapsed, the service left the configuration, the server is down): the
      // sessions queued before still go; the server stores those answered while the approval stood.
      message('unavailable', document.body.dataset.unavailable);
      setTimeout(load, 30 * 1000);
      sync();
      return;
    }
    doc = await response.json();
    lang = doc.languages[0].code;
    startScreen();
    await showQueue();
    sync();
  }

  load();
})();
