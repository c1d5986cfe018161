#!/usr/bin/env node
// Runs the browser end-to-end tests of Tafel's web client: every flows/*.test.mjs under node:test
// (each file in its own process, with its own `tafel serve` and Chromium, one file at a time).
//
//   node web-client/e2e/run.mjs              # every test
//   node web-client/e2e/run.mjs voting lock  # only tests whose name contains one of the words
//   node web-client/e2e/run.mjs --screenshots screenshots  # also refresh docs/screenshots
//
// Exit code: 0 when every test passed, 1 when one failed, 2 when the tests cannot start (no
// built web client, no server binary, no Chromium).

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const TAFEL_BIN = process.env.TAFEL_BIN ||
  (process.env.CARGO_TARGET_DIR
    ? path.resolve(process.env.CARGO_TARGET_DIR, 'debug/tafel')
    : path.resolve(here, '../../target/debug/tafel'))
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'

const args = process.argv.slice(2)
const refreshDocs = args.includes('--screenshots')
const words = args.filter((a) => a !== '--screenshots')

const missing = [
  [path.join(here, '../dist/index.html'), 'build the web client: npm ci && npm run build in web-client'],
  [TAFEL_BIN, 'build the server (cargo build -p tafel-server) or set TAFEL_BIN'],
  [CHROMIUM, 'install Chromium (apt-get install -y chromium) or set CHROMIUM'],
  [path.join(here, 'node_modules/playwright-core'), 'npm ci in web-client/e2e']
].filter(([file]) => !fs.existsSync(file))
for (const [file, fix] of missing) console.error(`e2e: cannot start: ${file} is missing: ${fix}`)
if (missing.length) process.exit(2)
if (refreshDocs && words.length && !words.some((w) => 'screenshots'.includes(w.toLowerCase()))) {
  console.error('e2e: --screenshots needs the screenshots test among the selected tests')
  process.exit(2)
}
if (process.env.TAFEL_BIN) console.log(`e2e: testing TAFEL_BIN=${TAFEL_BIN}, not the workspace build`)

const escape = (w) => w.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
const files = fs.readdirSync(path.join(here, 'flows')).filter((f) => f.endsWith('.test.mjs')).sort()
  .map((f) => path.join('flows', f))
const nodeArgs = ['--test', '--test-concurrency=1', '--test-reporter=spec',
  ...(words.length ? ['--test-name-pattern', `/${words.map(escape).join('|')}/i`] : []), ...files]
const result = spawnSync(process.execPath, nodeArgs, {
  cwd: here,
  stdio: 'inherit',
  env: { ...process.env, ...(refreshDocs ? { E2E_REFRESH_DOCS: '1' } : {}) }
})
process.exit(result.status ?? 1)
