// Browser tests: refusals (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import { flow, poll, never, BASE, FT, refusedUpdates, createBoard, invite, exportBoard, OFFLINE, NOT_ALLOWED, REFUSAL_NL, REFUSED_NL, tid, unsavedPanel, assertLockReason, openBoard, waitOnline, cardText, cardTextLocator, addCard, typeInto, waitCardText, goneOrDisabled, axeRun } from '../harness.mjs'

flow('a section lock makes bouwstenen read-only for the employer and the unlock gives it back', async (s) => {
  const board = await createBoard('Vergrendelen')
  const invE = await invite(board, 'employer')
  const { page: fac, prompted } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  s.note(`the facilitator's /?board=B#token=… link ${prompted ? 'asked' : 'did not ask'} for a name`)
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const base = 'Ontwikkelbudget per medewerker'
  const id = await addCard(employer, 'bouwstenen', base)
  await waitCardText(fac, id, base, 'the facilitator to see the employer\'s card')

  await tid(fac, 'lock-section-bouwstenen').check()
  await poll(async () => (await tid(employer, 'section-bouwstenen').getAttribute('data-locked')) === 'true',
    { message: 'section-bouwstenen data-locked="true" on the employer\'s page' })
  await poll(() => goneOrDisabled(tid(employer, 'add-card-bouwstenen')), { message: 'add-card-bouwstenen gone or disabled while locked' })
  const area = cardTextLocator(employer, id)
  const readonly = await poll(() => area.evaluate((el) => el.readOnly || el.disabled), { timeout: 3000, message: 'card-text readonly' })
    .then(() => true, () => false)
  s.note(readonly ? 'locked card-text is readonly' : 'locked card-text is NOT readonly; checking the server refusal path')

  // Force an edit past the UI: the server must refuse it (its refusal counter grows and the
  // employer is told "Niet toegestaan: …") and the facilitator must never see it. One input
  // event (as a paste would be), so the whole text is one refused update.
  const FORCED = ' GEFORCEERD'
  const refusedBefore = await refusedUpdates()
  await area.evaluate((el, text) => {
    el.readOnly = false
    el.disabled = false
    el.focus()
    el.value += text
    el.dispatchEvent(new Event('input', { bubbles: true }))
  }, FORCED)
  await poll(async () => (await refusedUpdates()) > refusedBefore,
    { message: `tafel_refused_updates_total to grow past ${refusedBefore} (the server refused the forced edit)` })
  await poll(async () => NOT_ALLOWED.test(await tid(employer, 'notice').textContent({ timeout: 200 })),
    { message: 'notice "Niet toegestaan: …" after the forced edit of a locked section' })
  await never(async () => (await cardText(fac, id))?.includes('GEFORCEERD'), { duration: 2000, message: 'the forced edit reached the facilitator' })
  const notice = (await tid(employer, 'notice').count()) ? (await tid(employer, 'notice').textContent()).trim() : ''
  s.note(`after the forced edit: employer's card "${await cardText(employer, id)}", notice "${notice}"`)
  const exported = await exportBoard(board)
  assert.ok(!JSON.stringify(exported.documents.canvas).includes('GEFORCEERD'), 'the forced edit is not stored')
  // The refused text is not lost silently: "Niet opgeslagen" shows it, with the reason explained.
  const { value: panel } = await poll(async () => {
    const p = await unsavedPanel(employer)
    return p && p.items.some((i) => i.id === id) && p
  }, { message: 'unsaved-panel with the forced edit\'s card after the refusal' })
  assert.equal(panel.title, 'Niet opgeslagen')
  assert.deepEqual(panel.items.map((i) => [i.doc, i.kind, i.id, i.field, i.text, i.gone, i.readonly]),
    [['canvas', 'card', id, 'text', base + FORCED, false, true]], 'the panel holds exactly the refused card text, read-only')
  assertLockReason(panel, 'section-locked', 'bouwstenen is locked by the facilitator', s)
  if (panel.reasons[0].code === 'section-locked') {
    assert.match(await tid(employer, 'notice').textContent(), /Niet toegestaan: Deze sectie is vergrendeld/, 'the notice explains the code')
  }
  await tid(employer, 'unsaved-dismiss').click()
  await poll(async () => (await unsavedPanel(employer)) === null, { message: 'unsaved-panel hidden after unsaved-dismiss' })

  await tid(fac, 'lock-section-bouwstenen').uncheck()
  await poll(async () => (await tid(employer, 'section-bouwstenen').getAttribute('data-locked')) !== 'true',
    { message: 'section-bouwstenen no longer data-locked after the unlock' })
  await poll(async () => (await tid(employer, 'add-card-bouwstenen').isVisible()) && (await tid(employer, 'add-card-bouwstenen').isEnabled()),
    { message: 'add-card-bouwstenen back after the unlock' })
  await poll(async () => !(await area.evaluate((el) => el.readOnly || el.disabled)), { message: 'card-text editable after the unlock' })
  // Whatever was refused has been dropped on the employer's side; a new edit goes through.
  await poll(async () => !(await cardText(employer, id))?.includes('GEFORCEERD'),
    { message: 'the refused text to disappear from the employer\'s card (client resync)' })
  await typeInto(area, ' na de lock')
  await waitCardText(fac, id, (v) => v.endsWith(' na de lock'), 'the facilitator to see the employer\'s edit after the unlock')
})

flow('offline edits refused on reconnect (the section was locked meanwhile) are shown under "Niet opgeslagen" with the reason, can be copied, survive a page reload until dismissed', async (s) => {
  const board = await createBoard('Niet opgeslagen')
  const invM = await invite(board, 'employee')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const ctxM = await s.context({}, 'employee')
  await ctxM.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE })
  const { page: employee } = await openBoard(ctxM, invM.url, 'Mia')
  const base = 'Werkdruk'
  const id = await addCard(employee, 'themas', base)
  await waitCardText(fac, id, base, 'the facilitator to see the employee\'s card')
  assert.equal(await unsavedPanel(employee), null, 'no unsaved-panel before any refusal')

  await ctxM.setOffline(true)
  await poll(async () => OFFLINE.test(await tid(employee, 'connection-status').textContent({ timeout: 200 })),
    { message: 'connection-status offline' })
  const EDIT = ' en roosterdruk'
  await typeInto(cardTextLocator(employee, id), EDIT)
  const fresh = await addCard(employee, 'themas', 'Idee onderweg: fietsplan')
  await tid(fac, 'lock-section-themas').check()
  await poll(async () => (await exportBoard(board)).documents.control?.session?.locks?.sections?.includes('themas'),
    { message: 'the server to store the lock of themas' })
  await poll(async () => (await tid(fac, 'section-themas').getAttribute('data-locked')) === 'true', { message: 'themas locked on the facilitator\'s page' })

  await ctxM.setOffline(false)
  await poll(async () => NOT_ALLOWED.test(await tid(employee, 'notice').textContent({ timeout: 200 })),
    { timeout: 10000, message: 'notice "Niet toegestaan: …" after reconnecting into the lock' })
  const { value: panel } = await poll(async () => {
    const p = await unsavedPanel(employee)
    return p && p.items.length >= 2 && p
  }, { timeout: 10000, message: 'unsaved-panel with the two refused offline texts' })
  const byId = Object.fromEntries(panel.items.map((i) => [i.id, i]))
  assert.equal(panel.items.length, 2, `exactly the two texts: ${JSON.stringify(panel.items)}`)
  assert.deepEqual([byId[id]?.text, byId[id]?.gone, byId[id]?.field], [base + EDIT, false, 'text'], 'the edited card: its whole text as typed')
  assert.deepEqual([byId[fresh]?.text, byId[fresh]?.gone], ['Idee onderweg: fietsplan', true], 'the card made offline: not on the server')
  assert.ok(panel.items.every((i) => i.readonly && i.doc === 'canvas' && i.label.includes('Thema')), `labels name the section: ${JSON.stringify(panel.items.map((i) => i.label))}`)
  const path = assertLockReason(panel, 'section-locked', 'themas is locked by the facilitator', s)
  const axe = await axeRun(employee, 'unsaved-panel')
  assert.deepEqual(axe.serious, [], 'axe: nothing serious or critical with the panel shown')

  // The board itself shows what the server holds.
  await waitCardText(employee, id, base, 'the employee\'s card back to the server\'s text after the reload')
  assert.equal(await cardText(employee, fresh), null, 'the refused new card is not on the board')
  const stored = JSON.stringify((await exportBoard(board)).documents.canvas)
  assert.ok(!stored.includes('roosterdruk') && !stored.includes('fietsplan'), `the refused offline edits are not stored: ${stored}`)
  await never(async () => (await cardText(fac, id)) !== base, { duration: 1000, message: 'the facilitator saw the refused edit' })

  // Copy.
  const item = employee.locator(`[data-testid="unsaved-item"][data-id="${id}"]`)
  await tid(item, 'unsaved-copy').click()
  await poll(async () => (await employee.evaluate(() => navigator.clipboard.readText())) === base + EDIT,
    { message: 'the clipboard to hold the copied text' })
  await poll(async () => /Tekst gekopieerd/.test(await tid(employee, 'notice').textContent()), { message: 'notice "Tekst gekopieerd"' })

  // English: the same panel, the explanation in English.
  await tid(employee, 'lang-switch').click()
  await poll(async () => (await unsavedPanel(employee))?.title === 'Not saved', { message: 'panel title "Not saved" in English' })
  const en = await unsavedPanel(employee)
  assert.equal(en.reasons[0].text, path === 'coded' ? 'This section is locked by the facilitator.' : 'The server refused this change.')
  await tid(employee, 'lang-switch').click()

  // A page reload before dismissing shows the same texts again (the copy is kept until dismissed).
  await employee.reload()
  await waitOnline(employee)
  const { value: again } = await poll(async () => {
    const p = await unsavedPanel(employee)
    return p && p.items.length === 2 && p
  }, { timeout: 10000, message: 'unsaved-panel again after a page reload' })
  assert.deepEqual(again.items.map((i) => i.text).sort(), [base + EDIT, 'Idee onderweg: fietsplan'].sort())

  await tid(employee, 'unsaved-dismiss').click()
  await poll(async () => (await unsavedPanel(employee)) === null, { message: 'unsaved-panel hidden after unsaved-dismiss' })
  await employee.reload()
  await waitOnline(employee)
  await never(async () => await unsavedPanel(employee), { duration: 1500, message: 'the dismissed panel came back after a reload' })

  // After the unlock the employee edits as usual, and nothing comes back.
  await tid(fac, 'lock-section-themas').uncheck()
  await poll(async () => (await tid(employee, 'section-themas').getAttribute('data-locked')) !== 'true', { message: 'themas unlocked for the employee' })
  await poll(async () => !(await cardTextLocator(employee, id).evaluate((el) => el.readOnly || el.disabled)), { message: 'card-text editable after the unlock' })
  await typeInto(cardTextLocator(employee, id), ' (opnieuw)')
  await waitCardText(fac, id, base + ' (opnieuw)', 'the facilitator to see the employee\'s edit after the unlock')
  assert.equal(await unsavedPanel(employee), null, 'no panel after an accepted edit')
})

flow('gap board: an offline edit of a row refused on reconnect into a lock of the gap document is shown under "Niet opgeslagen"; fields the employer did not change, or that others changed meanwhile, are not', async (s) => {
  const board = await createBoard('Gap niet opgeslagen')
  const invE = await invite(board, 'employer')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const ctxE = await s.context({}, 'employer')
  const { page: employer } = await openBoard(ctxE, invE.url, 'Erik')
  await tid(employer, 'tab-gap').click()
  await tid(fac, 'tab-gap').click()
  await tid(employer, 'add-row').click()
  const rowId = (await poll(() => employer.evaluate(() => document.querySelector('article[data-testid^="row-"]')?.getAttribute('data-testid')),
    { message: 'a new gap row' })).value.slice('row-'.length)
  const field = (page, f) => tid(tid(page, `row-${rowId}`), `row-${f}`)
  await typeInto(field(employer, 'onderwerp'), 'Scholing')
  await typeInto(field(employer, 'gap'), 'Te weinig tijd')
  await poll(async () => (await field(fac, 'onderwerp').inputValue()) === 'Scholing', { message: 'the facilitator to see the row' })
  await poll(async () => (await field(fac, 'gap').inputValue()) === 'Te weinig tijd', { message: 'the facilitator to see the gap field' })

  await ctxE.setOffline(true)
  await poll(async () => OFFLINE.test(await tid(employer, 'connection-status').textContent({ timeout: 200 })), { message: 'connection-status offline' })
  await typeInto(field(employer, 'huidig'), 'Geen opleidingsbudget')
  await tid(tid(employer, `row-${rowId}`), 'row-partijen').fill('werkgever, OR')
  // Meanwhile the facilitator rewrites the gap field: the employer's older copy of it differs from
  // the server's, but the employer did not change it, so it is not "theirs" to lose.
  await field(fac, 'gap').fill('Te weinig tijd en geld')
  await poll(async () => JSON.stringify((await exportBoard(board)).documents.gap).includes('Te weinig tijd en geld'), { message: 'the facilitator\'s gap edit stored' })
  await tid(fac, 'lock-doc-gap').check()
  await poll(async () => (await exportBoard(board)).documents.control?.session?.locks?.docs?.includes('gap'), { message: 'the gap lock stored' })

  await ctxE.setOffline(false)
  const { value: panel } = await poll(async () => {
    const p = await unsavedPanel(employer)
    return p && p.items.length >= 2 && p
  }, { timeout: 10000, message: 'unsaved-panel with the refused row fields' })
  assert.deepEqual(panel.items.map((i) => [i.doc, i.kind, i.id, i.field, i.text, i.gone]), [
    ['gap', 'row', rowId, 'huidig', 'Geen opleidingsbudget', false],
    ['gap', 'row', rowId, 'partijen', 'werkgever, OR', false]
  ], 'only the fields typed offline (not onderwerp, not the gap field the facilitator changed)')
  assert.deepEqual(panel.items.map((i) => i.label), ['Gap-analyse, Huidige situatie', 'Gap-analyse, Partijen (komma gescheiden)'])
  assertLockReason(panel, 'doc-locked', 'gap is locked by the facilitator', s)
  await poll(async () => (await field(employer, 'gap').inputValue()) === 'Te weinig tijd en geld', { message: 'the employer\'s row reloaded with the server\'s text' })
  assert.equal(await field(employer, 'huidig').inputValue(), '', 'the refused field is empty on the board')
  assert.ok(!JSON.stringify((await exportBoard(board)).documents.gap).includes('opleidingsbudget'), 'the refused edit is not stored')
})

/**
 * Passes a context's WebSockets through, rewriting each `permission-denied` (y-websocket message 2,
 * auth message 0, then the reason as a var string) with `rewrite(reason)`; counts what it saw.
 */
async function rewriteRefusals (ctx, rewrite) {
  const seen = []
  const varUint = (buf, pos) => {
    let n = 0; let shift = 0; let b
    do { b = buf[pos++]; n += (b & 0x7f) * 2 ** shift; shift += 7 } while (b & 0x80)
    return [n, pos]
  }
  const writeVarUint = (n) => {
    const out = []
    while (n > 0x7f) { out.push(0x80 | (n & 0x7f)); n = Math.floor(n / 128) }
    out.push(n)
    return out
  }
  await ctx.routeWebSocket(/\/ws\//, (ws) => {
    const server = ws.connectToServer()
    ws.onMessage((m) => server.send(m))
    server.onMessage((m) => {
      const buf = typeof m === 'string' ? null : Buffer.from(m)
      if (buf && buf[0] === 2 && buf[1] === 0) {
        const [len, at] = varUint(buf, 2)
        const reason = buf.subarray(at, at + len).toString('utf8')
        const next = Buffer.from(rewrite(reason), 'utf8')
        seen.push({ reason, sent: next.toString('utf8') })
        ws.send(Buffer.concat([Buffer.from([2, 0, ...writeVarUint(next.length)]), next]))
      } else {
        ws.send(m)
      }
    })
  })
  return seen
}

flow('typed refusals in the browser: a `section-locked: …` reason is explained in Dutch and English, a reason with an unknown code gets the generic text and the raw reason (reasons rewritten in transit to the new server format where the server does not send it yet)', async (s) => {
  const board = await createBoard('Getypte weigering')
  const invE = await invite(board, 'employer')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const ctxE = await s.context({}, 'employer')
  let mode = 'coded'
  const seen = await rewriteRefusals(ctxE, (reason) => {
    if (mode === 'unknown') return `frobnicated: ${reason.replace(/^[a-z-]+: /, '')}`
    return /^section-locked: /.test(reason) ? reason : `section-locked: ${reason}`
  })
  const { page: employer } = await openBoard(ctxE, invE.url, 'Erik')
  const force = async (id, text) => cardTextLocator(employer, id).evaluate((el, text) => {
    el.readOnly = false
    el.value += text
    el.dispatchEvent(new Event('input', { bubbles: true }))
  }, text)
  const a = await addCard(employer, 'bouwstenen', 'Eerste kaart')
  const b = await addCard(employer, 'bouwstenen', 'Tweede kaart')
  await waitCardText(fac, b, 'Tweede kaart', 'the facilitator to see both cards')
  await tid(fac, 'lock-section-bouwstenen').check()
  await poll(async () => (await tid(employer, 'section-bouwstenen').getAttribute('data-locked')) === 'true', { message: 'bouwstenen locked for the employer' })

  await force(a, ' X1')
  const { value: panel } = await poll(async () => { const p = await unsavedPanel(employer); return p?.items.length && p },
    { message: 'unsaved-panel after the coded refusal' })
  assert.ok(seen.length >= 1, 'a permission-denied passed the route')
  s.note(`server sent "${seen[0].reason}", the page got "${seen[0].sent}"`)
  assert.deepEqual(panel.reasons, [{ code: 'section-locked', text: REFUSAL_NL['section-locked'] }])
  assert.equal(panel.raw[0], `Melding van de server: ${seen[0].sent}`)
  assert.deepEqual(panel.items.map((i) => [i.id, i.text]), [[a, 'Eerste kaart X1']])
  assert.equal(await tid(employer, 'notice').textContent(), `Niet toegestaan: ${REFUSAL_NL['section-locked']}`)
  await tid(employer, 'lang-switch').click()
  await poll(async () => (await unsavedPanel(employer))?.reasons[0]?.text === 'This section is locked by the facilitator.', { message: 'the English explanation' })
  await tid(employer, 'lang-switch').click()
  await tid(employer, 'unsaved-dismiss').click()
  await poll(async () => (await unsavedPanel(employer)) === null, { message: 'panel dismissed' })

  mode = 'unknown'
  await force(b, ' X2')
  const { value: generic } = await poll(async () => { const p = await unsavedPanel(employer); return p?.items.length && p },
    { message: 'unsaved-panel after a refusal with an unknown code' })
  assert.deepEqual(generic.reasons, [{ code: 'unknown', text: REFUSED_NL }])
  assert.match(generic.raw[0], /^Melding van de server: frobnicated: .*bouwstenen/)
  assert.deepEqual(generic.items.map((i) => [i.id, i.text]), [[b, 'Tweede kaart X2']])
  assert.match(await tid(employer, 'notice').textContent(), /^Niet toegestaan: frobnicated: .*bouwstenen/)
  const stored = JSON.stringify((await exportBoard(board)).documents.canvas)
  assert.ok(!stored.includes('X1') && !stored.includes('X2'), 'neither forced edit is stored')
})
