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
