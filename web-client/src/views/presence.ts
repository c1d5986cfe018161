// Who else is online (from awareness): one item per person with their colour, a raised hand
// and what they are editing; and this user's own raise-hand button.

import { h, reconcile, setAttr, setHidden, setText } from './dom'
import { t } from '../i18n'
import type { Person } from '../types'

export interface PresenceModel {
  people: Person[]
  hand: boolean
}

export function createPresence(actions: { toggleHand(): void }) {
  const label = h('span', { class: 'presence-label', id: 'presence-label' })
  const list = h('ul', { testid: 'presence', class: 'presence', 'aria-labelledby': 'presence-label' })
  const alone = h('span', { class: 'presence-alone' })
  const hand = h('button', { type: 'button', testid: 'hand-toggle', class: 'btn btn-small', onclick: () => actions.toggleHand() })
  const el = h('div', { class: 'presence-bar' }, label, list, alone, hand)

  function update(m: PresenceModel): void {
    setText(label, `${t('presence.label')}:`)
    setText(alone, t('presence.alone'))
    setHidden(alone, m.people.length > 0)
    setText(hand, m.hand ? t('hand.lower') : t('hand.raise'))
    setAttr(hand, 'aria-pressed', m.hand ? 'true' : 'false')
    reconcile(list, m.people, (p) => p.key, () => {
      const dot = h('span', { class: 'dot', 'aria-hidden': 'true' })
      const name = h('span', { class: 'presence-name' })
      // The hand is drawn by CSS (::after), so the item's text stays exactly the name.
      const item = h('li', { testid: 'presence-item', class: 'presence-item' }, dot, name)
      return {
        el: item,
        update(p: Person) {
          dot.style.background = p.color
          setText(name, p.name)
          setAttr(item, 'data-hand', p.hand ? 'true' : null)
          setAttr(item, 'data-hand-label', t('hand.raised'))
          setAttr(item, 'title', p.hand ? `${p.name}: ${t('hand.raised')}` : p.name)
          setAttr(item, 'data-editing', p.editing)
        },
      }
    })
  }
  return { el, update }
}
