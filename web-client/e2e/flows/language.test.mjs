// Browser tests: language (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import { flow, poll, createBoard, invite, tid, openBoard } from '../harness.mjs'

flow('language: Dutch by default, the lang-switch turns the page English (html[lang] and texts) and back', async (s) => {
  const board = await createBoard('Taal')
  const inv = await invite(board, 'union')
  const ctx = await s.context({}, 'union-lang')
  const { page } = await openBoard(ctx, inv.url, 'Uri')
  await tid(page, 'section-themas').waitFor()
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'nl', 'Dutch by default')
  const nl = await tid(page, 'tab-gap').textContent()
  await tid(page, 'lang-switch').click()
  await poll(async () => (await page.evaluate(() => document.documentElement.lang)) === 'en', { message: 'html[lang] = en' })
  const en = await tid(page, 'tab-gap').textContent()
  assert.notEqual(en, nl, `the gap tab's label changes language (${nl} → ${en})`)
  assert.match(await tid(page, 'connection-status').textContent(), /connected/i, 'the connection status speaks English')
  await tid(page, 'lang-switch').click()
  await poll(async () => (await page.evaluate(() => document.documentElement.lang)) === 'nl', { message: 'back to nl' })
})

flow('in English the template speaks English too: section titles and hints, the step, the themes and the staalkaart\'s labels', async (s) => {
  const board = await createBoard('Taal van het sjabloon')
  const { page } = await openBoard(await s.context({}, 'employer'), (await invite(board, 'employer')).url, 'Els')
  const title = () => tid(page, 'section-bouwstenen').locator('h2').textContent()
  assert.equal(await title(), 'Bouwstenen')
  await tid(page, 'lang-switch').click()
  await poll(async () => (await title()) === 'Building blocks', { message: 'the section title in English' })
  assert.match(await tid(page, 'section-themas').locator('.hint').textContent(), /^Brainstorm: which themes/)
  assert.match(await tid(page, 'step-indicator').getAttribute('title'), /Kick-off and the assignment/)
  await tid(page, 'tab-staalkaart').click()
  const pijlers = await tid(page, 'staal-filter-pijler').locator('option').allTextContents()
  assert.deepEqual(pijlers.slice(1), ['Health', 'Competence', 'Motivation'])
  const themes = await tid(page, 'staal-filter-thema').locator('option').allTextContents()
  assert.ok(themes.includes('Heavy work'), `themes in English: ${themes}`)
  await tid(page, 'lang-switch').click()
  await tid(page, 'tab-canvas').click()
  await poll(async () => (await title()) === 'Bouwstenen', { message: 'back to Dutch' })
})
