// The facilitator's audit log: a button that loads it, the list of entries in words (when, who,
// what, with cards by their text: viewmodels.auditModel), and downloads as CSV and JSON.

import { h, reconcile, setHidden, setText } from './dom'
import { t } from '../i18n'

/** One line of the log, already in words. */
export interface AuditLine { key: string; text: string; action: string }

export interface AuditActions {
  open(): void
  exportCsv(): void
  exportJson(): void
}

export function createAudit(actions: AuditActions) {
  const title = h('h3', {})
  const open = h('button', { type: 'button', testid: 'audit-open', class: 'btn', onclick: () => actions.open() })
  const exportBtn = h('button', { type: 'button', testid: 'audit-export', class: 'btn', onclick: () => actions.exportCsv() })
  const jsonBtn = h('button', { type: 'button', testid: 'audit-json', class: 'btn', onclick: () => actions.exportJson() })
  const empty = h('p', { class: 'empty' })
  const list = h('ol', { testid: 'audit-log', class: 'audit-log' })
  const el = h('section', { class: 'panel-block audit' }, title, h('div', { class: 'inline' }, open, exportBtn, jsonBtn), empty, list)

  function update(entries: AuditLine[] | null): void {
    setText(title, t('fac.audit'))
    setText(open, t('fac.auditOpen'))
    setText(exportBtn, t('fac.auditExport'))
    setText(jsonBtn, t('fac.auditJson'))
    setHidden(list, entries === null)
    setText(empty, t('fac.auditEmpty'))
    setHidden(empty, entries === null || entries.length > 0)
    reconcile<AuditLine>(list, entries ?? [], (e) => e.key, () => {
      const li = h('li', { testid: 'audit-entry' })
      return {
        el: li,
        update(e: AuditLine) {
          setText(li, e.text)
          li.dataset.action = e.action
        },
      }
    })
  }
  return { el, update }
}
