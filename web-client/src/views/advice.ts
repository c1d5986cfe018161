// From workshop to advice, for the facilitator: the advice report (preview to print, Markdown and
// HTML downloads), the CSV tables and a new board for the next cao round. The board's history
// (take a snapshot, list, open read-only, compare, restore) is the History tab (../history.ts),
// which every role has. Self-contained: it talks to the server through `Api` and keeps its own
// small state; board.ts only mounts it.

import { h, setText } from './dom'
import { onLangChange, t, type Key } from '../i18n'
import type { Api } from '../api'

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
    }, fail)
  })

  const heading = label(h('h3', {}), 'advice.title')
  const reportHeading = label(h('h4', {}), 'advice.report')
  const nextHeading = label(h('h4', {}), 'advice.nextRound')
  const el = h('section', { class: 'panel-block advice', testid: 'advice-panel' },
    heading,
    reportHeading, h('div', { class: 'inline' }, preview, ...downloads),
    nextHeading, nextLabel, h('div', { class: 'inline' }, nextInput, next), nextResult,
    message)

  function update(): void {
    for (const [node, key] of texts) setText(node, t(key))
  }
  onLangChange(update)
  update()
  return { el, update }
}
