// The facilitator's audit log: a button that loads it, the list of entries (when, who, what),
// and an export button that downloads it as CSV.

import { h, reconcile, setHidden, setText } from './dom'
import { lang, t } from '../i18n'
import type { AuditEntry } from '../types'

export interface AuditActions {
  open(): void
  exportCsv(): void
}

function describe(detail: unknown): string {
  if (detail === null || detail === undefined) return ''
  if (typeof detail !== 'object') return String(detail)
  return Object.entries(detail as Record<string, unknown>)
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(', ')
}

export function createAudit(actions: AuditActions) {
  const title = h('h3', {})
  const open = h('button', { type: 'button', testid: 'audit-open', class: 'btn', onclick: () => actions.open() })
  const exportBtn = h('button', { type: 'button', testid: 'audit-export', class: 'btn', onclick: () => actions.exportCsv() })
  const empty = h('p', { class: 'empty' })
  const list = h('ol', { testid: 'audit-log', class: 'audit-log' })
  const el = h('section', { class: 'panel-block audit' }, title, h('div', { class: 'inline' }, open, exportBtn), empty, list)

  function update(entries: AuditEntry[] | null): void {
    setText(title, t('fac.audit'))
    setText(open, t('fac.auditOpen'))
    setText(exportBtn, t('fac.auditExport'))
    setHidden(list, entries === null)
    setText(empty, t('fac.auditEmpty'))
    setHidden(empty, entries === null || entries.length > 0)
    const rows = (entries ?? []).map((e, i) => ({ ...e, key: String(i) })).reverse()
    reconcile<AuditEntry & { key: string }>(list, rows, (e) => e.key, () => {
      const li = h('li', { testid: 'audit-entry' })
      return {
        el: li,
        update(e: AuditEntry) {
          const when = new Date(e.at * 1000).toLocaleTimeString(lang() === 'en' ? 'en-GB' : 'nl-NL')
          setText(li, `${when} · ${e.name || e.sub} · ${e.action}${e.detail ? ` · ${describe(e.detail)}` : ''}`)
        },
      }
    })
  }
  return { el, update }
}
