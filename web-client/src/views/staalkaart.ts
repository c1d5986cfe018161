// The staalkaart: the template's example agreements with their pillar, theme and type tags, a
// search box, and a button per example that puts it on the canvas in Bouwstenen.

import { h, reconcile, setAttr, setPresent, setText } from './dom'
import { typeName } from './card'
import { t } from '../i18n'
import type { Example, Named } from '../types'

export interface StaalkaartModel {
  examples: Example[]
  themes: Named[]
  canPlace: boolean
  placed: Set<string>
}

export interface StaalkaartActions {
  place(id: string): void
}

export function createStaalkaart(actions: StaalkaartActions) {
  const title = h('h2', {})
  const search = h('input', { type: 'search', id: 'staal-search', testid: 'staal-search', oninput: () => last && update(last) })
  const searchLabel = h('label', { for: 'staal-search', class: 'inline-label' })
  const list = h('ul', { class: 'examples' })
  const el = h('div', { class: 'staalkaart' }, h('header', { class: 'section-head' }, title),
    h('div', { class: 'filter' }, searchLabel, search), list)
  let last: StaalkaartModel | null = null

  function item(first: Example) {
    const id = first.id
    const name = h('h3', {})
    const desc = h('p', {})
    const tags = h('div', { class: 'tags' })
    const placed = h('span', { class: 'placed' })
    const place = h('button', { type: 'button', testid: `place-${id}`, class: 'btn btn-primary', onclick: () => actions.place(id) })
    const el = h('li', { testid: `example-${id}`, class: `example${first.type ? ` type-${first.type}` : ''}` },
      name, desc, tags, h('div', { class: 'row-actions' }, place, placed))
    return {
      el,
      update(ex: Example) {
        const m = last
        if (!m) return
        setText(name, ex.title)
        setText(desc, ex.description)
        const themeName = ex.thema ? m.themes.find((th) => th.id === ex.thema)?.name ?? ex.thema : ''
        const key = `${ex.type}|${ex.pijlers.join()}|${themeName}`
        if (tags.dataset.key !== key) {
          tags.dataset.key = key
          tags.replaceChildren(
            ...(ex.type ? [h('span', { testid: 'tag-type', class: `tag tag-type type-${ex.type}`, text: typeName(ex.type) })] : []),
            ...ex.pijlers.map((p) => h('span', { testid: 'tag-pijler', class: `tag tag-pijler pijler-${p}`, text: typeName(p) })),
            ...(themeName ? [h('span', { testid: 'tag-thema', class: 'tag tag-thema', text: themeName })] : []),
          )
        }
        setPresent(place, m.canPlace)
        setText(place, t('staal.place'))
        setAttr(place, 'aria-label', t('staal.placeLabel', { title: ex.title }))
        setText(placed, m.placed.has(ex.id) ? `✓ ${t('staal.placed')}` : '')
      },
    }
  }

  function update(m: StaalkaartModel): void {
    last = m
    setText(title, t('staal.title'))
    setText(searchLabel, t('staal.search'))
    const q = search.value.trim().toLowerCase()
    const shown = q
      ? m.examples.filter((ex) => `${ex.title} ${ex.description} ${ex.thema ?? ''} ${ex.type ?? ''} ${ex.pijlers.join(' ')}`.toLowerCase().includes(q))
      : m.examples
    reconcile(list, shown, (ex) => ex.id, item)
  }
  return { el, update }
}
