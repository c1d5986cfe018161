// Browser tests: joining (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import { flow, TEMPLATE, sleep, poll, keptToken, claimsOf, tokenOfUrl, short, BASE, FT, api, apiOk, createBoard, invite, template, tid, openBoard, waitOnline } from '../harness.mjs'

flow('facilitator signs in, creates a board from a template, lands on its canvas and makes employer and employee invites with a QR code', async (s) => {
  const ctx = await s.context({}, 'facilitator')
  const page = await ctx.newPage()
  await page.goto(`${BASE}/#token=${FT}`)
  const title = `Cao DI e2e ${Date.now()}`
  await tid(page, 'board-title-input').fill(title)
  const options = await tid(page, 'template-select').locator('option').evaluateAll((os) => os.map((o) => o.value))
  assert.ok(options.includes(TEMPLATE), `template-select offers ${TEMPLATE} (options: ${options.join(', ')})`)
  await tid(page, 'template-select').selectOption(TEMPLATE)
  await tid(page, 'create-board').click()

  const { value: board } = await poll(() => new URL(page.url()).searchParams.get('board'),
    { timeout: 10000, message: 'the address to become /?board=B after create-board' })
  // Per the contract the facilitator is taken to the board; answer a name prompt if one shows.
  const shown = await poll(async () => (await tid(page, 'name-input').isVisible() && 'prompt') ||
    (await tid(page, 'board-title').isVisible() && 'board'), { timeout: 10000, message: 'the board page' })
  if (shown.value === 'prompt') {
    await tid(page, 'name-input').fill('Fien')
    await tid(page, 'name-submit').click()
  }
  await tid(page, 'board-title').waitFor()
  await poll(async () => (await tid(page, 'board-title').textContent()).includes(title), { message: `board-title to contain "${title}"` })
  for (const section of (await template()).sections) {
    await tid(page, `section-${section.id}`).waitFor({ state: 'visible' })
  }
  await waitOnline(page)
  assert.equal(await tid(page, 'facilitator-panel').count(), 1, 'facilitator-panel exists for the facilitator')

  // The board exists on the server, made from the template.
  const summary = await apiOk('GET', `/api/boards/${board}`, FT)
  assert.equal(summary.title ?? title, title)

  const urls = {}
  for (const role of ['employer', 'employee']) {
    const previous = (await tid(page, 'invite-url').count()) ? await tid(page, 'invite-url').inputValue() : ''
    await tid(page, 'invite-role').selectOption(role)
    await tid(page, 'invite-create').click()
    const { value: url } = await poll(async () => {
      const v = await tid(page, 'invite-url').inputValue({ timeout: 200 })
      return v && v !== previous && v
    }, { timeout: 5000, message: `invite-url to show a new ${role} link` })
    const u = new URL(url)
    assert.equal(u.searchParams.get('board'), board, `the ${role} invite opens board ${board}: ${short(url)}`)
    const claims = claimsOf(tokenOfUrl(url))
    assert.equal(claims.role, role, `the ${role} invite carries a ${role} token`)
    assert.equal(claims.board, board)
    assert.ok(await tid(page, 'invite-url').evaluate((el) => el.readOnly), 'invite-url is a readonly input')
    await tid(page, 'invite-qr').waitFor({ state: 'visible' })
    const box = await tid(page, 'invite-qr').boundingBox()
    assert.ok(box && box.width >= 50 && box.height >= 50, `invite-qr is a visible image (box ${JSON.stringify(box)})`)
    urls[role] = url
  }

  // The employer's link works in another browser: it asks for a name.
  const other = await s.context({}, 'employer')
  const ep = await other.newPage()
  await ep.goto(urls.employer.replace(/^https?:\/\/[^/]+/, BASE))
  await tid(ep, 'name-input').waitFor({ state: 'visible' })
  assert.ok(await ep.getByLabel(/Je naam|Your name/).count() >= 1, 'name-input has the label "Je naam"')

  // And the board is in the facilitator's board list.
  const ctx2 = await s.context({}, 'facilitator-2')
  const list = await ctx2.newPage()
  await list.goto(`${BASE}/#token=${FT}`)
  const item = list.locator(`[data-testid="board-item"][data-board-id="${board}"]`)
  await item.waitFor({ state: 'visible' })
  assert.equal(await tid(item, 'open-board').count(), 1, 'board-item has an open-board link')
})

flow('an invite link asks for a name once, keeps the token and removes it from the address bar', async (s) => {
  const board = await createBoard('Uitnodiging')
  const inv = await invite(board, 'employer')
  const ctx = await s.context({}, 'employer')
  const { page } = await openBoard(ctx, inv.url, 'Erik', { expectPrompt: true })
  assert.ok(!page.url().includes('token='), `the token is removed from the address bar (${page.url()})`)
  await poll(async () => /Werkgever|Employer/.test(await tid(page, 'role-badge').textContent()), { message: 'role-badge "Werkgever"' })
  const stored = await page.evaluate((b) => ({ token: localStorage.getItem(`tafel:token:${b}`), name: localStorage.getItem('tafel:name') }), board)
  assert.ok(stored.token, `localStorage tafel:token:${board} holds the token`)
  assert.equal(claimsOf(stored.token).name, 'Erik', 'the kept token is the one POST /join returned (carries the name)')
  assert.equal(stored.name, 'Erik', 'localStorage tafel:name holds the name')
  // Opening /?board=B again goes straight to the board.
  const { page: again } = await openBoard(ctx, `${BASE}/?board=${board}`, 'Erik', { expectPrompt: false })
  await tid(again, 'section-bouwstenen').waitFor()
})

flow('a round table of three phones on one employee QR code: three people, three pseudonyms; a reopened link is the same person; a removed one is told so', async (s) => {
  const board = await createBoard('Ronde tafel')
  const inv = await invite(board, 'employee')
  assert.ok(claimsOf(tokenOfUrl(inv.url)).inv, 'the invite token carries its invite id (inv)')
  const phone = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true }
  const pages = []
  for (const name of ['Ahmed', 'Bea', 'Cor']) {
    const ctx = await s.context(phone, `phone-${name}`)
    const { page } = await openBoard(ctx, inv.url, name, { expectPrompt: true })
    pages.push({ ctx, page, name })
  }
  const tokens = await Promise.all(pages.map(({ page }) => keptToken(page, board)))
  const subs = tokens.map((tk) => claimsOf(tk).sub)
  assert.equal(new Set(subs).size, 3, `three people, three subs: ${subs.join(', ')}`)
  for (const tk of tokens) assert.ok(!claimsOf(tk).inv, 'each phone keeps a personal token, not the invite')
  const displays = await Promise.all(tokens.map(async (tk) => (await apiOk('GET', `/api/boards/${board}`, tk)).you.display))
  assert.equal(new Set(displays).size, 3, `three pseudonyms: ${displays.join(', ')}`)
  for (const d of displays) assert.match(d, /^Medewerker \d+$/)
  // Each phone sees the two others by their pseudonyms in presence, never a chosen name.
  for (let i = 0; i < 3; i++) {
    const others = displays.filter((_, j) => j !== i)
    const { value: shown } = await poll(async () => {
      const items = await tid(pages[i].page, 'presence').locator('[data-testid="presence-item"]').allTextContents()
      return others.every((d) => items.some((t) => t.includes(d))) && items
    }, { timeout: 10000, message: `presence on phone ${i + 1} to show ${others.join(', ')}` })
    for (const { name } of pages) assert.ok(!shown.some((t) => t.includes(name)), `the chosen name ${name} is not shown`)
  }

  // The first phone scans the same code again: no prompt, same person.
  const { page: again } = await openBoard(pages[0].ctx, inv.url, 'Ahmed', { expectPrompt: false })
  assert.equal(claimsOf(await keptToken(again, board)).sub, subs[0], 'the kept personal token is reused')
  await again.close()

  // The facilitator removes the second phone: its page says so (4403, final).
  const participants = await apiOk('GET', `/api/boards/${board}/participants`, FT)
  const victim = participants.find((p) => p.display === displays[1])
  assert.ok(victim, `listed: ${JSON.stringify(participants)}`)
  await apiOk('DELETE', `/api/boards/${board}/participants/${victim.id}`, FT)
  await poll(async () => /verwijderd|removed/i.test(await tid(pages[1].page, 'connection-status').textContent({ timeout: 200 })),
    { timeout: 10000, message: 'the removed phone to be told it was removed' })
  await sleep(1500)
  assert.match(await tid(pages[1].page, 'connection-status').textContent(), /verwijderd|removed/i, 'and it stays that way (no reconnect)')
  await waitOnline(pages[2].page)
})

flow('who is in: the facilitator makes an invite with seats, shows its "scan to join" QR full screen, lists invites and participants and removes one from the panel', async (s) => {
  const board = await createBoard('Wie doet mee')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  await tid(fac, 'invite-role').selectOption('employee')
  await tid(fac, 'invite-seats').fill('2')
  await tid(fac, 'invite-create').click()
  const { value: url } = await poll(async () => await tid(fac, 'invite-url').inputValue({ timeout: 200 }), { message: 'invite-url' })
  assert.ok(claimsOf(tokenOfUrl(url)).inv, 'an invite token')
  await tid(fac, 'invite-show-qr').click()
  await tid(fac, 'join-qr').waitFor({ state: 'visible' })
  assert.match(await tid(fac, 'join-qr-role').textContent(), /Scan om mee te doen als Medewerker/)
  await poll(async () => ((await tid(fac, 'join-qr-big').getAttribute('src')) ?? '').startsWith('data:image'), { message: 'the big QR code' })
  const box = await tid(fac, 'join-qr-big').boundingBox()
  assert.ok(box && box.width >= 300, `the QR code fills the room's screen (box ${JSON.stringify(box)})`)
  await tid(fac, 'join-qr-close').click()
  await tid(fac, 'join-qr').waitFor({ state: 'hidden' })

  const { page: phone } = await openBoard(await s.context({}, 'employee'), url.replace(/^https?:\/\/[^/]+/, BASE), 'Mia', { expectPrompt: true })
  await tid(fac, 'people-load').click()
  const invItem = tid(fac, 'invite-item').first()
  await poll(async () => /1\/2/.test(await invItem.textContent({ timeout: 200 })), { message: 'the invite to show 1/2 joined' })
  const person = fac.locator('[data-testid="participant-item"]', { hasText: 'Medewerker 1' })
  await poll(async () => /online/.test(await person.textContent({ timeout: 200 })) && !/niet online/.test(await person.textContent()), { message: 'Medewerker 1 online' })
  assert.ok(!/Mia/.test(await tid(fac, 'participant-list').textContent()), 'the employee shows by pseudonym, not name')
  fac.once('dialog', (d) => d.accept())
  await tid(person, 'participant-remove').click()
  await poll(async () => /verwijderd|removed/i.test(await tid(phone, 'connection-status').textContent({ timeout: 200 })),
    { timeout: 10000, message: 'the phone to be told it was removed' })
  await poll(async () => /verwijderd/.test(await person.textContent({ timeout: 200 })), { message: 'the list to show the removal' })
  // Reopening the link on the removed phone explains it instead of joining again.
  const again = await phone.context().newPage()
  await again.goto(url.replace(/^https?:\/\/[^/]+/, BASE))
  await poll(async () => /verwijderd/i.test(await again.locator('[role="alert"]').textContent({ timeout: 200 })), { message: 'the removed message on reopening' })
})
