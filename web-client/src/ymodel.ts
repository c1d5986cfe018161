// The board's Yjs layout (docs/schema.md), read into plain data for the views and written by the
// user's actions. Reads return fresh snapshots (never kept: the Y.Doc is the one copy); writes
// are single transactions, so the server judges each as a whole.

import * as Y from 'yjs'
import { sharedText } from './textbind'
import { OWN_EDIT } from './undo'
import type { Card, Monitoring, Named, Round, Row, Session, Timer } from './types'

const TEXT_FIELDS = ['onderwerp', 'huidig', 'gewenst', 'gap', 'oplossingen'] as const
export type RowTextField = (typeof TEXT_FIELDS)[number]

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

function text(v: unknown): ReturnType<typeof sharedText> | null {
  return v instanceof Y.Text ? sharedText(v) : null
}

// ---- canvas and party workspaces -------------------------------------------------------------

export function readCards(doc: Y.Doc): Card[] {
  const out: Card[] = []
  doc.getMap('cards').forEach((value, id) => {
    if (!(value instanceof Y.Map)) return
    const m = value as Y.Map<unknown>
    out.push({
      id,
      section: str(m.get('section')) ?? '',
      text: text(m.get('text')),
      plain: m.get('text') instanceof Y.Text ? (m.get('text') as Y.Text).toString() : '',
      pijlers: strings(m.get('pijlers')),
      thema: str(m.get('thema')),
      type: str(m.get('type')),
      source: str(m.get('source')),
      order: num(m.get('order')) ?? 0,
      author: str(m.get('author')),
      createdAt: num(m.get('createdAt')),
      hidden: m.get('hidden') === true,
      votes: num(m.get('votes')),
      mergedInto: str(m.get('mergedInto')),
      monitoring: readMonitoring(m),
    })
  })
  out.sort((a, b) => a.order - b.order || (a.createdAt ?? Infinity) - (b.createdAt ?? Infinity) || a.id.localeCompare(b.id))
  return out
}

function readMonitoring(m: Y.Map<unknown>): Monitoring {
  const metingen = Array.isArray(m.get('metingen')) ? (m.get('metingen') as unknown[]) : []
  return {
    afspraak: str(m.get('afspraak')),
    soort: str(m.get('soort')),
    nulmeting: str(m.get('nulmeting')),
    streefwaarde: str(m.get('streefwaarde')),
    meetmomenten: strings(m.get('meetmomenten')),
    verzamelt: str(m.get('verzamelt')),
    rapporteert: str(m.get('rapporteert')),
    terugkoppeling: str(m.get('terugkoppeling')),
    status: str(m.get('status')),
    metingen: metingen.flatMap((x) => {
      const o = x as { moment?: unknown; waarde?: unknown } | null
      return typeof o?.moment === 'string' && typeof o.waarde === 'string' ? [{ moment: o.moment, waarde: o.waarde }] : []
    }),
  }
}

export function readThemes(doc: Y.Doc): Named[] {
  const out: Named[] = []
  doc.getMap('themes').forEach((value, id) => {
    const v = value as { name?: unknown; description?: unknown } | null
    out.push({ id, name: str(v?.name) ?? id, description: str(v?.description) })
  })
  return out
}

export interface NewCard {
  section: string
  text: string
  pijlers?: string[]
  thema?: string
  type?: string
  stap?: string
  source?: string
  /** An indicator of the monitoring plan: the agreement's card and the kind. */
  afspraak?: string
  soort?: string
}

/** Adds a card in one transaction: the map with its fields and its Y.Text together. */
export function addCard(doc: Y.Doc, id: string, card: NewCard): void {
  const cards = doc.getMap('cards')
  let order = 0
  cards.forEach((c) => {
    if (c instanceof Y.Map && c.get('section') === card.section) order = Math.max(order, (num(c.get('order')) ?? 0) + 1)
  })
  const entries: [string, unknown][] = [['section', card.section], ['pijlers', card.pijlers ?? []], ['order', order]]
  for (const key of ['thema', 'type', 'stap', 'source', 'afspraak', 'soort'] as const) {
    const v = card[key]
    if (v) entries.push([key, v])
  }
  doc.transact(() => {
    const map = new Y.Map<unknown>(entries)
    cards.set(id, map)
    map.set('text', new Y.Text(card.text))
  })
}

function cardMap(doc: Y.Doc, id: string): Y.Map<unknown> | null {
  const m = doc.getMap('cards').get(id)
  return m instanceof Y.Map ? (m as Y.Map<unknown>) : null
}

/** The plain card fields a view sets one by one (the labels, and the monitoring plan's). */
export type CardField = 'thema' | 'type' | 'pijlers' | keyof Monitoring

/** Sets (or with `undefined` removes) one plain field of a card. */
export function setCardField(doc: Y.Doc, id: string, key: CardField, value: unknown): void {
  const m = cardMap(doc, id)
  if (!m) return
  m.doc?.transact(() => {
    if (value === undefined) {
      if (m.has(key)) m.delete(key)
    } else {
      m.set(key, value)
    }
  }, OWN_EDIT)
}

export function removeCard(doc: Y.Doc, id: string): void {
  doc.getMap('cards').delete(id)
}

export function cardText(doc: Y.Doc, id: string): string {
  const t = cardMap(doc, id)?.get('text')
  return t instanceof Y.Text ? t.toString() : ''
}

// ---- gap --------------------------------------------------------------------------------------

export function readRows(doc: Y.Doc): Row[] {
  const out: Row[] = []
  doc.getMap('rows').forEach((value, id) => {
    if (!(value instanceof Y.Map)) return
    const m = value as Y.Map<unknown>
    out.push({
      id,
      onderwerp: text(m.get('onderwerp')),
      huidig: text(m.get('huidig')),
      gewenst: text(m.get('gewenst')),
      gap: text(m.get('gap')),
      oplossingen: text(m.get('oplossingen')),
      partijen: strings(m.get('partijen')),
      pijlers: strings(m.get('pijlers')),
      thema: str(m.get('thema')),
      type: str(m.get('type')),
      priority: num(m.get('priority')) ?? 0,
      author: str(m.get('author')),
    })
  })
  out.sort((a, b) => a.priority - b.priority || a.id.localeCompare(b.id))
  return out
}

export function addRow(doc: Y.Doc, id: string): void {
  const rows = doc.getMap('rows')
  let priority = 0
  rows.forEach((r) => {
    if (r instanceof Y.Map) priority = Math.max(priority, (num(r.get('priority')) ?? 0) + 1)
  })
  doc.transact(() => {
    const row = new Y.Map<unknown>([['partijen', []], ['pijlers', []], ['priority', priority]])
    rows.set(id, row)
    for (const f of TEXT_FIELDS) row.set(f, new Y.Text())
  })
}

function rowMap(doc: Y.Doc, id: string): Y.Map<unknown> | null {
  const m = doc.getMap('rows').get(id)
  return m instanceof Y.Map ? (m as Y.Map<unknown>) : null
}

/** Swaps the priorities of two rows (equal priorities are first made distinct). */
export function swapRows(doc: Y.Doc, a: string, b: string): void {
  const ra = rowMap(doc, a)
  const rb = rowMap(doc, b)
  if (!ra || !rb) return
  let pa = num(ra.get('priority')) ?? 0
  let pb = num(rb.get('priority')) ?? 0
  if (pa === pb) pb = pa + (a < b ? 1 : -1)
  ;[pa, pb] = [pb, pa]
  doc.transact(() => {
    ra.set('priority', pa)
    rb.set('priority', pb)
  }, OWN_EDIT)
}

export function setPartijen(doc: Y.Doc, id: string, partijen: string[]): void {
  const m = rowMap(doc, id)
  if (m && JSON.stringify(strings(m.get('partijen'))) !== JSON.stringify(partijen)) doc.transact(() => m.set('partijen', partijen), OWN_EDIT)
}

export function removeRow(doc: Y.Doc, id: string): void {
  doc.getMap('rows').delete(id)
}

// ---- control ----------------------------------------------------------------------------------

const DEFAULT_TIMER: Timer = { status: 'stopped', durationMs: 0, endsAt: null, remainingMs: null, serverNow: 0 }

export function readSession(doc: Y.Doc): Session {
  const s = doc.getMap('session')
  const presentation = (s.get('presentation') ?? {}) as Partial<Session['presentation']>
  const locks = (s.get('locks') ?? {}) as Partial<Session['locks']>
  const timer = (s.get('timer') ?? {}) as Partial<Timer>
  const mode = s.get('authorMode')
  const focus = presentation.focus
  return {
    step: str(s.get('step')) ?? '1',
    phase: str(s.get('phase')) ?? '',
    authorMode: mode === 'name' || mode === 'anonymous' ? mode : 'party',
    privateWriting: s.get('privateWriting') === true,
    draftsIn: typeof s.get('draftsIn') === 'number' ? (s.get('draftsIn') as number) : 0,
    presentation: {
      on: presentation.on === true,
      focus: focus && typeof focus === 'object' ? (focus as Session['presentation']['focus']) : null,
    },
    locks: { board: locks.board === true, docs: strings(locks.docs), sections: strings(locks.sections) },
    timer: { ...DEFAULT_TIMER, ...timer },
  }
}

export function readRounds(doc: Y.Doc): Round[] {
  const out: Round[] = []
  doc.getMap('rounds').forEach((value, id) => {
    const r = (value ?? {}) as Partial<Round>
    out.push({
      id,
      title: str(r.title) ?? '',
      cards: strings(r.cards),
      budget: num(r.budget) ?? 0,
      maxPerCard: num(r.maxPerCard) ?? 0,
      status: r.status === 'open' || r.status === 'closed' || r.status === 'revealed' ? r.status : 'closed',
      voters: num(r.voters) ?? 0,
      totals: r.totals && typeof r.totals === 'object' ? r.totals : null,
    })
  })
  return out
}
