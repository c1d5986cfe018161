// What the user's clicks and keystrokes do: writes to the Y types (cards, rows, party notes),
// calls to the server (facilitator commands, votes, drafts, invites, audit), and the purely
// local choices (tab, filter, party). Every outcome reaches the screen through a render.

import { ApiError } from './api'
import type { BoardApp } from './board'
import type { CanvasActions } from './views/canvas'
import type { CardActions } from './views/card'
import type { FacilitatorActions } from './views/facilitator'
import type { GapActions } from './views/gap'
import type { PartyActions } from './views/party'
import type { StaalkaartActions } from './views/staalkaart'
import type { MonitoringActions } from './views/monitoring'
import * as ym from './ymodel'
import { focusFromKey } from './viewmodels'
import { mine, newId, rememberMine } from './session'
import { t } from './i18n'
import { noticeText, parseRefusal } from './refusal'
import type { UnsavedActions } from './views/unsaved'
import type { DocName, Focus, Party, Role, Round, Tab, UnsavedGroup } from './types'

const PARTICIPANTS: Role[] = ['employer', 'union', 'employee']

export function createActions(app: BoardApp) {
  const s = app.state
  const board = s.board

  /** Runs a server call; a failure becomes the notice. */
  async function loadPeople(): Promise<void> {
    const [invites, participants] = await Promise.all([call(s.api.invites(board)), call(s.api.participants(board))])
    if (invites && participants) s.people = { invites, participants }
  }

  async function call<T>(p: Promise<T>): Promise<T | null> {
    try {
      return await p
    } catch (e) {
      app.notify(t('notice.failed', { reason: e instanceof ApiError ? e.message : String(e) }))
      return null
    }
  }

  const control = (command: Record<string, unknown>) => call(s.api.control(board, command))

  function cardActions(docName: () => DocName): CardActions {
    return {
      focus: (id) => s.presence.setEditing(id),
      // Focus on another card right after sets `editing` again.
      blur: (id) => s.presence.clearEditing(id),
      remove: (id) => {
        if (!window.confirm(t('confirm.removeCard'))) return
        const name = docName()
        ym.removeCard(app.doc(name), id)
        // The server keeps a canvas card one deleted: undo can bring it back.
        if (name === 'canvas') app.deleted(name, id)
      },
      hide: (id) => void control({ action: 'hide', card: id }),
      restore: (id) => void control({ action: 'restore', card: id }),
      merge: (id, into) => void control({ action: 'merge', card: id, into }),
      spotlight: (id) => facilitator.presentation(true, `card:${id}`),
      move: (id, section) => void moveCard(id, section),
      vote: (id) => void vote(`canvas/${id}`, 1),
      unvote: (id) => void vote(`canvas/${id}`, -1),
      setGapRow: (id, row) => ym.setCardField(app.doc(docName()), id, 'gapRow', row),
      setType: (id, type) => ym.setCardField(app.doc(docName()), id, 'type', type),
      setThema: (id, thema) => ym.setCardField(app.doc(docName()), id, 'thema', thema),
      setPijlers: (id, pijlers) => ym.setCardField(app.doc(docName()), id, 'pijlers', pijlers),
    }
  }

  /** Moves a card through the server (which checks the rights on both sections); the focus
   * follows the card to its new section. A refusal is explained like a refused edit. */
  async function moveCard(id: string, section: string): Promise<void> {
    const title = s.template.sections.find((x) => x.id === section)?.title ?? section
    try {
      await s.api.moveCard(board, id, section)
      s.focusCard = id
      s.focusIn = section
      app.notify(t('card.moved', { section: title }))
    } catch (e) {
      const reason = e instanceof ApiError ? e.message : String(e)
      app.notify(t('notice.denied', { reason: noticeText(parseRefusal(reason)) }))
    }
  }

  function currentOpenRound(): Round | null {
    return ym.readRounds(app.doc('control')).find((r) => r.status === 'open') ?? null
  }

  /** One dot more or less on an item of the open round (`canvas/<id>`, `gap/<id>`). */
  async function vote(item: string, dir: 1 | -1): Promise<void> {
    const round = currentOpenRound()
    if (!round) return
    const ballot = await call(dir > 0 ? s.api.vote(board, round.id, item) : s.api.unvote(board, round.id, item))
    if (ballot) {
      s.ballot = ballot
      app.render()
    }
  }

  function addCanvasCard(card: ym.NewCard): void {
    const id = newId('c')
    const step = ym.readSession(app.doc('control')).step
    ym.addCard(app.doc('canvas'), id, { stap: step, ...card })
    rememberMine(board, id)
    s.focusCard = id
    s.focusIn = null
    app.render()
  }

  async function saveDraft(draft: { section: string; text: string; pijlers?: string[]; thema?: string; type?: string }): Promise<void> {
    const res = await call(s.api.addDraft(board, draft))
    if (res) {
      s.drafts = res.drafts
      app.notify(t('notice.draftSaved'))
    }
  }

  let ballotFor: string | null = null
  let draftsLoading = false

  const monitoring: MonitoringActions & { setStatus(id: string, status: string | undefined): void } = {
    addIndicator: (afspraak) => {
      const id = newId('c')
      ym.addCard(app.doc('canvas'), id, { section: 'monitoring', text: '', stap: '6', afspraak, soort: 'kwantitatief' })
      rememberMine(board, id)
      app.render()
    },
    set: (id, field, value) => ym.setCardField(app.doc('canvas'), id, field, value),
    setStatus: (id, status) => ym.setCardField(app.doc('canvas'), id, 'status', status),
    remove: (id) => {
      if (window.confirm(t('confirm.removeCard'))) ym.removeCard(app.doc('canvas'), id)
    },
    focus: (id) => s.presence.setEditing(id),
    blur: (id) => s.presence.clearEditing(id),
  }

  const canvas: CanvasActions = {
    ...cardActions(() => 'canvas'),
    add: (section) => addCanvasCard({ section, text: '' }),
    saveDraft: (section, text, labels) => void saveDraft({ section, text, ...labels }),
    removeDraft: async (id) => {
      if (!window.confirm(t('confirm.removeDraft'))) return
      const drafts = await call(s.api.removeDraft(board, id))
      if (drafts) {
        s.drafts = drafts
        app.render()
      }
    },
    filter: (type) => {
      s.filter = type
      app.render()
    },
  }

  const partyDoc = (): DocName => `party-${s.party}`
  const party: PartyActions = {
    ...cardActions(partyDoc),
    add: () => {
      const id = newId('n')
      ym.addCard(app.doc(partyDoc()), id, { section: 'notes', text: '' })
      s.focusCard = id
      app.render()
    },
    choose: (p: Party) => {
      s.party = p
      app.render()
    },
    copyTo: (id, section) => {
      const note = ym.readCards(app.doc(partyDoc())).find((c) => c.id === id)
      if (!note) return
      addCanvasCard({
        section, text: ym.cardText(app.doc(partyDoc()), id), pijlers: note.pijlers, thema: note.thema, type: note.type,
      })
      s.focusCard = null
    },
  }

  const gap: GapActions = {
    addRow: () => {
      const id = newId('r')
      ym.addRow(app.doc('gap'), id)
      rememberMine(board, id)
      app.render()
    },
    move: (id, dir) => {
      const rows = ym.readRows(app.doc('gap'))
      const i = rows.findIndex((r) => r.id === id)
      const other = rows[i + dir]
      if (i >= 0 && other) ym.swapRows(app.doc('gap'), id, other.id)
    },
    setPartijen: (id, partijen) => ym.setPartijen(app.doc('gap'), id, partijen),
    removeRow: (id) => {
      if (!window.confirm(t('confirm.removeRow'))) return
      ym.removeRow(app.doc('gap'), id)
      // The server keeps a gap row one deleted, as a canvas card: undo can bring it back.
      app.deleted('gap', id)
    },
    hideRow: (id) => void control({ action: 'hide', row: id }),
    spotlight: (id) => facilitator.presentation(true, `row:${id}`),
    focus: (id) => s.presence.setEditing(id),
    blur: (id) => s.presence.clearEditing(id),
    vote: (id) => void vote(`gap/${id}`, 1),
    unvote: (id) => void vote(`gap/${id}`, -1),
  }

  const staalkaart: StaalkaartActions = {
    place: (id, section) => {
      const ex = s.template.staalkaart.find((e) => e.id === id)
      if (!ex) return
      // The whole example: its title and description, with its labels.
      const text = ex.description ? `${ex.title}\n${ex.description}` : ex.title
      const card = { section, text, pijlers: ex.pijlers, thema: ex.thema, type: ex.type }
      if (app.rights().addCard(section)) {
        addCanvasCard({ ...card, source: ex.id })
        s.focusCard = null
        app.notify(t('staal.placedIn', { section: s.template.sections.find((x) => x.id === section)?.title ?? section }))
      } else {
        void saveDraft(card)
      }
    },
  }

  let lastFocusSent = ''
  const facilitator: FacilitatorActions = {
    step: (step) => void control({ action: 'step', step }),
    phase: (phase) => void control({ action: 'phase', phase }),
    timer: (op, seconds) => void control(seconds === undefined ? { action: 'timer', op } : { action: 'timer', op, seconds }),
    lock: (scope, target, locked) => void control(target === null ? { action: 'lock', scope, locked } : { action: 'lock', scope, target, locked }),
    presentation: (on, key) => {
      lastFocusSent = key
      void control({ action: 'presentation', on, focus: focusFromKey(key) })
    },
    authorMode: (mode) => void control({ action: 'author-mode', mode }),
    privateWriting: (on) => void control({ action: 'private-writing', on }),
    revealDrafts: async () => {
      const res = await control({ action: 'reveal-drafts' })
      if (res) app.notify(t('fac.revealed', { n: (res as { published?: number }).published ?? 0 }))
    },
    openRound: async (budget, picks) => {
      // What is votable: the cards of the picked sections, and the gap rows when picked.
      const cards = ym.readCards(app.doc('canvas')).filter((c) => picks.includes(c.section) && !c.hidden).map((c) => `canvas/${c.id}`)
      const rows = picks.includes('gap') ? ym.readRows(app.doc('gap')).map((r) => `gap/${r.id}`) : []
      const items = [...cards, ...rows]
      if (!items.length) return app.notify(t('fac.noCards'))
      const b = Math.min(100, Math.max(1, budget || 3))
      const title = picks.length === 1 && picks[0] === 'bouwstenen' ? t('fac.roundTitle') : t('fac.roundTitleAny')
      await control({ action: 'open-round', title, items, budget: b, max_per_card: b })
    },
    prioritize: async (round, top) => {
      const res = await control({ action: 'prioritize', round, top })
      if (res) app.notify(t('results.prioritized', { n: ((res as { priorities?: string[] }).priorities ?? []).length }))
    },
    closeRound: async () => {
      const round = currentOpenRound()
      if (!round) return app.notify(t('fac.noOpenRound'))
      await control({ action: 'close-round', round: round.id })
    },
    revealRound: async () => {
      const rounds = ym.readRounds(app.doc('control'))
      const round = rounds.find((r) => r.status === 'open') ?? rounds.find((r) => r.status === 'closed')
      if (!round) return app.notify(t('fac.noOpenRound'))
      await control({ action: 'reveal-round', round: round.id })
    },
    create: async (role, seats, ttl) => {
      const invite = await call(s.api.invite(board, role, ttl, seats ?? undefined))
      if (invite) {
        s.invite = { url: invite.url, role }
        if (s.people) await loadPeople()
        app.render()
      }
    },
    showQr: (shown) => {
      s.qrShown = shown
      app.render()
    },
    loadPeople: async () => {
      await loadPeople()
      app.render()
    },
    revokeInvite: async (id) => {
      if (await call(s.api.revokeInvite(board, id))) await loadPeople()
      app.render()
    },
    removeParticipant: async (id, display) => {
      if (!window.confirm(t('fac.participantRemoveConfirm', { name: display }))) return
      if (await call(s.api.removeParticipant(board, id))) await loadPeople()
      app.render()
    },
    copied: (ok) => app.notify(ok ? t('notice.copied') : t('notice.failed', { reason: 'clipboard' })),
    refreshHidden: async () => {
      const items = await call(s.api.hidden(board))
      if (items) {
        s.hidden = items
        app.render()
      }
    },
    restoreHidden: async (doc, id) => {
      await control(doc === 'gap' ? { action: 'restore', row: id } : { action: 'restore', card: id })
      const items = await call(s.api.hidden(board))
      if (items) s.hidden = items
      app.render()
    },
    open: async () => {
      const entries = await call(s.api.audit(board))
      if (entries) {
        s.audit = entries
        app.render()
      }
    },
    exportCsv: async () => {
      const blob = await call(s.api.auditCsv(board))
      if (blob) download(blob, `tafel-audit-${board}.csv`)
    },
    exportJson: async () => {
      const entries = await call(s.api.audit(board))
      if (entries) download(new Blob([JSON.stringify(entries, null, 2)], { type: 'application/json' }), `tafel-audit-${board}.json`)
    },
  }

  const unsavedPanel: UnsavedActions = {
    copy: (text, area) => void copyText(text, area).then((ok) => app.notify(ok ? t('unsaved.copied') : t('notice.failed', { reason: 'clipboard' }))),
    dismiss: () => {
      for (const g of s.unsaved) s.conns.get(g.doc)?.dismiss(g.key)
      s.unsaved = []
      app.render()
    },
  }

  return {
    canvas, gap, party, staalkaart, monitoring, facilitator, unsavedPanel,

    tab(tab: Tab): void {
      s.tab = tab
      app.render()
      // While presenting, the facilitator's tab is the room's focus.
      if (s.role === 'facilitator' && (tab === 'canvas' || tab === 'gap')) {
        const session = ym.readSession(app.doc('control'))
        if (session.presentation.on && lastFocusSent !== tab) facilitator.presentation(true, tab)
      }
    },

    toggleHand(): void {
      s.presence.setHand(!s.presence.hand)
      app.render()
    },

    /** The ready check (participants): says in awareness whether this person is ready. */
    toggleReady(): void {
      s.presence.setReady(!s.presence.ready)
      app.render()
    },

    /** The server refused an edit: say why (the document reloads itself). */
    denied(reason: string): void {
      app.notify(t('notice.denied', { reason: noticeText(parseRefusal(reason)) }))
    },

    /** A reload after a refusal did not keep these texts (none: forget that reload's group). */
    unsaved(group: UnsavedGroup): void {
      const rest = s.unsaved.filter((g) => g.key !== group.key)
      s.unsaved = group.items.length ? [...rest, group].sort((a, b) => a.at - b.at) : rest
      app.render()
    },

    /** Presentation mode: show what the facilitator focuses on. */
    follow(focus: Focus | null): void {
      const tab: Tab = focus?.doc === 'gap' ? 'gap' : 'canvas'
      s.tab = tab
      app.render()
      const target = focus?.card ? `card-${focus.card}` : focus?.row ? `row-${focus.row}` : focus?.section ? `section-${focus.section}` : null
      if (target) {
        setTimeout(() => document.querySelector(`[data-testid="${target}"]`)?.scrollIntoView({ block: 'start' }), 50)
      }
    },

    /**
     * Learns from the server which cards and rows are this user's (at start and after a reveal:
     * a revealed draft is a card no device made), so their author may edit them in sections
     * where only the author may.
     */
    refreshMine(): void {
      if (s.role === 'observer' || s.role === 'facilitator') return
      void s.api.mine(board).then((own) => {
        const known = mine(board)
        const fresh = [...own.canvas, ...own.gap].filter((id) => !known.has(id))
        for (const id of fresh) rememberMine(board, id)
        if (fresh.length) app.render()
      }, () => {})
    },

    /** Loads this user's drafts (at start and when private writing turns on or off). */
    refreshDrafts(): void {
      if (draftsLoading || s.role === 'observer' || s.role === 'facilitator') return
      draftsLoading = true
      void s.api.drafts(board).then(
        (drafts) => {
          s.drafts = drafts
          draftsLoading = false
          app.render()
        },
        () => {
          draftsLoading = false
        },
      )
    },

    /** Keeps the ballot of the open round loaded (participants only). */
    syncBallot(rounds: Round[]): void {
      const round = rounds.find((r) => r.status === 'open')
      if (!round || !PARTICIPANTS.includes(s.role) || ballotFor === round.id) return
      ballotFor = round.id
      void call(s.api.ballot(board, round.id)).then((ballot) => {
        if (ballot) {
          s.ballot = ballot
          app.render()
        } else {
          ballotFor = null
        }
      })
    },
  }
}

/** Puts a text on the clipboard; without the Clipboard API (or its permission), selects it in
 * the textarea and asks for the legacy copy command. */
async function copyText(text: string, area: HTMLTextAreaElement): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text)
      return true
    }
  } catch {
    // fall back below
  }
  area.focus()
  area.select()
  try {
    return document.execCommand('copy')
  } catch {
    return false
  }
}

/** Saves a blob as a file (a temporary link the browser downloads). */
function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
