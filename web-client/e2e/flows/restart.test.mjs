// Browser tests: a server restart and an offline reload (see ../README.md). The page must keep
// working when the server is killed and started again, and an edit made without a socket must
// survive a reload (y-indexeddb) and reach the server once the socket is back.
import assert from 'node:assert/strict'
import { flow, poll, never, BASE, FT, createBoard, invite, exportBoard, restartServerHard, ONLINE, NOT_ONLINE, tid, openBoard, waitOnline, cardText, cardTextLocator, addCard, typeInto, waitCardText } from '../harness.mjs'

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

flow('a page survives a server restart (kill -9): the server kept the card by itself, edits after the restart arrive, nothing is lost', async (s) => {
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

flow('offline reload: with the socket really lost, an edit survives a page reload in y-indexeddb and reaches the server once the socket is back', async (s) => {
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

