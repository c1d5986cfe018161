// Browser tests: from workshop to advice (see ../README.md): the facilitator's history tab
// (take, compare, restore), the report downloads in the advice panel and a new board for the
// next round.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { flow, poll, BASE, FT, apiOk, createBoard, exportBoard, tid, openBoard, addCard, waitCardText } from '../harness.mjs'

const cardTexts = async (board) => Object.values((await exportBoard(board)).documents.canvas.cards ?? {}).map((c) => c.text)

flow('history and advice: the facilitator takes a snapshot, compares it with now in words, restores it, downloads the report and starts the next round', async (s) => {
  const board = await createBoard('Advies en geschiedenis')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const panel = tid(fac, 'advice-panel')
  await panel.scrollIntoViewIfNeeded()
  assert.match(await panel.textContent(), /Advies en volgende ronde/)
  const first = await addCard(fac, 'bouwstenen', 'Ontwikkelbudget voor iedereen')
  await waitCardText(fac, first, 'Ontwikkelbudget voor iedereen', 'the first card')
  await poll(async () => (await cardTexts(board)).includes('Ontwikkelbudget voor iedereen'), { message: 'the first card on the server' })

  // Take a named snapshot in the history tab.
  await tid(fac, 'tab-history').click()
  await tid(fac, 'snapshot-name').fill('Na stap 3')
  await tid(fac, 'snapshot-take').click()
  await poll(async () => (await tid(fac, 'snapshot').allTextContents()).some((x) => x.includes('Na stap 3')), { message: 'the snapshot listed' })

  // Change the board, compare: the new card shows as added, in words.
  await tid(fac, 'tab-canvas').click()
  const second = await addCard(fac, 'bouwstenen', 'DI-uren')
  await waitCardText(fac, second, 'DI-uren', 'the second card')
  await poll(async () => (await cardTexts(board)).includes('DI-uren'), { message: 'the second card on the server' })
  await tid(fac, 'tab-history').click()
  const row = tid(fac, 'snapshot').filter({ hasText: 'Na stap 3' })
  await row.getByTestId('snapshot-compare').click()
  await poll(async () => (await tid(fac, 'snapshot-changes').textContent())?.includes('Bouwstenen: toegevoegd: “DI-uren”'),
    { message: 'the comparison names the added card' })

  // Restore (confirming the dialog): the second card leaves the board, the first stays, and an
  // automatic snapshot of the state before is listed.
  fac.once('dialog', (d) => d.accept())
  await row.getByTestId('snapshot-restore').click()
  await poll(async () => (await tid(fac, `card-${second}`).count()) === 0, { timeout: 10000, message: 'the restored board without the second card' })
  assert.equal(await tid(fac, `card-${first}`).count(), 1)
  await poll(async () => (await tid(fac, 'snapshot').allTextContents()).some((x) => x.includes('Voor herstel van')), { message: 'the automatic snapshot before the restore' })

  // The report as Markdown, downloaded.
  const [download] = await Promise.all([fac.waitForEvent('download'), tid(fac, 'report-md').click()])
  const md = fs.readFileSync(await download.path(), 'utf8')
  assert.match(md, /## 3 Prioriteiten en bouwstenen/)
  assert.match(md, /Ontwikkelbudget voor iedereen/)
  assert.doesNotMatch(md, /DI-uren/)

  // The next round: a new board, linked, with the agreement carried over.
  await tid(fac, 'next-round-title').fill('Cao 2029')
  await tid(fac, 'next-round-create').click()
  const link = tid(fac, 'next-round-link')
  await poll(async () => (await link.count()) === 1, { message: 'the link to the new board' })
  const next = new URL(await link.getAttribute('href'), BASE).searchParams.get('board')
  const made = await apiOk('GET', `/api/boards/${next}/export`, FT)
  assert.equal(made.board.title, 'Cao 2029')
  assert.ok(Object.values(made.documents.canvas.cards).some((c) => c.text === 'Ontwikkelbudget voor iedereen'))
})
