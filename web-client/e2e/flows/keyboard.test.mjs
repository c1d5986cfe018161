// Browser tests: keyboard (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import { flow, poll, createBoard, invite, tid, openBoard, cardIds, cardText } from '../harness.mjs'

flow('keyboard: Tab reaches add-card-themas with a visible focus outline, Enter adds a card whose text has the focus', async (s) => {
  const board = await createBoard('Toetsenbord')
  const invE = await invite(board, 'employer')
  const { page } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  await tid(page, 'add-card-themas').waitFor({ state: 'visible' })
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0) })
  const active = () => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.tagName ?? null)
  const path_ = []
  for (let i = 0; i < 80 && (await active()) !== 'add-card-themas'; i++) {
    await page.keyboard.press('Tab')
    path_.push(await active())
  }
  assert.equal(await active(), 'add-card-themas', `Tab reaches add-card-themas (went through: ${path_.join(' → ')})`)
  s.note(`${path_.length} Tab presses to add-card-themas`)
  const outline = await tid(page, 'add-card-themas').evaluate((el) => {
    const cs = getComputedStyle(el)
    return { visible: el.matches(':focus-visible'), style: cs.outlineStyle, width: parseFloat(cs.outlineWidth) }
  })
  assert.ok(outline.visible && outline.style !== 'none' && outline.width >= 2, `add-card-themas shows a focus outline (${JSON.stringify(outline)})`)

  const before = new Set(await cardIds(page, 'themas'))
  await page.keyboard.press('Enter')
  const { value: id } = await poll(async () => (await cardIds(page, 'themas')).find((c) => !before.has(c)), { message: 'a new card after Enter on add-card-themas' })
  await poll(() => page.evaluate((id) => document.activeElement === document.querySelector(`[data-testid="card-${id}"] [data-testid="card-text"]`), id),
    { message: 'the new card\'s card-text to have the focus' })
  await page.keyboard.type('Met het toetsenbord', { delay: 10 })
  assert.equal(await cardText(page, id), 'Met het toetsenbord', 'typing goes into the new card')
})
