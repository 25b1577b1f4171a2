// Starts the real Scoreline server (the `api` binary that scripts/test builds) on a free
// loopback port, with demo data and a known signing secret, and mints tokens with its own
// `api token` command. Tests fail loudly when the binary is missing.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
export const SECRET = 'scoreline-client-tests-secret-0123456789abcdef';

export function apiBinary() {
  const bin = process.env.SCORELINE_API_BIN ?? path.join(repo, 'target', 'debug', 'api');
  if (!existsSync(bin)) {
    throw new Error(
      `the api binary is missing at ${bin}: build it with \`cargo build -p api\` ` +
        'or set SCORELINE_API_BIN (scripts/test does both)',
    );
  }
  return bin;
}

/** A running server: `url`, `wsUrl`, `token(role)`, `stop()`, and its log lines. A value of
 * `undefined` in `env` unsets that variable. */
export async function startServer(env = {}) {
  const bin = apiBinary();
  const merged = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_FORMAT: 'json',
    RUST_LOG: 'info',
    AUTH_JWT_SECRET: SECRET,
    DEMO: 'true',
    ...env,
  };
  // `undefined` in `env` unsets a variable.
  for (const [key, value] of Object.entries(merged)) {
    if (value === undefined) delete merged[key];
  }
  const child = spawn(bin, ['serve'], {
    env: merged,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs = [];
  const lines = readline.createInterface({ input: child.stderr });
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the server did not start within 30 s:\n${logs.join('\n')}`)),
      30_000,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code}:\n${logs.join('\n')}`));
    });
    lines.on('line', (line) => {
      logs.push(line);
      try {
        const event = JSON.parse(line);
        if (event.message === 'Scoreline is listening') {
          clearTimeout(timer);
          resolve(event.address);
        }
      } catch {
        // Every line is JSON in JSON mode; a line that is not is kept for the failure message.
      }
    });
  });
  child.removeAllListeners('exit');
  return {
    url: `http://${address}`,
    graphql: `http://${address}/graphql`,
    wsUrl: `ws://${address}/graphql`,
    logs,
    token(role, sub = `client-tests-${role}`) {
      const out = spawnSync(bin, ['token', '--role', role, '--sub', sub, '--ttl', '1h'], {
        env: { ...process.env, AUTH_JWT_SECRET: SECRET },
        encoding: 'utf8',
      });
      if (out.status !== 0) throw new Error(`api token failed: ${out.stderr}`);
      return out.stdout.trim();
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** POSTs a GraphQL request with fetch; returns the parsed body. */
export async function graphql(server, query, variables = {}, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(server.graphql, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

/** Records a scoring event as an operator; returns the match's new version. */
export async function recordGoal(server, matchId, side = 'HOME') {
  const body = await graphql(
    server,
    'mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }',
    { i: { matchId, type: 'GOAL', side } },
    server.token('operator'),
  );
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data.recordEvent.version;
}

/** `promise`, or a rejection naming `what` after `ms` milliseconds. */
export function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once `predicate()` holds, polling every `every` ms. */
export function waitFor(predicate, every = 20) {
  return new Promise((resolve) => {
    const tick = () => (predicate() ? resolve() : setTimeout(tick, every));
    tick();
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
