// Browser tests: voting (see ../README.md). One test per thing a user does.
import assert from 'node:assert/strict'
import { flow, facTab, sleep, poll, keptToken, BASE, FT, api, apiOk, createBoard, invite, exportBoard, tid, openBoard, addCard, waitCardText, goneOrDisabled } from '../harness.mjs'

flow('dot voting: a budget of 2 stops the third dot, the server counts 2, the reveal shows the same totals everywhere', async (s) => {
  const board = await createBoard('Stemmen')
  const [invE, invM] = [await invite(board, 'employer'), await invite(board, 'employee')]
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const { page: employee } = await openBoard(await s.context({}, 'employee'), invM.url, 'Mia')
  const ids = []
  for (const text of ['Vitaliteitsbudget', 'Roosterinspraak', 'Generatiepact']) ids.push(await addCard(employer, 'bouwstenen', text))
  for (const id of ids) await waitCardText(fac, id, (v) => v.length > 0, `the facilitator to see card ${id}`)

  await facTab(fac, 'voting')
  await tid(fac, 'round-budget').fill('2')
  await tid(fac, 'round-open').click()
  for (const id of ids) await tid(employer, `vote-${id}`).waitFor({ state: 'visible' })
  const left = async (page, n) => poll(async () => new RegExp(`(^|\\D)${n}(\\D|$)`).test(await tid(page, 'votes-left').textContent({ timeout: 200 })),
    { message: `votes-left to show ${n}` })
  await left(employer, 2)
  await tid(employer, `vote-${ids[0]}`).click()
  await left(employer, 1)
  await tid(employer, `vote-${ids[1]}`).click()
  await left(employer, 0)
  const third = tid(employer, `vote-${ids[2]}`)
  if (await goneOrDisabled(third)) {
    s.note('third vote button is disabled/absent')
  } else {
    s.note('third vote button still enabled; clicking it to check the server refuses')
    await third.click()
    await sleep(1000)
  }

  const rounds = (await exportBoard(board)).documents.control.rounds
  const [round] = Object.keys(rounds)
  assert.ok(round, 'round-open opened a round')
  assert.deepEqual([...rounds[round].cards].sort(), [...ids].sort(), 'the round is over all bouwstenen cards')
  assert.equal(rounds[round].budget, 2)
  const ballot = await apiOk('GET', `/api/boards/${board}/rounds/${round}/ballot`, await keptToken(employer, board))
  const counted = Object.values(ballot.votes).reduce((a, b) => a + b, 0)
  assert.equal(counted, 2, `the employer's ballot counts 2 dots (${JSON.stringify(ballot.votes)})`)
  assert.deepEqual(ballot.votes, { [`canvas/${ids[0]}`]: 1, [`canvas/${ids[1]}`]: 1 }, 'ballots are keyed by document and item')
  assert.equal(ballot.left, 0)

  await tid(employee, `vote-${ids[0]}`).click()
  await left(employee, 1)

  await tid(fac, 'round-reveal').click()
  const { value: totals } = await poll(async () => {
    const r = (await exportBoard(board)).documents.control.rounds[round]
    return r.status === 'revealed' && r.totals
  }, { message: 'the round to be revealed' })
  assert.deepEqual(totals, { [`canvas/${ids[0]}`]: 2, [`canvas/${ids[1]}`]: 1, [`canvas/${ids[2]}`]: 0 })
  for (const [who, page] of [['facilitator', fac], ['employer', employer], ['employee', employee]]) {
    for (const id of ids) {
      const shown = tid(tid(page, `card-${id}`), 'card-votes')
      const total = totals[`canvas/${id}`]
      if (total === 0) {
        await poll(async () => (await shown.count()) === 0 || /(^|\D)0(\D|$)/.test(await shown.textContent()),
          { message: `${who}: card-votes of ${id} absent or 0` })
      } else {
        await poll(async () => new RegExp(`(^|\\D)${total}(\\D|$)`).test(await shown.textContent({ timeout: 200 })),
          { message: `${who}: card-votes of ${id} to show ${total}` })
      }
    }
  }
  const staleVotes = async (page) => {
    const out = []
    for (const id of ids) {
      const b = tid(page, `vote-${id}`)
      if (await b.count()) out.push(`vote-${id}${await b.isVisible() ? '' : ' (hidden)'}${await b.isDisabled() ? ' (disabled)' : ''}`)
    }
    if (await tid(page, 'votes-left').count()) out.push(`votes-left "${await tid(page, 'votes-left').textContent()}"${await tid(page, 'votes-left').isVisible() ? '' : ' (hidden)'}`)
    return out
  }
  for (const [who, page] of [['employer', employer], ['employee', employee]]) {
    await poll(async () => (await staleVotes(page)).length === 0 || staleVotes(page).then((l) => { throw new Error(l.join(', ')) }),
      { message: `${who}: no vote-<id> buttons nor votes-left once the round is revealed (contract: only while a round is open)` })
  }
})

flow('round-close: the facilitator closes an open round; votes stop, the round is closed on the server and can still be revealed', async (s) => {
  const board = await createBoard('Sluiten')
  const invE = await invite(board, 'employer')
  const { page: fac } = await openBoard(await s.context({}, 'facilitator'), `${BASE}/?board=${board}#token=${FT}`, 'Fien')
  const { page: employer } = await openBoard(await s.context({}, 'employer'), invE.url, 'Erik')
  const id = await addCard(employer, 'bouwstenen', 'Generatiepact')
  await waitCardText(fac, id, 'Generatiepact', 'the facilitator to see the card')
  await facTab(fac, 'voting')
  await tid(fac, 'round-open').click()
  await tid(employer, `vote-${id}`).click()
  await tid(fac, 'round-close').click()
  const { value: round } = await poll(async () => {
    const rounds = (await exportBoard(board)).documents.control.rounds
    return Object.entries(rounds).find(([, r]) => r.status === 'closed')?.[0]
  }, { message: 'the round to be closed on the server' })
  await poll(async () => (await tid(employer, `vote-${id}`).count()) === 0, { message: 'no vote button once the round is closed' })
  const refused = await api('POST', `/api/boards/${board}/rounds/${round}/votes`, await keptToken(employer, board), { card: id })
  assert.equal(refused.status, 403, 'a vote on a closed round is refused')
  assert.notEqual(refused.json?.error, 'invite-token', 'refused for the round, not for the token')
  await tid(fac, 'round-reveal').click()
  await poll(async () => /(^|\D)1(\D|$)/.test(await tid(tid(employer, `card-${id}`), 'card-votes').textContent({ timeout: 200 })),
    { message: 'the reveal of the closed round shows 1 dot' })
})
