// Browser tests: moving cards between canvas sections — dragging a card by its handle with the
// mouse, and with the keyboard from its text (Alt+M opens the card's move menu, Alt+↓ moves it to
// the next section it may go to). The server decides every move (POST .../cards/{id}/move);
// a second browser sees each move, and a section the role may not write is no drop target and
// refuses a forced request (see ../README.md).
import assert from 'node:assert/strict'
import { flow, poll, never, createBoard, invite, exportBoard, tid, openBoard, addCard, cardText, keptToken, api } from '../harness.mjs'

/** The section a card is drawn in on a page (null: not drawn). */
const sectionOf = (page, id) => page.evaluate((id) => document.querySelector(`[data-testid="card-${CSS.escape(id)}"]`)?.getAttribute('data-section') ?? null, id)

/** Waits until the card is drawn in `section` on every page and stored there on the server. */
async function movedEverywhere (board, id, section, pages, what) {
  for (const page of pages) await poll(async () => (await sectionOf(page, id)) === section, { message: `${what}: card in ${section} on every page` })
  await poll(async () => (await exportBoard(board)).documents.canvas.cards[id]?.section === section, { message: `${what}: the server holds it in ${section}` })
}

flow('an employer drags a card to another section with the mouse, and a colleague sees it there', async (s) => {
  const board = await createBoard('Slepen')
  const inv = await invite(board, 'employer')
  const { page: me } = await openBoard(await s.context({}, 'me'), inv.url, 'Els')
  const { page: other } = await openBoard(await s.context({}, 'colleague'), inv.url, 'Erik')
  const id = await addCard(me, 'analyse', 'Verzuim per afdeling')
  await poll(async () => (await sectionOf(other, id)) === 'analyse', { message: 'the colleague sees the new card' })

  await tid(me, `drag-${id}`).dragTo(tid(me, 'section-rollen'))
  await movedEverywhere(board, id, 'rollen', [me, other], 'after the drag')
  assert.equal(await cardText(other, id), 'Verzuim per afdeling', 'the card keeps its text')
  const stored = (await exportBoard(board)).documents.canvas.cards[id]
  assert.equal(stored.author, 'Werkgever', 'and its author')
  assert.equal(await tid(me, 'notice').textContent(), 'Verplaatst naar Rollen en verantwoordelijkheden', 'the mover is told where it went')
  // The author still edits it where it is now.
  await tid(tid(me, `card-${id}`), 'card-text').focus()
  await me.keyboard.press('Control+End')
  await me.keyboard.type(' en team', { delay: 10 })
  await poll(async () => (await cardText(other, id)) === 'Verzuim per afdeling en team', { message: 'an edit after the move reaches the colleague' })
})

flow('an employee moves their card with the keyboard: Alt+M opens the move menu, Alt+↓ moves it on, and a second browser follows', async (s) => {
  const board = await createBoard('Toetsen verplaatsen')
  const { page: me } = await openBoard(await s.context({}, 'employee'), (await invite(board, 'employee')).url, 'Wim')
  const { page: other } = await openBoard(await s.context({}, 'employer'), (await invite(board, 'employer')).url, 'Els')
  const id = await addCard(me, 'themas', 'Roosters die passen')
  // Alt+M from the card's text: the move menu opens with the focus on its first target. An
  // employee adds to themas and bouwstenen only, so bouwstenen is the one target.
  await tid(tid(me, `card-${id}`), 'card-text').focus()
  await me.keyboard.press('Alt+m')
  const targets = await tid(me, `card-${id}`).locator('[data-testid^="move-to-"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')))
  assert.deepEqual(targets, ['move-to-bouwstenen'], 'the menu offers only the sections the employee may write')
  await poll(() => me.evaluate((id) => document.activeElement === document.querySelector(`[data-testid="card-${id}"] [data-testid="move-to-bouwstenen"]`), id),
    { message: 'the focus on the first move target' })
  await me.keyboard.press('Enter')
  await movedEverywhere(board, id, 'bouwstenen', [me, other], 'after Enter in the move menu')
  // The focus follows the card to its new section; Alt+↑ takes it back to themas.
  await poll(() => me.evaluate((id) => document.activeElement === document.querySelector(`[data-testid="card-${id}"][data-section="bouwstenen"] [data-testid="card-text"]`), id),
    { message: 'the focus on the moved card\'s text' })
  await me.keyboard.press('Alt+ArrowUp')
  await movedEverywhere(board, id, 'themas', [me, other], 'after Alt+↑')
  await poll(() => me.evaluate((id) => document.activeElement === document.querySelector(`[data-testid="card-${id}"][data-section="themas"] [data-testid="card-text"]`), id),
    { message: 'the focus stays with the card' })
  await me.keyboard.press('Alt+ArrowDown')
  await movedEverywhere(board, id, 'bouwstenen', [me, other], 'after Alt+↓')
  await me.keyboard.type('!', { delay: 10 })
  await poll(async () => (await cardText(other, id)) === 'Roosters die passen!', { message: 'typing goes on in the moved card' })
})

flow('an employee cannot drag into a section their role may not write: no drop target there, and a forced request is refused', async (s) => {
  const board = await createBoard('Niet daarheen')
  const { page: me } = await openBoard(await s.context({}, 'employee'), (await invite(board, 'employee')).url, 'Wim')
  const { page: other } = await openBoard(await s.context({}, 'employer'), (await invite(board, 'employer')).url, 'Els')
  const id = await addCard(me, 'themas', 'Minder nachtdiensten')
  // While dragging, bouwstenen is a drop target and analyse (employers and unions only) is not.
  const handle = tid(me, `drag-${id}`)
  await handle.hover()
  await me.mouse.down()
  const box = await tid(me, 'section-analyse').boundingBox()
  await me.mouse.move(box.x + box.width / 2, box.y + 20, { steps: 5 })
  await poll(async () => (await tid(me, 'section-bouwstenen').getAttribute('data-drop-target')) === 'true', { message: 'bouwstenen offered as a drop target while dragging' })
  assert.equal(await tid(me, 'section-analyse').getAttribute('data-drop-target'), null, 'analyse is no drop target')
  assert.equal(await tid(me, 'section-doel').getAttribute('data-drop-target'), null, 'doel is no drop target')
  assert.ok(await tid(me, 'drop-bouwstenen').isVisible(), 'bouwstenen says "Hier neerzetten"')
  await me.mouse.up()
  await never(async () => (await sectionOf(me, id)) !== 'themas', { duration: 800, message: 'the card left themas after a drop on analyse' })
  // The same with Playwright's dragTo.
  await handle.dragTo(tid(me, 'section-analyse'))
  await never(async () => (await sectionOf(me, id)) !== 'themas' || (await sectionOf(other, id)) !== 'themas', { duration: 800, message: 'a drop on analyse moved the card' })
  assert.equal(await tid(me, 'section-analyse').getAttribute('data-drop-target'), null, 'no drop target left after the drag')
  // Past the UI: the server refuses the move, with the rule's code.
  const token = await keptToken(me, board)
  const forced = await api('POST', `/api/boards/${board}/cards/${id}/move`, token, { to: 'analyse' })
  assert.equal(forced.status, 403, forced.text)
  assert.equal(forced.json.error, 'permission-denied')
  assert.match(forced.json.message, /^role-not-allowed: /)
  assert.equal((await exportBoard(board)).documents.canvas.cards[id].section, 'themas', 'the server keeps the card in themas')
  // An employer's card in themas (only authors edit there) offers the employee no move at all.
  const theirs = await addCard(other, 'themas', 'Van de werkgever')
  await poll(async () => (await sectionOf(me, theirs)) === 'themas', { message: 'the employer\'s card reaches the employee' })
  assert.equal(await tid(me, `drag-${theirs}`).count(), 0, 'no drag handle on a card one may not move')
  assert.equal(await tid(me, `move-menu-${theirs}`).count(), 0, 'no move menu on it')
  const notMine = await api('POST', `/api/boards/${board}/cards/${theirs}/move`, token, { to: 'bouwstenen' })
  assert.equal(notMine.status, 403, notMine.text)
  assert.match(notMine.json.message, /^not-your-item: /)
})
