// The gap analysis: one row per topic (onderwerp, huidige situatie, gewenste situatie, gap,
// aanbevolen oplossingen, partijen), ordered by priority, with up/down buttons that swap
// priorities, an add button and who is editing. Drawn from GapModel; acts through GapActions.

import { h, reconcile, setAttr, setHidden, setPresent, setText } from './dom'
import { t, type Key } from '../i18n'
import type { Row, SharedText } from '../types'

export interface RowModel {
  row: Row
  canEdit: boolean
  canRemove: boolean
  first: boolean
  last: boolean
  editingBy: string[]
  /** The facilitator may hide the row (it leaves the document; restore from the panel). */
  canHide: boolean
  /** In the room's spotlight (presentation mode, the facilitator's focus). */
  spotlit: boolean
}

export interface GapModel {
  rows: RowModel[]
  canAdd: boolean
  locked: boolean
}

export interface GapActions {
  addRow(): void
  move(id: string, dir: -1 | 1): void
  setPartijen(id: string, partijen: string[]): void
  removeRow(id: string): void
  hideRow(id: string): void
  /** The facilitator puts the row in the room's spotlight. */
  spotlight(id: string): void
  focus(id: string): void
  blur(id: string): void
}

const FIELDS: { key: 'onderwerp' | 'huidig' | 'gewenst' | 'gap' | 'oplossingen'; label: Key }[] = [
  { key: 'onderwerp', label: 'gap.onderwerp' },
  { key: 'huidig', label: 'gap.huidig' },
  { key: 'gewenst', label: 'gap.gewenst' },
  { key: 'gap', label: 'gap.gap' },
  { key: 'oplossingen', label: 'gap.oplossingen' },
]

function rowElement(first: RowModel, actions: GapActions, prefix: string) {
  const id = first.row.id
  const uid = `${prefix}${id}`
  const fields = FIELDS.map((f) => {
    const area = h('textarea', {
      testid: `row-${f.key}`, class: 'card-text', rows: 2, id: `${uid}-${f.key}`,
      onfocus: () => actions.focus(id), onblur: () => actions.blur(id),
    })
    const labelEl = h('label', { for: `${uid}-${f.key}` })
    return { ...f, area, labelEl, box: h('div', { class: `gap-field gap-${f.key}` }, labelEl, area), bound: null as SharedText | null, unbind: null as (() => void) | null }
  })
  const partijen = h('input', {
    testid: 'row-partijen', type: 'text', id: `${uid}-partijen`,
    oninput: () => actions.setPartijen(id, partijen.value.split(',').map((s) => s.trim()).filter(Boolean)),
    onfocus: () => actions.focus(id), onblur: () => actions.blur(id),
  })
  const partijenLabel = h('label', { for: `${uid}-partijen` })
  const up = h('button', { type: 'button', testid: 'row-up', class: 'btn btn-small', onclick: () => actions.move(id, -1) })
  const down = h('button', { type: 'button', testid: 'row-down', class: 'btn btn-small', onclick: () => actions.move(id, 1) })
  const remove = h('button', { type: 'button', testid: 'remove-row', class: 'btn btn-small btn-quiet', onclick: () => actions.removeRow(id) })
  const hide = h('button', { type: 'button', testid: `hide-row-${id}`, class: 'btn btn-small btn-quiet', onclick: () => actions.hideRow(id) })
  const spot = h('button', { type: 'button', testid: `spotlight-row-${id}`, class: 'btn btn-small btn-quiet', onclick: () => actions.spotlight(id) })
  const priority = h('span', { class: 'priority' })
  const editing = h('span', { class: 'card-editing' })
  const author = h('span', { class: 'card-author' })
  const el = h('article', { testid: `row-${id}`, class: 'gap-row' },
    h('div', { class: 'row-head' }, priority, editing, author, h('span', { class: 'spacer' }), up, down, spot, hide, remove),
    h('div', { class: 'gap-fields' }, ...fields.map((f) => f.box),
      h('div', { class: 'gap-field gap-partijen' }, partijenLabel, partijen)))

  function update(m: RowModel): void {
    for (const f of fields) {
      const text = m.row[f.key]
      if (text !== f.bound) {
        f.unbind?.()
        f.bound = text
        f.unbind = text ? text.bind(f.area) : null
      }
      if (f.area.readOnly === m.canEdit) f.area.readOnly = !m.canEdit
      setText(f.labelEl, t(f.label))
    }
    setText(partijenLabel, t('gap.partijen'))
    const value = m.row.partijen.join(', ')
    if (document.activeElement !== partijen && partijen.value !== value) partijen.value = value
    if (partijen.readOnly === m.canEdit) partijen.readOnly = !m.canEdit
    setText(priority, t('gap.priority', { n: m.row.priority + 1 }))
    setText(editing, m.editingBy.length ? t('card.editing', { name: m.editingBy.join(', ') }) : '')
    setText(author, m.row.author ?? '')
    setText(up, '↑')
    setAttr(up, 'aria-label', t('gap.up'))
    setText(down, '↓')
    setAttr(down, 'aria-label', t('gap.down'))
    setPresent(up, m.canEdit)
    setPresent(down, m.canEdit)
    up.disabled = m.first
    down.disabled = m.last
    setText(remove, '×')
    setAttr(remove, 'aria-label', t('gap.remove'))
    setPresent(remove, m.canRemove)
    setText(hide, t('card.hide'))
    setAttr(hide, 'aria-label', t('gap.hide'))
    setPresent(hide, m.canHide)
    setText(spot, t('card.spotlight'))
    setPresent(spot, m.canHide)
    el.classList.toggle('is-spotlit', m.spotlit)
    setAttr(el, 'data-spotlight', m.spotlit ? 'true' : null)
  }
  update(first)
  return {
    el, update,
    destroy() {
      for (const f of fields) f.unbind?.()
    },
  }
}

/** `prefix` keeps element ids unique when a second gap board is on the page (a snapshot). */
export function createGap(actions: GapActions, prefix = '') {
  const title = h('h2', {})
  const add = h('button', { type: 'button', testid: 'add-row', class: 'btn btn-add', onclick: () => actions.addRow() })
  const lock = h('span', { class: 'lock-badge' })
  const empty = h('p', { class: 'empty' })
  const list = h('div', { class: 'gap-rows' })
  const el = h('div', { class: 'gap' }, h('header', { class: 'section-head' }, title, lock, add), empty, list)

  function update(m: GapModel): void {
    setText(title, t('gap.title'))
    setText(add, `+ ${t('gap.add')}`)
    setPresent(add, m.canAdd)
    setText(lock, m.locked ? t('canvas.locked') : '')
    setHidden(lock, !m.locked)
    setText(empty, t('gap.empty'))
    setHidden(empty, m.rows.length > 0)
    reconcile(list, m.rows, (r) => r.row.id, (r) => rowElement(r, actions, prefix))
  }
  return { el, update }
}
