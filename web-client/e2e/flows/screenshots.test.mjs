// Browser tests: screenshots (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { flow, SCREENSHOTS, DOC_SCREENSHOTS, REFRESH_DOCS, sleep, poll, BASE, tmp, FT, createBoard, invite, control, exportBoard, template, tid, openBoard, cardIds, addCard } from '../harness.mjs'

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
