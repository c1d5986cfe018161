// The board page, and the one place where Yjs meets the views: it opens the board's documents,
// observes them, reads a fresh snapshot on every change and hands view models to the views; the
// views' callbacks go to actions.ts, which writes to the Y types (or calls the server). State
// outside the documents is only what is truly local (tab, filter, notice) or held by the server
// over HTTP (ballot, drafts, audit, invite, the facilitator's hidden items).

import type * as Y from 'yjs'
import { Api } from './api'
import { DocConnection, combinedState } from './sync'
import { Presence } from './presence'
import { rights, type Rights } from './permissions'
import * as ym from './ymodel'
import * as vm from './viewmodels'
import { createActions } from './actions'
import { localize } from './localize'
import { Undo } from './undo'
import { createHeader } from './views/header'
import { createPresence } from './views/presence'
import { createCanvas } from './views/canvas'
import { createGap } from './views/gap'
import { createParty } from './views/party'
import { createStaalkaart } from './views/staalkaart'
import { createResults } from './views/results'
import { createFacilitatorPanel } from './views/facilitator'
import { createAdvice } from './views/advice'
import { createMonitoring } from './views/monitoring'
import { createHistory } from './history'
import { createUnsavedPanel } from './views/unsaved'
import { h, setAttr, setHidden } from './views/dom'
import { lang, onLangChange, setLang, t } from './i18n'
import { mine, myColor } from './session'
import type { AuditEntry, Ballot, BoardSummary, DocName, Draft, HiddenItem, InviteInfo, ParticipantInfo, Party, Role, Tab, Template, UnsavedGroup } from './types'
import { PARTIES } from './types'

/** How long a notice stays (ms). */
const NOTICE_MS = 6000

export interface BoardState {
  board: string
  role: Role
  template: Template
  api: Api
  conns: Map<DocName, DocConnection>
  presence: Presence
  tab: Tab
  filter: string
  notice: string
  ballot: Ballot | null
  drafts: Draft[]
  party: Party
  parties: Party[]
  invite: { url: string; role: Role } | null
  /** The "scan to join" QR code is shown full screen (for the room's screen). */
  qrShown: boolean
  /** Invites and participants, once the facilitator loaded them. */
  people: { invites: InviteInfo[]; participants: ParticipantInfo[] } | null
  audit: AuditEntry[] | null
  /** The facilitator's hidden cards and rows, from the server (they are in no document). */
  hidden: HiddenItem[] | null
  /** Server clock minus this clock (ms), estimated from live session changes. */
  offset: number
  /** A card just added (or moved) here, to focus once it is drawn (in `focusIn`, when set). */
  focusCard: string | null
  focusIn?: string | null
  /** What reloads after refused edits did not keep ("Niet opgeslagen"), oldest first. */
  unsaved: UnsavedGroup[]
  /** The poster view: the whole canvas on one screen (chosen here, or the room's focus). */
  poster: boolean
}

export interface BoardApp {
  state: BoardState
  render(): void
  snapshot(): vm.Snapshot
  rights(snap?: vm.Snapshot): Rights
  doc(name: DocName): Y.Doc
  notify(text: string): void
  /** The user deleted their card or gap row `id` of `doc`: undo may restore it through the server. */
  deleted(doc: DocName, id: string): void
}

export async function openBoard(root: HTMLElement, info: BoardSummary, token: string, api: Api, backToList: boolean): Promise<void> {
  const source = await api.template(info.template)
  // The template in the chosen language; switched on a language change (see render).
  let templateLang = lang()
  let template = localize(source, templateLang)
  const role: Role = info.you?.role ?? 'observer'
  const display = info.you?.display ?? ''
  const parties: Party[] = role === 'facilitator' ? PARTIES : PARTIES.filter((p) => p === role)
  const docs: DocName[] = ['canvas', 'gap', 'control', ...parties.map((p): DocName => `party-${p}`)]

  let scheduled = false
  const schedule = (): void => {
    if (scheduled) return
    scheduled = true
    queueMicrotask(() => {
      scheduled = false
      render()
    })
  }

  const state = {
    board: info.id, role, template, api,
    conns: new Map<DocName, DocConnection>(),
    tab: 'canvas', filter: 'all', notice: '', ballot: null, drafts: [],
    party: parties[0] ?? 'employer', parties,
    invite: null, qrShown: false, people: null, audit: null, hidden: null, offset: 0, focusCard: null, unsaved: [], poster: false,
  } as Omit<BoardState, 'presence'> as BoardState

  const undo = new Undo(schedule, async (root, id) => {
    try {
      if (root === 'rows') {
        await api.restoreRow(info.id, id)
        app.notify(t('undo.restoredRow'))
      } else {
        await api.restoreCard(info.id, id)
        app.notify(t('undo.restored'))
      }
    } catch (e) {
      app.notify(t('notice.failed', { reason: e instanceof Error ? e.message : String(e) }))
    }
  })
  /** The document and root the undo button works on: the tab's own. */
  const undoTarget = (): { doc: Y.Doc; root: string } | null => {
    if (state.tab === 'canvas') return { doc: state.conns.get('canvas')!.doc, root: 'cards' }
    if (state.tab === 'gap') return { doc: state.conns.get('gap')!.doc, root: 'rows' }
    const party = state.conns.get(`party-${state.party}`)
    return state.tab === 'party' && party ? { doc: party.doc, root: 'cards' } : null
  }
  const observe = (conn: DocConnection): void => {
    const doc = conn.doc
    if (conn.name !== 'control') undo.watch(doc, conn.name === 'gap' ? 'rows' : 'cards')
    const roots = conn.name === 'control' ? ['rounds'] : conn.name === 'gap' ? ['rows'] : ['cards', 'themes']
    for (const root of roots) doc.getMap(root).observeDeep(schedule)
    if (conn.name === 'control') {
      doc.getMap('session').observe((_event, tr) => {
        // A live change (after the first sync) carries a fresh `serverNow`: estimate the offset.
        const now = doc.getMap('session').get('timer') as { serverNow?: number } | undefined
        if (!tr.local && conn.synced && typeof now?.serverNow === 'number') state.offset = now.serverNow - Date.now()
        schedule()
      })
    }
  }

  for (const name of docs) {
    const conn = new DocConnection(info.id, name, token, {
      state: schedule,
      denied: (reason) => actions.denied(reason),
      unsaved: (group) => actions.unsaved(group),
      replaced: () => {
        observe(conn)
        if (name === 'canvas') state.presence.attach()
        schedule()
      },
    }, role === 'observer' || (name === 'control' && role !== 'facilitator'))
    state.conns.set(name, conn)
    observe(conn)
  }
  state.presence = new Presence(state.conns.get('canvas')!, display, role, myColor(), schedule)

  const app: BoardApp = {
    state,
    render: schedule,
    doc: (name) => state.conns.get(name)!.doc,
    snapshot(): vm.Snapshot {
      const party = state.conns.get(`party-${state.party}`)
      return {
        session: ym.readSession(app.doc('control')),
        rounds: ym.readRounds(app.doc('control')),
        cards: ym.readCards(app.doc('canvas')),
        themes: ym.readThemes(app.doc('canvas')),
        rows: ym.readRows(app.doc('gap')),
        partyCards: party ? ym.readCards(party.doc) : [],
        people: state.presence.others(),
      }
    },
    rights: (snap) => rights(role, template, (snap ?? app.snapshot()).session, mine(info.id)),
    deleted(name, id) {
      undo.deleted(app.doc(name), name === 'gap' ? 'rows' : 'cards', id)
    },
    notify(text) {
      state.notice = text
      schedule()
      // A notice is news, not a state: it clears itself (unless a newer one replaced it).
      setTimeout(() => {
        if (state.notice === text) {
          state.notice = ''
          schedule()
        }
      }, NOTICE_MS)
    },
  }
  const actions = createActions(app)

  // ---- views ----
  const header = createHeader({
    switchLang: () => setLang(lang() === 'nl' ? 'en' : 'nl'),
    tab: (tab) => actions.tab(tab),
    poster: () => {
      state.poster = !state.poster
      schedule()
    },
    undo: () => {
      const target = undoTarget()
      if (target) undo.undo(target.doc, target.root)
    },
  })
  const presence = createPresence({ toggleHand: () => actions.toggleHand(), toggleReady: () => actions.toggleReady() })
  const canvas = createCanvas(actions.canvas)
  const gap = createGap(actions.gap)
  const party = createParty(actions.party)
  const staalkaart = createStaalkaart(actions.staalkaart)
  // The revealed rounds, ranked with bars, on the board for everyone (the room screen too).
  const results = createResults('results-board', null)
  const monitoring = createMonitoring(actions.monitoring)
  // The history, for every role (restore and taking snapshots: the facilitator's).
  const history = createHistory({
    api, board: info.id, role,
    live: () => ({ template: state.template, themes: ym.readThemes(app.doc('canvas')) }),
  })
  const panel = role === 'facilitator' ? createFacilitatorPanel(actions.facilitator) : null
  // From workshop to advice (report, exports, next round): the facilitator's.
  if (panel) panel.el.append(createAdvice(api, info.id).el)
  const unsaved = createUnsavedPanel(actions.unsavedPanel)
  const panels: Record<Tab, HTMLElement> = {
    canvas: h('div', { role: 'tabpanel', id: 'panel-canvas', 'aria-labelledby': 'tab-canvas' }, canvas.el),
    gap: h('div', { role: 'tabpanel', id: 'panel-gap', 'aria-labelledby': 'tab-gap' }, gap.el),
    party: h('div', { role: 'tabpanel', id: 'panel-party', 'aria-labelledby': 'tab-party' }, party.el),
    staalkaart: h('div', { role: 'tabpanel', id: 'panel-staalkaart', 'aria-labelledby': 'tab-staalkaart' }, staalkaart.el),
    monitoring: h('div', { role: 'tabpanel', id: 'panel-monitoring', 'aria-labelledby': 'tab-monitoring' }, monitoring.el),
    history: h('div', { role: 'tabpanel', id: 'panel-history', 'aria-labelledby': 'tab-history' }, history.el),
  }
  const tabs: Tab[] = ['canvas', 'gap', ...(parties.length ? (['party'] as Tab[]) : []), 'monitoring', 'staalkaart', 'history']
  const main = h('main', { class: 'board-main' }, results.el, ...tabs.map((tab) => panels[tab]))
  const page = h('div', { class: `board-page${panel ? ' with-panel' : ''}` },
    header.el, unsaved.el, presence.el, h('div', { class: 'board-body' }, main, panel?.el))
  root.replaceChildren(page)
  // The sticky header's height, for what sticks below it (the facilitator's panel).
  new ResizeObserver(() => document.documentElement.style.setProperty('--header-h', `${header.el.offsetHeight}px`)).observe(header.el)

  let lastFocus = ''
  let lastPrivate: boolean | null = null
  /** Step and phase last seen in a synced `control`: a new one ends this user's "ready". */
  let lastStage: string | null = null
  /** The canvas cards and gap rows last drawn: when the set changes (a hide, merge or restore
   * by any facilitator), the facilitator's hidden list is fetched again. */
  let lastItems: string | null = null
  function render(): void {
    if (templateLang !== lang()) {
      templateLang = lang()
      template = localize(source, templateLang)
      state.template = template
    }
    const snap = app.snapshot()
    if (role === 'facilitator') {
      const items = [...snap.cards.map((c) => c.id), '|', ...snap.rows.map((r) => r.id)].sort().join(' ')
      if (items !== lastItems) {
        lastItems = items
        actions.facilitator.refreshHidden()
      }
    }
    const r = app.rights(snap)
    const local: vm.Local = {
      role, filter: state.filter, ballot: state.ballot, drafts: state.drafts, party: state.party, parties,
    }
    const s = snap.session
    // Follow the facilitator: on a change of focus while presenting, switch tab and scroll.
    const focus = s.presentation.on && role !== 'facilitator' ? vm.focusKey(s.presentation.focus) : ''
    if (focus && focus !== lastFocus) actions.follow(s.presentation.focus)
    lastFocus = focus
    if (lastPrivate !== s.privateWriting) {
      lastPrivate = s.privateWriting
      actions.refreshDrafts()
      actions.refreshMine()
    }
    actions.syncBallot(snap.rounds)
    if (state.conns.get('control')!.synced) {
      const stage = `${s.step}|${s.phase}`
      if (lastStage !== null && stage !== lastStage && state.presence.ready) state.presence.setReady(false)
      lastStage = stage
    }
    if (!s.locks.board) {
      for (const [name, conn] of state.conns) if (!s.locks.docs.includes(name)) conn.retry()
    }

    const presenting = s.presentation.on && role !== 'facilitator'
    const poster = state.tab === 'canvas' && (state.poster || (presenting && s.presentation.focus?.poster === true))
    document.body.classList.toggle('presenting', presenting)
    document.documentElement.classList.toggle('presenting', presenting)
    document.body.classList.toggle('poster', poster)
    header.update({
      title: info.title, role,
      connection: combinedState([...state.conns.values()].map((c) => c.state)),
      notice: state.notice,
      step: s.step,
      stepTitle: template.steps.find((st) => st.id === s.step)?.title ?? '',
      phase: s.phase,
      timer: { timer: s.timer, offset: state.offset },
      tabs, active: state.tab, backToList,
      presenting: s.presentation.on,
      poster,
      canPoster: state.tab === 'canvas',
      canUndo: role !== 'observer' && !!undoTarget(),
      undoable: (() => {
        const target = undoTarget()
        return !!target && undo.canUndo(target.doc, target.root)
      })(),
    })
    unsaved.update(vm.unsavedModel(state.unsaved, template))
    presence.update({
      people: snap.people, hand: state.presence.hand, ready: state.presence.ready,
      canReady: role === 'employer' || role === 'union' || role === 'employee',
    })
    for (const tab of tabs) setHidden(panels[tab], tab !== state.tab)
    canvas.update(vm.canvasModel(snap, local, template, r))
    gap.update(vm.gapModel(snap, r, role === 'facilitator', state.ballot))
    const ranked = vm.resultsModel(snap, template)
    results.update(ranked)
    if (parties.length) party.update(vm.partyModel(snap, local, template, r))
    staalkaart.update(vm.staalkaartModel(snap, template, r))
    if (state.tab === 'monitoring') monitoring.update(vm.monitoringModel(snap, template, r))
    history.shown(state.tab === 'history')
    panel?.update({
      session: s,
      sections: template.sections,
      steps: template.steps,
      phases: template.phases,
      round: vm.currentRound(snap.rounds),
      invite: state.invite,
      qrShown: state.qrShown,
      people: state.people,
      audit: state.audit ? vm.auditModel(state.audit, snap, state.hidden, template) : null,
      hidden: state.hidden ? vm.hiddenModel(state.hidden, snap, template) : null,
      focus: vm.focusKey(s.presentation.focus),
      ready: vm.readyCount(snap.people),
      results: ranked,
    })
    setAttr(page, 'data-tab', state.tab)
    canvas.poster(poster)
    if (state.focusCard) {
      const where = state.focusIn ? `[data-section="${state.focusIn}"]` : ''
      const area = document.querySelector<HTMLTextAreaElement>(`[data-testid="card-${state.focusCard}"]${where} textarea`)
      if (area) {
        area.focus()
        state.focusCard = null
        state.focusIn = null
      }
    }
  }

  onLangChange(schedule)
  render()
}
