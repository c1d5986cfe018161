// Plain data shapes shared by the wiring layer and the views: the template and board as the
// server serves them, the session as mirrored into `control`, and the view models the views draw.
// Nothing here imports Yjs; views see shared text only through the opaque `SharedText` handle.

import type { Translation } from './localize'

export type Role = 'facilitator' | 'employer' | 'union' | 'employee' | 'observer'
export type Party = 'employer' | 'union' | 'employee'
export const PARTIES: Party[] = ['employer', 'union', 'employee']
export const ROLES: Role[] = ['facilitator', 'employer', 'union', 'employee', 'observer']
export type DocName = 'canvas' | 'gap' | 'control' | 'party-employer' | 'party-union' | 'party-employee'
export type Tab = 'canvas' | 'gap' | 'party' | 'staalkaart' | 'monitoring' | 'history'
export type TypeId = 'curatief' | 'preventief' | 'versterkend'
export const TYPES: TypeId[] = ['curatief', 'preventief', 'versterkend']
export const PIJLERS = ['gezondheid', 'bekwaamheid', 'motivatie'] as const
export const STEPS = ['1', '2', '3A', '3B', '4', '5', '6'] as const

export interface Named { id: string; name: string; description?: string }

export interface Rules {
  add: Role[]
  edit: Role[]
  remove: Role[]
  edit_own_only?: boolean
}

export interface Section extends Rules { id: string; title: string; hint?: string }

export interface Example {
  id: string
  title: string
  description: string
  pijlers: string[]
  thema?: string
  type?: TypeId
}

export interface Template {
  id: string
  title: string
  level: string
  description: string
  pijlers: Named[]
  types: Named[]
  steps: { id: string; title: string }[]
  phases: string[]
  themes: Named[]
  sections: Section[]
  gap: Rules
  staalkaart: Example[]
  /** Texts in other languages (see localize.ts). */
  translations?: Record<string, Translation>
  /** Set by localize(): the themes' names in the user's language, by id (the canvas holds Dutch). */
  themeNames?: Record<string, string>
}

export interface TemplateSummary { id: string; title: string; level: string; description: string }

export interface BoardSummary {
  id: string
  title: string
  template: string
  created_at?: number
  you?: { role: Role; display: string }
}

export interface Timer {
  status: 'stopped' | 'running' | 'paused'
  durationMs: number
  endsAt: number | null
  remainingMs: number | null
  serverNow: number
}

/** Presentation focus as this client sends it; other shapes from other clients are tolerated. */
/** What the room screen shows: a document, a section, a card or a gap row in the spotlight, or the
 * whole canvas as a poster. */
export interface Focus { doc?: string; section?: string; card?: string; row?: string; poster?: boolean }

export interface Session {
  step: string
  phase: string
  authorMode: 'name' | 'party' | 'anonymous'
  privateWriting: boolean
  /** How many private drafts are handed in (a number only; the server keeps whose). */
  draftsIn: number
  presentation: { on: boolean; focus: Focus | null }
  locks: { board: boolean; docs: string[]; sections: string[] }
  timer: Timer
}

export interface Round {
  id: string
  title: string
  cards: string[]
  budget: number
  maxPerCard: number
  status: 'open' | 'closed' | 'revealed'
  voters: number
  totals: Record<string, number> | null
}

export interface Ballot {
  round: string
  status: string
  budget: number
  maxPerCard: number
  /** Your dots by item, `canvas/<card id>` or `gap/<row id>`. */
  votes: Record<string, number>
  left: number
}

export interface Draft {
  id: string
  section: string
  text: string
  pijlers?: string[]
  thema?: string | null
  type?: string | null
}

/** An invite as the facilitator's list shows it (GET /api/boards/{id}/invites). */
export interface InviteInfo {
  id: string
  role: Role
  created_at: number
  expires_at: number
  expired: boolean
  seats: number | null
  joined: number
  revoked: boolean
}

/** A participant as the facilitator's list shows it (GET /api/boards/{id}/participants). */
export interface ParticipantInfo {
  id: string
  role: Role
  display: string
  online: boolean
  removed: boolean
  invite: string | null
}

export interface AuditEntry {
  at: number
  sub: string
  name: string
  role: string
  action: string
  detail: unknown
}

/** A live text the view can bind a textarea to, without knowing how it is shared. */
export interface SharedText {
  bind(el: HTMLTextAreaElement): () => void
}

export interface Card {
  id: string
  section: string
  text: SharedText | null
  /** The text as it is now, for labels (merge targets); the card itself binds `text`. */
  plain: string
  pijlers: string[]
  thema?: string
  type?: string
  source?: string
  order: number
  author?: string
  createdAt?: number
  hidden: boolean
  votes?: number
  mergedInto?: string
  /** The monitoring plan (step 6), on an indicator card of the `monitoring` section (and
   * `status` also on an agreement's card): see docs/schema.md. */
  monitoring: Monitoring
}

/** An indicator's (or an agreement's) monitoring fields; absent ones are not set. */
export interface Monitoring {
  afspraak?: string
  soort?: string
  nulmeting?: string
  streefwaarde?: string
  meetmomenten: string[]
  verzamelt?: string
  rapporteert?: string
  /** How the results feed back (into the working group, the cao table, the next round). */
  terugkoppeling?: string
  status?: string
  metingen: Measurement[]
}

export interface Measurement {
  moment: string
  waarde: string
}

export const SOORTEN = ['kwantitatief', 'kwalitatief'] as const
export const STATUSES = ['gepland', 'loopt', 'op-koers', 'achter', 'behaald', 'gestopt'] as const
/** The monitoring fields a card may hold that are one text each. */
export const MONITORING_TEXTS = ['nulmeting', 'streefwaarde', 'verzamelt', 'rapporteert'] as const

/** A hidden or merged card or row: in no document, held on the server for the facilitator
 * (`GET /api/boards/{id}/hidden`). */
export interface HiddenItem {
  doc: 'canvas' | 'gap'
  id: string
  /** Plain fields as they were (`section`, `pijlers`, …). */
  fields: Record<string, unknown>
  /** Text fields as strings (`text`; a row's `onderwerp`, `huidig`, …). */
  texts: Record<string, string>
  author?: string | null
  votes?: number | null
  mergedInto?: string | null
  hiddenAt: number
}

export interface Row {
  id: string
  onderwerp: SharedText | null
  huidig: SharedText | null
  gewenst: SharedText | null
  gap: SharedText | null
  oplossingen: SharedText | null
  partijen: string[]
  pijlers: string[]
  thema?: string
  type?: string
  priority: number
  author?: string
}

/** One other person online, from awareness. */
export interface Person {
  key: string
  name: string
  role?: string
  color: string
  hand: boolean
  /** Marked themselves ready (the facilitator's ready check). */
  ready: boolean
  editing: string | null
}

export type ConnectionState = 'connecting' | 'connected' | 'offline' | 'closed' | 'removed'

/** A text a reload after a refused edit did not keep (see unsaved.ts). */
export interface UnsavedText {
  /** A card (`cards`, canvas and party workspaces) or a gap row (`rows`). */
  kind: 'card' | 'row'
  id: string
  /** `text` for a card; a row's text field, or its `partijen` (shown comma separated). */
  field: string
  /** A card's section. */
  section?: string
  /** The text as this page had it. */
  text: string
  /** The card or row is not on the server (new here, or removed there). */
  gone: boolean
}

/** The texts one reload after a refusal did not keep, with the server's reasons. */
export interface UnsavedGroup {
  /** Stable for this reload (also across page loads), for `dismiss`. */
  key: string
  doc: DocName
  /** The reasons the server gave (`code: reason`), in order, without repeats. */
  reasons: string[]
  items: UnsavedText[]
  at: number
}
