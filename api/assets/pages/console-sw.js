// The console's service worker, served at /console-sw.js by api/src/http/pages.rs with its
// scope limited to /console. It keeps the console's page and files in the browser's cache so
// that an operator can reload the console with no network; the taps made meanwhile wait in
// localStorage and are sent when the network is back. Nothing else is cached: GraphQL requests
// always go to the server.
//
// The page is fetched from the network first (so a new build shows at once), from the cache
// when the network fails. The files have content-addressed URLs that never change content, so
// they come from the cache first. The cache's name ends with a hash of this set of files: a new
// build installs a new cache and deletes the old one.
const CACHE = 'scoreline-console-{{build}}';
const PAGE = '/console';
const FILES = [{{files}}];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll([PAGE, ...FILES]))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(
          keys
            .filter((key) => key.startsWith('scoreline-console-') && key !== CACHE)
            .map((key) => caches.delete(key)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname === PAGE) {
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) {
            const copy = response.clone();
            caches.open(CACHE).then((cache) => cache.put(PAGE, copy));
          }
          return response;
        })
        .catch(() =>
          caches.match(PAGE, { ignoreVary: true }).then((cached) => cached ?? Response.error()),
        ),
    );
  } else if (url.pathname.startsWith('/assets/')) {
    // Vary is ignored: the server's CORS layer varies on Origin, which module scripts send and
    // the requests that filled the cache did not; a content-addressed file is the same for all.
    event.respondWith(
      caches.match(request, { ignoreVary: true }).then((cached) => cached ?? fetch(request)),
    );
  }
});
