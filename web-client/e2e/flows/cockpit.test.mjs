// Browser tests: the facilitator's cockpit (see ../README.md).
import assert from 'node:assert/strict'
import { flow, cardMenu, facTab, poll, BASE, FT, createBoard, invite, control, tid, openBoard, addCard } from '../harness.mjs'

flow('on a laptop screen the facilitator reaches step, timer, lock, present and reveal without scrolling, sees drafts handed in counted live, and moderates a card from its menu', async (s) => {
  const board = await createBoard('Cockpit')
  const invE = await invite(board, 'employee')
  const { page: fac } = await openBoard(await s.context({ viewport: { width: 1366, height: 768 } }, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employee } = await openBoard(await s.context({}, 'employee'), invE.url, 'Mia')
  const common = ['step-select', 'timer-seconds', 'timer-start', 'lock-board', 'presentation-toggle', 'presentation-focus', 'private-writing', 'reveal-drafts']
  const boxes = {}
  for (const id of common) {
    const box = await tid(fac, id).boundingBox()
    boxes[id] = box && Math.round(box.y + box.height)
    assert.ok(box && await tid(fac, id).isVisible(), `${id} is shown`)
    assert.ok(box.y >= 0 && box.y + box.height <= 768, `${id} within the 768 px screen without scrolling (bottom ${box.y + box.height})`)
  }
  assert.equal(await fac.evaluate(() => window.scrollY), 0, 'nothing scrolled')
  s.note(`bottoms of the common controls at 1366×768: ${JSON.stringify(boxes)}`)
  // The rest is one tab away.
  for (const [tab, id] of [['voting', 'round-open'], ['people', 'invite-create'], ['log', 'audit-open']]) {
    assert.ok(!(await tid(fac, id).isVisible()), `${id} waits in its tab`)
    await facTab(fac, tab)
    assert.ok(await tid(fac, id).isVisible(), `${id} in the ${tab} tab`)
  }
  await facTab(fac, 'session')

  // Drafts handed in: a number, live, never who.
  await tid(fac, 'private-writing').check()
  await poll(async () => /0 concepten ingeleverd/.test(await tid(fac, 'drafts-in').textContent()), { message: '0 drafts in' })
  await tid(employee, 'private-note').waitFor()
  await tid(employee, 'add-card-themas').click()
  const themas = tid(employee, 'section-themas')
  await tid(themas, 'draft-text').fill('Een zorg over roosters')
  await tid(themas, 'draft-save').click()
  await poll(async () => /^1 concept ingeleverd$/.test(await tid(fac, 'drafts-in').textContent()), { message: 'the facilitator sees 1 draft handed in' })
  assert.ok(!(await tid(fac, 'facilitator-panel').textContent()).includes('Mia'), 'the count says not whose')
  await tid(fac, 'reveal-drafts').click()
  await poll(async () => (await tid(fac, 'drafts-in').isHidden()) || /^0 /.test(await tid(fac, 'drafts-in').textContent()), { message: 'the count drops after the reveal' })

  // Moderation: one menu per card, no row of buttons on every card.
  const id = await addCard(fac, 'bouwstenen', 'Een kaart om te modereren')
  assert.ok(!(await tid(fac, `hide-${id}`).isVisible()), 'hide waits in the card menu')
  await cardMenu(fac, id)
  assert.ok(await tid(fac, `hide-${id}`).isVisible(), 'the card menu holds hide')
  assert.ok(await tid(fac, `spotlight-${id}`).isVisible(), 'and the spotlight')
  assert.equal(await tid(employee, `card-menu-${id}`).count(), 0, 'no moderation menu for participants')

  // The audit log in words: names of cards, not ids or JSON; the JSON still downloadable.
  const leer = await addCard(fac, 'bouwstenen', 'Leerbudget')
  const budget = await addCard(fac, 'bouwstenen', 'Ontwikkelbudget')
  await control(board, { action: 'merge', card: budget, into: leer })
  await poll(async () => (await tid(fac, `card-${budget}`).count()) === 0, { message: 'the merged card gone' })
  await facTab(fac, 'log')
  await tid(fac, 'audit-open').click()
  const merged = fac.locator('[data-testid="audit-entry"][data-action="merge"]')
  await merged.waitFor()
  const line = await merged.textContent()
  s.note(`audit line: ${line}`)
  assert.match(line, /Fien voegde kaart “Ontwikkelbudget” samen met “Leerbudget/)
  const all = await tid(fac, 'audit-log').textContent()
  for (const raw of [budget, leer, '{', 'card:', 'into']) assert.ok(!all.includes(raw), `no ${raw} in the log as shown: ${all}`)
  const [download] = await Promise.all([fac.waitForEvent('download'), tid(fac, 'audit-json').click()])
  const json = JSON.parse(await (await import('node:fs')).promises.readFile(await download.path(), 'utf8'))
  assert.ok(json.some((e) => e.action === 'merge' && e.detail.card === budget && e.detail.into === leer), 'the JSON keeps the ids')
})
