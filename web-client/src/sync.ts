// One shared document of a board: its Y.Doc, the y-websocket provider to `/ws/{board}/{doc}` and
// the y-indexeddb copy (`tafel:{board}:{doc}`) that keeps edits made while offline. It reports a
// named connection state and, when the server refuses an update (`permission-denied`, y-protocols
// auth message), tells the user why and reloads the document from the server into a fresh Y.Doc
// with a cleared offline copy, so the refused edit disappears from the board — but first it keeps
// a copy of the document as this page had it, and once the reload has synced it reports the texts
// the server does not hold (`unsaved`), so nothing typed vanishes unseen. Only the wiring layer
// uses this.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { IndexeddbPersistence } from 'y-indexeddb'
import * as authProtocol from 'y-protocols/auth'
import * as syncProtocol from 'y-protocols/sync'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { fromBase64, toBase64 } from 'lib0/buffer'
import { hasTexts, unsavedTexts } from './unsaved'
import type { ConnectionState, DocName, UnsavedGroup, UnsavedText } from './types'

/**
 * The connection states, as shown in `connection-status`:
 * - `connecting`: the first connection has not been made yet;
 * - `connected`: the socket is open; edits go to the server;
 * - `offline`: the socket was lost (or the browser is offline); edits stay in the Y.Doc and in
 *   IndexedDB and are sent in the sync on reconnect, which y-websocket retries with backoff;
 * - `closed`: the server ended the connection for good (a 44xx close code such as 4401, token
 *   expired); y-websocket does not retry;
 * - `removed`: the facilitator removed this participant (close code 4403); final too.
 */
export type { ConnectionState }

export interface DocEvents {
  /** The state changed (see ConnectionState). */
  state(state: ConnectionState): void
  /** The server refused an update; the document is being reloaded. */
  denied(reason: string): void
  /** A fresh Y.Doc replaced the old one (after a refusal): re-read and re-observe it. */
  replaced(doc: Y.Doc): void
  /** What a reload after a refusal did not keep (an empty `items`: nothing any more; drop it). */
  unsaved(group: UnsavedGroup): void
}

/** A copy of a document taken before a reload, until it is compared and dismissed. */
interface Pending {
  key: string
  reasons: string[]
  at: number
  copy: Uint8Array
}

/** How many reloads' copies are kept per document (the oldest go first). */
const MAX_PENDING = 20

/** Jitter: the provider backs off 100 ms · 2^n up to `maxBackoffTime`; randomising that cap per
 * client and again after each close (2.5–4 s) spreads the reconnects of a whole room after a
 * server restart instead of having everyone retry in the same instant. */
function jitteredCap(): number {
  return 2500 + Math.floor(Math.random() * 1500)
}

/** A Yjs v1 update with no structs and no deletions. */
const EMPTY_UPDATE = new Uint8Array([0, 0])

export class DocConnection {
  doc!: Y.Doc
  provider!: WebsocketProvider
  private persistence!: IndexeddbPersistence
  state: ConnectionState = 'connecting'
  private resyncing = false
  /** Edits made on this page (not loaded from the server or the offline copy). */
  private localEdits = 0
  /** A refusal was let pass because this page had made no edit (see `refused`). */
  private heldBack = false
  private destroyed = false
  /** The reasons of the refusals that lead to the coming resync. */
  private reasons: string[] = []
  /** Copies taken before reloads, compared with the server after each sync (see unsaved.ts). */
  private pending: Pending[] = []
  /** Keys of copies this page forgot (dismissed, or nothing missing any more). */
  private forgotten = new Set<string>()
  private browserOffline = typeof navigator !== 'undefined' && navigator.onLine === false

  constructor(
    readonly board: string,
    readonly name: DocName,
    private token: string,
    private events: Partial<DocEvents>,
    /** This role may only read the document (control for participants; all for observers). */
    private readOnly = false,
  ) {
    this.pending = this.loadPending()
    this.open()
    window.addEventListener('offline', this.onOffline)
    window.addEventListener('online', this.onOnline)
  }

  get dbName(): string {
    return `tafel:${this.board}:${this.name}`
  }

  private open(): void {
    const doc = new Y.Doc()
    this.doc = doc
    this.persistence = new IndexeddbPersistence(this.dbName, doc)
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const provider = new WebsocketProvider(`${proto}//${location.host}/ws/${this.board}`, this.name, doc, {
      params: { token: this.token },
      maxBackoffTime: jitteredCap(),
      // No BroadcastChannel between tabs: every edit goes through the server, which judges it;
      // a tab of another role must never receive an edit the server has refused.
      disableBc: true,
      // Connect once the offline copy is loaded: loaded while connected, the provider would
      // echo all of it to the server as a new update; loaded first, the sync sends only the diff.
      connect: false,
    })
    this.provider = provider
    const loaded = new Promise((resolve) => setTimeout(resolve, 1500))
    void Promise.race([this.persistence.whenSynced, loaded]).then(() => {
      if (provider === this.provider && !this.browserOffline && !this.destroyed) provider.connect()
    })
    this.localEdits = 0
    const persistence = this.persistence
    doc.on('update', (_update: Uint8Array, origin: unknown) => {
      if (origin !== provider && origin !== persistence) this.localEdits++
    })
    // Documents other than the canvas carry no presence; the canvas's awareness is set by the
    // presence wiring.
    if (this.name !== 'canvas') provider.awareness.setLocalState(null)
    provider.messageHandlers[2] = (_encoder, decoder) => {
      authProtocol.readAuthMessage(decoder, doc, (_doc, reason) => this.refused(reason))
    }
    if (this.readOnly) {
      // A reader sends nothing: not the sync answer (see readerSync), and not the updates the
      // provider would otherwise echo to the server, such as the offline copy being loaded.
      provider.messageHandlers[0] = readerSync
      doc.off('update', provider._updateHandler)
    }
    provider.on('sync', (isSynced: boolean) => {
      if (isSynced && provider === this.provider && !this.destroyed) this.comparePending()
    })
    provider.on('status', ({ status }) => {
      if (provider !== this.provider) return
      if (status === 'connected') this.setState('connected')
      else if (status === 'disconnected') {
        forgetRemoteClocks(provider)
        this.setState('offline')
      }
      else if (status === 'connecting' && this.state !== 'offline') this.setState('connecting')
    })
    provider.on('connection-close', () => {
      if (provider !== this.provider) return
      provider.maxBackoffTime = jitteredCap()
      if (this.state === 'connecting') this.setState('offline')
    })
    provider.on('connection-error', () => {
      if (provider === this.provider && this.state === 'connecting') this.setState('offline')
    })
    provider.on('closed', (event) => {
      // 4403: the facilitator removed this participant; final, like every 44xx close.
      if (provider === this.provider) this.setState(event?.code === 4403 ? 'removed' : 'closed')
    })
    if (this.browserOffline) this.setState('offline')
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return
    this.state = state
    this.events.state?.(state)
  }

  /** Whether the first sync with the server is done (so an incoming change is live). */
  get synced(): boolean {
    return this.provider.synced
  }

  private refused(reason: string): void {
    if (this.localEdits === 0) {
      // This page changed nothing: what was refused is only what the client re-sends on every
      // (re)connect — its delete set and the offline copy — which the server refuses during a
      // lock or presentation even though it changes nothing. Nothing to undo on screen; send it
      // again once the lock is lifted (`retry`), in case the offline copy held unsent edits.
      this.heldBack = true
      return
    }
    this.events.denied?.(reason)
    if (!this.reasons.includes(reason)) this.reasons.push(reason)
    if (this.resyncing || this.destroyed) return
    this.resyncing = true
    // Let the remaining messages of this batch arrive first, then start over in one go.
    setTimeout(() => void this.resync(), 50)
  }

  /** Drops the Y.Doc and its offline copy and loads the document afresh from the server; keeps a
   * copy of what the page had first, to show what the server did not take once the reload synced. */
  private async resync(): Promise<void> {
    const old = { provider: this.provider, doc: this.doc, persistence: this.persistence }
    old.provider.destroy()
    const reasons = this.reasons
    this.reasons = []
    // The copy is taken before the offline copy goes and again right before the doc goes, so
    // what is typed meanwhile (the textarea is still bound to the old doc) is in it too.
    let kept: Pending | null = null
    const keep = (): void => {
      if (!kept && !hasTexts(old.doc)) return
      const copy = Y.encodeStateAsUpdate(old.doc)
      if (kept) kept.copy = copy
      else {
        const at = Date.now()
        kept = { key: `${this.name}:${at}:${Math.random().toString(36).slice(2, 8)}`, reasons, at, copy }
        this.pending.push(kept)
        while (this.pending.length > MAX_PENDING) this.pending.shift()
      }
      this.savePending()
    }
    keep()
    try {
      await old.persistence.clearData()
    } catch {
      // IndexedDB unavailable: nothing to clear
    }
    keep()
    old.doc.destroy()
    this.resyncing = false
    if (this.destroyed) return
    this.state = 'connecting'
    this.open()
    this.events.replaced?.(this.doc)
  }

  /** Compares every kept copy with the synced document: reports what is still missing, forgets a
   * copy of which nothing is. */
  private comparePending(): void {
    if (!this.pending.length) return
    const keep: Pending[] = []
    for (const p of this.pending) {
      let items: UnsavedText[]
      try {
        items = unsavedTexts(p.copy, this.doc)
      } catch (e) {
        // A copy that no longer reads (should not happen): keep it rather than lose it.
        console.warn('tafel: cannot compare a kept copy', e)
        keep.push(p)
        continue
      }
      if (items.length) keep.push(p)
      else this.forgotten.add(p.key)
      this.events.unsaved?.({ key: p.key, doc: this.name, reasons: p.reasons, items, at: p.at })
    }
    if (keep.length !== this.pending.length) {
      this.pending = keep
      this.savePending()
    }
  }

  /** The user has seen (and copied) what a reload did not keep: forget the copy. */
  dismiss(key: string): void {
    this.forgotten.add(key)
    this.pending = this.pending.filter((p) => p.key !== key)
    this.savePending()
  }

  private get pendingKey(): string {
    return `tafel:unsaved:${this.board}:${this.name}`
  }

  /** Copies kept by an earlier page (closed before the user dismissed what it showed). */
  private loadPending(): Pending[] {
    try {
      const raw = localStorage.getItem(this.pendingKey)
      if (!raw) return []
      const list = JSON.parse(raw) as { key: string; reasons: string[]; at: number; copy: string }[]
      return list.map((p) => ({ key: p.key, reasons: p.reasons, at: p.at, copy: fromBase64(p.copy) }))
    } catch {
      return []
    }
  }

  /** Keeps the copies in localStorage too, so a page closed before the reload synced (or before
   * the user read the panel) shows them next time. Copies another tab of the same board stored
   * meanwhile are kept. Best effort: the copies in memory stay. */
  private savePending(): void {
    try {
      const mine = new Set(this.pending.map((p) => p.key))
      const others = this.loadPending().filter((p) => !mine.has(p.key) && !this.forgotten.has(p.key))
      const all = [...others, ...this.pending].sort((a, b) => a.at - b.at).slice(-MAX_PENDING)
      if (!all.length) localStorage.removeItem(this.pendingKey)
      else {
        localStorage.setItem(this.pendingKey, JSON.stringify(all.map((p) => ({
          key: p.key, reasons: p.reasons, at: p.at, copy: toBase64(p.copy),
        }))))
      }
    } catch {
      // storage full or unavailable: the copies in memory are shown on this page
    }
  }

  /** Reconnects (so the sync is sent again) if a refusal was held back; call when unlocked. */
  retry(): void {
    if (!this.heldBack || this.destroyed) return
    this.heldBack = false
    this.provider.disconnect()
    this.provider.connect()
  }

  private onOffline = (): void => {
    this.browserOffline = true
    this.provider.disconnect()
    this.setState('offline')
  }

  private onOnline = (): void => {
    this.browserOffline = false
    this.provider.connect()
  }

  destroy(): void {
    this.destroyed = true
    window.removeEventListener('offline', this.onOffline)
    window.removeEventListener('online', this.onOnline)
    this.provider.destroy()
    this.persistence.destroy()
    this.doc.destroy()
  }
}

/**
 * The sync handler of a read-only document. The stock handler answers the server's sync step 1
 * with everything the server lacks, and that always includes the document's whole delete set:
 * after any change to `control` that is non-empty, and the server refuses a reader's non-empty
 * sync step 2 ("read-only: this role may not change this document") on every reconnect or
 * reload with an offline copy. A reader has nothing to contribute, so it answers with an empty
 * update and applies what the server sends as usual.
 */
const readerSync: WebsocketProvider['messageHandlers'][number] = (encoder, decoder, provider, emitSynced) => {
  encoding.writeVarUint(encoder, 0)
  const type = decoding.readVarUint(decoder)
  if (type === syncProtocol.messageYjsSyncStep1) {
    decoding.readVarUint8Array(decoder)
    encoding.writeVarUint(encoder, syncProtocol.messageYjsSyncStep2)
    encoding.writeVarUint8Array(encoder, EMPTY_UPDATE)
  } else if (type === syncProtocol.messageYjsSyncStep2) {
    syncProtocol.readSyncStep2(decoder, provider.doc, provider)
    if (emitSynced && !provider.synced) provider.synced = true
  } else if (type === syncProtocol.messageYjsUpdate) {
    syncProtocol.readUpdate(decoder, provider.doc, provider)
  }
}

/**
 * y-websocket drops the others' presence when the socket closes but keeps their awareness
 * clocks, so the server's replay of the same states after a reconnect would be ignored until
 * each person next changes theirs. Forgetting the clocks lets the replay through.
 */
function forgetRemoteClocks(provider: WebsocketProvider): void {
  const awareness = provider.awareness
  for (const id of [...awareness.meta.keys()]) {
    if (id !== awareness.clientID) awareness.meta.delete(id)
  }
}

/** The worst state of several documents, for the one status shown. */
export function combinedState(states: ConnectionState[]): ConnectionState {
  for (const s of ['removed', 'closed', 'offline', 'connecting'] as const) {
    if (states.includes(s)) return s
  }
  return 'connected'
}
