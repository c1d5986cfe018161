// Browser tests: the board's history for every role (see ../README.md). A participant opens the
// history, views a snapshot as a read-only board and compares it with now; restoring stays the
// facilitator's.
import assert from 'node:assert/strict'
import { flow, poll, BASE, FT, apiOk, createBoard, invite, control, exportBoard, tid, openBoard, addCard, waitCardText } from '../harness.mjs'

const cardTexts = async (board) => Object.values((await exportBoard(board)).documents.canvas.cards ?? {}).map((c) => c.text)

flow('a union member opens the history, views “Na stap 3” as a read-only board without the card hidden since, goes back, compares it with now in words, and has no restore', async (s) => {
  const board = await createBoard('Geschiedenis voor iedereen')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const kept = await addCard(fac, 'bouwstenen', 'Ontwikkelbudget voor iedereen')
  const hidden = await addCard(fac, 'themas', 'Een kaart die later verborgen wordt')
  await waitCardText(fac, hidden, 'Een kaart die later verborgen wordt', 'the second card')
  await poll(async () => (await cardTexts(board)).includes('Een kaart die later verborgen wordt') && (await cardTexts(board)).includes('Ontwikkelbudget voor iedereen'),
    { message: 'both cards on the server' })
  await apiOk('POST', `/api/boards/${board}/snapshots`, FT, { name: 'Na stap 3' })

  // After the snapshot: one card hidden, one added.
  await control(board, { action: 'hide', card: hidden })
  const added = await addCard(fac, 'bouwstenen', 'DI-uren')
  await poll(async () => (await cardTexts(board)).includes('DI-uren'), { message: 'the added card on the server' })

  // The union member opens the history tab: the snapshot is listed, with open and compare, and
  // neither taking nor restoring is offered.
  const inv = await invite(board, 'union')
  const { page } = await openBoard(await s.context({}, 'union'), inv.url, 'Umut')
  await tid(page, 'tab-history').click()
  const row = tid(page, 'snapshot').filter({ hasText: 'Na stap 3' })
  await poll(async () => (await row.count()) === 1, { message: 'the snapshot in the union member\'s history' })
  assert.equal(await tid(page, 'snapshot-restore').count(), 0, 'no restore for a participant')
  assert.equal(await tid(page, 'snapshot-take').count(), 0, 'no taking snapshots for a participant')

  // Opened: a read-only board with a banner; the kept card is there, read-only; the card hidden
  // since is not (the server shows a snapshot as the role may see the board now); the card
  // added since is not either.
  await tid(row, 'snapshot-open').click()
  const view = tid(page, 'snapshot-board')
  await tid(view, 'snapshot-banner').waitFor({ state: 'visible' })
  assert.match(await tid(view, 'snapshot-banner').textContent(), /Momentopname ‘Na stap 3’ — alleen lezen/)
  const card = tid(view, `card-${kept}`)
  await card.waitFor({ state: 'visible' })
  assert.equal(await tid(card, 'card-text').inputValue(), 'Ontwikkelbudget voor iedereen')
  assert.equal(await tid(card, 'card-text').getAttribute('readonly'), '', 'the snapshot\'s card is read-only')
  assert.equal(await tid(view, `card-${hidden}`).count(), 0, 'the card hidden since is not in the opened snapshot')
  assert.doesNotMatch(await view.textContent(), /later verborgen/)
  assert.equal(await tid(view, `card-${added}`).count(), 0, 'the card added since is not in the snapshot')
  assert.equal(await view.locator('[data-testid^="add-card-"]').count(), 0, 'no add buttons on a snapshot')
  assert.equal(await tid(view, 'remove-card').count(), 0, 'no remove buttons on a snapshot')
  // Typing changes nothing: the textarea is read-only, and the live board keeps its text.
  await tid(card, 'card-text').press('X').catch(() => {})
  assert.equal(await tid(card, 'card-text').inputValue(), 'Ontwikkelbudget voor iedereen')

  // Back to the list; the live board is as it is now.
  await tid(view, 'snapshot-back').click()
  await poll(async () => (await tid(page, 'snapshot-board').isHidden()) && (await row.isVisible()), { message: 'the list again' })
  await tid(row, 'snapshot-compare').click()
  await poll(async () => (await tid(page, 'snapshot-changes').textContent())?.includes('Bouwstenen: toegevoegd: “DI-uren”'),
    { message: 'the comparison names the added card' })
  assert.doesNotMatch(await tid(page, 'snapshot-detail').textContent(), /later verborgen/, 'the hidden card is not in the comparison')
  await tid(page, 'tab-canvas').click()
  await waitCardText(page, added, 'DI-uren', 'the live canvas with the added card')
  assert.equal(await tid(page, `card-${hidden}`).count(), 0)
  assert.deepEqual((await cardTexts(board)).sort(), ['DI-uren', 'Ontwikkelbudget voor iedereen'], 'opening a snapshot changed nothing')
})

flow('the facilitator takes a snapshot in the history tab, views it read-only in English, and restores it', async (s) => {
  const board = await createBoard('Geschiedenis facilitator')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const first = await addCard(fac, 'bouwstenen', 'Ontwikkelbudget')
  await poll(async () => (await cardTexts(board)).includes('Ontwikkelbudget'), { message: 'the card on the server' })
  await tid(fac, 'tab-history').click()
  await tid(fac, 'snapshot-name').fill('Na stap 3')
  await tid(fac, 'snapshot-take').click()
  const row = tid(fac, 'snapshot').filter({ hasText: 'Na stap 3' })
  await poll(async () => (await row.count()) === 1, { message: 'the snapshot listed' })
  await tid(fac, 'tab-canvas').click()
  const second = await addCard(fac, 'bouwstenen', 'DI-uren')
  await poll(async () => (await cardTexts(board)).includes('DI-uren'), { message: 'the second card on the server' })

  await tid(fac, 'tab-history').click()
  await tid(fac, 'lang-switch').click()
  await tid(row, 'snapshot-open').click()
  const view = tid(fac, 'snapshot-board')
  await poll(async () => /Snapshot ‘Na stap 3’ — read-only/.test(await tid(view, 'snapshot-banner').textContent()), { message: 'the English banner' })
  await tid(view, `card-${first}`).waitFor({ state: 'visible' })
  assert.equal(await tid(view, `card-${second}`).count(), 0)
  assert.equal(await tid(view, `hide-${first}`).count(), 0, 'no moderation on a snapshot')
  await tid(view, 'snapshot-back').click()
  await tid(fac, 'lang-switch').click()

  fac.once('dialog', (d) => d.accept())
  await tid(row, 'snapshot-restore').click()
  await poll(async () => !(await cardTexts(board)).includes('DI-uren'), { timeout: 10000, message: 'the board restored without the second card' })
  await poll(async () => (await tid(fac, 'snapshot').allTextContents()).some((x) => x.includes('Voor herstel van')), { message: 'the automatic snapshot before the restore' })
})
