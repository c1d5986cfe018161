// Browser tests: accessibility (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import { flow, cardMenu, facTab, sleep, poll, BASE, FT, createBoard, invite, control, template, tid, openBoard, cardIds, addCard, waitCardText, axeRun } from '../harness.mjs'

flow('accessibility: axe (WCAG 2 A/AA) finds nothing serious or critical on the board list, the name prompt, the employer\'s canvas (a move menu open, drop targets while dragging), gap board, staalkaart, workspace and poster view, and every tab of the facilitator\'s panel', async (s) => {
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

  // Moving: a card's move menu open, then the drop targets while the card is dragged.
  await tid(employer, `move-menu-${mine[0]}`).click()
  await tid(tid(employer, `card-${mine[0]}`), 'move-to-bouwstenen').waitFor({ state: 'visible' })
  await check(employer, 'canvas with a move menu open')
  await tid(employer, `move-menu-${mine[0]}`).click()
  await tid(employer, `drag-${mine[0]}`).hover()
  await employer.mouse.down()
  const over = await tid(employer, 'section-themas').boundingBox()
  await employer.mouse.move(over.x + over.width / 2, over.y + 10, { steps: 4 })
  await tid(employer, 'drop-bouwstenen').waitFor({ state: 'visible' })
  await check(employer, 'canvas with drop targets while dragging')
  await employer.mouse.up()
  await tid(employer, 'drop-bouwstenen').waitFor({ state: 'hidden' })

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

  // The staalkaart with its filters, the own workspace, and the canvas as a poster.
  await tid(employer, 'tab-staalkaart').click()
  await tid(employer, 'staal-filter-pijler').waitFor()
  await check(employer, 'staalkaart')
  await tid(employer, 'tab-party').click()
  await sleep(200)
  await check(employer, 'own workspace')
  await tid(employer, 'tab-canvas').click()
  await tid(employer, 'poster-toggle').click()
  await sleep(300)
  await check(employer, 'poster view')
  await tid(employer, 'poster-toggle').click()

  // The facilitator's board page with the panel (merge controls on the cards, a merged card in
  // the hidden list, the ready count): an invite with its QR code and the audit log open.
  await control(board, { action: 'merge', card: mine[2], into: mine[1] })
  await poll(async () => (await tid(fac, `hidden-${mine[2]}`).getAttribute('data-merged-into')) === mine[1], { message: 'the merged card in the facilitator\'s hidden list' })
  assert.equal(await tid(fac, `card-${mine[2]}`).count(), 0, 'a merged card is not on the facilitator\'s canvas either')
  await poll(async () => /1/.test(await tid(fac, 'ready-count').textContent()), { message: 'ready-count counting the employer' })
  await facTab(fac, 'people')
  await tid(fac, 'invite-role').selectOption('employee')
  await tid(fac, 'invite-create').click()
  await tid(fac, 'invite-qr').waitFor({ state: 'visible' })
  await poll(async () => (await tid(fac, 'invite-qr').getAttribute('src'))?.startsWith('data:'), { message: 'the invite QR code' })
  await facTab(fac, 'session')
  await tid(fac, 'step-select').selectOption('2')
  await poll(async () => /2/.test(await tid(fac, 'step-indicator').textContent()), { message: 'step-indicator to show step 2' })
  await facTab(fac, 'log')
  await tid(fac, 'audit-open').click()
  await tid(fac, 'audit-entry').first().waitFor({ state: 'visible' })
  await fac.evaluate(() => document.activeElement?.blur())
  await sleep(300)
  await check(fac, 'facilitator board, log tab')
  // Every other tab of the panel, one card's moderation menu open.
  await cardMenu(fac, mine[1])
  for (const tab of ['session', 'voting', 'people']) {
    await facTab(fac, tab)
    await check(fac, `facilitator board, ${tab} tab`)
  }

  assert.deepEqual(found, [], `axe found ${found.length} serious or critical violation(s):\n${found.join('\n')}`)
})

flow('accessibility: axe finds nothing serious or critical on the monitoring plan (facilitator and employer), the history list, a comparison and a snapshot opened read-only', async (s) => {
  const board = await createBoard('Toegankelijkheid monitoring')
  const found = []
  const check = async (page, label) => {
    const r = await axeRun(page, label)
    assert.ok(r.passed > 5, `axe ran on the ${label} (${r.passed} rules passed)`)
    s.note(`${label}: ${r.passed} rules passed, ${r.serious.length} serious/critical, ${r.other.length} lesser`)
    found.push(...r.serious)
  }
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const agreement = await addCard(fac, 'bouwstenen', 'Ontwikkelbudget voor iedereen')
  await waitCardText(fac, agreement, 'Ontwikkelbudget voor iedereen', 'the agreement')
  await tid(fac, 'tab-monitoring').click()
  await tid(tid(fac, `agreement-${agreement}`), 'add-indicator').click()
  const ind = fac.locator('[data-testid^="indicator-c"]').first()
  await ind.waitFor({ state: 'visible' })
  await tid(ind, 'indicator-text').fill('Gebruik ontwikkelbudget')
  await tid(ind, 'indicator-meetmomenten').fill('halverwege; einde cao')
  await tid(ind, 'indicator-meetmomenten').press('Tab')
  await tid(ind, 'meting-1').waitFor({ state: 'visible' })
  await fac.evaluate(() => document.activeElement?.blur())
  await sleep(300)
  await check(fac, 'facilitator monitoring plan')

  const inv = await invite(board, 'employer')
  const { page: emp } = await openBoard(await s.context({}, 'employer'), inv.url, 'Erik')
  await tid(emp, 'tab-monitoring').click()
  await tid(emp, 'meting-1').waitFor({ state: 'visible' })
  await check(emp, 'employer monitoring plan')

  await control(board, { action: 'step', step: '6' })
  await tid(emp, 'tab-history').click()
  const row = tid(emp, 'snapshot').first()
  await row.waitFor({ state: 'visible' })
  await tid(row, 'snapshot-compare').click()
  await tid(emp, 'snapshot-changes').waitFor({ state: 'attached' })
  await check(emp, 'employer history with a comparison')
  await tid(row, 'snapshot-open').click()
  await tid(emp, 'snapshot-banner').waitFor({ state: 'visible' })
  await sleep(300)
  await check(emp, 'employer snapshot opened read-only')
  await tid(fac, 'tab-history').click()
  await tid(fac, 'snapshot').first().waitFor({ state: 'visible' })
  await check(fac, 'facilitator history')

  assert.deepEqual(found, [], `axe found ${found.length} serious or critical violation(s):\n${found.join('\n')}`)
})
