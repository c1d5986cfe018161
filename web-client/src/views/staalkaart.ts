// The staalkaart: the template's example agreements with their pillar, theme and type tags, a
// search box and filters by pijler, type and thema, and per example a button that puts the whole
// example (title and description, with its labels) on the canvas in the section the user picks.

import { h, reconcile, setAttr, setOptions, setPresent, setText } from './dom'
import { typeName } from './card'
import { t } from '../i18n'
import type { Example, Named, Section } from '../types'

export interface StaalkaartModel {
  examples: Example[]
  themes: Named[]
  pijlers: Named[]
  types: Named[]
  /** Sections the user may start a card in (the place target); none: no place buttons. */
  targets: Section[]
  placed: Set<string>
}

export interface StaalkaartActions {
  place(id: string, section: string): void
}

/** The section an example goes to unless the user picks another. */
const DEFAULT_TARGET = 'bouwstenen'

export function createStaalkaart(actions: StaalkaartActions) {
  const title = h('h2', {})
  const search = h('input', { type: 'search', id: 'staal-search', testid: 'staal-search', oninput: () => last && update(last) })
  const searchLabel = h('label', { for: 'staal-search', class: 'inline-label' })
  const list = h('ul', { class: 'examples' })
  const filter = (key: 'pijler' | 'type' | 'thema') => {
    const select = h('select', { id: `staal-filter-${key}`, testid: `staal-filter-${key}`, onchange: () => last && update(last) })
    const label = h('label', { for: `staal-filter-${key}`, class: 'inline-label' })
    return { select, label, el: h('div', { class: 'filter' }, label, select) }
  }
  const filters = { pijler: filter('pijler'), type: filter('type'), thema: filter('thema') }
  const el = h('div', { class: 'staalkaart' }, h('header', { class: 'section-head' }, title),
    h('div', { class: 'toolbar' }, h('div', { class: 'filter' }, searchLabel, search), filters.pijler.el, filters.type.el, filters.thema.el), list)
  let last: StaalkaartModel | null = null

  function item(first: Example) {
    const id = first.id
    const name = h('h3', {})
    const desc = h('p', {})
    const tags = h('div', { class: 'tags' })
    const placed = h('span', { class: 'placed' })
    const target = h('select', { testid: `place-section-${id}`, class: 'select-small' })
    const place = h('button', { type: 'button', testid: `place-${id}`, class: 'btn btn-primary', onclick: () => actions.place(id, target.value || DEFAULT_TARGET) })
    const el = h('li', { testid: `example-${id}`, class: `example${first.type ? ` type-${first.type}` : ''}` },
      name, desc, tags, h('div', { class: 'row-actions' }, place, target, placed))
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
        setPresent(place, m.targets.length > 0)
        setPresent(target, m.targets.length > 0)
        const chosen = target.value || (m.targets.some((s) => s.id === DEFAULT_TARGET) ? DEFAULT_TARGET : m.targets[0]?.id ?? '')
        setOptions(target, m.targets.map((s): [string, string] => [s.id, s.title]), chosen)
        setAttr(target, 'aria-label', t('staal.placeIn', { title: ex.title }))
        setText(place, t('staal.place'))
        const section = m.targets.find((s) => s.id === (target.value || chosen))?.title ?? ''
        setAttr(place, 'aria-label', t('staal.placeLabel', { title: ex.title, section }))
        setText(placed, m.placed.has(ex.id) ? `✓ ${t('staal.placed')}` : '')
      },
    }
  }

  function update(m: StaalkaartModel): void {
    last = m
    setText(title, t('staal.title'))
    setText(searchLabel, t('staal.search'))
    const all: [string, string] = ['', t('staal.all')]
    setText(filters.pijler.label, t('staal.filterPijler'))
    setOptions(filters.pijler.select, [all, ...m.pijlers.map((p): [string, string] => [p.id, p.name])], filters.pijler.select.value)
    setText(filters.type.label, t('staal.filterType'))
    setOptions(filters.type.select, [all, ...m.types.map((p): [string, string] => [p.id, p.name])], filters.type.select.value)
    setText(filters.thema.label, t('staal.filterThema'))
    setOptions(filters.thema.select, [all, ...m.themes.map((p): [string, string] => [p.id, p.name])], filters.thema.select.value)
    const [pijler, type, thema] = [filters.pijler.select.value, filters.type.select.value, filters.thema.select.value]
    const q = search.value.trim().toLowerCase()
    const shown = m.examples
      .filter((ex) => !q || `${ex.title} ${ex.description} ${ex.thema ?? ''} ${ex.type ?? ''} ${ex.pijlers.join(' ')}`.toLowerCase().includes(q))
      .filter((ex) => (!pijler || ex.pijlers.includes(pijler)) && (!type || ex.type === type) && (!thema || ex.thema === thema))
    reconcile(list, shown, (ex) => ex.id, item)
  }
  return { el, update }
}
