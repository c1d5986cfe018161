// The facilitator's hidden cards and rows: what hide and merge took out of the documents, as the
// server holds it (`GET /api/boards/{id}/hidden`), each with a restore button. The documents no
// longer contain them, so this list is the only place they show.

import { h, reconcile, setAttr, setHidden, setText } from './dom'
import { t } from '../i18n'

export interface HiddenEntry {
  doc: 'canvas' | 'gap'
  id: string
  /** The start of its text. */
  label: string
  /** Where it was: a section title, or the gap analysis. */
  place: string
  /** The label of the card it was merged into, if it was. */
  merged: string | null
  mergedInto: string | null
}

export interface HiddenActions {
  refreshHidden(): void
  restoreHidden(doc: 'canvas' | 'gap', id: string): void
}

export function createHidden(actions: HiddenActions) {
  const title = h('h3', {})
  const hint = h('p', { class: 'hint' })
  const refresh = h('button', { type: 'button', testid: 'hidden-refresh', class: 'btn btn-small', onclick: () => actions.refreshHidden() })
  const empty = h('p', { class: 'empty', testid: 'hidden-empty' })
  const list = h('ul', { testid: 'hidden-list', class: 'hidden-list' })
  const el = h('section', { class: 'panel-block hidden-items', testid: 'hidden-items' }, title, hint, refresh, empty, list)

  function update(entries: HiddenEntry[] | null): void {
    setText(title, t('fac.hidden'))
    setText(hint, t('fac.hiddenHint'))
    setText(refresh, t('fac.hiddenRefresh'))
    setText(empty, t('fac.hiddenEmpty'))
    setHidden(empty, entries === null || entries.length > 0)
    const rows = (entries ?? []).map((e) => ({ ...e, key: `${e.doc}/${e.id}` }))
    reconcile<HiddenEntry & { key: string }>(list, rows, (e) => e.key, (first) => {
      const what = h('span', { class: 'hidden-what' })
      const text = h('span', { class: 'hidden-text' })
      const merged = h('span', { class: 'hidden-merged' })
      const restore = h('button', {
        type: 'button', class: 'btn btn-small', testid: `hidden-restore-${first.id}`,
        onclick: () => actions.restoreHidden(first.doc, first.id),
      })
      const li = h('li', { testid: `hidden-${first.id}`, class: 'hidden-entry' }, what, text, merged, restore)
      return {
        el: li,
        update(e: HiddenEntry) {
          setAttr(li, 'data-doc', e.doc)
          setAttr(li, 'data-merged-into', e.mergedInto)
          setText(what, `${e.doc === 'gap' ? t('fac.hiddenRow') : t('fac.hiddenCard')} · ${e.place}: `)
          setText(text, e.label)
          setText(merged, e.merged ? ` (${t('fac.hiddenMerged', { target: e.merged })})` : '')
          setText(restore, t('card.restore'))
          setAttr(restore, 'aria-label', t('fac.hiddenRestore', { label: e.label }))
        },
      }
    })
  }
  return { el, update }
}
