// HTTP calls to the Tafel server, each with `Authorization: Bearer <token>`. Errors come back as
// `ApiError` with the server's code and message (`{"error","message"}`).

import type {
  AuditEntry, Ballot, BoardSummary, Draft, HiddenItem, InviteInfo, ParticipantInfo, Role, Template, TemplateSummary,
} from './types'

/** A snapshot as `GET /api/boards/{id}/snapshots` lists it. */
export interface SnapshotEntry {
  id: string
  name: string
  at: number
  auto: boolean
  step: string
  bytes: number
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

export class Api {
  constructor(private token: string) {}

  setToken(token: string): void {
    this.token = token
  }

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` }
    if (body !== undefined) headers['content-type'] = 'application/json'
    let res: Response
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    } catch (e) {
      throw new ApiError(0, 'network', e instanceof Error ? e.message : String(e))
    }
    if (!res.ok) {
      let code = 'error'
      let message = res.statusText
      try {
        const err = (await res.json()) as { error?: string; message?: string }
        code = err.error ?? code
        message = err.message ?? message
      } catch {
        // not JSON
      }
      throw new ApiError(res.status, code, message)
    }
    return res
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body)
    return (await res.json()) as T
  }

  templates(): Promise<TemplateSummary[]> {
    return this.json('GET', '/api/templates')
  }

  template(id: string): Promise<Template> {
    return this.json('GET', `/api/templates/${encodeURIComponent(id)}`)
  }

  boards(): Promise<BoardSummary[]> {
    return this.json('GET', '/api/boards')
  }

  createBoard(title: string, template: string): Promise<BoardSummary> {
    return this.json('POST', '/api/boards', { title, template })
  }

  board(id: string): Promise<BoardSummary> {
    return this.json('GET', `/api/boards/${id}`)
  }

  /** The ids of the caller's own canvas cards and gap rows, as the server knows them. */
  mine(board: string): Promise<{ canvas: string[]; gap: string[] }> {
    return this.json('GET', `/api/boards/${board}/mine`)
  }

  /** The facilitator's own name: the same all-boards token under that name. */
  signin(name: string): Promise<{ token: string; name: string }> {
    return this.json('POST', '/api/signin', { name })
  }

  join(board: string, name: string): Promise<{ token: string; display: string }> {
    return this.json('POST', `/api/boards/${board}/join`, { name })
  }

  invite(board: string, role: Role, ttl = '8h', seats?: number): Promise<{ token: string; url: string; id: string }> {
    return this.json('POST', `/api/boards/${board}/invites`, seats ? { role, ttl, seats } : { role, ttl })
  }

  invites(board: string): Promise<InviteInfo[]> {
    return this.json('GET', `/api/boards/${board}/invites`)
  }

  revokeInvite(board: string, id: string): Promise<InviteInfo> {
    return this.json('DELETE', `/api/boards/${board}/invites/${encodeURIComponent(id)}`)
  }

  participants(board: string): Promise<ParticipantInfo[]> {
    return this.json('GET', `/api/boards/${board}/participants`)
  }

  removeParticipant(board: string, id: string): Promise<{ ok: boolean }> {
    return this.json('DELETE', `/api/boards/${board}/participants/${encodeURIComponent(id)}`)
  }

  /** Moves a card to another section; the server checks the rights on both. */
  moveCard(board: string, card: string, to: string): Promise<{ ok: boolean; section: string; moved: boolean }> {
    return this.json('POST', `/api/boards/${board}/cards/${encodeURIComponent(card)}/move`, { to })
  }

  /** Takes back one's own deletion of a card (the server kept it). */
  restoreCard(board: string, card: string): Promise<{ ok: boolean }> {
    return this.json('POST', `/api/boards/${board}/cards/${encodeURIComponent(card)}/restore`)
  }

  /** Takes back one's own deletion of a gap row (the server kept it). */
  restoreRow(board: string, row: string): Promise<{ ok: boolean }> {
    return this.json('POST', `/api/boards/${board}/rows/${encodeURIComponent(row)}/restore`)
  }

  control<T = { ok: boolean }>(board: string, command: Record<string, unknown>): Promise<T> {
    return this.json('POST', `/api/boards/${board}/control`, command)
  }

  audit(board: string): Promise<AuditEntry[]> {
    return this.json('GET', `/api/boards/${board}/audit`)
  }

  /** The hidden and merged cards and rows (facilitator only). */
  hidden(board: string): Promise<HiddenItem[]> {
    return this.json('GET', `/api/boards/${board}/hidden`)
  }

  /** The board's export in `format` (`md`, `html`, `csv`, `csv&table=monitoring`), as a file. */
  async exportFile(board: string, format: string): Promise<Blob> {
    const res = await this.request('GET', `/api/boards/${board}/export?format=${format}`)
    return res.blob()
  }

  snapshots(board: string): Promise<SnapshotEntry[]> {
    return this.json('GET', `/api/boards/${board}/snapshots`)
  }

  takeSnapshot(board: string, name: string): Promise<SnapshotEntry> {
    return this.json('POST', `/api/boards/${board}/snapshots`, { name })
  }

  snapshot(board: string, id: string): Promise<{ snapshot: SnapshotEntry; documents: Record<string, Record<string, Record<string, Record<string, unknown>>>> }> {
    return this.json('GET', `/api/boards/${board}/snapshots/${encodeURIComponent(id)}`)
  }

  compareSnapshot(board: string, id: string): Promise<{ added: number; changed: number; removed: number; changes: { kind: string; text: string }[] }> {
    return this.json('GET', `/api/boards/${board}/snapshots/${encodeURIComponent(id)}/compare`)
  }

  restoreSnapshot(board: string, id: string): Promise<{ ok: boolean; before: string }> {
    return this.json('POST', `/api/boards/${board}/snapshots/${encodeURIComponent(id)}/restore`)
  }

  nextRound(board: string, title: string): Promise<{ id: string; title: string }> {
    return this.json('POST', `/api/boards/${board}/next-round`, { title })
  }

  async auditCsv(board: string): Promise<Blob> {
    const res = await this.request('GET', `/api/boards/${board}/audit?format=csv`)
    return res.blob()
  }

  drafts(board: string): Promise<Draft[]> {
    return this.json('GET', `/api/boards/${board}/drafts`)
  }

  addDraft(board: string, draft: Omit<Draft, 'id'>): Promise<{ id: string; drafts: Draft[] }> {
    return this.json('POST', `/api/boards/${board}/drafts`, draft)
  }

  removeDraft(board: string, id: string): Promise<Draft[]> {
    return this.json('DELETE', `/api/boards/${board}/drafts/${encodeURIComponent(id)}`)
  }

  ballot(board: string, round: string): Promise<Ballot> {
    return this.json('GET', `/api/boards/${board}/rounds/${encodeURIComponent(round)}/ballot`)
  }

  /** One dot on an item of the round: `canvas/<card id>` or `gap/<row id>`. */
  vote(board: string, round: string, item: string): Promise<Ballot> {
    return this.json('POST', `/api/boards/${board}/rounds/${encodeURIComponent(round)}/votes`, { item })
  }

  unvote(board: string, round: string, item: string): Promise<Ballot> {
    return this.json('DELETE', `/api/boards/${board}/rounds/${encodeURIComponent(round)}/votes/${encodeURIComponent(item)}`)
  }
}
