// Browser tests: screenshots (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { flow, cardMenu, facTab, SCREENSHOTS, DOC_SCREENSHOTS, REFRESH_DOCS, sleep, poll, BASE, tmp, FT, createBoard, invite, control, exportBoard, template, tid, openBoard, cardIds, addCard } from '../harness.mjs'

flow('screenshots: canvas.png (tagged cards) and gap.png (filled rows), to docs/screenshots with --screenshots', async (s) => {
  const board = await createBoard('Cao Zorg & Welzijn — DI-werkgroep')
  const [invE, invM] = [await invite(board, 'employer'), await invite(board, 'employee')]
  const { page: fac } = await openBoard(await s.context({ viewport: { width: 1280, height: 800 } }, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const { page: employee } = await openBoard(await s.context({}, 'employee'), invM.url, 'Mia')
  await control(board, { action: 'step', step: '4' })
  await control(board, { action: 'phase', phase: 'Delen en bespreken' })

  // Tagged cards: staalkaart examples carry pijlers, thema and type.
  const examples = (await template()).staalkaart.slice(0, 4)
  await tid(fac, 'tab-staalkaart').click()
  for (const ex of examples) {
    await tid(fac, `example-${ex.id}`).waitFor()
    await tid(fac, `place-${ex.id}`).click()
  }
  await tid(fac, 'tab-canvas').click()
  await poll(async () => (await cardIds(fac, 'bouwstenen')).length >= examples.length, { message: `${examples.length} placed cards in bouwstenen` })
  await addCard(employee, 'themas', 'Nachtdiensten worden zwaarder na je vijftigste')
  await addCard(employer, 'themas', 'Weinig zicht op opleidingsmogelijkheden')
  await addCard(employer, 'ambitie-en-scope', 'Iedereen gezond en met plezier tot de AOW-leeftijd')
  await addCard(employer, 'proces', 'Rondetafelgesprekken met medewerkers in week 12 en 14')
  await addCard(employer, 'proces', 'Advies aan de cao-tafel vóór 1 juni')
  await poll(async () => (await cardIds(fac, 'themas')).length >= 2 && (await cardIds(fac, 'proces')).length >= 2,
    { message: 'the participants\' cards on the facilitator\'s canvas' })
  for (const p of [employer, employee, fac]) await p.evaluate(() => document.activeElement?.blur())
  const chips = await fac.evaluate(() => [...document.querySelectorAll('[data-testid^="card-"][data-section="bouwstenen"] [data-testid^="tag-"]')]
    .filter((el) => el.offsetParent !== null).length)
  s.note(`${chips} tag chips on the canvas`)
  assert.ok(chips >= examples.length, `the placed staalkaart cards show tag chips (found ${chips}; place-<id> should copy pijlers/thema/type)`)
  fs.mkdirSync(SCREENSHOTS, { recursive: true })
  // The view: the Procesafspraken and Bouwstenen sections, with the tagged staalkaart cards.
  await tid(fac, 'section-bouwstenen').evaluate((el) => { el.scrollIntoView({ block: 'start' }); window.scrollBy(0, -16) })
  await sleep(500)
  await fac.screenshot({ path: path.join(SCREENSHOTS, 'canvas.png') })
  if (process.env.E2E_DEBUG) await fac.screenshot({ path: path.join(tmp, 'canvas-full.png'), fullPage: true })

  await tid(fac, 'tab-gap').click()
  const rows = [
    ['Zwaar werk in de nachtdienst', 'Oudere medewerkers vallen vaker uit na nachtdiensten', 'Vrijstelling of minder nachtdiensten vanaf 57 jaar, zonder inkomensverlies', 'Geen regeling; verzuim bij 55+ is twee keer zo hoog', 'Generatieregeling en roosterinspraak', 'HR, OR, planners'],
    ['Scholing en loopbaan', 'Opleidingsbudget wordt nauwelijks gebruikt', 'Iedereen heeft elk jaar een loopbaangesprek en een persoonlijk budget', 'Geen tijd en geen overzicht van opleidingen', 'Ontwikkelbudget met uren, loopbaanscan', 'HR, leidinggevenden, O&O-fonds'],
    ['Werkdruk', 'Hoge ervaren werkdruk in de zorgteams', 'Werkdruk besproken in elk teamoverleg, met acties', 'Signalen komen niet bij het management', 'Werkdrukscan per team, vitaliteitscoach', 'OR, bedrijfsarts, teams']
  ]
  const rowIds = (page) => page.evaluate(() => {
    const fields = new Set(['onderwerp', 'huidig', 'gewenst', 'gap', 'oplossingen', 'partijen', 'up', 'down'])
    return [...document.querySelectorAll('[data-testid^="row-"]')].map((el) => el.getAttribute('data-testid').slice(4)).filter((id) => !fields.has(id))
  })
  // The facilitator adds rows 1 and 3, the employer row 2.
  await tid(employer, 'tab-gap').click()
  for (const [i, [onderwerp, huidig, gewenst, gap, oplossingen, partijen]] of rows.entries()) {
    const page = i === 1 ? employer : fac
    const before = new Set(await rowIds(page))
    await tid(page, 'add-row').click()
    const { value: id } = await poll(async () => (await rowIds(page)).find((r) => !before.has(r)), { message: 'a new row after add-row' })
    const row = tid(page, `row-${id}`)
    await tid(row, 'row-onderwerp').fill(onderwerp)
    await tid(row, 'row-huidig').fill(huidig)
    await tid(row, 'row-gewenst').fill(gewenst)
    await tid(row, 'row-gap').fill(gap)
    await tid(row, 'row-oplossingen').fill(oplossingen)
    await tid(row, 'row-partijen').fill(partijen)
    await tid(row, 'row-partijen').press('Tab')
  }
  // The rows are in the document on the server, not just on screen.
  await poll(async () => {
    const g = JSON.stringify((await exportBoard(board)).documents.gap)
    return rows.every((r) => g.includes(r[0]) && g.includes(r[4]))
  }, { message: 'the gap rows stored on the server' })
  await poll(async () => (await rowIds(fac)).length === rows.length, { message: 'the facilitator to see all three rows' })
  for (const p of [employer, fac]) await p.evaluate(() => document.activeElement?.blur())
  await fac.evaluate(() => window.scrollTo(0, 0))
  await sleep(500)
  await fac.screenshot({ path: path.join(SCREENSHOTS, 'gap.png') })
  if (process.env.E2E_DEBUG) await fac.screenshot({ path: path.join(tmp, 'gap-full.png'), fullPage: true })
  for (const f of ['canvas.png', 'gap.png']) {
    assert.ok(fs.statSync(path.join(SCREENSHOTS, f)).size > 10000, `${f} written`)
    if (REFRESH_DOCS) {
      fs.mkdirSync(DOC_SCREENSHOTS, { recursive: true })
      fs.copyFileSync(path.join(SCREENSHOTS, f), path.join(DOC_SCREENSHOTS, f))
      s.note(`refreshed docs/screenshots/${f}`)
    }
  }
})

/** Saves a picture of the walkthrough (and, with --screenshots, into docs/screenshots/). */
function keep (s, file) {
  assert.ok(fs.statSync(path.join(SCREENSHOTS, file)).size > 5000, `${file} written`)
  if (REFRESH_DOCS) {
    fs.mkdirSync(DOC_SCREENSHOTS, { recursive: true })
    fs.copyFileSync(path.join(SCREENSHOTS, file), path.join(DOC_SCREENSHOTS, file))
    s.note(`refreshed docs/screenshots/${file}`)
  }
}

flow('screenshots of the facilitator\'s walkthrough: the board list, the cockpit, the invite QR, the room screen with a spotlight, the poster view and a phone', async (s) => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true })
  const shot = async (page, file) => {
    await page.evaluate(() => document.activeElement?.blur())
    await sleep(300)
    await page.screenshot({ path: path.join(SCREENSHOTS, file) })
    keep(s, file)
  }
  const ctxF = await s.context({ viewport: { width: 1366, height: 768 } }, 'facilitator')
  const list = await ctxF.newPage()
  await list.goto(`${BASE}/#token=${FT}`)
  await tid(list, 'board-title-input').waitFor()
  await tid(list, 'walkthrough').locator('summary').click()
  await shot(list, 'walkthrough-1-board-list.png')

  const board = await createBoard('Cao Zorg & Welzijn — DI-werkgroep')
  const [invE, invM, invO] = [await invite(board, 'employer'), await invite(board, 'employee'), await invite(board, 'observer')]
  const { page: fac } = await openBoard(ctxF, `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const { page: phone } = await openBoard(await s.context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }, 'phone'), invM.url, 'Mia')
  const cards = []
  for (const [section, text] of [['themas', 'Werkdruk in de avonddiensten'], ['themas', 'Oudere medewerkers willen minder nachtdiensten'], ['bouwstenen', 'Persoonlijk ontwikkelbudget van € 750 per jaar'], ['bouwstenen', 'Generatiepact: 80-90-100 vanaf 60 jaar'], ['rollen', 'HR levert verzuimcijfers per kwartaal']]) {
    cards.push(await addCard(employer, section, text))
  }
  await addCard(phone, 'themas', 'Meer zeggenschap over mijn rooster', { tap: true })
  await control(board, { action: 'step', step: '4' })
  await control(board, { action: 'timer', op: 'start', seconds: 900 })
  await tid(fac, `card-${cards[2]}`).waitFor()
  await shot(fac, 'walkthrough-2-cockpit.png')

  await facTab(fac, 'people')
  await tid(fac, 'invite-role').selectOption('employee')
  await tid(fac, 'invite-create').click()
  await tid(fac, 'invite-show-qr').click()
  await poll(async () => ((await tid(fac, 'join-qr-big').getAttribute('src')) ?? '').startsWith('data:image'), { message: 'the big QR code' })
  await shot(fac, 'walkthrough-3-invite-qr.png')
  await tid(fac, 'join-qr-close').click()

  const { page: room } = await openBoard(await s.context({ viewport: { width: 1920, height: 1080 } }, 'room'), invO.url, 'Zaalscherm')
  await facTab(fac, 'session')
  await cardMenu(fac, cards[2])
  await tid(fac, `spotlight-${cards[2]}`).click()
  await poll(async () => (await tid(room, `card-${cards[2]}`).getAttribute('data-spotlight')) === 'true', { message: 'the spotlight on the room screen' })
  await room.waitForTimeout(400)
  await shot(room, 'walkthrough-4-room-screen.png')
  await control(board, { action: 'presentation', on: true, focus: { doc: 'canvas', poster: true } })
  await poll(async () => room.evaluate(() => document.body.classList.contains('poster')), { message: 'the poster view' })
  await room.waitForTimeout(400)
  await shot(room, 'walkthrough-5-poster.png')
  await control(board, { action: 'presentation', on: false })
  await shot(phone, 'walkthrough-6-phone.png')
})
