// Who this browser is: the token for a board (read once from the URL fragment, then kept in
// localStorage as `tafel:token:{board}`, the facilitator's all-boards token as `tafel:token:*`),
// the chosen name (`tafel:name`), this device's presence colour, and the ids of cards this device
// created (the server's `owner` tag is opaque, so "is this mine?" is remembered here).

import type { Role } from './types'

export interface Claims {
  sub: string
  name: string
  role: Role
  board: string
  exp: number
  /** Set on invite tokens only (the invite's id): such a token only joins. */
  inv?: string
}

const ALL = '*'

function get(key: string): string | null {
  try {
    return localStorage.getItem(key)
  } catch {
    return null
  }
}

function set(key: string, value: string): void {
  try {
    localStorage.setItem(key, value)
  } catch {
    // storage unavailable: the value lasts for this page only
  }
}

/** The payload of a JWT, unverified (the server verifies; this only reads role, board, name). */
export function decodeToken(token: string): Claims | null {
  const part = token.split('.')[1]
  if (!part) return null
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=')
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as Partial<Claims>
    if (typeof claims.role !== 'string' || typeof claims.board !== 'string') return null
    return {
      sub: String(claims.sub ?? ''),
      name: String(claims.name ?? ''),
      role: claims.role,
      board: claims.board,
      exp: Number(claims.exp ?? 0),
      ...(typeof claims.inv === 'string' ? { inv: claims.inv } : {}),
    }
  } catch {
    return null
  }
}

export function isExpired(claims: Claims): boolean {
  return claims.exp > 0 && claims.exp * 1000 < Date.now()
}

/** How long after its expiry the server still renews a kept personal token (POST /join). */
export const REJOIN_GRACE_SECS = 7 * 86400

/** A kept personal token that may still be used, directly or renewed through POST /join. */
export function usable(claims: Claims): boolean {
  return !claims.inv && (claims.exp <= 0 || claims.exp + REJOIN_GRACE_SECS > Date.now() / 1000 + 60)
}

/** Reads `#token=…` from the address and removes it from the address bar. */
export function takeFragmentToken(): string | null {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash)
  if (!match) return null
  const url = new URL(location.href)
  url.hash = ''
  history.replaceState(null, '', url.pathname + url.search)
  return decodeURIComponent(match[1])
}

export function keptToken(board: string): string | null {
  return get(`tafel:token:${board}`)
}

export function keepToken(board: string, token: string): void {
  set(`tafel:token:${board}`, token)
}

export function facilitatorToken(): string | null {
  return get(`tafel:token:${ALL}`)
}

export function keepFacilitatorToken(token: string): void {
  set(`tafel:token:${ALL}`, token)
}

export function forgetToken(board: string): void {
  try {
    localStorage.removeItem(`tafel:token:${board}`)
  } catch {
    // nothing kept
  }
}

export function savedName(): string {
  return get('tafel:name') ?? ''
}

export function saveName(name: string): void {
  set('tafel:name', name)
}

/** A stable colour per device, so one person in two tabs shows once. */
export function myColor(): string {
  const kept = get('tafel:color')
  if (kept && /^#[0-9a-f]{6}$/.test(kept)) return kept
  // The same list as the server's `anonymity::PALETTE`: an employee's colour outside it is dropped.
  const palette = ['#b3261e', '#1a5fb4', '#26734d', '#8a3ffc', '#b35c00', '#00707a', '#a2195b', '#5c5c00']
  const color = palette[Math.floor(Math.random() * palette.length)]
  set('tafel:color', color)
  return color
}

export function mine(board: string): Set<string> {
  try {
    const ids = JSON.parse(get(`tafel:mine:${board}`) ?? '[]') as unknown
    return new Set(Array.isArray(ids) ? ids.map(String) : [])
  } catch {
    return new Set()
  }
}

export function rememberMine(board: string, id: string): void {
  const ids = mine(board)
  ids.add(id)
  set(`tafel:mine:${board}`, JSON.stringify([...ids]))
}

/** A random id like the server's own: a prefix and 10 letters/digits. */
export function newId(prefix: string): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  const bytes = crypto.getRandomValues(new Uint8Array(10))
  return prefix + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('')
}
