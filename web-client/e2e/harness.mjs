// The harness of the browser tests (node:test): one `tafel serve` and one Chromium per test file
// (node --test runs each file in its own process), tokens, the HTTP API, and helpers that reach the
// app only through the URLs and data-testid attributes of web-client/TESTIDS.md.
//
// A flow file calls `flow(name, async (s) => { … })`: `s` is a Session whose browser contexts are
// closed after the test; `s.note(text)` prints a line under the test's result; a failed test's
// pages are captured as full-page screenshots into the temp folder, whose path is printed.
//
// Environment: TAFEL_BIN (the server binary; default $CARGO_TARGET_DIR/debug/tafel, else
// ../../target/debug/tafel from this file), CHROMIUM (default /usr/bin/chromium), E2E_HEADED=1
// (show the browser), E2E_KEEP=1 (keep the temp store and server log), E2E_REFRESH_DOCS=1 (set by
// `run.mjs --screenshots`: the screenshots test also copies its pictures to docs/screenshots/).

import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import assert from 'node:assert/strict'
import { test, before, after } from 'node:test'
import { chromium } from 'playwright-core'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)
export const AXE = require.resolve('axe-core/axe.min.js')
export const repo = path.resolve(here, '../..')
export const TAFEL_BIN = process.env.TAFEL_BIN ||
  (process.env.CARGO_TARGET_DIR
    ? path.resolve(process.env.CARGO_TARGET_DIR, 'debug/tafel')
    : path.resolve(here, '../../target/debug/tafel'))
export const WEB_DIR = path.resolve(here, '../dist')
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
export const SCREENSHOTS = path.join(here, 'screenshots')
export const DOC_SCREENSHOTS = path.join(repo, 'docs', 'screenshots')
export const REFRESH_DOCS = process.env.E2E_REFRESH_DOCS === '1'
export const SECRET = 'e2e-secret'
export const TEMPLATE = 'cao-di-organisatie'

// ---------------------------------------------------------------------------------------------
// Small tools

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Calls fn every `interval` ms until it returns a truthy value; returns { value, elapsed }. */
export async function poll (fn, { timeout = 5000, interval = 50, message = 'condition' } = {}) {
  const start = performance.now()
  let last
  for (;;) {
    try {
      last = await fn()
      if (last) return { value: last, elapsed: performance.now() - start }
    } catch (e) {
      last = e
    }
    if (performance.now() - start > timeout) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last)
      throw new Error(`timed out after ${timeout} ms waiting for ${message} (last: ${detail})`)
    }
    await sleep(interval)
  }
}

/** Checks that fn stays falsy for `duration` ms (polling every 100 ms). */
export async function never (fn, { duration = 1500, message = 'condition' } = {}) {
  const start = performance.now()
  while (performance.now() - start < duration) {
    const v = await fn()
    if (v) throw new Error(`${message} (after ${Math.round(performance.now() - start)} ms: ${JSON.stringify(v)})`)
    await sleep(100)
  }
}

export const b64url = (s) => Buffer.from(s).toString('base64url')

/** An HS256 JWT signed with the server's secret. */
export function mint ({ sub, name, role, board, ttl = 8 * 3600 }) {
  const iat = Math.floor(Date.now() / 1000)
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const body = b64url(JSON.stringify({ sub, name, role, board, exp: iat + ttl, iat }))
  const sig = crypto.createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}

/** The personal token a page keeps for a board (POST /join's answer; an invite token only joins). */
export const keptToken = (page, board) => page.evaluate((b) => localStorage.getItem(`tafel:token:${b}`), board)
export const claimsOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
export const tokenOfUrl = (url) => new URL(url).hash.replace(/^#token=/, '')
export const short = (url) => url.replace(/#token=.*/, '#token=…')

// ---------------------------------------------------------------------------------------------
// The server

export let BASE = ''
export let server = null
export let tmp = ''
export const FT = mint({ sub: 'fac-e2e', name: 'Fien', role: 'facilitator', board: '*' })

export async function startServer () {
  if (!fs.existsSync(path.join(WEB_DIR, 'index.html'))) {
    throw new Error(`${path.join(WEB_DIR, 'index.html')} is missing: build the web client first: npm ci && npm run build in web-client`)
  }
  if (!fs.existsSync(TAFEL_BIN)) {
    throw new Error(`the server binary ${TAFEL_BIN} is missing: build it (cargo build -p tafel-server) or set TAFEL_BIN`)
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tafel-e2e-'))
  // Port 0: the kernel picks, and the server says what it bound ("Tafel listens on http://…").
  const logFile = path.join(tmp, 'server.log')
  const log = fs.openSync(logFile, 'a')
  server = spawn(TAFEL_BIN, ['serve', '--listen', '127.0.0.1:0', '--store', `file:${path.join(tmp, 'store')}`, '--web-dir', WEB_DIR], {
    env: { ...process.env, TAFEL_JWT_SECRET: SECRET, TAFEL_LOG: process.env.TAFEL_LOG || 'info' },
    stdio: ['ignore', log, log]
  })
  let exited = null
  server.once('exit', (code, signal) => { exited = { code, signal } })
  const { value: bound } = await poll(async () => {
    if (exited) throw new Error(`tafel serve exited (${JSON.stringify(exited)}); log: ${logFile}`)
    return fs.readFileSync(logFile, 'utf8').match(/^Tafel listens on (http:\/\/127\.0\.0\.1:\d+)$/m)?.[1]
  }, { timeout: 15000, interval: 50, message: `the "Tafel listens on" line in ${logFile}` })
  BASE = bound
  const health = await fetch(`${BASE}/healthz`)
  if (!health.ok) throw new Error(`${BASE}/healthz answered ${health.status}`)
  const index = await fetch(`${BASE}/`).then((r) => r.text())
  if (!index.includes('<')) throw new Error('the server does not serve the web client at /')
}

/**
 * Kills the shared `tafel serve` with SIGKILL and starts it again on the same address and store
 * (the pages reconnect to the same URL). Waits for the new "Tafel listens on" line.
 */
export async function restartServerHard () {
  const old = server
  const gone = new Promise((resolve) => old.once('exit', resolve))
  old.kill('SIGKILL')
  await gone
  const logFile = path.join(tmp, 'server.log')
  const listens = () => (fs.readFileSync(logFile, 'utf8').match(/^Tafel listens on /gm) ?? []).length
  const before = listens()
  const log = fs.openSync(logFile, 'a')
  server = spawn(TAFEL_BIN, ['serve', '--listen', BASE.replace(/^http:\/\//, ''), '--store', `file:${path.join(tmp, 'store')}`, '--web-dir', WEB_DIR], {
    env: { ...process.env, TAFEL_JWT_SECRET: SECRET, TAFEL_LOG: process.env.TAFEL_LOG || 'info' },
    stdio: ['ignore', log, log]
  })
  let exited = null
  server.once('exit', (code, signal) => { exited = { code, signal } })
  await poll(async () => {
    if (exited) throw new Error(`tafel serve exited at restart (${JSON.stringify(exited)}); log: ${logFile}`)
    return listens() > before
  }, { timeout: 20000, interval: 50, message: 'the restarted server\'s "Tafel listens on" line' })
}

export function stopServer () {
  if (server && server.exitCode === null) server.kill('SIGTERM')
}
process.on('exit', stopServer)
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopServer(); process.exit(130) })

export async function api (method, p, token, body) {
  const r = await fetch(`${BASE}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined
  })
  const text = await r.text()
  let json = null
  try { json = JSON.parse(text) } catch { /* not JSON */ }
  return { status: r.status, json, text }
}

export async function apiOk (method, p, token, body) {
  const r = await api(method, p, token, body)
  if (r.status >= 300) throw new Error(`${method} ${p} → ${r.status} ${r.text}`)
  return r.json
}

/** The server's count of refused updates (`tafel_refused_updates_total` on /metrics). */
export async function refusedUpdates () {
  const text = await fetch(`${BASE}/metrics`).then((r) => r.text())
  const line = text.split('\n').find((l) => l.startsWith('tafel_refused_updates_total '))
  assert.ok(line, 'tafel_refused_updates_total on /metrics')
  return Number(line.split(' ')[1])
}

export const createBoard = async (title) => (await apiOk('POST', '/api/boards', FT, { title, template: TEMPLATE })).id
export const invite = async (board, role) => apiOk('POST', `/api/boards/${board}/invites`, FT, { role, ttl: '8h' })
export const control = async (board, cmd) => apiOk('POST', `/api/boards/${board}/control`, FT, cmd)
export const exportBoard = async (board, token = FT) => apiOk('GET', `/api/boards/${board}/export?format=json`, token)

export let templateCache = null
export async function template () {
  templateCache ??= await apiOk('GET', `/api/templates/${TEMPLATE}`, FT)
  return templateCache
}

// ---------------------------------------------------------------------------------------------
// The browser and the app (only through TESTIDS.md)

export let browser = null
export const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync']

// Either language is accepted where the contract names both; the contexts ask for Dutch.
export const ONLINE = /verbonden|connected/i
export const NOT_ONLINE = /offline|niet verbonden|not connected|disconnected/i
export const OFFLINE = /offline/i
export const NOT_ALLOWED = /Niet toegestaan|Not allowed/i
// The Dutch explanations of the refusal codes `section-locked` and `doc-locked` (src/i18n.ts) and the one
// shown for a reason without a code the client knows.
export const REFUSAL_NL = {
  'section-locked': 'Deze sectie is vergrendeld door de facilitator.',
  'doc-locked': 'Dit onderdeel van het bord is vergrendeld door de facilitator.'
}
export const REFUSED_NL = 'De server heeft deze wijziging geweigerd.'
// Set E2E_REFUSAL_CODES=1 against a server whose `permission-denied` reasons carry a code
// (`section-locked: …`): the coded explanation is then required, not only accepted.
export const REFUSAL_CODES = process.env.E2E_REFUSAL_CODES === '1'

export class Session {
  constructor (name) {
    this.name = name
    this.contexts = []
    this.diagnostics = []
  }

  async context (opts = {}, label = 'page') {
    const ctx = await browser.newContext({ locale: 'nl-NL', viewport: { width: 1280, height: 800 }, ...opts })
    ctx.setDefaultTimeout(10000)
    ctx.on('page', (page) => this.watch(page, label))
    this.contexts.push(ctx)
    return ctx
  }

  watch (page, label) {
    page.on('pageerror', (e) => this.diagnostics.push(`[${label}] pageerror: ${e.message}`))
    page.on('console', (m) => { if (m.type() === 'error') this.diagnostics.push(`[${label}] console.error: ${m.text()}`) })
  }

  /** Full-page screenshots of every open page, for a failed test. */
  async capture (dir) {
    const files = []
    let n = 0
    for (const ctx of this.contexts) {
      for (const page of ctx.pages()) {
        const file = path.join(dir, `${this.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40)}-${++n}.png`)
        if (await page.screenshot({ path: file, fullPage: true, timeout: 5000 }).then(() => true, () => false)) files.push(file)
      }
    }
    return files
  }

  async close () {
    for (const ctx of this.contexts) await ctx.close().catch(() => {})
  }
}

export const tid = (scope, id) => scope.getByTestId(id, { exact: true })

/** The "Niet opgeslagen" panel as shown: null when hidden, else its items and reasons. */
export async function unsavedPanel (page) {
  return page.evaluate(() => {
    const panel = document.querySelector('[data-testid="unsaved-panel"]')
    if (!panel || panel.hidden) return null
    const q = (el, id) => [...el.querySelectorAll(`[data-testid="${id}"]`)]
    return {
      title: panel.querySelector('h2')?.textContent ?? '',
      items: q(panel, 'unsaved-item').map((el) => ({
        doc: el.getAttribute('data-doc'), kind: el.getAttribute('data-kind'), id: el.getAttribute('data-id'),
        field: el.getAttribute('data-field'), gone: el.getAttribute('data-gone') === 'true',
        label: el.querySelector('[data-testid="unsaved-label"]')?.textContent ?? '',
        text: el.querySelector('[data-testid="unsaved-text"]')?.value ?? null,
        readonly: el.querySelector('[data-testid="unsaved-text"]')?.readOnly ?? false
      })),
      reasons: q(panel, 'unsaved-reason').map((el) => ({ code: el.getAttribute('data-code'), text: el.textContent })),
      raw: q(panel, 'unsaved-raw').map((el) => el.textContent)
    }
  })
}

/**
 * Checks the panel's explanation of a refusal for a lock. Against a server with typed refusals
 * the reason is `<code>: …` and the Dutch explanation of that code is shown (with the raw reason);
 * against one without (today's main) the generic refusal and the server's raw reason, which must
 * contain `rawFragment`. Returns 'coded' or 'generic'.
 */
export function assertLockReason (panel, code, rawFragment, s) {
  assert.ok(panel.reasons.length >= 1, `the panel explains the refusal (reasons: ${JSON.stringify(panel.reasons)})`)
  const reason = panel.reasons[0]
  if (reason.code === code) {
    assert.equal(reason.text, REFUSAL_NL[code], `the Dutch explanation of ${code}`)
    assert.ok(panel.raw.some((r) => r.includes(`${code}: `)), `the raw reason is shown too: ${JSON.stringify(panel.raw)}`)
    s.note(`panel: coded refusal ${code} → "${reason.text}" (${panel.raw[0]})`)
    return 'coded'
  }
  assert.ok(!REFUSAL_CODES, `E2E_REFUSAL_CODES=1 but the refusal had no ${code} code: ${JSON.stringify(panel)}`)
  assert.equal(reason.code, 'unknown', `a refusal without a known code is shown as unknown: ${JSON.stringify(panel.reasons)}`)
  assert.equal(reason.text, REFUSED_NL, 'the generic Dutch explanation')
  assert.ok(panel.raw.some((r) => r.includes(rawFragment)), `the server's raw reason is shown: ${JSON.stringify(panel.raw)}`)
  s.note(`panel: refusal without a code → generic "${reason.text}" + raw "${panel.raw[0]}"`)
  return 'generic'
}

/**
 * Opens an app URL and, when the name prompt appears, answers it; then waits until the board is
 * shown and connected. Returns { page, prompted }.
 */
export async function openBoard (ctx, url, name, { expectPrompt } = {}) {
  const page = await ctx.newPage()
  await page.goto(url)
  const which = await poll(async () => {
    if (await tid(page, 'name-input').isVisible()) return 'prompt'
    if (await tid(page, 'board-title').isVisible()) return 'board'
    return null
  }, { timeout: 10000, interval: 100, message: `name-input or board-title on ${short(url)}` })
  const prompted = which.value === 'prompt'
  if (expectPrompt !== undefined) assert.equal(prompted, expectPrompt, `name prompt ${expectPrompt ? 'expected' : 'not expected'} on ${short(url)}`)
  if (prompted) {
    await tid(page, 'name-input').fill(name)
    await tid(page, 'name-submit').click()
  }
  await tid(page, 'board-title').waitFor({ state: 'visible' })
  await waitOnline(page)
  return { page, prompted }
}

export async function waitOnline (page, timeout = 10000) {
  await poll(async () => {
    const t = await tid(page, 'connection-status').textContent({ timeout: 200 })
    return ONLINE.test(t) && !NOT_ONLINE.test(t) && t
  }, { timeout, interval: 100, message: 'connection-status to say "verbonden"' })
}

/** Ids of the cards shown in one section, in DOM order (cards are `card-<id>` with data-section). */
export async function cardIds (page, section) {
  return page.evaluate((section) => [...document.querySelectorAll('[data-testid^="card-"][data-section]')]
    .filter((el) => el.getAttribute('data-section') === section)
    .map((el) => el.getAttribute('data-testid').slice('card-'.length)), section)
}

/** The card-text value of a card, or null when the card is not in the DOM. */
export async function cardText (page, id) {
  return page.evaluate((id) => {
    const el = document.querySelector(`[data-testid="card-${CSS.escape(id)}"] [data-testid="card-text"]`)
    return el ? el.value : null
  }, id)
}

export const cardTextLocator = (page, id) => tid(tid(page, `card-${id}`), 'card-text')

/** Clicks add-card-<section> and returns the id of the new card. */
export async function addCard (page, section, text, { tap = false } = {}) {
  const before = new Set(await cardIds(page, section))
  const button = tid(page, `add-card-${section}`)
  if (tap) await button.tap(); else await button.click()
  const { value: id } = await poll(async () => (await cardIds(page, section)).find((c) => !before.has(c)),
    { timeout: 5000, message: `a new card in section-${section} after add-card-${section}` })
  if (text) await typeInto(cardTextLocator(page, id), text)
  return id
}

/** Focuses a textarea, puts the caret at the end and types like a user. */
export async function typeInto (locator, text, { delay = 15 } = {}) {
  await locator.focus()
  await locator.press('Control+End')
  await locator.pressSequentially(text, { delay })
}

export async function waitCardText (page, id, pred, message, timeout = 5000) {
  return poll(async () => {
    const v = await cardText(page, id)
    return v !== null && (typeof pred === 'string' ? v === pred : pred(v)) ? v || true : null
  }, { timeout, interval: 50, message })
}

/** Opens a tab of the facilitator's panel: session, voting, people or log. */
export async function facTab (page, tab) {
  await tid(page, `fac-tab-${tab}`).click()
  await tid(page, `fac-tab-${tab}`).and(page.locator('[aria-selected="true"]')).waitFor()
}

/** The facilitator's lock checkbox of a section (the session tab, its "Secties vergrendelen" opened). */
export async function sectionLock (page, section) {
  await facTab(page, 'session')
  const details = page.locator('details.section-locks')
  if (!(await details.evaluate((d) => d.open))) await details.locator('summary').click()
  return tid(page, `lock-section-${section}`)
}

/** Opens the facilitator's moderation menu of a card (spotlight, hide, merge). */
export async function cardMenu (page, id) {
  const details = tid(page, `card-${id}`).locator('details.card-menu')
  if (!(await details.evaluate((d) => d.open))) await tid(page, `card-menu-${id}`).click()
}

/** Whether a button is absent or disabled. */
export async function goneOrDisabled (locator) {
  if (await locator.count() === 0) return true
  if (!(await locator.first().isVisible())) return true
  return locator.first().isDisabled()
}


/**
 * Runs axe-core (WCAG 2 A and AA rules) on the page as it is. Returns `serious`: the violations
 * of impact "serious" or "critical", each as one readable line (rule id, impact, help, the first
 * node's target, how many nodes), and `other`: the same for lesser impacts, and `passed`: how many
 * rules passed (so a run that checked nothing shows).
 */
export async function axeRun (page, label) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.addScriptTag({ path: AXE })
  const { violations, passed } = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] })
    return {
      passed: result.passes.length,
      violations: result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,
        target: v.nodes[0] ? v.nodes[0].target.join(' ') : '', summary: v.nodes[0]?.failureSummary ?? ''
      }))
    }
  })
  const line = (v) => `[${label}] ${v.id} (${v.impact}): ${v.help} — first node ${v.target} (${v.nodes} node${v.nodes === 1 ? '' : 's'}) ${v.summary.split('\n').slice(0, 3).join(' ')}`
  const severe = (v) => v.impact === 'serious' || v.impact === 'critical'
  return { serious: violations.filter(severe).map(line), other: violations.filter((v) => !severe(v)).map(line), passed }
}

// ---------------------------------------------------------------------------------------------
// node:test glue

let failed = false

before(async () => {
  await startServer()
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: !process.env.E2E_HEADED, args: LAUNCH_ARGS })
})

after(async () => {
  await browser?.close().catch(() => {})
  stopServer()
  if (failed || process.env.E2E_KEEP) console.log(`# e2e: server log and store in ${tmp}`)
  else if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
})

/**
 * One browser test: what a user does, as its name. Runs `fn(session)` with a 120 s limit; on
 * failure the open pages are captured and the pages' console errors listed as diagnostics.
 */
export function flow (name, fn) {
  test(name, { timeout: 120000 }, async (t) => {
    const s = new Session(name)
    s.note = (n) => t.diagnostic(n)
    try {
      await fn(s)
    } catch (e) {
      failed = true
      for (const d of s.diagnostics.slice(0, 8)) t.diagnostic(d)
      const shots = await s.capture(tmp)
      if (shots.length) t.diagnostic(`screenshots: ${shots.join(' ')}`)
      throw e
    } finally {
      await s.close()
    }
  })
}
