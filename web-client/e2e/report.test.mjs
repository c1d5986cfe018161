// The advice report printed to PDF in headless Chromium (node:test, self-contained: it starts
// its own `tafel serve` on an embedded store in a temp folder, needs no built web client).
//
//   node --test web-client/e2e/report.test.mjs
//
// Environment as run.mjs: TAFEL_BIN (default $CARGO_TARGET_DIR/debug/tafel, else
// ../../target/debug/tafel), CHROMIUM (default /usr/bin/chromium).

import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { chromium } from 'playwright-core'

const here = path.dirname(fileURLToPath(import.meta.url))
const TAFEL_BIN = process.env.TAFEL_BIN ||
  (process.env.CARGO_TARGET_DIR
    ? path.resolve(process.env.CARGO_TARGET_DIR, 'debug/tafel')
    : path.resolve(here, '../../target/debug/tafel'))
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const SECRET = 'e2e-report-secret'
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync']

function mint ({ sub, name, role, board, ttl = 3600 }) {
  const iat = Math.floor(Date.now() / 1000)
  const b64 = (s) => Buffer.from(s).toString('base64url')
  const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const body = b64(JSON.stringify({ sub, name, role, board, exp: iat + ttl, iat }))
  const sig = crypto.createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}

/** Starts `tafel serve` on port 0; answers { base, stop }. */
async function startServer () {
  assert.ok(fs.existsSync(TAFEL_BIN), `the server binary ${TAFEL_BIN} is missing: cargo build -p tafel-server`)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tafel-report-'))
  const logFile = path.join(tmp, 'server.log')
  const log = fs.openSync(logFile, 'a')
  const child = spawn(TAFEL_BIN, ['serve', '--listen', '127.0.0.1:0', '--store', `file:${path.join(tmp, 'store')}`], {
    env: { ...process.env, TAFEL_JWT_SECRET: SECRET, TAFEL_LOG: 'info' },
    stdio: ['ignore', log, log]
  })
  const deadline = Date.now() + 30000
  for (;;) {
    const m = fs.readFileSync(logFile, 'utf8').match(/^Tafel listens on (http:\/\/127\.0\.0\.1:\d+)$/m)
    if (m) return { base: m[1], stop: () => { child.kill('SIGTERM'); fs.rmSync(tmp, { recursive: true, force: true }) } }
    assert.ok(child.exitCode === null, `tafel serve exited; log: ${fs.readFileSync(logFile, 'utf8')}`)
    assert.ok(Date.now() < deadline, 'tafel serve did not start within 30 s')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A facilitator's export of a board with content in every section of the report. */
function exportOf () {
  const long = 'Een lange toelichting die over meerdere regels loopt en niet mag worden afgekapt. '.repeat(3)
  const cards = {
    d1: { section: 'doel', text: 'Gezond en met plezier werken tot de AOW' },
    t1: { section: 'analyse', text: 'Vergrijzing: 40% is ouder dan 55' },
    k1: { section: 'themas', text: 'Nachtdiensten zijn zwaar', pijlers: ['gezondheid'] },
    e1: { section: 'themas', text: 'Ik wil blijven leren', stap: '3B', pijlers: ['bekwaamheid'] },
    b1: { section: 'bouwstenen', text: 'Ontwikkelbudget', type: 'versterkend', votes: 7 },
    b2: { section: 'bouwstenen', text: 'Gezond roosteren', type: 'preventief' },
    a1: { section: 'aanbevelingen', text: 'Start met een pilot DI-uren. ' + long }
  }
  const rows = {}
  for (let i = 1; i <= 12; i++) {
    rows[`r${i}`] = { onderwerp: `Onderwerp ${i}`, huidig: long, gewenst: 'beter', gap: 'groot', oplossingen: 'samen oplossen', partijen: ['OR'], priority: i }
  }
  return {
    board: { title: 'Cao Zorg 2027', template: 'cao-di-organisatie' },
    audit: [],
    documents: { canvas: { cards }, gap: { rows }, control: {}, 'party-employer': {}, 'party-union': {}, 'party-employee': {} }
  }
}

test('the advice report prints to A4 PDF: sections on their own pages, no controls', async (t) => {
  const { base, stop } = await startServer()
  t.after(stop)
  const FT = mint({ sub: 'fac-pdf', name: 'Fien', role: 'facilitator', board: '*' })
  const made = await fetch(`${base}/api/boards/import`, {
    method: 'POST',
    headers: { authorization: `Bearer ${FT}`, 'content-type': 'application/json' },
    body: JSON.stringify(exportOf())
  })
  const answer = await made.text()
  assert.equal(made.status, 201, answer)
  const { id } = JSON.parse(answer)
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS })
  t.after(() => browser.close())
  const ctx = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${FT}` } })
  const page = await ctx.newPage()
  const res = await page.goto(`${base}/api/boards/${id}/export?format=html`)
  assert.equal(res.status(), 200)
  await page.emulateMedia({ media: 'print' })

  // The five sections, in order, each of 2–5 starting a new page.
  const h2 = await page.locator('h2').allTextContents()
  assert.deepEqual(h2, ['1 Inleiding', '2 Samenvatting van de analyse', '3 Prioriteiten en bouwstenen', '4 Aanbevelingen', '5 Bijlagen'])
  const breaks = await page.locator('section.page-break').evaluateAll((els) => els.map((e) => getComputedStyle(e).breakBefore))
  assert.deepEqual(breaks, ['page', 'page', 'page', 'page'])
  // Nothing interactive shows in print.
  const controls = await page.locator('button, input, select, textarea, a[href], script').evaluateAll(
    (els) => els.filter((e) => e.tagName === 'SCRIPT' || getComputedStyle(e).display !== 'none').length)
  assert.equal(controls, 0, 'no control in the printed report')
  // Positive control of that check: a link put into the page is counted, a button is hidden by
  // the print stylesheet.
  const probe = await page.evaluate(() => {
    const a = document.createElement('a'); a.href = '#x'; a.textContent = 'x'; document.body.append(a)
    const b = document.createElement('button'); b.textContent = 'y'; document.body.append(b)
    const seen = [a, b].map((e) => getComputedStyle(e).display !== 'none')
    a.remove(); b.remove()
    return seen
  })
  assert.deepEqual(probe, [true, false])
  // Long text wraps inside the page width instead of being cut off.
  const overflow = await page.evaluate(() => [...document.querySelectorAll('td, li, p')]
    .filter((e) => e.scrollWidth > e.clientWidth + 1).length)
  assert.equal(overflow, 0, 'no cell or line wider than its box')

  const pdf = await page.pdf({ format: 'A4', printBackground: false, preferCSSPageSize: true })
  assert.equal(pdf.subarray(0, 5).toString(), '%PDF-')
  const text = pdf.toString('latin1')
  const pages = (text.match(/\/Type\s*\/Page(?!s)/g) || []).length
  // One page per section at least (breaks before 2–5), plus the overflow of the long gap table.
  assert.ok(pages >= 6 && pages <= 30, `pages: ${pages}`)
  const box = text.match(/\/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]/)
  assert.ok(box, 'a media box')
  // A4 is 595 × 842 points.
  assert.ok(Math.abs(Number(box[1]) - 595) < 2 && Math.abs(Number(box[2]) - 842) < 2, `page size ${box[1]} × ${box[2]}`)
  // Positive control of the page count: without the page breaks the report is shorter.
  await page.addStyleTag({ content: '.page-break { break-before: auto !important; page-break-before: auto !important; }' })
  const flat = (await page.pdf({ format: 'A4', preferCSSPageSize: true })).toString('latin1')
  const flatPages = (flat.match(/\/Type\s*\/Page(?!s)/g) || []).length
  t.diagnostic(`pages: ${pages}; without the page breaks: ${flatPages}`)
  assert.ok(flatPages < pages, `page breaks add pages: ${flatPages} < ${pages}`)
})
