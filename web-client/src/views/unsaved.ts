// "Niet opgeslagen": after the server refused an edit and a document was reloaded, the texts this
// page had that the server does not hold, each in a read-only textarea with a copy button, under
// the explanation of the server's refusal codes. Dismissed as a whole. Drawn from UnsavedModel.

import { h, reconcile, setAttr, setHidden, setText, type Keyed } from './dom'
import { t } from '../i18n'

export interface UnsavedReasonModel {
  /** The refusal code, or `unknown` when the server's reason has none this client knows. */
  code: string
  explanation: string
  /** The server's reason, whole. */
  raw: string
}

export interface UnsavedItemModel {
  key: string
  doc: string
  kind: 'card' | 'row'
  id: string
  field: string
  label: string
  text: string
  gone: boolean
}

export interface UnsavedGroupModel {
  key: string
  doc: string
  reasons: UnsavedReasonModel[]
  items: UnsavedItemModel[]
}

export interface UnsavedModel {
  groups: UnsavedGroupModel[]
}

export interface UnsavedActions {
  /** Copies a text (the textarea is there for a fallback selection). */
  copy(text: string, area: HTMLTextAreaElement): void
  /** Closes the panel: the user has seen every text. */
  dismiss(): void
}

let seq = 0

function createReason(): Keyed<UnsavedReasonModel> {
  const explanation = h('p', { class: 'unsaved-explanation', testid: 'unsaved-reason' })
  const raw = h('p', { class: 'hint unsaved-raw', testid: 'unsaved-raw' })
  const el = h('div', { class: 'unsaved-reason' }, explanation, raw)
  return {
    el,
    update(m) {
      setAttr(explanation, 'data-code', m.code)
      setText(explanation, m.explanation)
      setText(raw, t('unsaved.reason', { reason: m.raw }))
      setHidden(raw, !m.raw)
    },
  }
}

function createItem(_: UnsavedItemModel, actions: UnsavedActions): Keyed<UnsavedItemModel> {
  const id = `unsaved-text-${++seq}`
  const label = h('label', { for: id, class: 'unsaved-label', testid: 'unsaved-label' })
  const area = h('textarea', { id, class: 'unsaved-text', testid: 'unsaved-text', readOnly: true, rows: 3 })
  let text = ''
  const copy = h('button', {
    type: 'button', class: 'btn btn-small', testid: 'unsaved-copy',
    onclick: () => actions.copy(text, area),
  })
  const el = h('div', { class: 'unsaved-item', testid: 'unsaved-item' }, label, area, copy)
  return {
    el,
    update(m) {
      text = m.text
      for (const [name, value] of [['data-doc', m.doc], ['data-kind', m.kind], ['data-id', m.id], ['data-field', m.field]]) {
        setAttr(el, name, value)
      }
      setAttr(el, 'data-gone', m.gone ? 'true' : null)
      setText(label, m.gone ? `${m.label} (${t('unsaved.gone')})` : m.label)
      if (area.value !== m.text) area.value = m.text
      setAttr(area, 'aria-label', t('unsaved.textLabel', { item: m.label }))
      setText(copy, t('unsaved.copy'))
      setAttr(copy, 'aria-label', `${t('unsaved.copy')}: ${m.label}`)
    },
  }
}

function createGroup(_: UnsavedGroupModel, actions: UnsavedActions): Keyed<UnsavedGroupModel> {
  const reasons = h('div', { class: 'unsaved-reasons' })
  const items = h('div', { class: 'unsaved-items' })
  const el = h('div', { class: 'unsaved-group', testid: 'unsaved-group' }, reasons, items)
  return {
    el,
    update(m) {
      setAttr(el, 'data-doc', m.doc)
      reconcile(reasons, m.reasons, (r) => `${r.code}|${r.raw}`, () => createReason())
      reconcile(items, m.items, (i) => i.key, (i) => createItem(i, actions))
    },
  }
}

export function createUnsavedPanel(actions: UnsavedActions) {
  const title = h('h2', { id: 'unsaved-title', class: 'unsaved-title' })
  const help = h('p', { class: 'unsaved-help' })
  const groups = h('div', { class: 'unsaved-groups' })
  const dismiss = h('button', { type: 'button', class: 'btn', testid: 'unsaved-dismiss', onclick: () => actions.dismiss() })
  const el = h('section', { class: 'unsaved-panel', testid: 'unsaved-panel', 'aria-labelledby': 'unsaved-title', hidden: true },
    h('header', { class: 'unsaved-head' }, title, dismiss), help, groups)

  function update(m: UnsavedModel): void {
    setHidden(el, m.groups.length === 0)
    setText(title, t('unsaved.title'))
    setText(help, t('unsaved.help'))
    setText(dismiss, t('unsaved.dismiss'))
    reconcile(groups, m.groups, (g) => g.key, (g) => createGroup(g, actions))
  }
  return { el, update }
}
