// Debian's Chromium for the page tests (GraphiQL, the console, the scoreboard), driven by
// playwright-core: the binary scripts/test installs (or CHROMIUM), with the flags this closed
// network needs, and the folder screenshots are kept in as test artifacts.

import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { repo } from './server.mjs';

/** Where screenshots go: kept as test artifacts. */
export const ARTIFACTS = path.join(repo, 'clients', 'artifacts');

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// The network here is closed: without these Chromium stalls on connections it cannot make.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches Chromium (and makes the artifacts folder); fails loudly when it is missing. */
export async function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: install Debian's chromium ` +
        '(apt-get install -y chromium; scripts/test does) or set CHROMIUM',
    );
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
}
