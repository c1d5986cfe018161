// Browser tests: voting that decides (see ../README.md): a round over gap rows and cards, the
// results ranked with bars on every screen, "top N → priorities" from the cockpit, a bouwsteen
// linked to the gap row it answers, and the advice report that shows all of it.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { flow, facTab, poll, keptToken, BASE, FT, apiOk, createBoard, invite, exportBoard, tid, openBoard, addCard, waitCardText, axeRun } from '../harness.mjs'

/** Adds a gap row through the page and types its onderwerp; returns the row's id. */
async function addRow (page, onderwerp) {
  const ids = () => page.evaluate(() => [...document.querySelectorAll('article.gap-row[data-testid^="row-"]')].map((el) => el.getAttribute('data-testid').slice(4)))
  const before = new Set(await ids())
  await tid(page, 'add-row').click()
  const { value: id } = await poll(async () => (await ids()).find((r) => !before.has(r)), { message: 'a new gap row' })
  await tid(tid(page, `row-${id}`), 'row-onderwerp').fill(onderwerp)
  await tid(tid(page, `row-${id}`), 'row-onderwerp').press('Tab')
  return id
}

/** The ranked entries of one round's results on a page, in screen order. */
async function ranked (scope, round) {
  return tid(scope, `result-${round}`).locator('[data-testid="result-item"]').evaluateAll((els) => els.map((el) => ({
    item: el.getAttribute('data-item'),
    votes: Number(el.getAttribute('data-votes')),
    priority: el.getAttribute('data-priority'),
    bar: el.querySelector('[data-testid="result-bar"]').getBoundingClientRect().width,
  })))
}

flow('voting that decides: a round over gap rows and cards, bars ranked on every screen, top 2 made priorities, a bouwsteen linked to its gap row, all in the report (axe: nothing serious on these screens)', async (s) => {
  const board = await createBoard('Beslissen')
  const [invE, invM, invO] = [await invite(board, 'employer'), await invite(board, 'employee'), await invite(board, 'observer')]
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const { page: employee } = await openBoard(await s.context({}, 'employee'), invM.url, 'Mia')
  const { page: room } = await openBoard(await s.context({ viewport: { width: 1920, height: 1080 } }, 'observer'), invO.url, 'Zaal')
  // axe (WCAG 2 A/AA) on each new screen of this flow: nothing serious or critical.
  const found = []
  const check = async (page, label) => {
    const r = await axeRun(page, label)
    assert.ok(r.passed > 5, `axe ran on the ${label} (${r.passed} rules passed)`)
    s.note(`${label}: ${r.passed} rules passed, ${r.serious.length} serious/critical, ${r.other.length} lesser`)
    found.push(...r.serious)
  }

  const b1 = await addCard(employer, 'bouwstenen', 'Ontwikkelbudget')
  const b2 = await addCard(employer, 'bouwstenen', 'Gezond roosteren')
  await tid(employer, 'tab-gap').click()
  const g1 = await addRow(employer, 'Werkdruk')
  const g2 = await addRow(employer, 'Nachtdiensten')
  await poll(async () => {
    const docs = (await exportBoard(board)).documents
    return docs.gap.rows[g1]?.onderwerp === 'Werkdruk' && docs.gap.rows[g2]?.onderwerp === 'Nachtdiensten' && docs.canvas.cards[b2]?.text === 'Gezond roosteren'
  }, { message: 'the cards and rows on the server' })

  // The facilitator picks what is votable: Bouwstenen (checked by default) and the gap rows.
  await facTab(fac, 'voting')
  assert.equal(await tid(fac, 'round-pick-bouwstenen').isChecked(), true, 'Bouwstenen is picked by default')
  await tid(fac, 'round-pick-gap').check()
  await tid(fac, 'round-budget').fill('3')
  await check(fac, 'cockpit: the round picker')
  await tid(fac, 'round-open').click()
  const { value: round } = await poll(async () => Object.entries((await exportBoard(board)).documents.control.rounds ?? {}).find(([, r]) => r.status === 'open')?.[0],
    { message: 'an open round' })
  const items = (await exportBoard(board)).documents.control.rounds[round].items
  assert.deepEqual([...items].sort(), [`canvas/${b1}`, `canvas/${b2}`, `gap/${g1}`, `gap/${g2}`].sort(), 'the round is over the bouwstenen and the gap rows')

  // Dots on gap rows (in gap.ts) and on cards, from two participants.
  await tid(employee, 'tab-gap').click()
  await tid(employee, `vote-row-${g1}`).click()
  await poll(async () => /1/.test(await tid(employee, `row-${g1}`).locator('.card-myvotes').textContent()), { message: 'employee: one dot on the row' })
  await tid(employee, `vote-row-${g1}`).click()
  await check(employee, 'employee: dots on gap rows')
  await tid(employee, 'tab-canvas').click()
  await tid(employee, `vote-${b1}`).click()
  await tid(employer, `vote-row-${g1}`).click()
  await tid(employer, `vote-row-${g2}`).click()
  await tid(employer, 'tab-canvas').click()
  await tid(employer, `vote-${b1}`).click()
  const sorted = (o) => JSON.stringify(Object.fromEntries(Object.entries(o).sort()))
  for (const [who, page, want] of [['employee', employee, { [`gap/${g1}`]: 2, [`canvas/${b1}`]: 1 }], ['employer', employer, { [`gap/${g1}`]: 1, [`gap/${g2}`]: 1, [`canvas/${b1}`]: 1 }]]) {
    const token = await keptToken(page, board)
    await poll(async () => sorted((await apiOk('GET', `/api/boards/${board}/rounds/${round}/ballot`, token)).votes) === sorted(want),
      { message: `${who}: the ballot holds the dots` })
  }

  // The reveal: every screen shows the ranked list, bars scaled to the most dots.
  await tid(fac, 'round-reveal').click()
  const order = [`gap/${g1}`, `canvas/${b1}`, `gap/${g2}`, `canvas/${b2}`]
  for (const [who, scope] of [['room screen', tid(room, 'results-board')], ['employee', tid(employee, 'results-board')], ['cockpit', tid(fac, 'results-cockpit')]]) {
    const { value: list } = await poll(async () => {
      const l = await ranked(scope, round)
      return l.length === 4 && l.map((e) => e.item).join() === order.join() && l
    }, { message: `${who}: the results ranked ${order.join(', ')}` })
    assert.deepEqual(list.map((e) => e.votes), [3, 2, 1, 0], `${who}: the totals`)
    assert.ok(list[0].bar > list[1].bar && list[1].bar > list[2].bar && list[2].bar > list[3].bar, `${who}: bars shrink with the dots (${list.map((e) => e.bar).join(', ')})`)
    assert.ok(Math.abs(list[1].bar / list[0].bar - 2 / 3) < 0.05, `${who}: a bar is its share of the most dots (${list[1].bar} of ${list[0].bar})`)
  }
  await tid(employee, 'tab-gap').click()
  await poll(async () => /3/.test(await tid(tid(employee, `row-${g1}`), 'row-votes').textContent({ timeout: 200 })), { message: 'employee: the gap row shows its 3 dots' })
  await tid(employee, 'tab-canvas').click()

  // Top 2 → priorities, in one step from the cockpit.
  const cockpit = tid(fac, 'results-cockpit')
  await tid(cockpit, `top-n-${round}`).fill('2')
  await tid(cockpit, `prioritize-${round}`).click()
  await poll(async () => {
    const docs = (await exportBoard(board)).documents
    return JSON.stringify(docs.control.rounds[round].priorities) === JSON.stringify([`gap/${g1}`, `canvas/${b1}`]) &&
      docs.gap.rows[g1].priority === 1 && docs.canvas.cards[b1].priority === 2 && docs.gap.rows[g2].priority > 2
  }, { message: 'the top 2 are priorities 1 and 2 on the server' })
  for (const [who, scope] of [['cockpit', cockpit], ['room screen', tid(room, 'results-board')]]) {
    await poll(async () => (await ranked(scope, round)).map((e) => e.priority).join() === '1,2,,',
      { message: `${who}: the first two marked as priorities 1 and 2` })
  }
  assert.match(await tid(room, `result-${round}`).textContent(), /prioriteit 1/)
  await check(room, 'room screen: ranked results with priorities')
  await check(fac, 'cockpit: ranked results, top N')

  // A bouwsteen answers a gap row: picked in the card's label editor.
  await tid(employer, `card-${b2}`).locator('.card-labels summary').click()
  const picker = tid(tid(employer, `card-${b2}`), 'gaprow-select')
  assert.deepEqual((await picker.locator('option').allTextContents()).slice(1).sort(), ['Nachtdiensten', 'Werkdruk'], 'the picker offers the board\'s gap rows')
  await picker.selectOption(g2)
  await poll(async () => (await exportBoard(board)).documents.canvas.cards[b2].gapRow === g2, { message: 'the link on the server' })
  await poll(async () => /Nachtdiensten/.test(await tid(tid(fac, `card-${b2}`), 'tag-gaprow').textContent({ timeout: 200 })), { message: 'the facilitator sees the link on the card' })
  await waitCardText(fac, b2, 'Gezond roosteren', 'the linked card keeps its text')
  await check(employer, 'employer: the gap row picker in the label editor')
  assert.deepEqual(found, [], `axe found ${found.length} serious or critical violation(s):\n${found.join('\n')}`)

  // The advice report: priorities, the ranked results with bars, the bouwsteen under its gap row.
  await tid(fac, 'advice-panel').scrollIntoViewIfNeeded()
  const [download] = await Promise.all([fac.waitForEvent('download'), tid(fac, 'report-md').click()])
  const md = fs.readFileSync(await download.path(), 'utf8')
  for (const want of [
    '- Prioriteit 1: Werkdruk (gap-analyse), 3 stemmen\n- Prioriteit 2: Ontwikkelbudget, 2 stemmen\n',
    '1. Werkdruk (gap-analyse) `████████████████████` 3\n2. Ontwikkelbudget `██████████████` 2\n3. Nachtdiensten (gap-analyse) `███████` 1\n4. Gezond roosteren `·` 0\n',
    '| Nachtdiensten |  |  |  |  |  | Gezond roosteren |',
  ]) assert.ok(md.includes(want), `the report holds ${JSON.stringify(want)}:\n${md}`)
  assert.ok(md.indexOf('| Werkdruk |') < md.indexOf('| Nachtdiensten |'), 'the gap analysis lists the priority first')
  const html = await (await fetch(`${BASE}/api/boards/${board}/export?format=html`, { headers: { authorization: `Bearer ${FT}` } })).text()
  assert.match(html, /<ol class="ranking">\n<li><span class="item">Werkdruk \(gap-analyse\)<\/span> <span class="bar" style="width: 40%"><\/span>/)
})
