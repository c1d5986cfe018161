// Who else is online (from awareness): one item per person with their colour, a raised hand,
// whether they are ready and what they are editing; and this user's own raise-hand button and,
// for participants, the ready-check button.

import { h, reconcile, setAttr, setHidden, setPresent, setText } from './dom'
import { t } from '../i18n'
import type { Person } from '../types'

export interface PresenceModel {
  people: Person[]
  hand: boolean
  ready: boolean
  /** Whether this user takes part in the ready check (participants). */
  canReady: boolean
}

export function createPresence(actions: { toggleHand(): void; toggleReady(): void }) {
  const label = h('span', { class: 'presence-label', id: 'presence-label' })
  const list = h('ul', { testid: 'presence', class: 'presence', 'aria-labelledby': 'presence-label' })
  const alone = h('span', { class: 'presence-alone' })
  const hand = h('button', { type: 'button', testid: 'hand-toggle', class: 'btn btn-small', onclick: () => actions.toggleHand() })
  const ready = h('button', { type: 'button', testid: 'ready-toggle', class: 'btn btn-small btn-ready', onclick: () => actions.toggleReady() })
  const el = h('div', { class: 'presence-bar' }, label, list, alone, hand, ready)

  function update(m: PresenceModel): void {
    setText(label, `${t('presence.label')}:`)
    setText(alone, t('presence.alone'))
    setHidden(alone, m.people.length > 0)
    setText(hand, m.hand ? t('hand.lower') : t('hand.raise'))
    setAttr(hand, 'aria-pressed', m.hand ? 'true' : 'false')
    setPresent(ready, m.canReady)
    setText(ready, t('ready.toggle'))
    setAttr(ready, 'aria-pressed', m.ready ? 'true' : 'false')
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
          setAttr(item, 'data-ready', p.ready ? 'true' : null)
          const marks = [p.hand ? t('hand.raised') : '', p.ready ? t('ready.done') : ''].filter(Boolean)
          setAttr(item, 'title', marks.length ? `${p.name}: ${marks.join(', ')}` : p.name)
          setAttr(item, 'data-editing', p.editing)
        },
      }
    })
  }
  return { el, update }
}
