// Browser tests: content flows — the staalkaart (see ../README.md).
import assert from 'node:assert/strict'
import { flow, poll, createBoard, invite, control, exportBoard, template, tid, openBoard, cardIds, typeInto } from '../harness.mjs'

flow('the staalkaart filters by pijler, type and thema, and places the whole example with its labels in the section the participant picks', async (s) => {
  const board = await createBoard('Staalkaart')
  const { page } = await openBoard(await s.context({}, 'employer'), (await invite(board, 'employer')).url, 'Els')
  const examples = (await template()).staalkaart
  await tid(page, 'tab-staalkaart').click()
  const shown = () => page.evaluate(() => [...document.querySelectorAll('[data-testid^="example-"]')].map((el) => el.getAttribute('data-testid').slice('example-'.length)))
  assert.equal((await shown()).length, examples.length, 'every example without a filter')
  const ex = examples.find((e) => e.type && e.thema && e.pijlers.length)
  for (const [key, value, keep] of [['pijler', ex.pijlers[0], (e) => e.pijlers.includes(ex.pijlers[0])], ['type', ex.type, (e) => e.type === ex.type], ['thema', ex.thema, (e) => e.thema === ex.thema]]) {
    await tid(page, `staal-filter-${key}`).selectOption(value)
    const expected = examples.filter(keep).map((e) => e.id)
    await poll(async () => JSON.stringify(await shown()) === JSON.stringify(expected), { message: `the ${key} filter shows ${expected.length} examples` })
    s.note(`${key} = ${value}: ${expected.length} of ${examples.length}`)
    await tid(page, `staal-filter-${key}`).selectOption('')
  }
  await tid(page, `staal-filter-thema`).selectOption(ex.thema)
  await tid(page, `staal-filter-type`).selectOption(ex.type)
  assert.ok((await shown()).includes(ex.id))
  const targets = await tid(page, `place-section-${ex.id}`).locator('option').evaluateAll((os) => os.map((o) => o.value))
  assert.ok(targets.includes('themas') && !targets.includes('opdracht'), `the employer's sections only: ${targets}`)
  await tid(page, `place-section-${ex.id}`).selectOption('themas')
  const before = new Set(await cardIds(page, 'themas'))
  await tid(page, `place-${ex.id}`).click()
  await tid(page, 'tab-canvas').click()
  const { value: id } = await poll(async () => (await cardIds(page, 'themas')).find((c) => !before.has(c)), { message: 'the example in Thema\'s' })
  const { value: stored } = await poll(async () => (await exportBoard(board)).documents.canvas.cards[id], { message: 'the card on the server' })
  assert.equal(stored.text, `${ex.title}\n${ex.description}`, 'title and description')
  assert.equal(stored.section, 'themas')
  assert.equal(stored.type, ex.type)
  assert.equal(stored.thema, ex.thema)
  assert.deepEqual(stored.pijlers, ex.pijlers)
  assert.equal(stored.source, ex.id)
})

flow('an employee labels a private draft, and after the reveal edits the card it became (with its labels); another employee cannot', async (s) => {
  const board = await createBoard('Onthullen')
  const inv = await invite(board, 'employee')
  const { page: author } = await openBoard(await s.context({}, 'author'), inv.url, 'Mia')
  const { page: other } = await openBoard(await s.context({}, 'other'), inv.url, 'Noor')
  await control(board, { action: 'private-writing', on: true })
  await tid(author, 'private-note').waitFor()
  await tid(author, 'add-card-themas').click()
  const themas = tid(author, 'section-themas')
  await tid(themas, 'draft-text').fill('Minder nachtdiensten')
  // The draft carries labels, which the revealed card keeps.
  const tpl = await template()
  const [type, thema, pijler] = [tpl.types[0].id, tpl.themes[0].id, tpl.pijlers[0].id]
  await tid(themas, 'draft-type').selectOption(type)
  await tid(themas, 'draft-thema').selectOption(thema)
  await tid(themas, `draft-pijler-${pijler}`).check()
  await tid(themas, 'draft-save').click()
  await tid(themas, 'draft-item').waitFor()
  const res = await control(board, { action: 'reveal-drafts' })
  assert.equal(res.published, 1)
  const { value: id } = await poll(async () => (await cardIds(author, 'themas'))[0], { message: 'the revealed card on the author\'s page' })
  const area = tid(tid(author, `card-${id}`), 'card-text')
  await poll(async () => !(await area.evaluate((el) => el.readOnly)), { message: 'the author may edit the revealed card (server: /mine)' })
  await typeInto(area, ' in de zomer')
  const { value: card } = await poll(async () => {
    const c = (await exportBoard(board)).documents.canvas.cards[id]
    return c?.text === 'Minder nachtdiensten in de zomer' && c
  }, { message: 'the server keeps the author\'s edit' })
  assert.deepEqual([card.type, card.thema, card.pijlers], [type, thema, [pijler]], 'the draft\'s labels on the revealed card')
  await tid(other, `card-${id}`).waitFor()
  assert.ok(await tid(tid(other, `card-${id}`), 'card-text').evaluate((el) => el.readOnly), 'read-only for another employee')
})
