// Browser tests: the safety net — confirmations, undo of one's own edits, notices that clear and
// a timer that ends (see ../README.md).
import assert from 'node:assert/strict'
import { flow, poll, never, createBoard, invite, control, exportBoard, tid, openBoard, addCard, cardText, typeInto, waitCardText } from '../harness.mjs'

flow('deleting a card asks first: cancel keeps it, OK removes it', async (s) => {
  const board = await createBoard('Bevestigen')
  const { page } = await openBoard(await s.context({}, 'employer'), (await invite(board, 'employer')).url, 'Els')
  const id = await addCard(page, 'bouwstenen', 'Niet zomaar weg')
  const asked = []
  page.once('dialog', (d) => { asked.push(d.message()); void d.dismiss() })
  await tid(tid(page, `card-${id}`), 'remove-card').click()
  await never(async () => (await tid(page, `card-${id}`).count()) === 0, { duration: 800, message: 'the card went without a yes' })
  assert.match(asked[0] ?? '', /Deze kaart verwijderen\?/)
  page.once('dialog', (d) => void d.accept())
  await tid(tid(page, `card-${id}`), 'remove-card').click()
  await poll(async () => (await tid(page, `card-${id}`).count()) === 0, { message: 'the card removed after OK' })
})

flow('undo takes back one\'s own last typing, never a colleague\'s, and the server keeps the undone text', async (s) => {
  const board = await createBoard('Ongedaan')
  const inv = await invite(board, 'employer')
  const { page: me } = await openBoard(await s.context({}, 'me'), inv.url, 'Els')
  const { page: colleague } = await openBoard(await s.context({}, 'colleague'), inv.url, 'Erik')
  assert.ok(await tid(me, 'undo').isDisabled(), 'nothing to undo at first')
  const mine = await addCard(me, 'bouwstenen', 'Mijn tekst')
  const theirs = await addCard(colleague, 'bouwstenen', 'Tekst van Erik')
  await waitCardText(me, theirs, 'Tekst van Erik', 'my page shows the colleague\'s card')
  await me.waitForTimeout(800) // a new undo step after the capture timeout
  await typeInto(tid(tid(me, `card-${mine}`), 'card-text'), ' — en nog meer')
  await waitCardText(colleague, mine, 'Mijn tekst — en nog meer', 'the colleague sees my typing')
  await poll(async () => !(await tid(me, 'undo').isDisabled()), { message: 'undo offered' })
  await tid(me, 'undo').click()
  await waitCardText(colleague, mine, 'Mijn tekst', 'the undo reaches the colleague')
  assert.equal(await cardText(me, theirs), 'Tekst van Erik', 'the colleague\'s card untouched')
  await poll(async () => (await exportBoard(board)).documents.canvas.cards[mine]?.text === 'Mijn tekst', { message: 'the server holds the undone text' })
  await tid(me, 'undo').click()
  await waitCardText(colleague, mine, '', 'the second undo takes back the first typing (the card itself stays)')
  assert.equal(await tid(me, `card-${mine}`).count(), 1, 'undo never deletes a card')
  assert.equal(await cardText(colleague, theirs), 'Tekst van Erik')
  assert.equal(await me.locator('[data-testid="notice"]').textContent(), '', 'no refusal')
})

flow('a notice clears by itself, and a timer that reaches 00:00 says "afgelopen" and flashes', async (s) => {
  const board = await createBoard('Signalen')
  const { page } = await openBoard(await s.context({}, 'employer'), (await invite(board, 'employer')).url, 'Els')
  await tid(page, 'tab-staalkaart').click()
  const example = page.locator('[data-testid^="place-"]').first()
  await example.click()
  await poll(async () => (await tid(page, 'notice').textContent()).length > 0, { message: 'a notice after placing an example' })
  const { elapsed } = await poll(async () => (await tid(page, 'notice').isHidden()), { timeout: 10000, interval: 200, message: 'the notice to clear' })
  s.note(`notice cleared after ${Math.round(elapsed)} ms`)
  await control(board, { action: 'timer', op: 'start', seconds: 2 })
  await poll(async () => (await tid(page, 'timer').getAttribute('data-status')) === 'running', { message: 'the timer runs' })
  await poll(async () => (await tid(page, 'timer').getAttribute('data-status')) === 'ended', { timeout: 6000, message: 'the timer ends' })
  assert.match(await tid(page, 'timer').textContent(), /00:00 afgelopen/)
  assert.match(await tid(page, 'timer').getAttribute('aria-label'), /afgelopen/)
  assert.ok(await tid(page, 'timer').evaluate((el) => el.classList.contains('is-over') && getComputedStyle(el).animationName === 'timer-flash'), 'it flashes')
})
