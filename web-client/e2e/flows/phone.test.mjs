// Browser tests: phone (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import { flow, createBoard, invite, tid, openBoard, cardText, addCard } from '../harness.mjs'

flow('phone (390×844, touch): the employee\'s board renders, add-card-themas is tappable, no horizontal scrolling', async (s) => {
  const board = await createBoard('Telefoon')
  const invM = await invite(board, 'employee')
  const ctx = await s.context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }, 'employee-phone')
  const { page } = await openBoard(ctx, invM.url, 'Mia')
  await tid(page, 'section-themas').waitFor({ state: 'visible' })
  const add = tid(page, 'add-card-themas')
  await add.scrollIntoViewIfNeeded()
  assert.ok(await add.isVisible(), 'add-card-themas is visible')
  const box = await add.boundingBox()
  assert.ok(box.x >= 0 && box.x + box.width <= 391, `add-card-themas lies within the screen width (${JSON.stringify(box)})`)
  const id = await addCard(page, 'themas', 'Minder avonddiensten', { tap: true })
  assert.equal(await cardText(page, id), 'Minder avonddiensten')
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }))
  assert.ok(widths.scroll <= 390 + 1, `no horizontal scrollbar: scrollWidth ${widths.scroll} (viewport 390)`)
})
