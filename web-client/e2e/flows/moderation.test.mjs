// Browser tests: moderation (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import { flow, poll, BASE, FT, api, apiOk, createBoard, invite, control, exportBoard, tid, openBoard, addCard, waitCardText } from '../harness.mjs'

flow('merge: the facilitator merges card A into card B; every page shows B with A\'s text and A gone (in the facilitator\'s hidden list, restorable)', async (s) => {
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

flow('hide a gap row: the facilitator\'s hide-row takes it off the employer\'s page, hidden-list holds it, hidden-restore brings it back', async (s) => {
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

flow('ready check: participants toggle ready-toggle and the facilitator\'s ready-count follows ("N van M klaar")', async (s) => {
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
