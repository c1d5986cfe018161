// A party's own workspace (party-employer/-union/-employee): free-form notes only that party and
// the facilitator see, each with a button to copy it to the canvas. The facilitator picks which
// party's workspace to look at. Drawn from PartyModel.

import { h, reconcile, setHidden, setOptions, setPresent, setText } from './dom'
import { createCard, type CardActions, type CardModel } from './card'
import { t } from '../i18n'
import type { Party } from '../types'

export interface PartyModel {
  party: Party
  parties: Party[]
  cards: CardModel[]
  canAdd: boolean
}

export interface PartyActions extends CardActions {
  add(): void
  choose(party: Party): void
}

export function createParty(actions: PartyActions) {
  const title = h('h2', {})
  const help = h('p', { class: 'hint' })
  const choose = h('select', { id: 'party-select', testid: 'party-select', onchange: () => actions.choose(choose.value as Party) })
  const chooseLabel = h('label', { for: 'party-select', class: 'inline-label' })
  const chooser = h('div', { class: 'filter' }, chooseLabel, choose)
  const add = h('button', { type: 'button', testid: 'add-note', class: 'btn btn-add', onclick: () => actions.add() })
  const empty = h('p', { class: 'empty' })
  const list = h('div', { class: 'cards party-cards' })
  const el = h('div', { class: 'party' }, h('header', { class: 'section-head' }, title, add), chooser, help, empty, list)

  function update(m: PartyModel): void {
    const name = t(`role.${m.party}`)
    setText(title, t('party.title', { party: name }))
    setText(help, t('party.help'))
    setText(chooseLabel, t('party.choose'))
    setHidden(chooser, m.parties.length < 2)
    setOptions(choose, m.parties.map((p): [string, string] => [p, t(`role.${p}`)]), m.party)
    setText(add, `+ ${t('party.add')}`)
    setPresent(add, m.canAdd)
    setText(empty, t('party.empty'))
    setHidden(empty, m.cards.length > 0)
    reconcile(list, m.cards, (c) => `${m.party}:${c.card.id}`, (c) => createCard(c, actions))
  }
  return { el, update }
}
