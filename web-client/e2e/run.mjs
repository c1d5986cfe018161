#!/usr/bin/env node
// Browser end-to-end tests of Tafel's web client.
//
// Starts its own `tafel serve` (embedded store in a temp folder, the built web client from
// web-client/dist), drives headless Chromium through playwright-core, and talks to the app only
// through the URLs and data-testid attributes of web-client/TESTIDS.md.
//
//   node web-client/e2e/run.mjs              # every test
//   node web-client/e2e/run.mjs voting lock  # only tests whose name contains one of the words
//   node web-client/e2e/run.mjs --screenshots screenshots  # also refresh docs/screenshots
//
// Test h's screenshots go to web-client/e2e/screenshots/ (full pages of a failed test to the temp
// folder), neither tracked; only `--screenshots` copies canvas.png and gap.png to docs/screenshots/, the
// README's pictures.
//
// Environment: TAFEL_BIN (the server binary, printed at start when set; default $CARGO_TARGET_DIR/debug/tafel, else
// ../../target/debug/tafel from this file),
// CHROMIUM (default /usr/bin/chromium), E2E_HEADED=1 (show the browser), E2E_KEEP=1 (keep the
// temp store and server log).

import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import assert from 'node:assert/strict'
import { chromium } from 'playwright-core'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)
const AXE = require.resolve('axe-core/axe.min.js')
const repo = path.resolve(here, '../..')
const TAFEL_BIN = process.env.TAFEL_BIN ||
  (process.env.CARGO_TARGET_DIR
    ? path.resolve(process.env.CARGO_TARGET_DIR, 'debug/tafel')
    : path.resolve(here, '../../target/debug/tafel'))
const WEB_DIR = path.resolve(here, '../dist')
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const SCREENSHOTS = path.join(here, 'screenshots')
const DOC_SCREENSHOTS = path.join(repo, 'docs', 'screenshots')
const REFRESH_DOCS = process.argv.includes('--screenshots')
const SECRET = 'e2e-secret'
const TEMPLATE = 'cao-di-organisatie'

// ---------------------------------------------------------------------------------------------
// Small tools

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Calls fn every `interval` ms until it returns a truthy value; returns { value, elapsed }. */
async function poll (fn, { timeout = 5000, interval = 50, message = 'condition' } = {}) {
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
async function never (fn, { duration = 1500, message = 'condition' } = {}) {
  const start = performance.now()
  while (performance.now() - start < duration) {
    const v = await fn()
    if (v) throw new Error(`${message} (after ${Math.round(performance.now() - start)} ms: ${JSON.stringify(v)})`)
    await sleep(100)
  }
}

const b64url = (s) => Buffer.from(s).toString('base64url')

/** An HS256 JWT signed with the server's secret. */
function mint ({ sub, name, role, board, ttl = 8 * 3600 }) {
  const iat = Math.floor(Date.now() / 1000)
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const body = b64url(JSON.stringify({ sub, name, role, board, exp: iat + ttl, iat }))
  const sig = crypto.createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}

/** The personal token a page keeps for a board (POST /join's answer; an invite token only joins). */
const keptToken = (page, board) => page.evaluate((b) => localStorage.getItem(`tafel:token:${b}`), board)
const claimsOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
const tokenOfUrl = (url) => new URL(url).hash.replace(/^#token=/, '')
const short = (url) => url.replace(/#token=.*/, '#token=…')

// ---------------------------------------------------------------------------------------------
// The server

let BASE = ''
let server = null
let tmp = ''
const FT = mint({ sub: 'fac-e2e', name: 'Fien', role: 'facilitator', board: '*' })

async function startServer () {
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

function stopServer () {
  if (server && server.exitCode === null) server.kill('SIGTERM')
}
process.on('exit', stopServer)
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopServer(); process.exit(130) })

async function api (method, p, token, body) {
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

async function apiOk (method, p, token, body) {
  const r = await api(method, p, token, body)
  if (r.status >= 300) throw new Error(`${method} ${p} → ${r.status} ${r.text}`)
  return r.json
}

/** The server's count of refused updates (`tafel_refused_updates_total` on /metrics). */
async function refusedUpdates () {
  const text = await fetch(`${BASE}/metrics`).then((r) => r.text())
  const line = text.split('\n').find((l) => l.startsWith('tafel_refused_updates_total '))
  assert.ok(line, 'tafel_refused_updates_total on /metrics')
  return Number(line.split(' ')[1])
}

const createBoard = async (title) => (await apiOk('POST', '/api/boards', FT, { title, template: TEMPLATE })).id
const invite = async (board, role) => apiOk('POST', `/api/boards/${board}/invites`, FT, { role, ttl: '8h' })
const control = async (board, cmd) => apiOk('POST', `/api/boards/${board}/control`, FT, cmd)
const exportBoard = async (board, token = FT) => apiOk('GET', `/api/boards/${board}/export?format=json`, token)

let templateCache = null
async function template () {
  templateCache ??= await apiOk('GET', `/api/templates/${TEMPLATE}`, FT)
  return templateCache
}

// ---------------------------------------------------------------------------------------------
// The browser and the app (only through TESTIDS.md)

let browser = null
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync']

// Either language is accepted where the contract names both; the contexts ask for Dutch.
const ONLINE = /verbonden|connected/i
const NOT_ONLINE = /offline|niet verbonden|not connected|disconnected/i
const OFFLINE = /offline/i
const NOT_ALLOWED = /Niet toegestaan|Not allowed/i
// The Dutch explanations of the refusal codes `section-locked` and `doc-locked` (src/i18n.ts) and the one
// shown for a reason without a code the client knows.
const REFUSAL_NL = {
  'section-locked': 'Deze sectie is vergrendeld door de facilitator.',
  'doc-locked': 'Dit onderdeel van het bord is vergrendeld door de facilitator.'
}
const REFUSED_NL = 'De server heeft deze wijziging geweigerd.'
// Set E2E_REFUSAL_CODES=1 against a server whose `permission-denied` reasons carry a code
// (`section-locked: …`): the coded explanation is then required, not only accepted.
const REFUSAL_CODES = process.env.E2E_REFUSAL_CODES === '1'

class Session {
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
        const file = path.join(dir, `${this.name.split('.')[0]}-${++n}.png`)
        if (await page.screenshot({ path: file, fullPage: true, timeout: 5000 }).then(() => true, () => false)) files.push(file)
      }
    }
    return files
  }

  async close () {
    for (const ctx of this.contexts) await ctx.close().catch(() => {})
  }
}

const tid = (scope, id) => scope.getByTestId(id, { exact: true })

/** The "Niet opgeslagen" panel as shown: null when hidden, else its items and reasons. */
async function unsavedPanel (page) {
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
function assertLockReason (panel, code, rawFragment, s) {
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
async function openBoard (ctx, url, name, { expectPrompt } = {}) {
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

async function waitOnline (page, timeout = 10000) {
  await poll(async () => {
    const t = await tid(page, 'connection-status').textContent({ timeout: 200 })
    return ONLINE.test(t) && !NOT_ONLINE.test(t) && t
  }, { timeout, interval: 100, message: 'connection-status to say "verbonden"' })
}

/** Ids of the cards shown in one section, in DOM order (cards are `card-<id>` with data-section). */
async function cardIds (page, section) {
  return page.evaluate((section) => [...document.querySelectorAll('[data-testid^="card-"][data-section]')]
    .filter((el) => el.getAttribute('data-section') === section)
    .map((el) => el.getAttribute('data-testid').slice('card-'.length)), section)
}

/** The card-text value of a card, or null when the card is not in the DOM. */
async function cardText (page, id) {
  return page.evaluate((id) => {
    const el = document.querySelector(`[data-testid="card-${CSS.escape(id)}"] [data-testid="card-text"]`)
    return el ? el.value : null
  }, id)
}

const cardTextLocator = (page, id) => tid(tid(page, `card-${id}`), 'card-text')

/** Clicks add-card-<section> and returns the id of the new card. */
async function addCard (page, section, text, { tap = false } = {}) {
  const before = new Set(await cardIds(page, section))
  const button = tid(page, `add-card-${section}`)
  if (tap) await button.tap(); else await button.click()
  const { value: id } = await poll(async () => (await cardIds(page, section)).find((c) => !before.has(c)),
    { timeout: 5000, message: `a new card in section-${section} after add-card-${section}` })
  if (text) await typeInto(cardTextLocator(page, id), text)
  return id
}

/** Focuses a textarea, puts the caret at the end and types like a user. */
async function typeInto (locator, text, { delay = 15 } = {}) {
  await locator.focus()
  await locator.press('Control+End')
  await locator.pressSequentially(text, { delay })
}

async function waitCardText (page, id, pred, message, timeout = 5000) {
  return poll(async () => {
    const v = await cardText(page, id)
    return v !== null && (typeof pred === 'string' ? v === pred : pred(v)) ? v || true : null
  }, { timeout, interval: 50, message })
}

/** Whether a button is absent or disabled. */
async function goneOrDisabled (locator) {
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
async function axeRun (page, label) {
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
// The tests

const tests = []
const test = (name, fn) => tests.push({ name, fn })

test('a. facilitator signs in, creates a board from a template, lands on its canvas and makes employer and employee invites with a QR code', async (s) => {
  const ctx = await s.context({}, 'facilitator')
  const page = await ctx.newPage()
  await page.goto(`${BASE}/#token=${FT}`)
  const title = `Cao DI e2e ${Date.now()}`
  await tid(page, 'board-title-input').fill(title)
  const options = await tid(page, 'template-select').locator('option').evaluateAll((os) => os.map((o) => o.value))
  assert.ok(options.includes(TEMPLATE), `template-select offers ${TEMPLATE} (options: ${options.join(', ')})`)
  await tid(page, 'template-select').selectOption(TEMPLATE)
  await tid(page, 'create-board').click()

  const { value: board } = await poll(() => new URL(page.url()).searchParams.get('board'),
    { timeout: 10000, message: 'the address to become /?board=B after create-board' })
  // Per the contract the facilitator is taken to the board; answer a name prompt if one shows.
  const shown = await poll(async () => (await tid(page, 'name-input').isVisible() && 'prompt') ||
    (await tid(page, 'board-title').isVisible() && 'board'), { timeout: 10000, message: 'the board page' })
  if (shown.value === 'prompt') {
    await tid(page, 'name-input').fill('Fien')
    await tid(page, 'name-submit').click()
  }
  await tid(page, 'board-title').waitFor()
  await poll(async () => (await tid(page, 'board-title').textContent()).includes(title), { message: `board-title to contain "${title}"` })
  for (const section of (await template()).sections) {
    await tid(page, `section-${section.id}`).waitFor({ state: 'visible' })
  }
  await waitOnline(page)
  assert.equal(await tid(page, 'facilitator-panel').count(), 1, 'facilitator-panel exists for the facilitator')

  // The board exists on the server, made from the template.
  const summary = await apiOk('GET', `/api/boards/${board}`, FT)
  assert.equal(summary.title ?? title, title)

  const urls = {}
  for (const role of ['employer', 'employee']) {
    const previous = (await tid(page, 'invite-url').count()) ? await tid(page, 'invite-url').inputValue() : ''
    await tid(page, 'invite-role').selectOption(role)
    await tid(page, 'invite-create').click()
    const { value: url } = await poll(async () => {
      const v = await tid(page, 'invite-url').inputValue({ timeout: 200 })
      return v && v !== previous && v
    }, { timeout: 5000, message: `invite-url to show a new ${role} link` })
    const u = new URL(url)
    assert.equal(u.searchParams.get('board'), board, `the ${role} invite opens board ${board}: ${short(url)}`)
    const claims = claimsOf(tokenOfUrl(url))
    assert.equal(claims.role, role, `the ${role} invite carries a ${role} token`)
    assert.equal(claims.board, board)
    assert.ok(await tid(page, 'invite-url').evaluate((el) => el.readOnly), 'invite-url is a readonly input')
    await tid(page, 'invite-qr').waitFor({ state: 'visible' })
    const box = await tid(page, 'invite-qr').boundingBox()
    assert.ok(box && box.width >= 50 && box.height >= 50, `invite-qr is a visible image (box ${JSON.stringify(box)})`)
    urls[role] = url
  }

  // The employer's link works in another browser: it asks for a name.
  const other = await s.context({}, 'employer')
  const ep = await other.newPage()
  await ep.goto(urls.employer.replace(/^https?:\/\/[^/]+/, BASE))
  await tid(ep, 'name-input').waitFor({ state: 'visible' })
  assert.ok(await ep.getByLabel(/Je naam|Your name/).count() >= 1, 'name-input has the label "Je naam"')

  // And the board is in the facilitator's board list.
  const ctx2 = await s.context({}, 'facilitator-2')
  const list = await ctx2.newPage()
  await list.goto(`${BASE}/#token=${FT}`)
  const item = list.locator(`[data-testid="board-item"][data-board-id="${board}"]`)
  await item.waitFor({ state: 'visible' })
  assert.equal(await tid(item, 'open-board').count(), 1, 'board-item has an open-board link')
})

test('a2. an invite link asks for a name once, keeps the token and removes it from the address bar', async (s) => {
  const board = await createBoard('Uitnodiging')
  const inv = await invite(board, 'employer')
  const ctx = await s.context({}, 'employer')
  const { page } = await openBoard(ctx, inv.url, 'Erik', { expectPrompt: true })
  assert.ok(!page.url().includes('token='), `the token is removed from the address bar (${page.url()})`)
  await poll(async () => /Werkgever|Employer/.test(await tid(page, 'role-badge').textContent()), { message: 'role-badge "Werkgever"' })
  const stored = await page.evaluate((b) => ({ token: localStorage.getItem(`tafel:token:${b}`), name: localStorage.getItem('tafel:name') }), board)
  assert.ok(stored.token, `localStorage tafel:token:${board} holds the token`)
  assert.equal(claimsOf(stored.token).name, 'Erik', 'the kept token is the one POST /join returned (carries the name)')
  assert.equal(stored.name, 'Erik', 'localStorage tafel:name holds the name')
  // Opening /?board=B again goes straight to the board.
  const { page: again } = await openBoard(ctx, `${BASE}/?board=${board}`, 'Erik', { expectPrompt: false })
  await tid(again, 'section-bouwstenen').waitFor()
})

test('b. employer and employee co-edit one card: each sees the other\'s typing within 1 s', async (s) => {
  const board = await createBoard('Co-editing')
  const [invE, invM] = [await invite(board, 'employer'), await invite(board, 'employee')]
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const { page: employee } = await openBoard(await s.context({}, 'employee'), invM.url, 'Geheime Gerda')

  const first = 'Jaarlijks loopbaangesprek voor iedereen'
  const id = await addCard(employer, 'bouwstenen', first)
  // Typing has finished here; from now on the employee has 1 s.
  const { elapsed: e1 } = await waitCardText(employee, id, first, `the employee to see "${first}" in card-${id}`)
  s.note(`employer → employee: ${Math.round(e1)} ms`)
  assert.ok(e1 < 1000, `employee saw the employer's text after ${Math.round(e1)} ms (budget 1000 ms)`)

  const more = ', ook voor flexwerkers'
  await typeInto(cardTextLocator(employee, id), more)
  const { elapsed: e2 } = await waitCardText(employer, id, first + more, `the employer to see "${first + more}"`)
  s.note(`employee → employer: ${Math.round(e2)} ms`)
  assert.ok(e2 < 1000, `employer saw the employee's text after ${Math.round(e2)} ms (budget 1000 ms)`)
  assert.equal(await cardText(employee, id), first + more, 'both ends hold the same text')
})

test('c. role-based view: no facilitator panel for participants, the employee\'s chosen name never reaches the employer', async (s) => {
  const board = await createBoard('Anonimiteit')
  const [invE, invM] = [await invite(board, 'employer'), await invite(board, 'employee')]
  const NAME = 'Geheime Gerda'
  const ctxE = await s.context({}, 'employer')
  const leaks = []
  ctxE.on('page', (page) => page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
    if (buf.includes('Gerda')) leaks.push(`${ws.url()}: ${buf.toString('latin1').slice(0, 200)}`)
  })))
  // A positive control for the frame inspection: the employee's browser does receive the
  // employer's chosen name (in the employer's presence), so the same check would see a leak.
  const ctxM = await s.context({}, 'employee')
  let erikSeen = 0
  ctxM.on('page', (page) => page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    if ((Buffer.isBuffer(payload) ? payload : Buffer.from(payload)).includes('Erik')) erikSeen++
  })))
  const { page: employer } = await openBoard(ctxE, invE.url, 'Erik')
  const { page: employee } = await openBoard(ctxM, invM.url, NAME)

  await tid(employee, 'section-themas').waitFor()
  assert.equal(await tid(employee, 'facilitator-panel').count(), 0, 'the employee\'s DOM has no facilitator-panel')
  assert.equal(await tid(employer, 'facilitator-panel').count(), 0, 'the employer\'s DOM has no facilitator-panel')

  // The employee is active: adds a card in themas and edits it again later.
  const text = 'Roosters komen te laat'
  const id = await addCard(employee, 'themas', text)
  await waitCardText(employer, id, text, 'the employer to see the employee\'s themas card')
  // Present: the employer sees the employee under the server's pseudonym.
  await poll(async () => (await tid(employer, 'presence-item').allTextContents()).some((t) => /Medewerker \d+/.test(t)),
    { message: 'a presence-item "Medewerker N" on the employer\'s page' })
  // Name mode: authors show by name, the employee still as a pseudonym.
  await control(board, { action: 'author-mode', mode: 'name' })
  await poll(async () => /Medewerker \d+/.test(await tid(tid(employer, `card-${id}`), 'card-author').textContent({ timeout: 200 })),
    { message: 'card-author "Medewerker N" on the employee\'s card in name mode' })
  await typeInto(cardTextLocator(employee, id), ' (nachtdienst)')
  await waitCardText(employer, id, `${text} (nachtdienst)`, 'the employer to see the employee\'s edit')
  await sleep(500)

  const html = await employer.content()
  assert.ok(!html.includes(NAME), 'the employer\'s page HTML does not contain "Geheime Gerda"')
  assert.ok(!html.includes('Gerda'), 'the employer\'s page HTML does not contain "Gerda"')
  assert.deepEqual(leaks, [], 'no WebSocket frame to the employer carries "Gerda"')
  assert.ok(erikSeen > 0, 'control: frames to the employee do carry the employer\'s name "Erik"')
  const presence = await tid(employer, 'presence-item').allTextContents()
  assert.ok(!presence.some((t) => t.includes('Gerda')), `presence shows no chosen name: ${presence.join(' | ')}`)
})

test('d. a section lock makes bouwstenen read-only for the employer and the unlock gives it back', async (s) => {
  const board = await createBoard('Vergrendelen')
  const invE = await invite(board, 'employer')
  const { page: fac, prompted } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  s.note(`the facilitator's /?board=B#token=… link ${prompted ? 'asked' : 'did not ask'} for a name`)
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const base = 'Ontwikkelbudget per medewerker'
  const id = await addCard(employer, 'bouwstenen', base)
  await waitCardText(fac, id, base, 'the facilitator to see the employer\'s card')

  await tid(fac, 'lock-section-bouwstenen').check()
  await poll(async () => (await tid(employer, 'section-bouwstenen').getAttribute('data-locked')) === 'true',
    { message: 'section-bouwstenen data-locked="true" on the employer\'s page' })
  await poll(() => goneOrDisabled(tid(employer, 'add-card-bouwstenen')), { message: 'add-card-bouwstenen gone or disabled while locked' })
  const area = cardTextLocator(employer, id)
  const readonly = await poll(() => area.evaluate((el) => el.readOnly || el.disabled), { timeout: 3000, message: 'card-text readonly' })
    .then(() => true, () => false)
  s.note(readonly ? 'locked card-text is readonly' : 'locked card-text is NOT readonly; checking the server refusal path')

  // Force an edit past the UI: the server must refuse it (its refusal counter grows and the
  // employer is told "Niet toegestaan: …") and the facilitator must never see it. One input
  // event (as a paste would be), so the whole text is one refused update.
  const FORCED = ' GEFORCEERD'
  const refusedBefore = await refusedUpdates()
  await area.evaluate((el, text) => {
    el.readOnly = false
    el.disabled = false
    el.focus()
    el.value += text
    el.dispatchEvent(new Event('input', { bubbles: true }))
  }, FORCED)
  await poll(async () => (await refusedUpdates()) > refusedBefore,
    { message: `tafel_refused_updates_total to grow past ${refusedBefore} (the server refused the forced edit)` })
  await poll(async () => NOT_ALLOWED.test(await tid(employer, 'notice').textContent({ timeout: 200 })),
    { message: 'notice "Niet toegestaan: …" after the forced edit of a locked section' })
  await never(async () => (await cardText(fac, id))?.includes('GEFORCEERD'), { duration: 2000, message: 'the forced edit reached the facilitator' })
  const notice = (await tid(employer, 'notice').count()) ? (await tid(employer, 'notice').textContent()).trim() : ''
  s.note(`after the forced edit: employer's card "${await cardText(employer, id)}", notice "${notice}"`)
  const exported = await exportBoard(board)
  assert.ok(!JSON.stringify(exported.documents.canvas).includes('GEFORCEERD'), 'the forced edit is not stored')
  // The refused text is not lost silently: "Niet opgeslagen" shows it, with the reason explained.
  const { value: panel } = await poll(async () => {
    const p = await unsavedPanel(employer)
    return p && p.items.some((i) => i.id === id) && p
  }, { message: 'unsaved-panel with the forced edit\'s card after the refusal' })
  assert.equal(panel.title, 'Niet opgeslagen')
  assert.deepEqual(panel.items.map((i) => [i.doc, i.kind, i.id, i.field, i.text, i.gone, i.readonly]),
    [['canvas', 'card', id, 'text', base + FORCED, false, true]], 'the panel holds exactly the refused card text, read-only')
  assertLockReason(panel, 'section-locked', 'bouwstenen is locked by the facilitator', s)
  if (panel.reasons[0].code === 'section-locked') {
    assert.match(await tid(employer, 'notice').textContent(), /Niet toegestaan: Deze sectie is vergrendeld/, 'the notice explains the code')
  }
  await tid(employer, 'unsaved-dismiss').click()
  await poll(async () => (await unsavedPanel(employer)) === null, { message: 'unsaved-panel hidden after unsaved-dismiss' })

  await tid(fac, 'lock-section-bouwstenen').uncheck()
  await poll(async () => (await tid(employer, 'section-bouwstenen').getAttribute('data-locked')) !== 'true',
    { message: 'section-bouwstenen no longer data-locked after the unlock' })
  await poll(async () => (await tid(employer, 'add-card-bouwstenen').isVisible()) && (await tid(employer, 'add-card-bouwstenen').isEnabled()),
    { message: 'add-card-bouwstenen back after the unlock' })
  await poll(async () => !(await area.evaluate((el) => el.readOnly || el.disabled)), { message: 'card-text editable after the unlock' })
  // Whatever was refused has been dropped on the employer's side; a new edit goes through.
  await poll(async () => !(await cardText(employer, id))?.includes('GEFORCEERD'),
    { message: 'the refused text to disappear from the employer\'s card (client resync)' })
  await typeInto(area, ' na de lock')
  await waitCardText(fac, id, (v) => v.endsWith(' na de lock'), 'the facilitator to see the employer\'s edit after the unlock')
})

test('d2. offline edits refused on reconnect (the section was locked meanwhile) are shown under "Niet opgeslagen" with the reason, can be copied, survive a page reload until dismissed', async (s) => {
  const board = await createBoard('Niet opgeslagen')
  const invM = await invite(board, 'employee')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const ctxM = await s.context({}, 'employee')
  await ctxM.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE })
  const { page: employee } = await openBoard(ctxM, invM.url, 'Mia')
  const base = 'Werkdruk'
  const id = await addCard(employee, 'themas', base)
  await waitCardText(fac, id, base, 'the facilitator to see the employee\'s card')
  assert.equal(await unsavedPanel(employee), null, 'no unsaved-panel before any refusal')

  await ctxM.setOffline(true)
  await poll(async () => OFFLINE.test(await tid(employee, 'connection-status').textContent({ timeout: 200 })),
    { message: 'connection-status offline' })
  const EDIT = ' en roosterdruk'
  await typeInto(cardTextLocator(employee, id), EDIT)
  const fresh = await addCard(employee, 'themas', 'Idee onderweg: fietsplan')
  await tid(fac, 'lock-section-themas').check()
  await poll(async () => (await exportBoard(board)).documents.control?.session?.locks?.sections?.includes('themas'),
    { message: 'the server to store the lock of themas' })
  await poll(async () => (await tid(fac, 'section-themas').getAttribute('data-locked')) === 'true', { message: 'themas locked on the facilitator\'s page' })

  await ctxM.setOffline(false)
  await poll(async () => NOT_ALLOWED.test(await tid(employee, 'notice').textContent({ timeout: 200 })),
    { timeout: 10000, message: 'notice "Niet toegestaan: …" after reconnecting into the lock' })
  const { value: panel } = await poll(async () => {
    const p = await unsavedPanel(employee)
    return p && p.items.length >= 2 && p
  }, { timeout: 10000, message: 'unsaved-panel with the two refused offline texts' })
  const byId = Object.fromEntries(panel.items.map((i) => [i.id, i]))
  assert.equal(panel.items.length, 2, `exactly the two texts: ${JSON.stringify(panel.items)}`)
  assert.deepEqual([byId[id]?.text, byId[id]?.gone, byId[id]?.field], [base + EDIT, false, 'text'], 'the edited card: its whole text as typed')
  assert.deepEqual([byId[fresh]?.text, byId[fresh]?.gone], ['Idee onderweg: fietsplan', true], 'the card made offline: not on the server')
  assert.ok(panel.items.every((i) => i.readonly && i.doc === 'canvas' && i.label.includes('Thema')), `labels name the section: ${JSON.stringify(panel.items.map((i) => i.label))}`)
  const path = assertLockReason(panel, 'section-locked', 'themas is locked by the facilitator', s)
  const axe = await axeRun(employee, 'unsaved-panel')
  assert.deepEqual(axe.serious, [], 'axe: nothing serious or critical with the panel shown')

  // The board itself shows what the server holds.
  await waitCardText(employee, id, base, 'the employee\'s card back to the server\'s text after the reload')
  assert.equal(await cardText(employee, fresh), null, 'the refused new card is not on the board')
  const stored = JSON.stringify((await exportBoard(board)).documents.canvas)
  assert.ok(!stored.includes('roosterdruk') && !stored.includes('fietsplan'), `the refused offline edits are not stored: ${stored}`)
  await never(async () => (await cardText(fac, id)) !== base, { duration: 1000, message: 'the facilitator saw the refused edit' })

  // Copy.
  const item = employee.locator(`[data-testid="unsaved-item"][data-id="${id}"]`)
  await tid(item, 'unsaved-copy').click()
  await poll(async () => (await employee.evaluate(() => navigator.clipboard.readText())) === base + EDIT,
    { message: 'the clipboard to hold the copied text' })
  await poll(async () => /Tekst gekopieerd/.test(await tid(employee, 'notice').textContent()), { message: 'notice "Tekst gekopieerd"' })

  // English: the same panel, the explanation in English.
  await tid(employee, 'lang-switch').click()
  await poll(async () => (await unsavedPanel(employee))?.title === 'Not saved', { message: 'panel title "Not saved" in English' })
  const en = await unsavedPanel(employee)
  assert.equal(en.reasons[0].text, path === 'coded' ? 'This section is locked by the facilitator.' : 'The server refused this change.')
  await tid(employee, 'lang-switch').click()

  // A page reload before dismissing shows the same texts again (the copy is kept until dismissed).
  await employee.reload()
  await waitOnline(employee)
  const { value: again } = await poll(async () => {
    const p = await unsavedPanel(employee)
    return p && p.items.length === 2 && p
  }, { timeout: 10000, message: 'unsaved-panel again after a page reload' })
  assert.deepEqual(again.items.map((i) => i.text).sort(), [base + EDIT, 'Idee onderweg: fietsplan'].sort())

  await tid(employee, 'unsaved-dismiss').click()
  await poll(async () => (await unsavedPanel(employee)) === null, { message: 'unsaved-panel hidden after unsaved-dismiss' })
  await employee.reload()
  await waitOnline(employee)
  await never(async () => await unsavedPanel(employee), { duration: 1500, message: 'the dismissed panel came back after a reload' })

  // After the unlock the employee edits as usual, and nothing comes back.
  await tid(fac, 'lock-section-themas').uncheck()
  await poll(async () => (await tid(employee, 'section-themas').getAttribute('data-locked')) !== 'true', { message: 'themas unlocked for the employee' })
  await poll(async () => !(await cardTextLocator(employee, id).evaluate((el) => el.readOnly || el.disabled)), { message: 'card-text editable after the unlock' })
  await typeInto(cardTextLocator(employee, id), ' (opnieuw)')
  await waitCardText(fac, id, base + ' (opnieuw)', 'the facilitator to see the employee\'s edit after the unlock')
  assert.equal(await unsavedPanel(employee), null, 'no panel after an accepted edit')
})

test('d3. gap board: an offline edit of a row refused on reconnect into a lock of the gap document is shown under "Niet opgeslagen"; fields the employer did not change, or that others changed meanwhile, are not', async (s) => {
  const board = await createBoard('Gap niet opgeslagen')
  const invE = await invite(board, 'employer')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const ctxE = await s.context({}, 'employer')
  const { page: employer } = await openBoard(ctxE, invE.url, 'Erik')
  await tid(employer, 'tab-gap').click()
  await tid(fac, 'tab-gap').click()
  await tid(employer, 'add-row').click()
  const rowId = (await poll(() => employer.evaluate(() => document.querySelector('article[data-testid^="row-"]')?.getAttribute('data-testid')),
    { message: 'a new gap row' })).value.slice('row-'.length)
  const field = (page, f) => tid(tid(page, `row-${rowId}`), `row-${f}`)
  await typeInto(field(employer, 'onderwerp'), 'Scholing')
  await typeInto(field(employer, 'gap'), 'Te weinig tijd')
  await poll(async () => (await field(fac, 'onderwerp').inputValue()) === 'Scholing', { message: 'the facilitator to see the row' })
  await poll(async () => (await field(fac, 'gap').inputValue()) === 'Te weinig tijd', { message: 'the facilitator to see the gap field' })

  await ctxE.setOffline(true)
  await poll(async () => OFFLINE.test(await tid(employer, 'connection-status').textContent({ timeout: 200 })), { message: 'connection-status offline' })
  await typeInto(field(employer, 'huidig'), 'Geen opleidingsbudget')
  await tid(tid(employer, `row-${rowId}`), 'row-partijen').fill('werkgever, OR')
  // Meanwhile the facilitator rewrites the gap field: the employer's older copy of it differs from
  // the server's, but the employer did not change it, so it is not "theirs" to lose.
  await field(fac, 'gap').fill('Te weinig tijd en geld')
  await poll(async () => JSON.stringify((await exportBoard(board)).documents.gap).includes('Te weinig tijd en geld'), { message: 'the facilitator\'s gap edit stored' })
  await tid(fac, 'lock-doc-gap').check()
  await poll(async () => (await exportBoard(board)).documents.control?.session?.locks?.docs?.includes('gap'), { message: 'the gap lock stored' })

  await ctxE.setOffline(false)
  const { value: panel } = await poll(async () => {
    const p = await unsavedPanel(employer)
    return p && p.items.length >= 2 && p
  }, { timeout: 10000, message: 'unsaved-panel with the refused row fields' })
  assert.deepEqual(panel.items.map((i) => [i.doc, i.kind, i.id, i.field, i.text, i.gone]), [
    ['gap', 'row', rowId, 'huidig', 'Geen opleidingsbudget', false],
    ['gap', 'row', rowId, 'partijen', 'werkgever, OR', false]
  ], 'only the fields typed offline (not onderwerp, not the gap field the facilitator changed)')
  assert.deepEqual(panel.items.map((i) => i.label), ['Gap-analyse, Huidige situatie', 'Gap-analyse, Partijen (komma gescheiden)'])
  assertLockReason(panel, 'doc-locked', 'gap is locked by the facilitator', s)
  await poll(async () => (await field(employer, 'gap').inputValue()) === 'Te weinig tijd en geld', { message: 'the employer\'s row reloaded with the server\'s text' })
  assert.equal(await field(employer, 'huidig').inputValue(), '', 'the refused field is empty on the board')
  assert.ok(!JSON.stringify((await exportBoard(board)).documents.gap).includes('opleidingsbudget'), 'the refused edit is not stored')
})

/**
 * Passes a context's WebSockets through, rewriting each `permission-denied` (y-websocket message 2,
 * auth message 0, then the reason as a var string) with `rewrite(reason)`; counts what it saw.
 */
async function rewriteRefusals (ctx, rewrite) {
  const seen = []
  const varUint = (buf, pos) => {
    let n = 0; let shift = 0; let b
    do { b = buf[pos++]; n += (b & 0x7f) * 2 ** shift; shift += 7 } while (b & 0x80)
    return [n, pos]
  }
  const writeVarUint = (n) => {
    const out = []
    while (n > 0x7f) { out.push(0x80 | (n & 0x7f)); n = Math.floor(n / 128) }
    out.push(n)
    return out
  }
  await ctx.routeWebSocket(/\/ws\//, (ws) => {
    const server = ws.connectToServer()
    ws.onMessage((m) => server.send(m))
    server.onMessage((m) => {
      const buf = typeof m === 'string' ? null : Buffer.from(m)
      if (buf && buf[0] === 2 && buf[1] === 0) {
        const [len, at] = varUint(buf, 2)
        const reason = buf.subarray(at, at + len).toString('utf8')
        const next = Buffer.from(rewrite(reason), 'utf8')
        seen.push({ reason, sent: next.toString('utf8') })
        ws.send(Buffer.concat([Buffer.from([2, 0, ...writeVarUint(next.length)]), next]))
      } else {
        ws.send(m)
      }
    })
  })
  return seen
}

test('d4. typed refusals in the browser: a `section-locked: …` reason is explained in Dutch and English, a reason with an unknown code gets the generic text and the raw reason (reasons rewritten in transit to the new server format where the server does not send it yet)', async (s) => {
  const board = await createBoard('Getypte weigering')
  const invE = await invite(board, 'employer')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const ctxE = await s.context({}, 'employer')
  let mode = 'coded'
  const seen = await rewriteRefusals(ctxE, (reason) => {
    if (mode === 'unknown') return `frobnicated: ${reason.replace(/^[a-z-]+: /, '')}`
    return /^section-locked: /.test(reason) ? reason : `section-locked: ${reason}`
  })
  const { page: employer } = await openBoard(ctxE, invE.url, 'Erik')
  const force = async (id, text) => cardTextLocator(employer, id).evaluate((el, text) => {
    el.readOnly = false
    el.value += text
    el.dispatchEvent(new Event('input', { bubbles: true }))
  }, text)
  const a = await addCard(employer, 'bouwstenen', 'Eerste kaart')
  const b = await addCard(employer, 'bouwstenen', 'Tweede kaart')
  await waitCardText(fac, b, 'Tweede kaart', 'the facilitator to see both cards')
  await tid(fac, 'lock-section-bouwstenen').check()
  await poll(async () => (await tid(employer, 'section-bouwstenen').getAttribute('data-locked')) === 'true', { message: 'bouwstenen locked for the employer' })

  await force(a, ' X1')
  const { value: panel } = await poll(async () => { const p = await unsavedPanel(employer); return p?.items.length && p },
    { message: 'unsaved-panel after the coded refusal' })
  assert.ok(seen.length >= 1, 'a permission-denied passed the route')
  s.note(`server sent "${seen[0].reason}", the page got "${seen[0].sent}"`)
  assert.deepEqual(panel.reasons, [{ code: 'section-locked', text: REFUSAL_NL['section-locked'] }])
  assert.equal(panel.raw[0], `Melding van de server: ${seen[0].sent}`)
  assert.deepEqual(panel.items.map((i) => [i.id, i.text]), [[a, 'Eerste kaart X1']])
  assert.equal(await tid(employer, 'notice').textContent(), `Niet toegestaan: ${REFUSAL_NL['section-locked']}`)
  await tid(employer, 'lang-switch').click()
  await poll(async () => (await unsavedPanel(employer))?.reasons[0]?.text === 'This section is locked by the facilitator.', { message: 'the English explanation' })
  await tid(employer, 'lang-switch').click()
  await tid(employer, 'unsaved-dismiss').click()
  await poll(async () => (await unsavedPanel(employer)) === null, { message: 'panel dismissed' })

  mode = 'unknown'
  await force(b, ' X2')
  const { value: generic } = await poll(async () => { const p = await unsavedPanel(employer); return p?.items.length && p },
    { message: 'unsaved-panel after a refusal with an unknown code' })
  assert.deepEqual(generic.reasons, [{ code: 'unknown', text: REFUSED_NL }])
  assert.match(generic.raw[0], /^Melding van de server: frobnicated: .*bouwstenen/)
  assert.deepEqual(generic.items.map((i) => [i.id, i.text]), [[b, 'Tweede kaart X2']])
  assert.match(await tid(employer, 'notice').textContent(), /^Niet toegestaan: frobnicated: .*bouwstenen/)
  const stored = JSON.stringify((await exportBoard(board)).documents.canvas)
  assert.ok(!stored.includes('X1') && !stored.includes('X2'), 'neither forced edit is stored')
})

test('e. dot voting: a budget of 2 stops the third dot, the server counts 2, the reveal shows the same totals everywhere', async (s) => {
  const board = await createBoard('Stemmen')
  const [invE, invM] = [await invite(board, 'employer'), await invite(board, 'employee')]
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const { page: employee } = await openBoard(await s.context({}, 'employee'), invM.url, 'Mia')
  const ids = []
  for (const text of ['Vitaliteitsbudget', 'Roosterinspraak', 'Generatiepact']) ids.push(await addCard(employer, 'bouwstenen', text))
  for (const id of ids) await waitCardText(fac, id, (v) => v.length > 0, `the facilitator to see card ${id}`)

  await tid(fac, 'round-budget').fill('2')
  await tid(fac, 'round-open').click()
  for (const id of ids) await tid(employer, `vote-${id}`).waitFor({ state: 'visible' })
  const left = async (page, n) => poll(async () => new RegExp(`(^|\\D)${n}(\\D|$)`).test(await tid(page, 'votes-left').textContent({ timeout: 200 })),
    { message: `votes-left to show ${n}` })
  await left(employer, 2)
  await tid(employer, `vote-${ids[0]}`).click()
  await left(employer, 1)
  await tid(employer, `vote-${ids[1]}`).click()
  await left(employer, 0)
  const third = tid(employer, `vote-${ids[2]}`)
  if (await goneOrDisabled(third)) {
    s.note('third vote button is disabled/absent')
  } else {
    s.note('third vote button still enabled; clicking it to check the server refuses')
    await third.click()
    await sleep(1000)
  }

  const rounds = (await exportBoard(board)).documents.control.rounds
  const [round] = Object.keys(rounds)
  assert.ok(round, 'round-open opened a round')
  assert.deepEqual([...rounds[round].cards].sort(), [...ids].sort(), 'the round is over all bouwstenen cards')
  assert.equal(rounds[round].budget, 2)
  const ballot = await apiOk('GET', `/api/boards/${board}/rounds/${round}/ballot`, await keptToken(employer, board))
  const counted = Object.values(ballot.votes).reduce((a, b) => a + b, 0)
  assert.equal(counted, 2, `the employer's ballot counts 2 dots (${JSON.stringify(ballot.votes)})`)
  assert.deepEqual(ballot.votes, { [ids[0]]: 1, [ids[1]]: 1 })
  assert.equal(ballot.left, 0)

  await tid(employee, `vote-${ids[0]}`).click()
  await left(employee, 1)

  await tid(fac, 'round-reveal').click()
  const { value: totals } = await poll(async () => {
    const r = (await exportBoard(board)).documents.control.rounds[round]
    return r.status === 'revealed' && r.totals
  }, { message: 'the round to be revealed' })
  assert.deepEqual(totals, { [ids[0]]: 2, [ids[1]]: 1, [ids[2]]: 0 })
  for (const [who, page] of [['facilitator', fac], ['employer', employer], ['employee', employee]]) {
    for (const id of ids) {
      const shown = tid(tid(page, `card-${id}`), 'card-votes')
      if (totals[id] === 0) {
        await poll(async () => (await shown.count()) === 0 || /(^|\D)0(\D|$)/.test(await shown.textContent()),
          { message: `${who}: card-votes of ${id} absent or 0` })
      } else {
        await poll(async () => new RegExp(`(^|\\D)${totals[id]}(\\D|$)`).test(await shown.textContent({ timeout: 200 })),
          { message: `${who}: card-votes of ${id} to show ${totals[id]}` })
      }
    }
  }
  const staleVotes = async (page) => {
    const out = []
    for (const id of ids) {
      const b = tid(page, `vote-${id}`)
      if (await b.count()) out.push(`vote-${id}${await b.isVisible() ? '' : ' (hidden)'}${await b.isDisabled() ? ' (disabled)' : ''}`)
    }
    if (await tid(page, 'votes-left').count()) out.push(`votes-left "${await tid(page, 'votes-left').textContent()}"${await tid(page, 'votes-left').isVisible() ? '' : ' (hidden)'}`)
    return out
  }
  for (const [who, page] of [['employer', employer], ['employee', employee]]) {
    await poll(async () => (await staleVotes(page)).length === 0 || staleVotes(page).then((l) => { throw new Error(l.join(', ')) }),
      { message: `${who}: no vote-<id> buttons nor votes-left once the round is revealed (contract: only while a round is open)` })
  }
})

test('f. offline: the employer\'s edit waits while offline and reaches the facilitator after reconnecting', async (s) => {
  const board = await createBoard('Offline')
  const invE = await invite(board, 'employer')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const ctxE = await s.context({}, 'employer')
  const { page: employer } = await openBoard(ctxE, invE.url, 'Erik')
  const text = 'Thuiswerkregeling'
  const id = await addCard(employer, 'bouwstenen', text)
  await waitCardText(fac, id, text, 'the facilitator to see the card while online')

  await ctxE.setOffline(true)
  await poll(async () => OFFLINE.test(await tid(employer, 'connection-status').textContent({ timeout: 200 })),
    { timeout: 5000, message: 'connection-status "offline — je wijzigingen worden bewaard"' })
  const status = await tid(employer, 'connection-status').textContent()
  assert.match(status, /offline — (je wijzigingen worden bewaard|your changes are kept)/, `connection-status text: "${status}"`)
  const EDIT = ' (offline bewerkt)'
  await typeInto(cardTextLocator(employer, id), EDIT)
  assert.equal(await cardText(employer, id), text + EDIT, 'the employer keeps typing while offline')
  await never(async () => (await cardText(fac, id)) !== text, { duration: 2000, message: 'the facilitator saw the edit while the employer was offline' })

  await ctxE.setOffline(false)
  const { elapsed } = await waitCardText(fac, id, text + EDIT, 'the facilitator to see the offline edit after reconnecting', 10000)
  s.note(`offline edit arrived ${Math.round(elapsed)} ms after going online`)
  await waitOnline(employer)
})

test('g. phone (390×844, touch): the employee\'s board renders, add-card-themas is tappable, no horizontal scrolling', async (s) => {
  const board = await createBoard('Telefoon')
  const invM = await invite(board, 'employee')
  const ctx = await s.context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }, 'employee-phone')
  const { page } = await openBoard(ctx, invM.url, 'Mia')
  await tid(page, 'section-themas').waitFor({ state: 'visible' })
  const add = tid(page, 'add-card-themas')
  await add.scrollIntoViewIfNeeded()
  assert.ok(await add.isVisible(), 'add-card-themas is visible')
  const box = await add.boundingBox()
  assert.ok(box.x >= 0 && box.x + box.width <= 391, `add-card-themas lies within the screen width (${JSON.stringify(box)})`)
  const id = await addCard(page, 'themas', 'Minder avonddiensten', { tap: true })
  assert.equal(await cardText(page, id), 'Minder avonddiensten')
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }))
  assert.ok(widths.scroll <= 390 + 1, `no horizontal scrollbar: scrollWidth ${widths.scroll} (viewport 390)`)
})

test('n. language: Dutch by default, the lang-switch turns the page English (html[lang] and texts) and back', async (s) => {
  const board = await createBoard('Taal')
  const inv = await invite(board, 'union')
  const ctx = await s.context({}, 'union-lang')
  const { page } = await openBoard(ctx, inv.url, 'Uri')
  await tid(page, 'section-themas').waitFor()
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'nl', 'Dutch by default')
  const nl = await tid(page, 'tab-gap').textContent()
  await tid(page, 'lang-switch').click()
  await poll(async () => (await page.evaluate(() => document.documentElement.lang)) === 'en', { message: 'html[lang] = en' })
  const en = await tid(page, 'tab-gap').textContent()
  assert.notEqual(en, nl, `the gap tab's label changes language (${nl} → ${en})`)
  assert.match(await tid(page, 'connection-status').textContent(), /connected/i, 'the connection status speaks English')
  await tid(page, 'lang-switch').click()
  await poll(async () => (await page.evaluate(() => document.documentElement.lang)) === 'nl', { message: 'back to nl' })
})

test('o. presentation mode: an observer (room screen) follows the facilitator\'s focus to the gap board, and participants cannot write', async (s) => {
  const board = await createBoard('Presentatie')
  const [invO, invE] = [await invite(board, 'observer'), await invite(board, 'employer')]
  const ctxO = await s.context({}, 'room-screen')
  const { page: screen } = await openBoard(ctxO, invO.url, 'Zaalscherm')
  const ctxE = await s.context({}, 'employer-pres')
  const { page: employer } = await openBoard(ctxE, invE.url, 'Els')
  await tid(screen, 'section-themas').waitFor()
  assert.equal(await tid(screen, 'tab-gap').getAttribute('aria-selected'), 'false')
  await control(board, { action: 'presentation', on: true, focus: { doc: 'gap' } })
  await poll(async () => (await tid(screen, 'tab-gap').getAttribute('aria-selected')) === 'true',
    { timeout: 5000, message: 'the room screen switched to the gap board' })
  assert.ok(await screen.evaluate(() => document.body.classList.contains('presenting')), 'larger text for the projector')
  await poll(async () => (await tid(employer, 'add-card-themas').count()) === 0,
    { message: 'no add buttons for participants in presentation mode' })
  await control(board, { action: 'presentation', on: true, focus: { doc: 'canvas', section: 'bouwstenen' } })
  await poll(async () => (await tid(screen, 'tab-canvas').getAttribute('aria-selected')) === 'true',
    { message: 'the room screen followed back to the canvas' })
  await control(board, { action: 'presentation', on: false })
  await poll(async () => (await tid(employer, 'add-card-themas').count()) === 1, { message: 'writing is back after presentation mode' })
})

test('h. screenshots: canvas.png (tagged cards) and gap.png (filled rows), to docs/screenshots with --screenshots', async (s) => {
  const board = await createBoard('Cao Zorg & Welzijn — DI-werkgroep')
  const [invE, invM] = [await invite(board, 'employer'), await invite(board, 'employee')]
  const { page: fac } = await openBoard(await s.context({ viewport: { width: 1280, height: 800 } }, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const { page: employee } = await openBoard(await s.context({}, 'employee'), invM.url, 'Mia')
  await control(board, { action: 'step', step: '4' })
  await control(board, { action: 'phase', phase: 'Delen en bespreken' })

  // Tagged cards: staalkaart examples carry pijlers, thema and type.
  const examples = (await template()).staalkaart.slice(0, 4)
  await tid(fac, 'tab-staalkaart').click()
  for (const ex of examples) {
    await tid(fac, `example-${ex.id}`).waitFor()
    await tid(fac, `place-${ex.id}`).click()
  }
  await tid(fac, 'tab-canvas').click()
  await poll(async () => (await cardIds(fac, 'bouwstenen')).length >= examples.length, { message: `${examples.length} placed cards in bouwstenen` })
  await addCard(employee, 'themas', 'Nachtdiensten worden zwaarder na je vijftigste')
  await addCard(employer, 'themas', 'Weinig zicht op opleidingsmogelijkheden')
  await addCard(employer, 'ambitie-en-scope', 'Iedereen gezond en met plezier tot de AOW-leeftijd')
  await addCard(employer, 'proces', 'Rondetafelgesprekken met medewerkers in week 12 en 14')
  await addCard(employer, 'proces', 'Advies aan de cao-tafel vóór 1 juni')
  await poll(async () => (await cardIds(fac, 'themas')).length >= 2 && (await cardIds(fac, 'proces')).length >= 2,
    { message: 'the participants\' cards on the facilitator\'s canvas' })
  for (const p of [employer, employee, fac]) await p.evaluate(() => document.activeElement?.blur())
  const chips = await fac.evaluate(() => [...document.querySelectorAll('[data-testid^="card-"][data-section="bouwstenen"] [data-testid^="tag-"]')]
    .filter((el) => el.offsetParent !== null).length)
  s.note(`${chips} tag chips on the canvas`)
  assert.ok(chips >= examples.length, `the placed staalkaart cards show tag chips (found ${chips}; place-<id> should copy pijlers/thema/type)`)
  fs.mkdirSync(SCREENSHOTS, { recursive: true })
  // The view: the Procesafspraken and Bouwstenen sections, with the tagged staalkaart cards.
  await tid(fac, 'section-bouwstenen').evaluate((el) => { el.scrollIntoView({ block: 'start' }); window.scrollBy(0, -16) })
  await sleep(500)
  await fac.screenshot({ path: path.join(SCREENSHOTS, 'canvas.png') })
  if (process.env.E2E_DEBUG) await fac.screenshot({ path: path.join(tmp, 'canvas-full.png'), fullPage: true })

  await tid(fac, 'tab-gap').click()
  const rows = [
    ['Zwaar werk in de nachtdienst', 'Oudere medewerkers vallen vaker uit na nachtdiensten', 'Vrijstelling of minder nachtdiensten vanaf 57 jaar, zonder inkomensverlies', 'Geen regeling; verzuim bij 55+ is twee keer zo hoog', 'Generatieregeling en roosterinspraak', 'HR, OR, planners'],
    ['Scholing en loopbaan', 'Opleidingsbudget wordt nauwelijks gebruikt', 'Iedereen heeft elk jaar een loopbaangesprek en een persoonlijk budget', 'Geen tijd en geen overzicht van opleidingen', 'Ontwikkelbudget met uren, loopbaanscan', 'HR, leidinggevenden, O&O-fonds'],
    ['Werkdruk', 'Hoge ervaren werkdruk in de zorgteams', 'Werkdruk besproken in elk teamoverleg, met acties', 'Signalen komen niet bij het management', 'Werkdrukscan per team, vitaliteitscoach', 'OR, bedrijfsarts, teams']
  ]
  const rowIds = (page) => page.evaluate(() => {
    const fields = new Set(['onderwerp', 'huidig', 'gewenst', 'gap', 'oplossingen', 'partijen', 'up', 'down'])
    return [...document.querySelectorAll('[data-testid^="row-"]')].map((el) => el.getAttribute('data-testid').slice(4)).filter((id) => !fields.has(id))
  })
  // The facilitator adds rows 1 and 3, the employer row 2.
  await tid(employer, 'tab-gap').click()
  for (const [i, [onderwerp, huidig, gewenst, gap, oplossingen, partijen]] of rows.entries()) {
    const page = i === 1 ? employer : fac
    const before = new Set(await rowIds(page))
    await tid(page, 'add-row').click()
    const { value: id } = await poll(async () => (await rowIds(page)).find((r) => !before.has(r)), { message: 'a new row after add-row' })
    const row = tid(page, `row-${id}`)
    await tid(row, 'row-onderwerp').fill(onderwerp)
    await tid(row, 'row-huidig').fill(huidig)
    await tid(row, 'row-gewenst').fill(gewenst)
    await tid(row, 'row-gap').fill(gap)
    await tid(row, 'row-oplossingen').fill(oplossingen)
    await tid(row, 'row-partijen').fill(partijen)
    await tid(row, 'row-partijen').press('Tab')
  }
  // The rows are in the document on the server, not just on screen.
  await poll(async () => {
    const g = JSON.stringify((await exportBoard(board)).documents.gap)
    return rows.every((r) => g.includes(r[0]) && g.includes(r[4]))
  }, { message: 'the gap rows stored on the server' })
  await poll(async () => (await rowIds(fac)).length === rows.length, { message: 'the facilitator to see all three rows' })
  for (const p of [employer, fac]) await p.evaluate(() => document.activeElement?.blur())
  await fac.evaluate(() => window.scrollTo(0, 0))
  await sleep(500)
  await fac.screenshot({ path: path.join(SCREENSHOTS, 'gap.png') })
  if (process.env.E2E_DEBUG) await fac.screenshot({ path: path.join(tmp, 'gap-full.png'), fullPage: true })
  for (const f of ['canvas.png', 'gap.png']) {
    assert.ok(fs.statSync(path.join(SCREENSHOTS, f)).size > 10000, `${f} written`)
    if (REFRESH_DOCS) {
      fs.mkdirSync(DOC_SCREENSHOTS, { recursive: true })
      fs.copyFileSync(path.join(SCREENSHOTS, f), path.join(DOC_SCREENSHOTS, f))
      s.note(`refreshed docs/screenshots/${f}`)
    }
  }
})

test('i. accessibility: axe (WCAG 2 A/AA) finds nothing serious or critical on the board list, the name prompt, the employer\'s canvas, the gap board and the facilitator\'s page with its panel', async (s) => {
  const board = await createBoard('Toegankelijkheid')
  const invE = await invite(board, 'employer')
  const found = []
  const check = async (page, label) => {
    const r = await axeRun(page, label)
    assert.ok(r.passed > 5, `axe ran on the ${label} (${r.passed} rules passed)`)
    s.note(`${label}: ${r.passed} rules passed, ${r.serious.length} serious/critical, ${r.other.length} lesser`)
    for (const o of r.other) s.note(o)
    found.push(...r.serious)
  }

  // The board list (facilitator, /#token=…).
  const ctxF = await s.context({}, 'facilitator')
  const list = await ctxF.newPage()
  await list.goto(`${BASE}/#token=${FT}`)
  await list.locator(`[data-testid="board-item"][data-board-id="${board}"]`).waitFor({ state: 'visible' })
  await check(list, 'board list')

  // The name prompt of an invite.
  const ctxE = await s.context({}, 'employer')
  const prompt = await ctxE.newPage()
  await prompt.goto(invE.url)
  await tid(prompt, 'name-input').waitFor({ state: 'visible' })
  await check(prompt, 'name prompt')
  await prompt.close()

  // The employer's canvas with a few cards, tagged ones (from the staalkaart) among them.
  const { page: fac } = await openBoard(ctxF, `${BASE}/?board=${board}`, 'Fien')
  const { page: employer } = await openBoard(ctxE, invE.url, 'Erik')
  const examples = (await template()).staalkaart.slice(0, 2)
  await tid(fac, 'tab-staalkaart').click()
  for (const ex of examples) await tid(fac, `place-${ex.id}`).click()
  await tid(fac, 'tab-canvas').click()
  const mine = [
    await addCard(employer, 'themas', 'Nachtdiensten worden zwaarder'),
    await addCard(employer, 'bouwstenen', 'Vitaliteitsbudget voor iedereen'),
    await addCard(employer, 'proces', 'Advies aan de cao-tafel vóór 1 juni')
  ]
  await poll(async () => (await cardIds(employer, 'bouwstenen')).length >= examples.length + 1, { message: 'the placed cards on the employer\'s canvas' })
  for (const id of mine) await waitCardText(fac, id, (v) => v.length > 0, `the facilitator to see card ${id}`)
  await tid(employer, 'ready-toggle').click()
  await employer.evaluate(() => document.activeElement?.blur())
  await sleep(300)
  await check(employer, 'employer canvas')

  // The gap board with a filled row.
  await tid(employer, 'tab-gap').click()
  await tid(employer, 'add-row').click()
  const row = employer.locator('[data-testid^="row-"][class~="gap-row"]').first()
  await row.waitFor()
  await tid(row, 'row-onderwerp').fill('Werkdruk')
  await tid(row, 'row-huidig').fill('Hoge ervaren werkdruk')
  await tid(row, 'row-partijen').fill('OR, HR')
  await tid(row, 'row-partijen').press('Tab')
  await sleep(300)
  await check(employer, 'gap board')

  // The facilitator's board page with the panel (merge controls on the cards, a merged card in
  // the hidden list, the ready count): an invite with its QR code and the audit log open.
  await control(board, { action: 'merge', card: mine[2], into: mine[1] })
  await poll(async () => (await tid(fac, `hidden-${mine[2]}`).getAttribute('data-merged-into')) === mine[1], { message: 'the merged card in the facilitator\'s hidden list' })
  assert.equal(await tid(fac, `card-${mine[2]}`).count(), 0, 'a merged card is not on the facilitator\'s canvas either')
  await poll(async () => /1/.test(await tid(fac, 'ready-count').textContent()), { message: 'ready-count counting the employer' })
  await tid(fac, 'invite-role').selectOption('employee')
  await tid(fac, 'invite-create').click()
  await tid(fac, 'invite-qr').waitFor({ state: 'visible' })
  await poll(async () => (await tid(fac, 'invite-qr').getAttribute('src'))?.startsWith('data:'), { message: 'the invite QR code' })
  await tid(fac, 'step-select').selectOption('2')
  await poll(async () => /2/.test(await tid(fac, 'step-indicator').textContent()), { message: 'step-indicator to show step 2' })
  await tid(fac, 'audit-open').click()
  await tid(fac, 'audit-entry').first().waitFor({ state: 'visible' })
  await fac.evaluate(() => document.activeElement?.blur())
  await sleep(300)
  await check(fac, 'facilitator board')

  assert.deepEqual(found, [], `axe found ${found.length} serious or critical violation(s):\n${found.join('\n')}`)
})

test('j. keyboard: Tab reaches add-card-themas with a visible focus outline, Enter adds a card whose text has the focus', async (s) => {
  const board = await createBoard('Toetsenbord')
  const invE = await invite(board, 'employer')
  const { page } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  await tid(page, 'add-card-themas').waitFor({ state: 'visible' })
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0) })
  const active = () => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.tagName ?? null)
  const path_ = []
  for (let i = 0; i < 80 && (await active()) !== 'add-card-themas'; i++) {
    await page.keyboard.press('Tab')
    path_.push(await active())
  }
  assert.equal(await active(), 'add-card-themas', `Tab reaches add-card-themas (went through: ${path_.join(' → ')})`)
  s.note(`${path_.length} Tab presses to add-card-themas`)
  const outline = await tid(page, 'add-card-themas').evaluate((el) => {
    const cs = getComputedStyle(el)
    return { visible: el.matches(':focus-visible'), style: cs.outlineStyle, width: parseFloat(cs.outlineWidth) }
  })
  assert.ok(outline.visible && outline.style !== 'none' && outline.width >= 2, `add-card-themas shows a focus outline (${JSON.stringify(outline)})`)

  const before = new Set(await cardIds(page, 'themas'))
  await page.keyboard.press('Enter')
  const { value: id } = await poll(async () => (await cardIds(page, 'themas')).find((c) => !before.has(c)), { message: 'a new card after Enter on add-card-themas' })
  await poll(() => page.evaluate((id) => document.activeElement === document.querySelector(`[data-testid="card-${id}"] [data-testid="card-text"]`), id),
    { message: 'the new card\'s card-text to have the focus' })
  await page.keyboard.type('Met het toetsenbord', { delay: 10 })
  assert.equal(await cardText(page, id), 'Met het toetsenbord', 'typing goes into the new card')
})

test('k. merge: the facilitator merges card A into card B; every page shows B with A\'s text and A gone (in the facilitator\'s hidden list, restorable)', async (s) => {
  const board = await createBoard('Samenvoegen')
  const [invE, invM] = [await invite(board, 'employer'), await invite(board, 'employee')]
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const { page: employee } = await openBoard(await s.context({}, 'employee'), invM.url, 'Mia')
  const [A, B] = ['Vitaliteitsbudget voor 55-plussers', 'Roosterinspraak']
  const a = await addCard(employer, 'bouwstenen', A)
  const b = await addCard(employee, 'bouwstenen', B)
  await waitCardText(fac, a, A, 'the facilitator to see card A')
  await waitCardText(fac, b, B, 'the facilitator to see card B')
  for (const p of [employer, employee]) await p.evaluate(() => document.activeElement?.blur())

  // Participants have no merge control.
  assert.equal(await tid(employer, `merge-${a}`).count(), 0, 'no merge control for the employer')
  const select = tid(fac, `merge-${a}`)
  await poll(async () => (await select.locator('option').allTextContents()).some((o) => o.startsWith('Roosterinspraak')),
    { message: `merge-${a} to offer card B by its text` })
  const options = await select.locator('option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]))
  assert.ok(!options.some(([v]) => v === a), `merge-${a} does not offer the card itself (${JSON.stringify(options)})`)
  await select.selectOption(b)
  await tid(fac, `merge-go-${a}`).click()

  const merged = (v) => v.includes(B) && v.includes(A)
  for (const [who, page] of [['facilitator', fac], ['employer', employer], ['employee', employee]]) {
    await waitCardText(page, b, merged, `${who}: card B to hold B's and A's text`)
  }
  // Card A leaves every document: gone from every page, the facilitator's canvas included.
  for (const [who, page] of [['facilitator', fac], ['employer', employer], ['employee', employee]]) {
    await poll(async () => (await tid(page, `card-${a}`).count()) === 0, { message: `${who}: card A gone once merged` })
  }
  // The facilitator finds it in the hidden list (from the server), marked merged into B.
  const heldA = tid(fac, `hidden-${a}`)
  await poll(async () => (await heldA.count()) === 1 && (await heldA.getAttribute('data-merged-into')) === b,
    { message: 'facilitator: card A in hidden-list with data-merged-into=B' })
  const status = await heldA.textContent()
  assert.ok(status.includes(A.slice(0, 20)), `the hidden entry shows A's text (${status})`)
  assert.match(status, /samengevoegd|merged/, `the hidden entry says it was merged (${status})`)
  assert.ok(status.includes('Roosterinspraak'), `the hidden entry names card B by its text (${status})`)
  assert.equal(await tid(employer, 'hidden-list').count(), 0, 'no hidden list for the employer')

  const exported = await exportBoard(board)
  const cards = exported.documents.canvas.cards
  assert.equal(cards[a], undefined, 'card A is in no document')
  assert.ok(merged(cards[b].text), `the server holds B with A's text: ${JSON.stringify(cards[b].text)}`)
  const held = exported.hidden.find((h) => h.id === a)
  assert.ok(held && held.mergedInto === b && held.texts.text === A, `the facilitator's export holds A: ${JSON.stringify(exported.hidden)}`)
  const audit = await apiOk('GET', `/api/boards/${board}/audit`, FT)
  assert.ok(audit.some((e) => e.action === 'merge' && e.detail?.card === a && e.detail?.into === b), 'the merge is in the audit log')

  // Restore from the hidden list: A is back on every page under the same id, with its text.
  await tid(fac, `hidden-restore-${a}`).click()
  for (const [who, page] of [['facilitator', fac], ['employer', employer], ['employee', employee]]) {
    await waitCardText(page, a, A, `${who}: card A back after restore`)
  }
  await poll(async () => (await tid(fac, `hidden-${a}`).count()) === 0, { message: 'card A leaves the hidden list once restored' })
})

test('p. hide a gap row: the facilitator\'s hide-row takes it off the employer\'s page, hidden-list holds it, hidden-restore brings it back', async (s) => {
  const board = await createBoard('Rij verbergen')
  const invE = await invite(board, 'employer')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  await tid(employer, 'tab-gap').click()
  await tid(employer, 'add-row').click()
  const row = employer.locator('[data-testid^="row-"][class~="gap-row"]').first()
  await row.waitFor()
  const id = (await row.getAttribute('data-testid')).slice('row-'.length)
  await tid(row, 'row-onderwerp').fill('Ploegendienst na je 60e')
  await tid(row, 'row-onderwerp').press('Tab')
  await tid(fac, 'tab-gap').click()
  await poll(async () => (await tid(fac, `row-${id}`).count()) === 1, { message: 'the facilitator sees the row' })
  assert.equal(await tid(employer, `hide-row-${id}`).count(), 0, 'no hide-row for the employer')
  await tid(fac, `hide-row-${id}`).click()
  for (const [who, page] of [['facilitator', fac], ['employer', employer]]) {
    await poll(async () => (await tid(page, `row-${id}`).count()) === 0, { message: `${who}: the row gone once hidden` })
  }
  const held = tid(fac, `hidden-${id}`)
  await poll(async () => (await held.count()) === 1 && (await held.getAttribute('data-doc')) === 'gap', { message: 'the row in the facilitator\'s hidden-list' })
  assert.ok((await held.textContent()).includes('Ploegendienst'), 'the hidden entry shows the row\'s subject')
  await tid(fac, `hidden-restore-${id}`).click()
  await poll(async () => (await tid(employer, `row-${id}`).count()) === 1, { message: 'employer: the row back after restore' })
  await poll(async () => (await tid(tid(employer, `row-${id}`), 'row-onderwerp').inputValue()) === 'Ploegendienst na je 60e', { message: 'employer: the row\'s subject back' })
  await poll(async () => (await tid(fac, `hidden-${id}`).count()) === 0, { message: 'the row leaves the hidden list once restored' })
})

test('l. ready check: participants toggle ready-toggle and the facilitator\'s ready-count follows ("N van M klaar")', async (s) => {
  const board = await createBoard('Klaar')
  const [invE, invU, invM] = [await invite(board, 'employer'), await invite(board, 'union'), await invite(board, 'employee')]
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  assert.equal(await tid(fac, 'ready-toggle').count(), 0, 'no ready-toggle for the facilitator')
  const count = async (n, m) => poll(async () => {
    const text = await tid(fac, 'ready-count').textContent({ timeout: 200 })
    return (text.includes(`${n} van ${m} klaar`) || text.includes(`${n} of ${m} ready`)) && text
  }, { message: `ready-count "${n} van ${m} klaar"` }).then(({ value }) => value, async (e) => {
    throw new Error(`${e.message}; ready-count shows "${await tid(fac, 'ready-count').textContent()}"`)
  })
  await count(0, 0)
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const { page: union } = await openBoard(await s.context({}, 'union'), invU.url, 'Vera')
  const ctxM = await s.context({}, 'employee')
  const { page: employee } = await openBoard(ctxM, invM.url, 'Mia')
  await count(0, 3)

  const toggle = async (page, pressed) => {
    await tid(page, 'ready-toggle').click()
    await poll(async () => (await tid(page, 'ready-toggle').getAttribute('aria-pressed')) === String(pressed), { message: `ready-toggle aria-pressed=${pressed}` })
  }
  await toggle(employer, true)
  await count(1, 3)
  await toggle(employee, true)
  s.note(`after two: "${await count(2, 3)}"`)
  await toggle(union, true)
  await count(3, 3)
  // The others see who is ready in the presence list, the employee under the pseudonym.
  await poll(async () => (await union.locator('[data-testid="presence-item"][data-ready="true"]').count()) === 2, { message: 'the union sees two presence-items marked ready' })
  await toggle(employer, false)
  await count(2, 3)
  // Someone who leaves is no longer counted.
  await ctxM.close()
  await count(1, 2)
  // A new phase starts a new ready check.
  await control(board, { action: 'phase', phase: 'Delen en bespreken' })
  await count(0, 2)
  assert.equal(await tid(union, 'ready-toggle').getAttribute('aria-pressed'), 'false', 'the union is no longer ready after the phase changed')
})

test('m. round-close: the facilitator closes an open round; votes stop, the round is closed on the server and can still be revealed', async (s) => {
  const board = await createBoard('Sluiten')
  const invE = await invite(board, 'employer')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const id = await addCard(employer, 'bouwstenen', 'Generatiepact')
  await waitCardText(fac, id, 'Generatiepact', 'the facilitator to see the card')
  await tid(fac, 'round-open').click()
  await tid(employer, `vote-${id}`).click()
  await tid(fac, 'round-close').click()
  const { value: round } = await poll(async () => {
    const rounds = (await exportBoard(board)).documents.control.rounds
    return Object.entries(rounds).find(([, r]) => r.status === 'closed')?.[0]
  }, { message: 'the round to be closed on the server' })
  await poll(async () => (await tid(employer, `vote-${id}`).count()) === 0, { message: 'no vote button once the round is closed' })
  const refused = await api('POST', `/api/boards/${board}/rounds/${round}/votes`, await keptToken(employer, board), { card: id })
  assert.equal(refused.status, 403, 'a vote on a closed round is refused')
  assert.notEqual(refused.json?.error, 'invite-token', 'refused for the round, not for the token')
  await tid(fac, 'round-reveal').click()
  await poll(async () => /(^|\D)1(\D|$)/.test(await tid(tid(employer, `card-${id}`), 'card-votes').textContent({ timeout: 200 })),
    { message: 'the reveal of the closed round shows 1 dot' })
})

test('p. a round table of three phones on one employee QR code: three people, three pseudonyms; a reopened link is the same person; a removed one is told so', async (s) => {
  const board = await createBoard('Ronde tafel')
  const inv = await invite(board, 'employee')
  assert.ok(claimsOf(tokenOfUrl(inv.url)).inv, 'the invite token carries its invite id (inv)')
  const phone = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true }
  const pages = []
  for (const name of ['Ahmed', 'Bea', 'Cor']) {
    const ctx = await s.context(phone, `phone-${name}`)
    const { page } = await openBoard(ctx, inv.url, name, { expectPrompt: true })
    pages.push({ ctx, page, name })
  }
  const tokens = await Promise.all(pages.map(({ page }) => keptToken(page, board)))
  const subs = tokens.map((tk) => claimsOf(tk).sub)
  assert.equal(new Set(subs).size, 3, `three people, three subs: ${subs.join(', ')}`)
  for (const tk of tokens) assert.ok(!claimsOf(tk).inv, 'each phone keeps a personal token, not the invite')
  const displays = await Promise.all(tokens.map(async (tk) => (await apiOk('GET', `/api/boards/${board}`, tk)).you.display))
  assert.equal(new Set(displays).size, 3, `three pseudonyms: ${displays.join(', ')}`)
  for (const d of displays) assert.match(d, /^Medewerker \d+$/)
  // Each phone sees the two others by their pseudonyms in presence, never a chosen name.
  for (let i = 0; i < 3; i++) {
    const others = displays.filter((_, j) => j !== i)
    const { value: shown } = await poll(async () => {
      const items = await tid(pages[i].page, 'presence').locator('[data-testid="presence-item"]').allTextContents()
      return others.every((d) => items.some((t) => t.includes(d))) && items
    }, { timeout: 10000, message: `presence on phone ${i + 1} to show ${others.join(', ')}` })
    for (const { name } of pages) assert.ok(!shown.some((t) => t.includes(name)), `the chosen name ${name} is not shown`)
  }

  // The first phone scans the same code again: no prompt, same person.
  const { page: again } = await openBoard(pages[0].ctx, inv.url, 'Ahmed', { expectPrompt: false })
  assert.equal(claimsOf(await keptToken(again, board)).sub, subs[0], 'the kept personal token is reused')
  await again.close()

  // The facilitator removes the second phone: its page says so (4403, final).
  const participants = await apiOk('GET', `/api/boards/${board}/participants`, FT)
  const victim = participants.find((p) => p.display === displays[1])
  assert.ok(victim, `listed: ${JSON.stringify(participants)}`)
  await apiOk('DELETE', `/api/boards/${board}/participants/${victim.id}`, FT)
  await poll(async () => /verwijderd|removed/i.test(await tid(pages[1].page, 'connection-status').textContent({ timeout: 200 })),
    { timeout: 10000, message: 'the removed phone to be told it was removed' })
  await sleep(1500)
  assert.match(await tid(pages[1].page, 'connection-status').textContent(), /verwijderd|removed/i, 'and it stays that way (no reconnect)')
  await waitOnline(pages[2].page)
})

test('q. who is in: the facilitator makes an invite with seats, shows its "scan to join" QR full screen, lists invites and participants and removes one from the panel', async (s) => {
  const board = await createBoard('Wie doet mee')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  await tid(fac, 'invite-role').selectOption('employee')
  await tid(fac, 'invite-seats').fill('2')
  await tid(fac, 'invite-create').click()
  const { value: url } = await poll(async () => await tid(fac, 'invite-url').inputValue({ timeout: 200 }), { message: 'invite-url' })
  assert.ok(claimsOf(tokenOfUrl(url)).inv, 'an invite token')
  await tid(fac, 'invite-show-qr').click()
  await tid(fac, 'join-qr').waitFor({ state: 'visible' })
  assert.match(await tid(fac, 'join-qr-role').textContent(), /Scan om mee te doen als Medewerker/)
  await poll(async () => ((await tid(fac, 'join-qr-big').getAttribute('src')) ?? '').startsWith('data:image'), { message: 'the big QR code' })
  const box = await tid(fac, 'join-qr-big').boundingBox()
  assert.ok(box && box.width >= 300, `the QR code fills the room's screen (box ${JSON.stringify(box)})`)
  await tid(fac, 'join-qr-close').click()
  await tid(fac, 'join-qr').waitFor({ state: 'hidden' })

  const { page: phone } = await openBoard(await s.context({}, 'employee'), url.replace(/^https?:\/\/[^/]+/, BASE), 'Mia', { expectPrompt: true })
  await tid(fac, 'people-load').click()
  const invItem = tid(fac, 'invite-item').first()
  await poll(async () => /1\/2/.test(await invItem.textContent({ timeout: 200 })), { message: 'the invite to show 1/2 joined' })
  const person = fac.locator('[data-testid="participant-item"]', { hasText: 'Medewerker 1' })
  await poll(async () => /online/.test(await person.textContent({ timeout: 200 })) && !/niet online/.test(await person.textContent()), { message: 'Medewerker 1 online' })
  assert.ok(!/Mia/.test(await tid(fac, 'participant-list').textContent()), 'the employee shows by pseudonym, not name')
  fac.once('dialog', (d) => d.accept())
  await tid(person, 'participant-remove').click()
  await poll(async () => /verwijderd|removed/i.test(await tid(phone, 'connection-status').textContent({ timeout: 200 })),
    { timeout: 10000, message: 'the phone to be told it was removed' })
  await poll(async () => /verwijderd/.test(await person.textContent({ timeout: 200 })), { message: 'the list to show the removal' })
  // Reopening the link on the removed phone explains it instead of joining again.
  const again = await phone.context().newPage()
  await again.goto(url.replace(/^https?:\/\/[^/]+/, BASE))
  await poll(async () => /verwijderd/i.test(await again.locator('[role="alert"]').textContent({ timeout: 200 })), { message: 'the removed message on reopening' })
})

// ---------------------------------------------------------------------------------------------
// Server restart and offline reload (self-contained: each test brings its own helpers).

/**
 * Kills the shared `tafel serve` with SIGKILL and starts it again on the same address and store
 * (the pages reconnect to the same URL). Waits for the new "Tafel listens on" line.
 */
async function restartServerHard () {
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

/**
 * Routes a context's WebSockets through a switch: while `cut` is set, a new socket is closed at
 * once and `drop()` closes the open ones — a real socket loss for the page, while HTTP (the page
 * itself) still works.
 */
async function socketSwitch (ctx) {
  const open = new Set()
  const sw = {
    cut: false,
    drop () { for (const ws of open) ws.close(); open.clear() }
  }
  await ctx.routeWebSocket(/\/ws\//, (ws) => {
    if (sw.cut) { ws.close(); return }
    ws.connectToServer()
    open.add(ws)
    ws.onClose(() => open.delete(ws))
  })
  return sw
}

/** The text of a card in the server's JSON export (null when absent). */
async function exportedCardText (board, id) {
  const ex = await exportBoard(board)
  const find = (v) => {
    if (!v || typeof v !== 'object') return null
    if (v[id] && typeof v[id] === 'object' && typeof v[id].text === 'string') return v[id].text
    for (const x of Object.values(v)) { const r = find(x); if (r !== null) return r }
    return null
  }
  return find(ex)
}

test('r. a page survives a server restart (kill -9): the server kept the card by itself, edits after the restart arrive, nothing is lost', async (s) => {
  const board = await createBoard('Herstart')
  const invE = await invite(board, 'employer')
  const ctxF = await s.context({}, 'facilitator')
  const { page: fac } = await openBoard(ctxF, `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const ctxE = await s.context({}, 'employer')
  const swE = await socketSwitch(ctxE)
  const swF = await socketSwitch(ctxF)
  const { page: employer } = await openBoard(ctxE, invE.url, 'Erik')
  const text = 'Voor de herstart'
  const id = await addCard(employer, 'bouwstenen', text)
  await waitCardText(fac, id, text, 'the facilitator to see the card before the restart')

  // Keep both pages away while the server restarts, so what it serves afterwards is its own.
  swE.cut = swF.cut = true
  swE.drop(); swF.drop()
  await restartServerHard()
  assert.equal(await exportedCardText(board, id), text, 'the restarted server lost the card (export before any page reconnected)')

  swE.cut = swF.cut = false
  await waitOnline(employer, 30000)
  await waitOnline(fac, 30000)
  const AFTER = ' en erna'
  await typeInto(cardTextLocator(employer, id), AFTER)
  await waitCardText(fac, id, text + AFTER, 'the facilitator to see an edit made after the restart', 10000)
  await poll(async () => (await exportedCardText(board, id)) === text + AFTER, { timeout: 10000, message: 'the server to store the edit made after the restart' })
})

test('o. offline reload: with the socket really lost, an edit survives a page reload in y-indexeddb and reaches the server once the socket is back', async (s) => {
  const board = await createBoard('Offline herladen')
  const invE = await invite(board, 'employer')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const ctxE = await s.context({}, 'employer')
  const sw = await socketSwitch(ctxE)
  const { page: employer } = await openBoard(ctxE, invE.url, 'Erik')
  const text = 'Bewaard in de browser'
  const id = await addCard(employer, 'bouwstenen', text)
  await waitCardText(fac, id, text, 'the facilitator to see the card while online')

  sw.cut = true
  sw.drop()
  await poll(async () => NOT_ONLINE.test(await tid(employer, 'connection-status').textContent({ timeout: 200 })),
    { timeout: 10000, message: 'connection-status to leave "verbonden" after the socket was lost' })
  // y-indexeddb writes each update to the "updates" store of `tafel:{board}:canvas`.
  const stored = () => employer.evaluate((name) => new Promise((resolve) => {
    const req = indexedDB.open(name)
    req.onsuccess = () => {
      const db = req.result
      if (!db.objectStoreNames.contains('updates')) { db.close(); resolve(0); return }
      const c = db.transaction('updates', 'readonly').objectStore('updates').count()
      c.onsuccess = () => { db.close(); resolve(c.result) }
      c.onerror = () => { db.close(); resolve(0) }
    }
    req.onerror = () => resolve(0)
  }), `tafel:${board}:canvas`)
  const before = await stored()
  const EDIT = ' (offline herladen)'
  await typeInto(cardTextLocator(employer, id), EDIT)
  await poll(async () => (await stored()) > before, { message: 'the offline edit in IndexedDB' })
  await employer.waitForTimeout(300) // the last keystrokes' IndexedDB transactions
  await employer.reload()
  await tid(employer, 'board-title').waitFor({ state: 'visible' })
  await waitCardText(employer, id, text + EDIT, 'the reloaded page (still without a socket) to show the offline edit from y-indexeddb', 10000)
  const st = await tid(employer, 'connection-status').textContent()
  assert.ok(!(ONLINE.test(st) && !NOT_ONLINE.test(st)), `the reloaded page has no socket, yet says "${st}"`)
  await never(async () => (await cardText(fac, id)) !== text, { duration: 1500, message: 'the facilitator saw the edit while the employer had no socket' })

  sw.cut = false
  await waitOnline(employer, 30000)
  await waitCardText(fac, id, text + EDIT, 'the facilitator to see the edit kept across the offline reload', 15000)
  await poll(async () => (await exportedCardText(board, id)) === text + EDIT, { timeout: 10000, message: 'the server to store the edit kept across the offline reload' })
})

// ---------------------------------------------------------------------------------------------
// The runner

const selected = (filters) => tests.filter((t) => !filters.length || filters.some((f) => t.name.toLowerCase().includes(f)))

async function main () {
  const filters = process.argv.slice(2).filter((a) => a !== '--screenshots').map((f) => f.toLowerCase())
  if (process.env.TAFEL_BIN) console.log(`e2e: testing TAFEL_BIN=${TAFEL_BIN}, not the workspace build`)
  if (REFRESH_DOCS && !selected(filters).some((t) => t.name.startsWith('h.'))) {
    console.error('e2e: --screenshots needs test h (the screenshots test) among the selected tests')
    process.exit(2)
  }
  const chosen = selected(filters)
  try {
    await startServer()
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: !process.env.E2E_HEADED, args: LAUNCH_ARGS })
  } catch (e) {
    console.error(`e2e: cannot start: ${e.message}`)
    stopServer()
    process.exit(2)
  }
  console.log(`e2e: tafel at ${BASE}, Chromium ${browser.version()}, ${chosen.length} tests\n`)
  const results = []
  for (const t of chosen) {
    const s = new Session(t.name)
    s.notes = []
    s.note = (n) => s.notes.push(n)
    const start = performance.now()
    let error = null
    try {
      await Promise.race([
        t.fn(s),
        sleep(120000).then(() => { throw new Error('test timed out after 120 s') })
      ])
    } catch (e) {
      error = e
    }
    const ms = Math.round(performance.now() - start)
    const shots = error ? await s.capture(tmp) : []
    await s.close()
    results.push({ name: t.name, ok: !error, ms })
    console.log(`${error ? '✗ FAIL' : '✓ ok  '} ${t.name} (${ms} ms)`)
    for (const n of s.notes) console.log(`       · ${n}`)
    if (error) {
      console.log(`       ${String(error.message).split('\n').join('\n       ')}`)
      for (const d of s.diagnostics.slice(0, 8)) console.log(`       ${d}`)
      if (shots.length) console.log(`       screenshots: ${shots.join(' ')}`)
    }
  }
  await browser.close()
  stopServer()
  const failed = results.filter((r) => !r.ok)
  console.log(`\ne2e: ${results.length - failed.length} passed, ${failed.length} failed`)
  if (failed.length || process.env.E2E_KEEP) console.log(`e2e: server log and store in ${tmp}`)
  else fs.rmSync(tmp, { recursive: true, force: true })
  process.exit(failed.length ? 1 : 0)
}

main()
