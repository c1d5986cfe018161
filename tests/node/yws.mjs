#!/usr/bin/env node
// Tafel test client: drives the REAL npm `y-websocket` client (WebsocketProvider)
// against a running sync server, so Rust integration tests can prove that the
// server interoperates with the reference Yjs client.
//
// Usage:
//   node yws.mjs <scenario> --base ws://127.0.0.1:PORT/ws/BOARD --doc DOCNAME \
//       --token TOKEN [--token2 TOKEN2] [--clients N] [--text STRING] [--timeout-ms MS]
//
// Scenarios: two-converge, late-joiner, many-converge, write, read, read-big,
//            awareness-leave, denied, denied-keyless, presence-reconnect
//            (see README.md and the functions below).
//
// Contract with the Rust side:
//   * stdout carries exactly ONE line: the final JSON result, e.g. {"ok":true,...}
//     or {"ok":false,"error":"..."}. Diagnostics go to stderr only.
//   * exit code 0 on success, 1 on failure or timeout, 2 on bad usage (which
//     also prints an {"ok":false,...} line).

import { parseArgs } from 'node:util'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

const SCENARIOS = {
  'two-converge': twoConverge,
  'late-joiner': lateJoiner,
  'many-converge': manyConverge,
  write: writeScenario,
  read: readScenario,
  'read-big': readBig,
  'awareness-leave': awarenessLeave,
  denied,
  'denied-keyless': deniedKeyless,
  'presence-reconnect': presenceReconnect,
  'idle-alone': idleAlone
}

const DEFAULT_TEXT = 'late joiner test'
const DEFAULT_TIMEOUT_MS = 20000
const DEFAULT_MANY_TIMEOUT_MS = 60000
const DEFAULT_CLIENTS = 200

let args
try {
  const parsed = parseArgs({
    allowPositionals: true,
    options: {
      base: { type: 'string' },
      doc: { type: 'string' },
      token: { type: 'string' },
      token2: { type: 'string' },
      clients: { type: 'string' },
      text: { type: 'string' },
      'timeout-ms': { type: 'string' },
      seconds: { type: 'string' },
      verbose: { type: 'boolean', default: false }
    }
  })
  const scenario = parsed.positionals[0]
  if (parsed.positionals.length !== 1 || !(scenario in SCENARIOS)) {
    throw new Error(`expected exactly one scenario out of: ${Object.keys(SCENARIOS).join(', ')}`)
  }
  for (const required of ['base', 'doc', 'token']) {
    if (parsed.values[required] === undefined) throw new Error(`missing --${required}`)
  }
  const v = parsed.values
  args = {
    scenario,
    base: v.base,
    doc: v.doc,
    token: v.token,
    token2: v.token2 ?? v.token,
    clients: parsePositiveInt(v.clients, DEFAULT_CLIENTS, '--clients'),
    text: v.text ?? DEFAULT_TEXT,
    seconds: parsePositiveInt(v.seconds, 40, '--seconds'),
    timeoutMs: parsePositiveInt(
      v['timeout-ms'],
      scenario === 'many-converge' ? DEFAULT_MANY_TIMEOUT_MS : DEFAULT_TIMEOUT_MS,
      '--timeout-ms'
    ),
    verbose: v.verbose
  }
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: `usage: ${err.message}` }) + '\n')
  process.exit(2)
}

function parsePositiveInt (raw, dflt, name) {
  if (raw === undefined) return dflt
  const n = Number(raw)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${raw}`)
  return n
}

// ---------------------------------------------------------------------------
// Harness: provider bookkeeping, single final JSON line, global timeout
// ---------------------------------------------------------------------------

/** Every provider we open, so `finish` can tear them all down. */
const providers = []
/** Human-readable description of what we are currently waiting for (used in timeout errors). */
let stage = 'starting'
/** Last connection error / close seen by any provider (included in failure output). */
let lastConnectionError = null
let lastConnectionClose = null
let finished = false

// Each provider registers a process 'exit' listener; many-converge opens hundreds.
process.setMaxListeners(0)

function log (...msg) {
  if (args.verbose) console.error('[yws]', ...msg)
}

function setStage (s) {
  stage = s
  log('stage:', s)
}

/**
 * Tear down all providers, print the single result line and exit.
 * Only the first call has any effect.
 */
function finish (result) {
  if (finished) return
  finished = true
  clearTimeout(globalTimer)
  for (const p of providers) {
    try { p.destroy() } catch { /* ignore teardown errors */ }
  }
  const code = result.ok ? 0 : 1
  // Give close frames a moment to flush, then write the result and exit.
  setTimeout(() => {
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code))
  }, 100)
}

function fail (error) {
  const result = { ok: false, error: String(error), stage }
  if (lastConnectionError) result.lastConnectionError = lastConnectionError
  if (lastConnectionClose) result.lastConnectionClose = lastConnectionClose
  finish(result)
}

const globalTimer = setTimeout(() => {
  fail(`timeout after ${args.timeoutMs} ms while: ${stage}`)
}, args.timeoutMs)

process.on('uncaughtException', (err) => fail(`uncaught exception: ${err && err.stack ? err.stack : err}`))
process.on('unhandledRejection', (err) => fail(`unhandled rejection: ${err && err.stack ? err.stack : err}`))

/**
 * Open a WebsocketProvider exactly the way the Tafel web client does.
 * The resulting URL is `${base}/${doc}?token=${token}`.
 *
 * @param {Y.Doc} ydoc
 * @param {string} token
 * @param {typeof WebSocket} [WS] WebSocket implementation (defaults to `ws`)
 */
function openProvider (ydoc, token, WS = WebSocket, room = args.doc) {
  const provider = new WebsocketProvider(args.base, room, ydoc, {
    params: { token },
    WebSocketPolyfill: WS,
    disableBc: true
  })
  providers.push(provider)
  provider.on('connection-error', (event) => {
    // `ws` reports e.g. "Unexpected server response: 401" here when an upgrade is refused.
    lastConnectionError = event?.message ?? event?.error?.message ?? String(event)
    log('connection-error:', lastConnectionError)
  })
  provider.on('connection-close', (event) => {
    if (event) {
      lastConnectionClose = `code=${event.code} reason=${event.reason || ''}`
      log('connection-close:', lastConnectionClose)
    }
  })
  return provider
}

/** Resolves once the provider has received the server's SyncStep2. */
function whenSynced (provider) {
  if (provider.synced) return Promise.resolve()
  return new Promise((resolve) => {
    const onSync = (isSynced) => {
      if (isSynced) {
        provider.off('sync', onSync)
        resolve()
      }
    }
    provider.on('sync', onSync)
  })
}

/** Polls `predicate` every `intervalMs` until it returns true (the global timeout bounds it). */
function waitUntil (predicate, intervalMs = 20) {
  return new Promise((resolve, reject) => {
    const tick = () => {
      let done
      try { done = predicate() } catch (err) { reject(err); return }
      if (done) resolve()
      else setTimeout(tick, intervalMs)
    }
    tick()
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** True when `observer`'s awareness holds `clientID` with state `{user:{name}}`. */
function seesAwareness (observer, clientID, name) {
  const state = observer.awareness.getStates().get(clientID)
  return state !== undefined && state.user !== undefined && state.user.name === name
}

// ---------------------------------------------------------------------------
// Scenarios. Each returns the JSON result object (ok:true) or throws.
// ---------------------------------------------------------------------------

/**
 * two-converge: A and B join, both set awareness, then both insert into Y.Text "t"
 * in the same tick (concurrently, via live updates). Both must converge to the
 * same text containing both strings, and each must see the other's awareness.
 */
async function twoConverge () {
  const docA = new Y.Doc()
  const docB = new Y.Doc()
  const a = openProvider(docA, args.token)
  const b = openProvider(docB, args.token2)
  a.awareness.setLocalState({ user: { name: 'A' } })
  b.awareness.setLocalState({ user: { name: 'B' } })

  setStage('waiting for A and B to sync')
  await Promise.all([whenSynced(a), whenSynced(b)])

  // Concurrent edits: neither has seen the other's insert yet.
  const strA = 'hello from A'
  const strB = 'hello from B'
  docA.getText('t').insert(docA.getText('t').length, strA)
  docB.getText('t').insert(docB.getText('t').length, strB)

  setStage('waiting for text convergence and mutual awareness')
  await waitUntil(() => {
    const ta = docA.getText('t').toString()
    const tb = docB.getText('t').toString()
    return ta === tb && ta.includes(strA) && ta.includes(strB) &&
      seesAwareness(a, docB.clientID, 'B') && seesAwareness(b, docA.clientID, 'A')
  })
  return {
    ok: true,
    text: docA.getText('t').toString(),
    clientA: docA.clientID,
    clientB: docB.clientID
  }
}

/**
 * late-joiner: A syncs, writes --text into Y.Text "t" and m.k = 42, waits 300 ms
 * so the server has the update; only then B joins with a fresh doc and must see both.
 */
async function lateJoiner () {
  const docA = new Y.Doc()
  const a = openProvider(docA, args.token)
  setStage('waiting for A to sync')
  await whenSynced(a)

  docA.transact(() => {
    docA.getText('t').insert(docA.getText('t').length, args.text)
    docA.getMap('m').set('k', 42)
  })
  setStage('letting the server receive A\'s write')
  await sleep(300)

  const docB = new Y.Doc()
  const b = openProvider(docB, args.token2)
  setStage('waiting for late joiner B to see text and map')
  await whenSynced(b)
  await waitUntil(() =>
    docB.getText('t').toString().includes(args.text) && docB.getMap('m').get('k') === 42
  )
  return { ok: true, text: docB.getText('t').toString(), k: docB.getMap('m').get('k') }
}

/**
 * many-converge: N clients join the same doc (staggered in small batches); each
 * inserts its own marker `c<i>;` once synced. All N docs must become identical
 * and contain exactly the N markers.
 */
async function manyConverge () {
  const n = args.clients
  const started = Date.now()
  const docs = []
  const BATCH = 10 // clients opened per batch
  const STAGGER_MS = 20 // pause between batches

  setStage(`opening ${n} clients`)
  const syncedAll = []
  for (let i = 0; i < n; i++) {
    const doc = new Y.Doc()
    const provider = openProvider(doc, args.token)
    docs.push(doc)
    syncedAll.push(whenSynced(provider).then(() => {
      const t = doc.getText('t')
      t.insert(t.length, `c${i};`)
    }))
    if ((i + 1) % BATCH === 0) await sleep(STAGGER_MS)
  }

  setStage(`waiting for ${n} clients to sync`)
  await Promise.all(syncedAll)

  // Expected final content: exactly these markers, in some order.
  const expected = new Set(docs.map((_, i) => `c${i}`))
  const expectedLength = docs.reduce((sum, _, i) => sum + `c${i};`.length, 0)

  setStage(`waiting for ${n} clients to converge`)
  await waitUntil(() => {
    // Cheap length check first, then full comparison.
    if (!docs.every((d) => d.getText('t').length === expectedLength)) return false
    const first = docs[0].getText('t').toString()
    if (!docs.every((d) => d.getText('t').toString() === first)) return false
    const markers = first.split(';').filter((s) => s !== '')
    return markers.length === n && markers.every((m) => expected.has(m)) &&
      new Set(markers).size === n
  }, 100)
  return { ok: true, clients: n, length: expectedLength, ms: Date.now() - started }
}

/**
 * write: insert --text, wait for sync, then prove the server has it by reading it
 * back through a SECOND provider on a fresh Y.Doc.
 */
async function writeScenario () {
  const doc = new Y.Doc()
  const writer = openProvider(doc, args.token)
  doc.getText('t').insert(doc.getText('t').length, args.text)
  setStage('waiting for writer to sync')
  await whenSynced(writer)

  const checkDoc = new Y.Doc()
  openProvider(checkDoc, args.token)
  setStage('waiting for a second client to read the write back from the server')
  await waitUntil(() => checkDoc.getText('t').toString().includes(args.text))
  return { ok: true }
}

/** read: join with a fresh Y.Doc and wait until Y.Text "t" contains --text. */
async function readScenario () {
  const doc = new Y.Doc()
  openProvider(doc, args.token)
  setStage(`waiting for Y.Text "t" to contain ${JSON.stringify(args.text)}`)
  await waitUntil(() => doc.getText('t').toString().includes(args.text))
  return { ok: true, text: doc.getText('t').toString() }
}

/**
 * read-big: joins, waits until Y.Text "t" ends with --text (the marker a big document was
 * written with, last) and reports its length and how long the sync took; the text itself
 * stays here (it may be megabytes).
 */
async function readBig () {
  const started = Date.now()
  const doc = new Y.Doc()
  const p = openProvider(doc, args.token)
  setStage('waiting for the sync step 2 of a big document')
  await whenSynced(p)
  const syncedMs = Date.now() - started
  setStage(`waiting for Y.Text "t" to end with ${JSON.stringify(args.text)}`)
  await waitUntil(() => doc.getText('t').toString().endsWith(args.text))
  return { ok: true, length: doc.getText('t').length, syncedMs }
}

/**
 * awareness-leave: A and B see each other's awareness; then A's TCP connection is
 * dropped abruptly (no clean awareness removal from the client). B must receive
 * A's removal FROM THE SERVER: we only accept a removal whose origin is B's
 * provider (i.e. it arrived as a network message) while B is still connected.
 * B's own 30 s awareness timeout (origin 'timeout') does not count.
 */
async function awarenessLeave () {
  const docA = new Y.Doc()
  const docB = new Y.Doc()
  const a = openProvider(docA, args.token)
  const b = openProvider(docB, args.token2)
  a.awareness.setLocalState({ user: { name: 'A' } })
  b.awareness.setLocalState({ user: { name: 'B' } })

  setStage('waiting for A and B to see each other\'s awareness')
  await waitUntil(() => seesAwareness(a, docB.clientID, 'B') && seesAwareness(b, docA.clientID, 'A'))

  const idA = docA.clientID
  let removedByServer = false
  let removedOtherwise = null
  b.awareness.on('change', ({ removed }, origin) => {
    if (!removed.includes(idA)) return
    if (origin === b && b.wsconnected) removedByServer = true
    else removedOtherwise = origin === b ? 'B lost its own connection' : `origin=${String(origin)}`
  })

  // Simulate a dropped connection: stop A from reconnecting, then kill its socket
  // without any closing handshake or awareness "null state" message.
  if (a.ws === null) throw new Error('A is not connected at the moment it should be dropped')
  const dropped = Date.now()
  a.shouldConnect = false
  a.ws.terminate()

  setStage('waiting for B to be told by the server that A left')
  await waitUntil(() => {
    if (removedOtherwise !== null) throw new Error(`A's awareness vanished but not via the server: ${removedOtherwise}`)
    return removedByServer && !b.awareness.getStates().has(idA)
  })
  return { ok: true, ms: Date.now() - dropped }
}

/**
 * denied: join and insert text; the server must answer with a y-websocket auth
 * message "permission-denied" (varuint 2 = messageAuth, varuint 0 =
 * permissionDenied, varstring reason). We observe raw incoming frames through a
 * thin subclass of the `ws` WebSocket used as the provider's polyfill.
 */
async function denied () {
  let deniedReason = null
  class ObservedWebSocket extends WebSocket {
    constructor (...wsArgs) {
      super(...wsArgs)
      // addEventListener does not interfere with the provider's `onmessage`.
      this.addEventListener('message', (event) => {
        const reason = parsePermissionDenied(toBytes(event.data))
        if (reason !== null && deniedReason === null) {
          deniedReason = reason
          log('permission-denied received:', reason)
        }
      })
    }
  }

  const doc = new Y.Doc()
  openProvider(doc, args.token, ObservedWebSocket)
  doc.getText('t').insert(doc.getText('t').length, args.text)

  setStage('waiting for a permission-denied auth message')
  await waitUntil(() => deniedReason !== null)
  return { ok: true, reason: deniedReason }
}

/**
 * denied-keyless: a real Y.Doc that uses the `cards` root as a list (keyless content in what the
 * schema says is a map) and pushes into it; the server must refuse it. Returns the reason.
 */
async function deniedKeyless () {
  let deniedReason = null
  class ObservedWebSocket extends WebSocket {
    constructor (...wsArgs) {
      super(...wsArgs)
      this.addEventListener('message', (event) => {
        const reason = parsePermissionDenied(toBytes(event.data))
        if (reason !== null && deniedReason === null) deniedReason = reason
      })
    }
  }
  const doc = new Y.Doc()
  const p = openProvider(doc, args.token, ObservedWebSocket)
  await whenSynced(p)
  doc.getArray('cards').push([args.text ?? 'keyless'])
  setStage('waiting for a permission-denied auth message')
  await waitUntil(() => deniedReason !== null)
  return { ok: true, reason: deniedReason }
}

/**
 * presence-reconnect: A (--token) shows a raised hand; B (--token2) sees it. A's socket is
 * killed without a goodbye and the provider reconnects with the same Y.Doc, as after a network
 * blip. B must see A's raised hand again (found by content: an employee's presence reaches
 * others under an alias, never the Yjs client id) and never under A's client id. Returns the
 * time from the reconnect to B seeing A again.
 */
async function presenceReconnect () {
  const docA = new Y.Doc()
  const docB = new Y.Doc()
  const a = openProvider(docA, args.token)
  const b = openProvider(docB, args.token2)
  await whenSynced(a)
  await whenSynced(b)
  a.awareness.setLocalState({ user: { name: 'A', color: '#1a5fb4' }, hand: true })
  const raised = () => [...b.awareness.getStates().entries()]
    .some(([id, s]) => id !== docB.clientID && s && s.hand === true)
  setStage('waiting for B to see A\'s raised hand')
  await waitUntil(raised)
  if (b.awareness.getStates().has(docA.clientID)) throw new Error('A\'s Yjs client id reached B as a presence id')
  setStage('killing A\'s socket')
  if (a.ws === null) throw new Error('A is not connected')
  a.ws.terminate()
  setStage('waiting for A to reconnect')
  await waitUntil(() => a.wsconnected === false)
  await waitUntil(() => a.wsconnected === true && a.synced)
  const back = Date.now()
  // The old entry may go when the server notices the dead socket; A must be shown again.
  setStage('waiting for B to see A again after the reconnect')
  await new Promise((resolve) => setTimeout(resolve, 500))
  await waitUntil(raised)
  if (b.awareness.getStates().has(docA.clientID)) throw new Error('A\'s Yjs client id reached B as a presence id')
  return { ok: true, ms: Date.now() - back }
}

/**
 * idle-alone: one provider alone on each document of --doc (a comma-separated list), sending no
 * awareness (like the web client on `control`, `gap` and the party workspaces), stays connected
 * for --seconds (default 40; the y-websocket client closes a socket that received nothing for
 * 30 s). Returns the number of closes seen, which must be 0 — and, as the positive control that
 * the count is live, that dropping one socket afterwards is counted.
 */
async function idleAlone () {
  const rooms = args.doc.split(',')
  const closes = Object.fromEntries(rooms.map((r) => [r, 0]))
  const providers = []
  for (const room of rooms) {
    const p = openProvider(new Y.Doc(), args.token, WebSocket, room)
    p.awareness.setLocalState(null)
    await whenSynced(p)
    p.on('connection-close', () => { closes[room]++ })
    providers.push(p)
  }
  const seconds = Number(args.seconds ?? 40)
  setStage(`staying idle on ${rooms.join(', ')} for ${seconds} s`)
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
  const total = Object.values(closes).reduce((a, b) => a + b, 0)
  if (total !== 0) throw new Error(`the idle clients were disconnected: ${JSON.stringify(closes)}`)
  // Positive control: a socket that does drop is counted.
  setStage('positive control: dropping one socket')
  providers[0].ws?.close()
  const deadline = Date.now() + 5000
  while (closes[rooms[0]] === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { ok: true, closes: total, perDoc: closes, dropCounted: closes[rooms[0]] > 0 }
}

/** Normalise the payload shapes `ws` may deliver into a Uint8Array. */
function toBytes (data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data))
  return null // text frame: not a y-websocket message
}

/**
 * If `bytes` is a y-websocket auth message of type permission-denied, return its
 * reason string, otherwise null. Encoding (lib0): varuint 2, varuint 0, varstring.
 */
function parsePermissionDenied (bytes) {
  if (bytes === null) return null
  try {
    let pos = 0
    const readVarUint = () => {
      let num = 0
      let mult = 1
      for (;;) {
        if (pos >= bytes.length) throw new Error('truncated varuint')
        const b = bytes[pos++]
        num += (b & 0x7f) * mult
        if (b < 0x80) return num
        mult *= 128
        if (mult > Number.MAX_SAFE_INTEGER) throw new Error('varuint too long')
      }
    }
    if (readVarUint() !== 2) return null // messageAuth
    if (readVarUint() !== 0) return null // permissionDenied
    const len = readVarUint()
    if (pos + len > bytes.length) throw new Error('truncated varstring')
    return new TextDecoder().decode(bytes.subarray(pos, pos + len))
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

log(`scenario=${args.scenario} base=${args.base} doc=${args.doc} timeout=${args.timeoutMs}ms`)
SCENARIOS[args.scenario]().then(
  (result) => finish(result),
  (err) => fail(err && err.message ? err.message : err)
)
