// Browser tests: presentation mode and the room screen (see ../README.md).
import assert from 'node:assert/strict'
import { flow, poll, BASE, FT, createBoard, invite, control, tid, openBoard, addCard, exportBoard } from '../harness.mjs'

flow('the room screen follows the facilitator to the gap board and back, a spotlight marks the focused section, card and row, and everyone keeps writing', async (s) => {
  const board = await createBoard('Presentatie')
  const [invO, invE] = [await invite(board, 'observer'), await invite(board, 'employer')]
  const { page: screen } = await openBoard(await s.context({}, 'room-screen'), invO.url, 'Zaalscherm')
  const { page: employer } = await openBoard(await s.context({}, 'employer-pres'), invE.url, 'Els')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  await tid(screen, 'section-themas').waitFor()
  assert.equal(await tid(screen, 'tab-gap').getAttribute('aria-selected'), 'false')
  await control(board, { action: 'presentation', on: true, focus: { doc: 'gap' } })
  await poll(async () => (await tid(screen, 'tab-gap').getAttribute('aria-selected')) === 'true',
    { timeout: 5000, message: 'the room screen switched to the gap board' })
  assert.ok(await screen.evaluate(() => document.body.classList.contains('presenting')), 'larger text for the projector')

  // Presentation locks nobody: the employer adds and writes a card, the server keeps it.
  await control(board, { action: 'presentation', on: true, focus: { doc: 'canvas', section: 'bouwstenen' } })
  await poll(async () => (await tid(screen, 'tab-canvas').getAttribute('aria-selected')) === 'true',
    { message: 'the room screen followed back to the canvas' })
  await poll(async () => (await tid(screen, 'section-bouwstenen').getAttribute('data-spotlight')) === 'true',
    { message: 'the focused section in the spotlight on the room screen' })
  assert.equal(await tid(screen, 'section-themas').getAttribute('data-spotlight'), null, 'only the focused section is lit')
  const id = await addCard(employer, 'bouwstenen', 'Tijdens de presentatie geschreven')
  await poll(async () => (await exportBoard(board)).documents?.canvas?.cards?.[id]?.text === 'Tijdens de presentatie geschreven',
    { message: 'the server stored the card written during the presentation' })
  assert.equal(await employer.locator('[data-testid="notice"]').textContent(), '', 'no refusal notice')

  // The facilitator puts that card in the spotlight from the card; then a gap row.
  await tid(fac, `card-${id}`).waitFor()
  await tid(fac, `spotlight-${id}`).click()
  await poll(async () => (await tid(screen, `card-${id}`).getAttribute('data-spotlight')) === 'true',
    { message: 'the card in the spotlight on the room screen' })
  await tid(fac, 'tab-gap').click()
  await tid(fac, 'add-row').click()
  const row = await poll(() => fac.evaluate(() => document.querySelector('[data-testid^="row-r"]')?.getAttribute('data-testid')?.slice(4)),
    { message: 'a gap row' }).then((r) => r.value)
  await tid(fac, `spotlight-row-${row}`).click()
  await poll(async () => (await tid(screen, 'tab-gap').getAttribute('aria-selected')) === 'true' &&
    (await tid(screen, `row-${row}`).getAttribute('data-spotlight')) === 'true', { message: 'the row in the spotlight on the room screen' })

  // Locks remain the one thing that stops writing, presentation or not.
  await control(board, { action: 'lock', scope: 'section', target: 'themas', locked: true })
  await poll(async () => (await tid(employer, 'add-card-themas').count()) === 0, { message: 'a lock still removes the add button' })
  await control(board, { action: 'lock', scope: 'section', target: 'themas', locked: false })
  await control(board, { action: 'presentation', on: false })
  await poll(async () => !(await screen.evaluate(() => document.body.classList.contains('presenting'))), { message: 'presentation ends' })
})

flow('at 1920×1080 the room screen reads from the back of the room: big text, the timer and step always in view, the whole canvas as a poster', async (s) => {
  const board = await createBoard('Zaalscherm')
  const [invO, invE] = [await invite(board, 'observer'), await invite(board, 'employer')]
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Els')
  for (const section of ['themas', 'bouwstenen', 'rollen']) {
    for (let i = 0; i < 3; i++) await addCard(employer, section, `Kaart ${i + 1} in ${section}, met wat tekst erbij`)
  }
  const tagged = await addCard(employer, 'bouwstenen', 'Ontwikkelbudget')
  await tid(employer, `card-${tagged}`).locator('.card-labels summary').click()
  await tid(tid(employer, `card-${tagged}`), 'type-select').selectOption('preventief')
  await control(board, { action: 'timer', op: 'start', seconds: 600 })
  await control(board, { action: 'presentation', on: true, focus: { doc: 'canvas' } })
  const { page: screen } = await openBoard(await s.context({ viewport: { width: 1920, height: 1080 } }, 'room-screen'), invO.url, 'Zaalscherm')
  await poll(async () => screen.evaluate(() => document.body.classList.contains('presenting')), { message: 'presenting on the room screen' })
  await tid(tid(screen, `card-${tagged}`), 'tag-type').waitFor()
  const px = (sel) => screen.evaluate((sel) => {
    const el = document.querySelector(sel)
    return el ? parseFloat(getComputedStyle(el).fontSize) : 0
  }, sel)
  const sizes = {
    cardText: await px(`[data-testid="card-${tagged}"] [data-testid="card-text"]`),
    tag: await px(`[data-testid="card-${tagged}"] [data-testid="tag-type"]`),
    timer: await px('[data-testid="timer"]'),
    step: await px('[data-testid="step-indicator"]'),
    sectionTitle: await px('[data-testid="section-bouwstenen"] h2'),
  }
  s.note(`computed font sizes at 1920×1080 (px): ${JSON.stringify(sizes)}`)
  assert.ok(sizes.cardText >= 24, `card text ≥ 24 px (${sizes.cardText})`)
  assert.ok(sizes.tag >= 20, `tags ≥ 20 px (${sizes.tag})`)
  assert.ok(sizes.timer >= 40, `timer ≥ 40 px (${sizes.timer})`)
  assert.ok(sizes.step >= 24, `step ≥ 24 px (${sizes.step})`)
  assert.ok(sizes.sectionTitle >= 30, `section titles ≥ 30 px (${sizes.sectionTitle})`)

  // Scrolled to the bottom, the timer and the step are still on screen (sticky header).
  await screen.evaluate(() => window.scrollTo(0, document.body.scrollHeight))
  const inView = async (id) => screen.evaluate((id) => {
    const r = document.querySelector(`[data-testid="${id}"]`).getBoundingClientRect()
    return r.top >= 0 && r.bottom <= window.innerHeight && window.scrollY > 0
  }, id)
  assert.ok(await inView('timer'), 'the timer stays in view when scrolled down')
  assert.ok(await inView('step-indicator'), 'the step stays in view when scrolled down')

  // The poster view: the facilitator's focus "poster" fits the whole canvas on one screen.
  const fits = () => screen.evaluate(() => {
    const last = [...document.querySelectorAll('[data-testid^="section-"]')].at(-1).getBoundingClientRect()
    return { bottom: Math.round(last.bottom), height: window.innerHeight, scroll: document.documentElement.scrollHeight }
  })
  const before = await fits()
  assert.ok(before.scroll > before.height * 1.5, `without the poster the canvas scrolls (${JSON.stringify(before)})`)
  await control(board, { action: 'presentation', on: true, focus: { doc: 'canvas', poster: true } })
  await poll(async () => screen.evaluate(() => document.body.classList.contains('poster')), { message: 'the poster view on the room screen' })
  const { value: after } = await poll(async () => {
    const f = await fits()
    return f.bottom <= f.height && f.scroll <= f.height + 2 && f
  }, { message: 'every section on one screen in the poster view' })
  s.note(`canvas height ${before.scroll} px → poster fits in ${after.height} px`)
  await control(board, { action: 'presentation', on: false })
  // Anyone can choose the poster view for themselves.
  await tid(employer, 'poster-toggle').click()
  assert.equal(await tid(employer, 'poster-toggle').getAttribute('aria-pressed'), 'true')
})
