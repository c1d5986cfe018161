// From workshop to advice, for the facilitator: the advice report (preview to print, Markdown and
// HTML downloads), the CSV tables, the board's history (take a snapshot, list, open read-only,
// compare with now, restore) and a new board for the next cao round. Self-contained: it talks to
// the server through `Api` and keeps its own small state; board.ts only mounts it.

import { h, setHidden, setText } from './dom'
import { lang, onLangChange, t, type Key } from '../i18n'
import type { Api, SnapshotEntry } from '../api'

function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob)
  const a = h('a', { href: url, download: name })
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

export function createAdvice(api: Api, board: string) {
  const message = h('p', { class: 'advice-message', testid: 'advice-message', role: 'status' })
  const fail = (e: unknown) => setText(message, t('advice.error', { message: e instanceof Error ? e.message : String(e) }))
  const texts: [HTMLElement, Key][] = []
  const label = <T extends HTMLElement>(el: T, key: Key): T => {
    texts.push([el, key])
    return el
  }
  const button = (testid: string, key: Key, onclick: () => void) =>
    label(h('button', { type: 'button', class: 'btn', testid, onclick }), key)

  // The report
  const preview = button('report-preview', 'advice.preview', () => {
    // Opened before the fetch, so the browser does not block it as a popup.
    const win = window.open('', '_blank')
    api.exportFile(board, 'html').then((blob) => {
      const url = URL.createObjectURL(blob)
      if (win) win.location.href = url
      else window.location.href = url
    }, (e) => {
      win?.close()
      fail(e)
    })
  })
  const files: [string, Key, string, string][] = [
    ['report-md', 'advice.md', 'md', 'advies.md'],
    ['report-html', 'advice.html', 'html', 'advies.html'],
    ['export-csv-gap', 'advice.csvGap', 'csv&table=gap', 'gap-analyse.csv'],
    ['export-csv-monitoring', 'advice.csvMonitoring', 'csv&table=monitoring', 'monitoringplan.csv'],
  ]
  const downloads = files.map(([testid, key, format, name]) =>
    button(testid, key, () => api.exportFile(board, format).then((b) => download(b, `tafel-${board}-${name}`), fail)))

  // History
  const nameInput = h('input', { id: 'snapshot-name', testid: 'snapshot-name', type: 'text', maxlength: 120 })
  const nameLabel = label(h('label', { for: 'snapshot-name' }), 'advice.snapshotName')
  const list = h('ul', { class: 'snapshot-list', testid: 'snapshot-list' })
  const empty = label(h('p', { class: 'empty' }), 'advice.snapshotsEmpty')
  const detail = h('div', { class: 'snapshot-detail', testid: 'snapshot-detail' })
  let snapshots: SnapshotEntry[] | null = null

  async function load(): Promise<void> {
    try {
      snapshots = await api.snapshots(board)
      render()
    } catch (e) {
      fail(e)
    }
  }

  const take = button('snapshot-take', 'advice.snapshotTake', () => {
    const name = nameInput.value.trim()
    if (!name) return
    api.takeSnapshot(board, name).then(() => {
      nameInput.value = ''
      return load()
    }, fail)
  })
  const show = button('snapshots-load', 'advice.snapshotsLoad', () => void load())

  function when(s: SnapshotEntry): string {
    return new Date(s.at).toLocaleString(lang() === 'en' ? 'en-GB' : 'nl-NL')
  }

  function render(): void {
    setHidden(empty, snapshots === null || snapshots.length > 0)
    list.replaceChildren(...[...(snapshots ?? [])].reverse().map((s) => {
      const open = h('button', { type: 'button', class: 'btn', testid: 'snapshot-open', onclick: () => {
        api.snapshot(board, s.id).then((v) => {
          const cards = Object.values(v.documents.canvas?.cards ?? {})
          const rows = Object.values(v.documents.gap?.rows ?? {})
          detail.replaceChildren(
            h('p', {}, t('advice.cards', { n: cards.length, rows: rows.length })),
            h('ul', {}, ...cards.map((c) => h('li', {}, String(c.text ?? '')))),
          )
        }, fail)
      } }, t('advice.open'))
      const compare = h('button', { type: 'button', class: 'btn', testid: 'snapshot-compare', onclick: () => {
        api.compareSnapshot(board, s.id).then((c) => {
          detail.replaceChildren(
            h('p', {}, c.changes.length ? t('advice.changes', { added: c.added, changed: c.changed, removed: c.removed }) : t('advice.noChanges')),
            h('ul', { testid: 'snapshot-changes' }, ...c.changes.map((x) => h('li', { class: `change-${x.kind}` }, x.text))),
          )
        }, fail)
      } }, t('advice.compare'))
      const restore = h('button', { type: 'button', class: 'btn', testid: 'snapshot-restore', onclick: () => {
        if (!window.confirm(t('advice.restoreConfirm', { name: s.name }))) return
        api.restoreSnapshot(board, s.id).then(() => load(), fail)
      } }, t('advice.restore'))
      return h('li', { testid: 'snapshot' },
        h('span', {}, `${s.name} · ${when(s)}${s.auto ? ` · ${t('advice.auto')}` : ''}`),
        h('span', { class: 'inline' }, open, compare, restore))
    }))
  }

  // The next cao round
  const nextInput = h('input', { id: 'next-round-title', testid: 'next-round-title', type: 'text', maxlength: 200 })
  const nextLabel = label(h('label', { for: 'next-round-title' }), 'advice.nextTitle')
  const nextResult = h('p', { testid: 'next-round-result' })
  const next = button('next-round-create', 'advice.nextCreate', () => {
    const title = nextInput.value.trim()
    if (!title) return
    api.nextRound(board, title).then((b) => {
      nextResult.replaceChildren(
        t('advice.nextMade', { title: b.title }), ' ',
        h('a', { href: `?board=${encodeURIComponent(b.id)}`, testid: 'next-round-link' }, t('advice.nextOpen')),
      )
      return load()
    }, fail)
  })

  const heading = label(h('h3', {}), 'advice.title')
  const reportHeading = label(h('h4', {}), 'advice.report')
  const historyHeading = label(h('h4', {}), 'advice.history')
  const nextHeading = label(h('h4', {}), 'advice.nextRound')
  const el = h('section', { class: 'panel-block advice', testid: 'advice-panel' },
    heading,
    reportHeading, h('div', { class: 'inline' }, preview, ...downloads),
    historyHeading, nameLabel, h('div', { class: 'inline' }, nameInput, take, show), empty, list, detail,
    nextHeading, nextLabel, h('div', { class: 'inline' }, nextInput, next), nextResult,
    message)

  function update(): void {
    for (const [node, key] of texts) setText(node, t(key))
    if (snapshots !== null) render()
  }
  onLangChange(update)
  setHidden(empty, true)
  update()
  return { el, update }
}
