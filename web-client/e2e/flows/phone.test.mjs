// Browser tests: phone (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import { flow, createBoard, invite, control, tid, openBoard, cardText, addCard, exportBoard, poll } from '../harness.mjs'

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

flow('on a 390 px phone nothing scrolls sideways with every panel opened: the label editor, the move menu, the gap board, the own workspace, the staalkaart, the voting results and the presence bar', async (s) => {
  const board = await createBoard('Telefoon panelen')
  const inv = await invite(board, 'employer')
  const ctx = await s.context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }, 'employer-phone')
  const { page } = await openBoard(ctx, inv.url, 'Els')
  const widths = []
  const check = async (what) => {
    const w = await page.evaluate(() => {
      const wide = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > 391 && el.getClientRects().length)
      return { scroll: document.documentElement.scrollWidth, body: document.body.scrollWidth, wide: wide.slice(0, 3).map((el) => `${el.tagName.toLowerCase()}.${el.className}`) }
    })
    widths.push(`${what}: ${w.scroll}`)
    assert.ok(w.scroll <= 391 && w.body <= 391, `${what}: scrollWidth ${w.scroll}/${w.body} at 390 px (too wide: ${w.wide.join(', ')})`)
  }
  const id = await addCard(page, 'bouwstenen', 'Een kaart met labels op de telefoon', { tap: true })
  await check('canvas')
  await tid(page, `card-${id}`).locator('.card-labels summary').tap()
  await tid(tid(page, `card-${id}`), 'type-select').waitFor({ state: 'visible' })
  await check('label editor open')
  const editor = await tid(page, `card-${id}`).locator('.card-labels').boundingBox()
  const card = await tid(page, `card-${id}`).boundingBox()
  assert.ok(editor.x >= card.x - 1 && editor.x + editor.width <= card.x + card.width + 1, `the label editor stays inside its card (${JSON.stringify({ editor, card })})`)
  await tid(page, `card-${id}`).locator('.card-labels summary').tap()
  await tid(page, `move-menu-${id}`).tap()
  await tid(tid(page, `card-${id}`), 'move-to-themas').waitFor({ state: 'visible' })
  await check('move menu open')
  await tid(page, `move-menu-${id}`).tap()
  for (const tab of ['gap', 'party', 'staalkaart']) {
    await tid(page, `tab-${tab}`).tap()
    await page.waitForTimeout(200)
    if (tab === 'gap') await tid(page, 'add-row').tap()
    await check(`tab ${tab}`)
  }
  await tid(page, 'tab-canvas').tap()
  await tid(page, 'poster-toggle').tap()
  await check('poster view')
  await tid(page, 'poster-toggle').tap()
  // A revealed round: the ranked results with bars above the tabs.
  await control(board, { action: 'open-round', title: 'Welke bouwsteen eerst?', items: [`canvas/${id}`], budget: 3 })
  const { value: round } = await poll(async () => Object.entries((await exportBoard(board)).documents.control.rounds ?? {}).find(([, r]) => r.status === 'open')?.[0], { message: 'an open round' })
  await control(board, { action: 'reveal-round', round })
  await tid(page, `result-${round}`).waitFor({ state: 'visible' })
  await check('voting results')
  s.note(widths.join(', '))
})

flow('on a 390 px phone nothing scrolls sideways in the monitoring plan, the history, a comparison and a snapshot opened read-only', async (s) => {
  const board = await createBoard('Telefoon monitoring en geschiedenis met een lange titel')
  const inv = await invite(board, 'union')
  const ctx = await s.context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }, 'union-phone')
  const { page } = await openBoard(ctx, inv.url, 'Umut')
  const check = async (what) => {
    const w = await page.evaluate(() => {
      const wide = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > 391 && el.getClientRects().length)
      return { scroll: document.documentElement.scrollWidth, body: document.body.scrollWidth, wide: wide.slice(0, 3).map((el) => `${el.tagName.toLowerCase()}.${el.className}`) }
    })
    assert.ok(w.scroll <= 391 && w.body <= 391, `${what}: scrollWidth ${w.scroll}/${w.body} at 390 px (too wide: ${w.wide.join(', ')})`)
  }
  const agreement = await addCard(page, 'bouwstenen', 'Een afspraak met een lange naam over het persoonlijk ontwikkelbudget voor iedereen', { tap: true })
  await tid(page, 'tab-monitoring').tap()
  await tid(tid(page, `agreement-${agreement}`), 'add-indicator').tap()
  const ind = page.locator('[data-testid^="indicator-c"]').first()
  await ind.waitFor({ state: 'visible' })
  await tid(ind, 'indicator-meetmomenten').fill('halverwege de looptijd; einde cao')
  await tid(ind, 'indicator-meetmomenten').press('Tab')
  await tid(ind, 'meting-1').waitFor({ state: 'visible' })
  await check('monitoring plan')
  await control(board, { action: 'step', step: '6' })
  await tid(page, 'tab-history').tap()
  const row = tid(page, 'snapshot').first()
  await row.waitFor({ state: 'visible' })
  await check('history list')
  await tid(row, 'snapshot-compare').tap()
  await tid(page, 'snapshot-changes').waitFor({ state: 'attached' })
  await check('comparison')
  await tid(row, 'snapshot-open').tap()
  await tid(page, 'snapshot-banner').waitFor({ state: 'visible' })
  await check('snapshot opened read-only')
})
