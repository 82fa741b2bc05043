/* The kiosk's service worker: keeps the page, its assets and the flow JSON so the kiosk works with no network.
 *
 * Served from /kiosk/sw.js with "Service-Worker-Allowed: /kiosk" and registered with scope /kiosk, so it controls
 * the page /kiosk itself. Network first (a flow update reaches the device at its next load), the cached copy when
 * the network fails or does not answer within a few seconds, and for the page and its assets when the server (or
 * its proxy) answers 5xx. A 401 (the device was revoked) empties the cache: a revoked kiosk stops showing the survey.
 * The sync POST is never touched: the page does it and keeps its queue.
 */
'use strict';

const CACHE = 'survey-kiosk-v1';
const KEPT = ['/kiosk', '/kiosk/assets/kiosk.js', '/kiosk/assets/kiosk.css', '/kiosk/flow.json'];
const TIMEOUT_MS = 5000;
// The flow's own answer always reaches the page: a 503 there says the survey must not be shown (its approval lapsed).
const FLOW = '/kiosk/flow.json';

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(KEPT)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('survey-kiosk-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || !KEPT.includes(url.pathname)) return;
  event.respondWith(networkFirst(request, url.pathname));
});

function withTimeout(promise) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), TIMEOUT_MS);
    promise.then((r) => { clearTimeout(timer); resolve(r); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await withTimeout(fetch(request));
    if (response.ok && !response.redirected) {
      await cache.put(key, response.clone());
    } else if (response.status === 401) {
      await Promise.all(KEPT.map((k) => cache.delete(k)));
    } else if (response.status >= 500 && key !== FLOW) {
      // The server (or the proxy before it) is down: the kept page and assets, whose script says the survey cannot
      // be shown and asks again until the server is back. Its error page would stay on the screen until staff came.
      const kept = await cache.match(key);
      if (kept) return kept;
    }
    return response;
  } catch (error) {
    const kept = await cache.match(key);
    if (kept) return kept;
    throw error;
  }
}
