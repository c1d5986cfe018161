// The results of revealed voting rounds as ranked lists with bars (each bar scaled to the round's
// most dots), the items that became priorities marked. Drawn on the board for everyone (the room
// screen too) and in the facilitator's cockpit, where each round also has "top N → priorities".
// Drawn from ResultsModel; acts through ResultsActions (cockpit only).

import { h, reconcile, setAttr, setHidden, setPresent, setText } from './dom'
import { t } from '../i18n'

export interface ResultEntry {
  /** `canvas/<card id>` or `gap/<row id>`. */
  item: string
  label: string
  /** Where the item is: a canvas section's title, or the gap analysis. */
  place: string
  votes: number
  /** Its place among the priorities taken from this round (1 = first), or null. */
  priority: number | null
}

export interface ResultRound {
  id: string
  title: string
  entries: ResultEntry[]
}

export interface ResultsModel {
  rounds: ResultRound[]
}

export interface ResultsActions {
  prioritize(round: string, top: number): void
}

function roundElement(first: ResultRound, actions: ResultsActions | null) {
  const id = first.id
  const title = h('h3', { class: 'results-title' })
  const list = h('ol', { class: 'results-list' })
  const topLabel = h('label', { for: `top-n-${id}-${actions ? 'c' : 'b'}` })
  const top = h('input', {
    id: `top-n-${id}-${actions ? 'c' : 'b'}`, testid: `top-n-${id}`, type: 'number', min: 1, value: '3', class: 'narrow',
  })
  const go = h('button', {
    type: 'button', testid: `prioritize-${id}`, class: 'btn btn-primary',
    onclick: () => actions?.prioritize(id, Math.round(Number(top.value))),
  })
  const controls = h('div', { class: 'inline results-controls' }, topLabel, top, go)
  const el = h('section', { testid: `result-${id}`, class: 'results-round' }, title, list, controls)
  setPresent(controls, !!actions)

  function update(m: ResultRound): void {
    setText(title, m.title)
    const most = Math.max(0, ...m.entries.map((e) => e.votes))
    reconcile(list, m.entries.map((e, i) => ({ ...e, rank: i + 1, most })), (e) => e.item, (e0) => {
      const label = h('span', { class: 'results-label' })
      const place = h('span', { class: 'results-place' })
      const bar = h('span', { testid: 'result-bar', class: 'results-bar' })
      const votes = h('span', { class: 'results-votes' })
      const badge = h('span', { class: 'results-priority' })
      const li = h('li', { testid: 'result-item', class: 'results-item' },
        h('span', { class: 'results-text' }, label, place, badge), h('span', { class: 'results-track' }, bar), votes)
      const draw = (e: typeof e0): void => {
        setText(label, e.label)
        setText(place, e.place)
        setText(votes, t(e.votes === 1 ? 'card.votes1' : 'card.votes', { n: e.votes }))
        setText(badge, e.priority ? t('results.priority', { n: e.priority }) : '')
        setHidden(badge, !e.priority)
        const pct = e.most > 0 ? Math.round((e.votes / e.most) * 100) : 0
        bar.style.width = `${pct}%`
        setAttr(li, 'data-item', e.item)
        setAttr(li, 'data-rank', String(e.rank))
        setAttr(li, 'data-votes', String(e.votes))
        setAttr(li, 'data-priority', e.priority ? String(e.priority) : null)
        setAttr(li, 'aria-label', `${e.rank}. ${e.label}: ${t(e.votes === 1 ? 'card.votes1' : 'card.votes', { n: e.votes })}`)
      }
      draw(e0)
      return { el: li, update: draw }
    })
    top.max = String(m.entries.length)
    setText(topLabel, t('results.topN'))
    setText(go, t('results.prioritize'))
  }
  update(first)
  return { el, update }
}

/** The results block; `actions` only in the facilitator's cockpit. */
export function createResults(testid: string, actions: ResultsActions | null) {
  const heading = h('h2', { class: 'results-heading' })
  const list = h('div', { class: 'results-rounds' })
  const el = h('section', { testid, class: `results${actions ? ' results-cockpit' : ''}` }, heading, list)

  function update(m: ResultsModel): void {
    setText(heading, t('results.title'))
    setHidden(el, m.rounds.length === 0)
    reconcile(list, m.rounds, (r) => r.id, (r) => roundElement(r, actions))
  }
  return { el, update }
}
