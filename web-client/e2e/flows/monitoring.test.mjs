// Browser tests: the monitoring plan (step 6) and the next cao round (see ../README.md). The
// facilitator fills the plan for an agreement, a union member fills a measured value, an
// employee reads it, the CSV and the report show it, and a new board for the next round
// starts from it.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { flow, poll, BASE, FT, api, apiOk, createBoard, invite, exportBoard, tid, openBoard, addCard, waitCardText } from '../harness.mjs'

const cards = async (board, token = FT) => Object.entries((await exportBoard(board, token)).documents.canvas.cards ?? {})

/** Fills a text field of the plan the way a person does: type, then leave the field. */
async function fillField (scope, testid, value) {
  const input = tid(scope, testid)
  await input.fill(value)
  await input.press('Tab')
}

async function fillPlan (fac, board) {
  const agreement = await addCard(fac, 'bouwstenen', 'Ontwikkelbudget voor iedereen')
  await waitCardText(fac, agreement, 'Ontwikkelbudget voor iedereen', 'the agreement')
  await tid(fac, 'tab-monitoring').click()
  const block = tid(fac, `agreement-${agreement}`)
  await block.waitFor({ state: 'visible' })
  assert.match(await block.textContent(), /Ontwikkelbudget voor iedereen/)
  await tid(block, 'add-indicator').click()
  const ind = block.locator('[data-testid^="indicator-c"]')
  await ind.first().waitFor({ state: 'visible' })
  const id = (await ind.first().getAttribute('data-testid')).slice('indicator-'.length)
  const el = tid(fac, `indicator-${id}`)
  await tid(el, 'indicator-text').fill('Gebruik ontwikkelbudget')
  await tid(el, 'indicator-soort').selectOption('kwantitatief')
  await fillField(el, 'indicator-nulmeting', '12%')
  await fillField(el, 'indicator-streefwaarde', '40%')
  await fillField(el, 'indicator-meetmomenten', 'halverwege; einde cao')
  await fillField(el, 'indicator-verzamelt', 'HR')
  await fillField(el, 'indicator-rapporteert', 'De werkgroep')
  await fillField(el, 'indicator-terugkoppeling', 'Naar de cao-tafel, als basis voor de volgende ronde')
  await tid(el, 'indicator-status').selectOption('loopt')
  await tid(block, 'agreement-status').selectOption('op-koers')
  await poll(async () => {
    const c = Object.fromEntries(await cards(board))
    const i = c[id]
    return i?.text === 'Gebruik ontwikkelbudget' && i.afspraak === agreement && i.section === 'monitoring' &&
      i.nulmeting === '12%' && i.streefwaarde === '40%' && i.verzamelt === 'HR' && i.rapporteert === 'De werkgroep' &&
      i.terugkoppeling?.startsWith('Naar de cao-tafel') && i.status === 'loopt' &&
      JSON.stringify(i.meetmomenten) === '["halverwege","einde cao"]' && c[agreement]?.status === 'op-koers'
  }, { timeout: 8000, message: 'the monitoring plan on the server' })
  return { agreement, id }
}

flow('the facilitator fills the monitoring plan for an agreement, a union member fills a measured value, an employee only reads it, and the CSV and the report show it', async (s) => {
  const board = await createBoard('Monitoring')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { agreement, id } = await fillPlan(fac, board)

  // A union member (the monitoring section's rules let the union edit) fills the value measured
  // halfway; the facilitator sees it arrive live.
  const { page: union } = await openBoard(await s.context({}, 'union'), (await invite(board, 'union')).url, 'Umut')
  await tid(union, 'tab-monitoring').click()
  const uInd = tid(union, `indicator-${id}`)
  await uInd.waitFor({ state: 'visible' })
  assert.equal(await tid(uInd, 'indicator-streefwaarde').inputValue(), '40%')
  const labels = await uInd.locator('[data-testid="indicator-metingen"] label').allTextContents()
  assert.deepEqual(labels, ['halverwege', 'einde cao'], 'one value per meetmoment')
  await fillField(uInd, 'meting-0', '25%')
  await poll(async () => (await tid(tid(fac, `indicator-${id}`), 'meting-0').inputValue()) === '25%', { message: 'the measured value on the facilitator\'s screen' })
  await poll(async () => JSON.stringify(Object.fromEntries(await cards(board))[id]?.metingen) === '[{"moment":"halverwege","waarde":"25%"}]',
    { message: 'the measured value on the server' })

  // An employee reads the plan but may not change it (the section's rules): read-only fields,
  // no add button.
  const { page: emp } = await openBoard(await s.context({}, 'employee'), (await invite(board, 'employee')).url, 'Mia')
  await tid(emp, 'tab-monitoring').click()
  const eInd = tid(emp, `indicator-${id}`)
  await eInd.waitFor({ state: 'visible' })
  await poll(async () => (await tid(eInd, 'meting-0').inputValue()) === '25%', { message: 'the employee sees the measured value' })
  assert.equal(await tid(eInd, 'meting-0').getAttribute('readonly'), '')
  assert.equal(await tid(eInd, 'indicator-nulmeting').getAttribute('readonly'), '')
  assert.ok(await tid(eInd, 'indicator-status').isDisabled())
  assert.equal(await tid(emp, 'add-indicator').count(), 0, 'no add-indicator for an employee')

  // The CSV, downloaded from the facilitator's panel: one row per indicator and moment, with the
  // value measured then.
  const [download] = await Promise.all([fac.waitForEvent('download'), tid(fac, 'export-csv-monitoring').click()])
  const csv = fs.readFileSync(await download.path(), 'utf8')
  assert.ok(csv.startsWith('\ufeff'), 'UTF-8 with a BOM')
  const lines = csv.trim().split('\r\n')
  assert.match(lines[0], /"gemeten waarde";"terugkoppeling"$/)
  assert.ok(lines.some((l) => l.includes('"Gebruik ontwikkelbudget"') && l.includes('"halverwege"') && l.includes('"25%"') && l.includes('"Naar de cao-tafel')),
    `the measured value in the CSV:\n${csv}`)
  assert.ok(lines.some((l) => l.includes('"einde cao"')), 'the second moment has its row')
  // The report: the plan in 5 Bijlagen.
  const report = await api('GET', `/api/boards/${board}/export?format=md`, FT)
  assert.equal(report.status, 200)
  const md = report.text
  assert.match(md, /B\. Monitoringplan/)
  assert.match(md, /Gebruik ontwikkelbudget/)
  assert.match(md, /25%/)
  assert.ok(agreement)
})

flow('the facilitator starts the next cao round from the board’s advice panel: the new board opens with the agreement and its indicator carried over', async (s) => {
  const board = await createBoard('Cao 2027')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  await fillPlan(fac, board)
  const panel = tid(fac, 'advice-panel')
  await panel.scrollIntoViewIfNeeded()
  await tid(panel, 'next-round-title').fill('Cao 2029')
  await tid(panel, 'next-round-create').click()
  const link = tid(panel, 'next-round-link')
  await poll(async () => (await link.count()) === 1, { message: 'the link to the new board' })
  assert.match(await tid(panel, 'next-round-result').textContent(), /Cao 2029/)
  await link.click()
  await poll(async () => (await tid(fac, 'board-title').textContent())?.includes('Cao 2029'), { timeout: 10000, message: 'the new board opened' })
  const next = new URL(fac.url()).searchParams.get('board')
  assert.notEqual(next, board)
  const made = (await cards(next)).map(([, c]) => c)
  const agreement = made.find((c) => c.text === 'Ontwikkelbudget voor iedereen')
  assert.ok(agreement, 'the agreement carried over')
  const ind = made.find((c) => c.text === 'Gebruik ontwikkelbudget')
  assert.ok(ind, 'the indicator carried over')
  // On the new board the monitoring tab shows the indicator under its agreement.
  await tid(fac, 'tab-monitoring').click()
  await poll(async () => (await fac.locator('[data-testid^="agreement-"]').filter({ hasText: 'Ontwikkelbudget voor iedereen' }).locator('[data-testid="indicator-text"]').count()) === 1,
    { message: 'the indicator under its agreement on the new board' })
  // The old board is unchanged and its history names the basis of the new round.
  const list = await apiOk('GET', `/api/boards/${board}/snapshots`, FT)
  assert.ok(list.some((x) => x.name.startsWith('Basis voor de volgende cao-ronde')), JSON.stringify(list))
})
