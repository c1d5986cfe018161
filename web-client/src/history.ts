// The board's history, for every role: the snapshots listed (named ones and the automatic ones at
// each step change and before each restore), each one opened as a read-only board — the same
// canvas and gap rendering, with a banner and a way back — or compared with now in words. The
// facilitator also takes snapshots and restores them. The server shows each role a snapshot only
// as that role may see the board now (its documents, no item hidden now); this module draws what
// it gets. A snapshot's items become a local, unconnected Y.Doc, so the views draw them exactly
// as they draw the live board.

import * as Y from 'yjs'
import type { Api, SnapshotEntry } from './api'
import { h, setHidden, setPresent, setText } from './views/dom'
import { createCanvas, type CanvasActions } from './views/canvas'
import { createGap, type GapActions } from './views/gap'
import { createCard, type CardActions } from './views/card'
import { lang, onLangChange, t, type Key } from './i18n'
import * as ym from './ymodel'
import * as vm from './viewmodels'
import type { Rights } from './permissions'
import type { Named, Party, Role, Template } from './types'
import { PARTIES } from './types'

type Items = Record<string, Record<string, unknown>>

const ROW_TEXTS = ['onderwerp', 'huidig', 'gewenst', 'gap', 'oplossingen']

/** A local document holding `items` under `root`, texts as Y.Text (as the live documents do). */
export function docOf(items: Items, root: 'cards' | 'rows'): Y.Doc {
  const doc = new Y.Doc()
  const texts = root === 'rows' ? ROW_TEXTS : ['text']
  doc.transact(() => {
    const map = doc.getMap(root)
    for (const [id, item] of Object.entries(items)) {
      const m = new Y.Map<unknown>()
      map.set(id, m)
      for (const [k, v] of Object.entries(item)) {
        m.set(k, texts.includes(k) && typeof v === 'string' ? new Y.Text(v) : v)
      }
    }
  })
  return doc
}

const READ_ONLY: Rights = {
  addCard: () => false, startCard: () => false, editCard: () => false, removeCard: () => false,
  moveCard: () => false,
  sectionLocked: () => false, addRow: () => false, editRow: () => false, removeRow: () => false,
  writeParty: () => false, vote: false,
}

const noop = (): void => {}
const cardNoop: CardActions = {
  focus: noop, blur: noop, remove: noop, hide: noop, restore: noop, vote: noop, unvote: noop,
  setType: noop, setThema: noop, setPijlers: noop,
}

export interface HistoryContext {
  api: Api
  board: string
  role: Role
  /** The template in the current language, and the board's themes now (for labels). */
  live(): { template: Template; themes: Named[] }
}

export function createHistory(ctx: HistoryContext) {
  const fac = ctx.role === 'facilitator'
  const texts: [HTMLElement, Key][] = []
  const label = <T extends HTMLElement>(el: T, key: Key): T => {
    texts.push([el, key])
    return el
  }
  const button = (testid: string, key: Key, onclick: () => void) =>
    label(h('button', { type: 'button', class: 'btn', testid, onclick }), key)
  const message = h('p', { class: 'advice-message', testid: 'history-message', role: 'status' })
  const fail = (e: unknown) => setText(message, t('advice.error', { message: e instanceof Error ? e.message : String(e) }))

  // ---- the list ----
  const nameInput = h('input', { id: 'snapshot-name', testid: 'snapshot-name', type: 'text', maxlength: 120 })
  const nameLabel = label(h('label', { for: 'snapshot-name' }), 'advice.snapshotName')
  const take = button('snapshot-take', 'advice.snapshotTake', () => {
    const name = nameInput.value.trim()
    if (!name) return
    ctx.api.takeSnapshot(ctx.board, name).then(() => {
      nameInput.value = ''
      return load()
    }, fail)
  })
  const takeBox = h('div', { class: 'history-take' }, nameLabel, h('div', { class: 'inline' }, nameInput, take))
  const refresh = button('snapshots-load', 'history.refresh', () => void load())
  const list = h('ul', { class: 'snapshot-list', testid: 'snapshot-list' })
  const empty = label(h('p', { class: 'empty' }), 'advice.snapshotsEmpty')
  const detail = h('div', { class: 'snapshot-detail', testid: 'snapshot-detail', 'aria-live': 'polite' })
  const heading = label(h('h2', {}), 'history.title')
  const hint = label(h('p', { class: 'hint' }), fac ? 'history.hintFacilitator' : 'history.hint')
  const listView = h('div', { class: 'history-list' }, heading, hint, fac ? takeBox : null, refresh, empty, list, detail)

  // ---- one snapshot, read-only ----
  const bannerText = h('strong', { testid: 'snapshot-banner-text' })
  const back = button('snapshot-back', 'history.back', () => close())
  const banner = h('div', { class: 'snapshot-banner', testid: 'snapshot-banner', role: 'note' }, bannerText, back)
  let filter = 'all'
  const canvasActions: CanvasActions = {
    ...cardNoop, add: noop, saveDraft: noop, removeDraft: noop,
    filter: (type) => {
      filter = type
      draw()
    },
  }
  const gapActions: GapActions = { addRow: noop, move: noop, setPartijen: noop, removeRow: noop, hideRow: noop, spotlight: noop, focus: noop, blur: noop }
  let canvas: ReturnType<typeof createCanvas> | null = null
  let gap: ReturnType<typeof createGap> | null = null
  const canvasTitle = label(h('h3', {}), 'tab.canvas')
  const gapTitle = label(h('h3', {}), 'tab.gap')
  const parties = h('div', { class: 'snapshot-parties' })
  const boardView = h('div', { class: 'snapshot-board', testid: 'snapshot-board' })
  let viewing: { entry: SnapshotEntry; canvas: Y.Doc; gap: Y.Doc | null; parties: [Party, Y.Doc][] } | null = null

  const el = h('section', { class: 'history', testid: 'history-panel' }, message, listView, boardView)
  setHidden(boardView, true)

  let entries: SnapshotEntry[] | null = null
  async function load(): Promise<void> {
    try {
      entries = await ctx.api.snapshots(ctx.board)
      renderList()
    } catch (e) {
      fail(e)
    }
  }

  function when(s: SnapshotEntry): string {
    return new Date(s.at).toLocaleString(lang() === 'en' ? 'en-GB' : 'nl-NL')
  }

  function renderList(): void {
    setHidden(empty, entries === null || entries.length > 0)
    list.replaceChildren(...[...(entries ?? [])].reverse().map((s) => {
      const open = h('button', { type: 'button', class: 'btn', testid: 'snapshot-open', onclick: () => void show(s) }, t('advice.open'))
      const compare = h('button', { type: 'button', class: 'btn', testid: 'snapshot-compare', onclick: () => {
        ctx.api.compareSnapshot(ctx.board, s.id).then((c) => {
          detail.replaceChildren(
            h('h3', {}, t('history.compared', { name: s.name })),
            h('p', {}, c.changes.length ? t('advice.changes', { added: c.added, changed: c.changed, removed: c.removed }) : t('advice.noChanges')),
            h('ul', { testid: 'snapshot-changes' }, ...c.changes.map((x) => h('li', { class: `change-${x.kind}` }, x.text))),
          )
        }, fail)
      } }, t('advice.compare'))
      const restore = fac
        ? h('button', { type: 'button', class: 'btn', testid: 'snapshot-restore', onclick: () => {
          if (!window.confirm(t('advice.restoreConfirm', { name: s.name }))) return
          ctx.api.restoreSnapshot(ctx.board, s.id).then(() => load(), fail)
        } }, t('advice.restore'))
        : null
      return h('li', { testid: 'snapshot' },
        h('span', {}, `${s.name} · ${when(s)}${s.auto ? ` · ${t('advice.auto')}` : ''}`),
        h('span', { class: 'inline' }, open, compare, restore))
    }))
  }

  async function show(entry: SnapshotEntry): Promise<void> {
    try {
      const v = await ctx.api.snapshot(ctx.board, entry.id)
      const docs = v.documents
      viewing = {
        entry,
        canvas: docOf(docs.canvas?.cards ?? {}, 'cards'),
        gap: docs.gap ? docOf(docs.gap.rows ?? {}, 'rows') : null,
        parties: PARTIES.filter((p) => docs[`party-${p}`]).map((p): [Party, Y.Doc] => [p, docOf(docs[`party-${p}`].cards ?? {}, 'cards')]),
      }
      filter = 'all'
      // Fresh views for each snapshot: their ids are prefixed, so they never clash with the live board's.
      canvas = createCanvas(canvasActions, 'snap-')
      gap = createGap(gapActions, 'snap-')
      boardView.replaceChildren(banner, canvasTitle, canvas.el, gapTitle, gap.el, parties)
      setHidden(listView, true)
      setHidden(boardView, false)
      draw()
      back.focus()
    } catch (e) {
      fail(e)
    }
  }

  function close(): void {
    viewing = null
    canvas = null
    gap = null
    boardView.replaceChildren()
    setHidden(boardView, true)
    setHidden(listView, false)
  }

  function draw(): void {
    if (!viewing || !canvas || !gap) return
    const { template, themes } = ctx.live()
    const control = new Y.Doc()
    const snap: vm.Snapshot = {
      session: ym.readSession(control), rounds: [], people: [], themes,
      cards: ym.readCards(viewing.canvas),
      rows: viewing.gap ? ym.readRows(viewing.gap) : [],
      partyCards: [],
    }
    const local: vm.Local = { role: 'observer', filter, ballot: null, drafts: [], party: 'employer', parties: [] }
    setText(bannerText, t('history.banner', { name: viewing.entry.name, when: when(viewing.entry) }))
    canvas.update(vm.canvasModel(snap, local, template, READ_ONLY))
    setPresent(gapTitle, !!viewing.gap)
    setPresent(gap.el, !!viewing.gap)
    gap.update(vm.gapModel(snap, READ_ONLY, false))
    const themeList = vm.themesOf(snap, template)
    parties.replaceChildren(...viewing.parties.map(([p, doc]) => {
      const cards = ym.readCards(doc)
      return h('section', { class: 'snapshot-party', testid: `snapshot-party-${p}` },
        h('h3', {}, t('party.title', { party: t(`role.${p}`) })),
        cards.length ? null : h('p', { class: 'empty' }, t('party.empty')),
        h('div', { class: 'cards party-cards' }, ...cards.map((card) => createCard({
          card, canEdit: false, canRemove: false, facilitator: false, editingBy: [], themes: themeList, vote: null,
        }, cardNoop).el)))
    }))
  }

  function update(): void {
    for (const [node, key] of texts) setText(node, t(key))
    if (entries !== null) renderList()
    draw()
  }
  onLangChange(update)
  setHidden(empty, true)
  update()

  let wasShown = false
  return {
    el,
    /** Called on every render: loads the list when the history is first shown, and again each
     * time it is shown anew. */
    shown(now: boolean): void {
      if (now && !wasShown) void load()
      wasShown = now
    },
    /** The live board changed (themes, language): redraw an open snapshot's labels. */
    refresh: draw,
  }
}
