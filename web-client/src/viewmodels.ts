// Builds what each view draws from one snapshot of the documents (read fresh from Yjs for every
// render), the HTTP-held state (ballot, drafts) and local UI state. Pure functions: no Yjs, no DOM
// (labels come from i18n in the current language).

import type { CanvasModel, SectionModel } from './views/canvas'
import type { CardModel } from './views/card'
import type { GapModel } from './views/gap'
import type { PartyModel } from './views/party'
import type { StaalkaartModel } from './views/staalkaart'
import type { AgreementModel, IndicatorModel, MonitoringModel } from './views/monitoring'
import type { UnsavedModel } from './views/unsaved'
import type { HiddenEntry } from './views/hidden'
import type { Rights } from './permissions'
import { lang, t, type Key } from './i18n'
import { explain, parseRefusal } from './refusal'
import type {
  AuditEntry, Ballot, Card, Draft, Focus, HiddenItem, Named, Party, Person, Role, Round, Row, Session, Template, UnsavedGroup, UnsavedText,
} from './types'

export interface Snapshot {
  session: Session
  rounds: Round[]
  cards: Card[]
  themes: Named[]
  rows: Row[]
  partyCards: Card[]
  people: Person[]
}

export interface Local {
  role: Role
  filter: string
  ballot: Ballot | null
  drafts: Draft[]
  party: Party
  parties: Party[]
}

export function openRound(rounds: Round[]): Round | null {
  return rounds.find((r) => r.status === 'open') ?? null
}

/** The round the facilitator acts on: the open one, else the latest closed one. */
export function currentRound(rounds: Round[]): Round | null {
  return openRound(rounds) ?? rounds.find((r) => r.status === 'closed') ?? null
}

function editingBy(people: Person[], id: string): string[] {
  return people.filter((p) => p.editing === id).map((p) => p.name)
}

/** The start of a card's text, on one line, for labels (merge targets). */
export function textStart(plain: string, max = 40): string {
  const line = plain.replace(/\s+/g, ' ').trim()
  if (!line) return t('card.empty')
  return line.length > max ? `${line.slice(0, max - 1).trimEnd()}…` : line
}

/** What the facilitator may merge `card` into: every other visible card of the canvas, the cards
 * of its own section first; labelled by their text start (and the section when another). */
function mergeTargets(card: Card, cards: Card[], template: Template): [string, string][] {
  const titles = new Map(template.sections.map((s) => [s.id, s.title]))
  const others = cards.filter((c) => c.id !== card.id && !c.hidden)
  const same = others.filter((c) => c.section === card.section)
  const rest = others.filter((c) => c.section !== card.section)
  return [
    ...same.map((c): [string, string] => [c.id, textStart(c.plain)]),
    ...rest.map((c): [string, string] => [c.id, `${textStart(c.plain)} (${titles.get(c.section) ?? c.section})`]),
  ]
}

export function themesOf(snap: Snapshot, template: Template): Named[] {
  if (!snap.themes.length) return template.themes
  const names = template.themeNames ?? {}
  return snap.themes.map((th) => (names[th.id] ? { ...th, name: names[th.id] } : th))
}

export function canvasModel(snap: Snapshot, local: Local, template: Template, rights: Rights): CanvasModel {
  const fac = local.role === 'facilitator'
  const round = openRound(snap.rounds)
  const inRound = new Set(round?.cards ?? [])
  const ballot = round && local.ballot?.round === round.id ? local.ballot : null
  const themes = themesOf(snap, template)
  const locks = snap.session.locks
  const byId = new Map(snap.cards.map((c) => [c.id, c]))
  const spot = spotlight(snap.session)
  const cardModel = (card: Card): CardModel => {
    const mine = ballot?.votes[`canvas/${card.id}`] ?? 0
    const into = card.mergedInto ? byId.get(card.mergedInto) : undefined
    return {
      card,
      mergeTargets: fac && !card.hidden ? mergeTargets(card, snap.cards, template) : undefined,
      mergedLabel: into ? textStart(into.plain) : null,
      canEdit: rights.editCard(card),
      canRemove: rights.removeCard(card),
      facilitator: fac,
      editingBy: editingBy(snap.people, card.id),
      spotlit: spot === `card:${card.id}`,
      moveTargets: card.hidden ? [] : template.sections
        .filter((s) => rights.moveCard(card, s.id))
        .map((s): [string, string] => [s.id, s.title]),
      sectionOrder: template.sections.map((s) => s.id),
      themes,
      vote: round && rights.vote && inRound.has(card.id)
        ? { mine, canAdd: !ballot || (ballot.left > 0 && mine < ballot.maxPerCard), canTake: mine > 0 }
        : null,
    }
  }
  const sections: SectionModel[] = template.sections.map((section) => ({
    section,
    locked: locks.board || locks.docs.includes('canvas') || locks.sections.includes(section.id),
    canStart: rights.startCard(section.id),
    cards: snap.cards
      .filter((c) => c.section === section.id && (fac || !c.hidden))
      .filter((c) => local.filter === 'all' || c.type === local.filter)
      .map(cardModel),
    drafts: local.drafts.filter((d) => d.section === section.id),
    spotlit: spot === `section:${section.id}`,
  }))
  return {
    sections,
    filter: local.filter,
    privateWriting: snap.session.privateWriting && !fac,
    votes: round && rights.vote ? { title: round.title, left: ballot ? ballot.left : null } : null,
    pijlers: template.pijlers,
    types: template.types,
    themes,
  }
}

export function gapModel(snap: Snapshot, rights: Rights, facilitator = false): GapModel {
  const locks = snap.session.locks
  const spot = spotlight(snap.session)
  return {
    canAdd: rights.addRow(),
    locked: locks.board || locks.docs.includes('gap'),
    rows: snap.rows.map((row, i) => ({
      row,
      canEdit: rights.editRow(row),
      canRemove: rights.removeRow(row),
      first: i === 0,
      last: i === snap.rows.length - 1,
      editingBy: editingBy(snap.people, row.id),
      canHide: facilitator,
      spotlit: spot === `row:${row.id}`,
    })),
  }
}

export function partyModel(snap: Snapshot, local: Local, template: Template, rights: Rights): PartyModel {
  const doc = `party-${local.party}`
  const canWrite = rights.writeParty(doc)
  const targets = template.sections.filter((s) => rights.addCard(s.id))
  return {
    party: local.party,
    parties: local.parties,
    canAdd: canWrite,
    cards: snap.partyCards.map((card) => ({
      card,
      canEdit: canWrite,
      canRemove: canWrite,
      facilitator: false,
      editingBy: editingBy(snap.people, card.id),
      themes: themesOf(snap, template),
      vote: null,
      copyTargets: targets,
    })),
  }
}

export function staalkaartModel(snap: Snapshot, template: Template, rights: Rights): StaalkaartModel {
  const placed = new Set(snap.cards.filter((c) => c.source && !c.hidden).map((c) => c.source as string))
  return {
    examples: template.staalkaart,
    themes: themesOf(snap, template),
    pijlers: template.pijlers,
    types: template.types,
    targets: template.sections.filter((s) => rights.startCard(s.id)),
    placed,
  }
}

/** The monitoring plan: each agreement (a `bouwstenen` card) with its indicators (`monitoring`
 * cards naming it in `afspraak`), in the canvas's order; indicators naming no agreement on the
 * board come last, under no agreement. Rights as on the canvas. */
export function monitoringModel(snap: Snapshot, template: Template, rights: Rights): MonitoringModel {
  const has = (id: string) => template.sections.some((s) => s.id === id)
  const available = has('bouwstenen') && has('monitoring')
  const visible = snap.cards.filter((c) => !c.hidden)
  const agreements = visible.filter((c) => c.section === 'bouwstenen')
  const indicators = visible.filter((c) => c.section === 'monitoring')
  const ids = new Set(agreements.map((a) => a.id))
  const canAdd = rights.addCard('monitoring')
  const indicator = (card: Card): IndicatorModel => {
    const moments = [...card.monitoring.meetmomenten]
    for (const m of card.monitoring.metingen) if (!moments.includes(m.moment)) moments.push(m.moment)
    return { card, canEdit: rights.editCard(card), canRemove: rights.removeCard(card), moments }
  }
  const out: AgreementModel[] = agreements.map((card) => ({
    card,
    label: textStart(card.plain, 80),
    canEditStatus: rights.editCard(card),
    canAdd,
    indicators: indicators.filter((i) => i.monitoring.afspraak === card.id).map(indicator),
  }))
  const loose = indicators.filter((i) => !i.monitoring.afspraak || !ids.has(i.monitoring.afspraak))
  if (loose.length) out.push({ card: null, label: '', canEditStatus: false, canAdd, indicators: loose.map(indicator) })
  return { agreements: available ? out : [], available }
}

/** The ready check: how many of the participants online (employer, union, employee) are ready. */
/** The facilitator's hidden list: each held card or row labelled by its text start, where it
 * was, and the card it was merged into (by that card's text when it is on the canvas). */
export function hiddenModel(items: HiddenItem[], snap: Snapshot, template: Template): HiddenEntry[] {
  const titles = new Map(template.sections.map((s) => [s.id, s.title]))
  const live = new Map(snap.cards.map((c) => [c.id, c]))
  return items.map((item) => {
    const first = item.doc === 'gap'
      ? ['onderwerp', 'huidig', 'gewenst', 'gap', 'oplossingen'].map((f) => item.texts[f] ?? '').find((s) => s.trim()) ?? ''
      : item.texts.text ?? ''
    const section = typeof item.fields.section === 'string' ? item.fields.section : ''
    const into = item.mergedInto ?? null
    const target = into ? live.get(into) : undefined
    return {
      doc: item.doc,
      id: item.id,
      label: textStart(first),
      place: item.doc === 'gap' ? t('tab.gap') : titles.get(section) ?? section,
      merged: into ? (target ? textStart(target.plain) : into) : null,
      mergedInto: into,
    }
  })
}

/**
 * The audit log in words: who did what, naming cards by the start of their text (from the
 * canvas, or the hidden list for cards that left it) and sections by their title — never ids or
 * JSON (the JSON stays downloadable).
 */
export function auditModel(entries: AuditEntry[], snap: Snapshot, hidden: HiddenItem[] | null, template: Template): { key: string; text: string; action: string }[] {
  const cards = new Map(snap.cards.map((c) => [c.id, textStart(c.plain)]))
  for (const item of hidden ?? []) {
    if (item.doc === 'canvas' && !cards.has(item.id)) cards.set(item.id, textStart(item.texts.text ?? ''))
    if (item.doc === 'gap') cards.set(item.id, textStart(item.texts.onderwerp ?? ''))
  }
  const sections = new Map(template.sections.map((s) => [s.id, s.title]))
  const steps = new Map(template.steps.map((s) => [s.id, s.title]))
  const card = (id: unknown): string => typeof id === 'string' ? `“${cards.get(id) ?? t('audit.unknownCard')}”` : ''
  const d = (e: AuditEntry): Record<string, unknown> => (e.detail && typeof e.detail === 'object' ? e.detail : {}) as Record<string, unknown>
  const say = (e: AuditEntry): string => {
    const x = d(e)
    const on = x.on === true
    switch (e.action) {
      case 'step': return t('audit.step', { step: String(x.step ?? ''), title: steps.get(String(x.step)) ?? '' })
      case 'phase': return t('audit.phase', { phase: String(x.phase ?? '') })
      case 'timer': return x.op === 'start' && typeof x.seconds === 'number'
        ? t('audit.timerStart', { min: Math.round(x.seconds / 6) / 10 })
        : t(x.op === 'pause' ? 'audit.timerPause' : x.op === 'reset' ? 'audit.timerReset' : 'audit.timerResume')
      case 'lock': case 'unlock': {
        const what = x.scope === 'board' ? t('audit.theBoard')
          : x.scope === 'doc' ? (x.target === 'gap' ? t('tab.gap') : String(x.target ?? ''))
            : sections.get(String(x.target)) ?? String(x.target ?? '')
        return t(e.action === 'lock' ? 'audit.lock' : 'audit.unlock', { what })
      }
      case 'presentation': return t(on ? 'audit.presentOn' : 'audit.presentOff')
      case 'author-mode': return t('audit.authorMode', { mode: t(`fac.author.${x.mode === 'name' || x.mode === 'anonymous' ? x.mode : 'party'}`) })
      case 'private-writing': return t(on ? 'audit.privateOn' : 'audit.privateOff')
      case 'reveal-drafts': return t('audit.revealDrafts', { n: Array.isArray(x.cards) ? x.cards.length : 0 })
      case 'round-open': return t('audit.roundOpen', { n: Array.isArray(x.cards) ? x.cards.length : 0, budget: String(x.budget ?? '') })
      case 'round-close': return t('audit.roundClose')
      case 'round-reveal': return t('audit.roundReveal')
      case 'hide': return x.row ? t('audit.hideRow', { row: card(x.row) }) : t('audit.hide', { card: card(x.card) })
      case 'merge': return t('audit.merge', { card: card(x.card), into: card(x.into) })
      case 'restore': return x.row ? t('audit.restoreRow', { row: card(x.row) }) : t('audit.restore', { card: card(x.card) })
      case 'invite': return t('audit.invite', { role: t(`role.${String(x.role)}` as Key) })
      case 'invite-revoke': return t('audit.inviteRevoke', { role: t(`role.${String(x.role)}` as Key) })
      case 'remove': return t('audit.remove', { name: String(x.display ?? '') })
      default: return e.action
    }
  }
  return entries.map((e, i) => ({
    key: String(i),
    action: e.action,
    text: t('audit.line', {
      when: new Date(e.at * 1000).toLocaleTimeString(lang() === 'en' ? 'en-GB' : 'nl-NL'),
      who: e.name || t(`role.${e.role}` as Key),
      what: say(e),
    }),
  })).reverse()
}

export function readyCount(people: Person[]): { ready: number; total: number } {
  const participants = people.filter((p) => p.role === 'employer' || p.role === 'union' || p.role === 'employee')
  return { ready: participants.filter((p) => p.ready).length, total: participants.length }
}

/**
 * The presentation focus as a select value: `canvas`, `canvas:<section>`, `poster`, `gap`,
 * `card:<id>` or `row:<id>` (the last two set from a card's or row's spotlight button).
 */
export function focusKey(focus: Focus | null): string {
  if (!focus) return 'canvas'
  if (focus.card) return `card:${focus.card}`
  if (focus.row) return `row:${focus.row}`
  if (focus.poster) return 'poster'
  if (focus.doc === 'gap') return 'gap'
  if (focus.section) return `canvas:${focus.section}`
  return 'canvas'
}

export function focusFromKey(key: string): Focus {
  if (key === 'gap') return { doc: 'gap' }
  if (key === 'poster') return { doc: 'canvas', poster: true }
  const [doc, id] = key.split(':')
  if (doc === 'card') return { doc: 'canvas', card: id }
  if (doc === 'row') return { doc: 'gap', row: id }
  return id ? { doc, section: id } : { doc }
}

/** What is in the spotlight while presenting (`section:<id>`, `card:<id>`, `row:<id>`), or ''. */
export function spotlight(session: { presentation: { on: boolean; focus: Focus | null } }): string {
  const f = session.presentation.focus
  if (!session.presentation.on || !f) return ''
  if (f.card) return `card:${f.card}`
  if (f.row) return `row:${f.row}`
  if (f.section) return `section:${f.section}`
  return ''
}

/** What the "Niet opgeslagen" panel shows: per reload, the refusals explained and the texts. */
export function unsavedModel(groups: UnsavedGroup[], template: Template): UnsavedModel {
  const label = (doc: string, item: UnsavedText): string => {
    if (item.kind === 'row') return t('unsaved.row', { field: t(`gap.${item.field}` as Key) })
    if (doc.startsWith('party-')) return t('unsaved.note', { party: t(`role.${doc.slice('party-'.length)}` as Key) })
    const section = template.sections.find((s) => s.id === item.section)
    return t('unsaved.card', { section: section?.title ?? item.section ?? '' })
  }
  return {
    groups: groups.filter((g) => g.items.length).map((g) => {
      const seen = new Set<string>()
      const reasons = g.reasons.map(parseRefusal).filter((r) => {
        const key = r.code ?? r.raw
        if (seen.has(key)) return false
        seen.add(key)
        return true
      })
      return {
        key: g.key,
        doc: g.doc,
        reasons: (reasons.length ? reasons : [parseRefusal('')]).map((r) => ({ code: r.code ?? 'unknown', explanation: explain(r), raw: r.raw })),
        items: g.items.map((item) => ({
          key: `${item.kind}:${item.id}:${item.field}`,
          doc: g.doc, kind: item.kind, id: item.id, field: item.field,
          label: label(g.doc, item), text: item.text, gone: item.gone,
        })),
      }
    }),
  }
}
