// The server's refusals: `permission-denied` (y-protocols auth message) carries the reason
// `<code>: <short English reason>`, with a stable kebab-case code (docs/schema.md). This module
// reads the code and gives its explanation in the current language; a reason without a code this
// client knows (an older or newer server) is shown as a generic refusal plus the raw reason.

import { t, type Key } from './i18n'

export const REFUSAL_CODES = [
  'read-only',
  'board-locked',
  'doc-locked',
  'section-locked',
  'private-writing',
  'role-not-allowed',
  'not-your-item',
  'server-field',
  'invalid-value',
  'unknown-field',
  'unknown-root',
  'schema-violation',
  'too-deep',
  'update-too-large',
  'document-too-large',
  'foreign-client-id',
  'missing-dependencies',
  'control-managed',
] as const

export type RefusalCode = (typeof REFUSAL_CODES)[number]

const KNOWN = new Set<string>(REFUSAL_CODES)

export interface Refusal {
  /** The recognised code, or null when the reason has none this client knows. */
  code: RefusalCode | null
  /** The reason as the server sent it, whole. */
  raw: string
  /** The English reason after the code (the whole reason when there is no known code). */
  detail: string
}

/** Splits `code: reason`; only a code from REFUSAL_CODES counts as one. */
export function parseRefusal(reason: string): Refusal {
  const raw = reason.trim()
  const m = /^([a-z][a-z0-9]*(?:-[a-z0-9]+)*)\s*:\s*([\s\S]*)$/.exec(raw)
  if (m && KNOWN.has(m[1])) return { code: m[1] as RefusalCode, raw, detail: m[2].trim() }
  return { code: null, raw, detail: raw }
}

/** What the refusal means for the user, in the current language. */
export function explain(r: Refusal): string {
  return r.code ? t(`refusal.${r.code}` as Key) : t('refusal.unknown')
}

/** One line for the notice: the explanation, or for an unknown code the server's own reason. */
export function noticeText(r: Refusal): string {
  return r.code ? explain(r) : r.raw || t('refusal.unknown')
}
