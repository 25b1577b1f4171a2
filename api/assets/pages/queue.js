// The console's outbox: every match-day write (a tap) goes through it, online or not. Entries
// are kept in localStorage, so they survive a reload, and sent one at a time, in the order they
// were tapped. Each carries the `expectedVersion` it was tapped against and a `clientMutationId`
// made once, when it was tapped: when an answer is lost and the entry is sent again, the server
// returns the first result instead of applying it twice.
//
// - Network failures, and the codes that say nothing was done (SERVICE_UNAVAILABLE, ...), leave
//   the entry at the head of the queue; it is retried when the browser is back online and every
//   few seconds.
// - VERSION_CONFLICT (another operator wrote first) stops the queue at that entry until the
//   operator chooses: apply it to the current state, or discard it.
// - Anything else the server refuses (a goal while the match is not live, ...) is dropped from
//   the queue and reported.
// - UNAUTHENTICATED (an expired token) stops the queue until it gets another token: the operator
//   signs in again, or the console renews a provider's token.
//
// Versions: every match-day write raises the match's version by exactly one, so a tap made
// while others wait for the same match expects the known version plus the number waiting.

import { isRetryable } from '{{graphql.js}}';

const KEY = 'scoreline.console.outbox.v1';

/** 1 to 64 letters, digits, `-`: what the schema accepts as a clientMutationId. */
export function newMutationId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `tap-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export class Outbox {
  /** `send(entry, token)` performs the write and resolves with the resulting match. */
  constructor(send) {
    this.send = send;
    this.token = null;
    this.listeners = new Set();
    this.versions = new Map();
    this.sending = null;
    this.flushing = false;
    /** The last failure to reach the server, cleared by the next success. */
    this.networkError = null;
    this.authError = null;
    this.storageError = null;
    this.entries = this.load();
  }

  load() {
    // Once a save has failed, storage is behind memory: memory is the truth until one succeeds.
    if (this.storageError) return this.entries;
    try {
      const stored = JSON.parse(localStorage.getItem(KEY) ?? '[]');
      return Array.isArray(stored) ? stored : [];
    } catch {
      return this.entries ?? [];
    }
  }

  save() {
    try {
      localStorage.setItem(KEY, JSON.stringify(this.entries));
      this.storageError = null;
    } catch (error) {
      this.storageError = `taps cannot be saved on this device (${error.message}); keep this page open`;
    }
    this.emit();
  }

  /** `listener(event)` runs on every change; `event` is undefined or
   * `{ kind: 'applied' | 'refused' | 'conflict', entry, match?, error? }`. */
  listen(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event) {
    for (const listener of this.listeners) listener(event);
  }

  /** Records a version of a match seen anywhere (query, subscription, mutation result). */
  known(matchId, version) {
    if (!(this.versions.get(matchId) >= version)) this.versions.set(matchId, version);
  }

  waitingFor(matchId) {
    return this.entries.filter((e) => e.matchId === matchId);
  }

  /** Queues a write and starts sending. `input` has neither expectedVersion nor
   * clientMutationId: they are added here. */
  enqueue({ matchId, op, input, label }) {
    this.entries = this.load();
    const base = this.versions.get(matchId);
    const entry = {
      id: newMutationId(),
      matchId,
      op,
      input,
      label,
      expectedVersion: base === undefined ? undefined : base + this.waitingFor(matchId).length,
      state: 'waiting',
      queuedAt: new Date().toISOString(),
    };
    this.entries.push(entry);
    this.save();
    this.flush();
    return entry;
  }

  setToken(token) {
    this.token = token;
    this.authError = null;
    this.emit();
    if (token) this.flush();
  }

  /** Sends waiting entries in order until the queue is empty or an entry cannot go yet.
   * Nothing is sent while the browser says it is offline: `navigator.onLine` false is certain
   * (true is not, hence the retries), and a page being unloaded can get an `online` event
   * that does not mean the network is back. Nor after the server refused the token: sending
   * again with it would only be refused again, so sending waits for `setToken`. */
  async flush() {
    if (this.flushing || !this.token || this.authError || navigator.onLine === false) return;
    this.flushing = true;
    try {
      for (;;) {
        // Another tab of this console may have sent or resolved some meanwhile.
        this.entries = this.load();
        const entry = this.entries[0];
        if (!entry || entry.state === 'conflict') break;
        this.sending = entry.id;
        this.emit();
        let match;
        try {
          match = await this.send(entry, this.token);
        } catch (error) {
          if (isRetryable(error)) {
            this.networkError = error.message;
            break;
          }
          this.networkError = null;
          if (error.code === 'VERSION_CONFLICT') {
            this.update(entry.id, (e) => {
              e.state = 'conflict';
              e.currentVersion = error.extensions.currentVersion;
            });
            this.emit({ kind: 'conflict', entry });
            break;
          }
          if (error.code === 'UNAUTHENTICATED' || error.code === 'FORBIDDEN') {
            this.authError = error.message;
            break;
          }
          this.remove(entry.id);
          this.emit({ kind: 'refused', entry, error });
          continue;
        }
        this.networkError = null;
        this.known(match.id, match.version);
        this.remove(entry.id);
        this.emit({ kind: 'applied', entry, match });
      }
    } finally {
      this.flushing = false;
      this.sending = null;
      this.emit();
    }
  }

  update(id, change) {
    this.entries = this.load();
    const entry = this.entries.find((e) => e.id === id);
    if (entry) change(entry);
    this.save();
  }

  remove(id) {
    this.entries = this.load().filter((e) => e.id !== id);
    this.save();
  }

  /** The operator's answer to a conflict: 'apply' sends the entry again against
   * `currentVersion` (with the entries tapped after it for the same match following it),
   * 'discard' drops it. Then sending goes on. */
  resolve(id, choice, currentVersion) {
    this.entries = this.load();
    const at = this.entries.findIndex((e) => e.id === id);
    if (at < 0) return;
    const entry = this.entries[at];
    if (choice === 'discard') {
      this.entries.splice(at, 1);
    } else {
      let version = currentVersion;
      for (const later of this.entries.slice(at)) {
        if (later.matchId !== entry.matchId) continue;
        later.expectedVersion = version;
        later.state = 'waiting';
        delete later.currentVersion;
        version += 1;
      }
    }
    this.save();
    this.flush();
  }
}
