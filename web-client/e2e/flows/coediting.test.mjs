// Browser tests: coediting (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import { flow, sleep, poll, never, BASE, FT, createBoard, invite, control, OFFLINE, tid, openBoard, waitOnline, cardText, cardTextLocator, addCard, typeInto, waitCardText } from '../harness.mjs'

flow('employer and employee co-edit one card: each sees the other\'s typing within 1 s', async (s) => {
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

flow('role-based view: no facilitator panel for participants, the employee\'s chosen name never reaches the employer', async (s) => {
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

flow('offline: the employer\'s edit waits while offline and reaches the facilitator after reconnecting', async (s) => {
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
