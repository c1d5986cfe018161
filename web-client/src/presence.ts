// Presence over the canvas document's awareness: this user's state ({user: {name, role, color},
// editing, hand, ready}) and the list of the others online. The server rewrites employees' states to
// their pseudonym, so names are shown exactly as they arrive.

import type { DocConnection } from './sync'
import type { Person, Role } from './types'

interface LocalState {
  user: { name: string; role: Role; color: string }
  editing: string | null
  hand: boolean
  /** The ready check: this participant says they are done with the current task. */
  ready: boolean
}

export class Presence {
  private state: LocalState
  private detach: (() => void) | null = null

  constructor(
    private conn: DocConnection,
    name: string,
    role: Role,
    color: string,
    private onChange: () => void,
  ) {
    this.state = { user: { name, role, color }, editing: null, hand: false, ready: false }
    this.attach()
  }

  /** (Re)attaches to the connection's current awareness, e.g. after a resync. */
  attach(): void {
    this.detach?.()
    const awareness = this.conn.provider.awareness
    awareness.setLocalState(this.state)
    const handler = (): void => this.onChange()
    awareness.on('change', handler)
    this.detach = () => awareness.off('change', handler)
    this.onChange()
  }

  private publish(): void {
    this.conn.provider.awareness.setLocalState({ ...this.state })
  }

  setEditing(id: string | null): void {
    if (this.state.editing === id) return
    this.state.editing = id
    this.publish()
  }

  /** Clears `editing` if it still names this item. */
  clearEditing(id: string): void {
    if (this.state.editing === id) this.setEditing(null)
  }

  get hand(): boolean {
    return this.state.hand
  }

  setHand(hand: boolean): void {
    this.state.hand = hand
    this.publish()
  }

  get ready(): boolean {
    return this.state.ready
  }

  setReady(ready: boolean): void {
    if (this.state.ready === ready) return
    this.state.ready = ready
    this.publish()
  }

  /** Everyone else online, one entry per person (two tabs of one device show once). */
  others(): Person[] {
    const awareness = this.conn.provider.awareness
    const me = this.state.user
    const byKey = new Map<string, Person>()
    awareness.getStates().forEach((raw, clientId) => {
      if (clientId === awareness.clientID) return
      const s = raw as Partial<LocalState>
      const name = typeof s.user?.name === 'string' ? s.user.name : ''
      if (!name) return
      const color = typeof s.user?.color === 'string' ? s.user.color : '#555555'
      const role = typeof s.user?.role === 'string' ? s.user.role : undefined
      if (name === me.name && color === me.color && role === me.role) return
      const key = `${role ?? ''}|${name}|${color}`
      const prev = byKey.get(key)
      byKey.set(key, {
        key,
        name,
        role,
        color,
        hand: s.hand === true || (prev?.hand ?? false),
        ready: s.ready === true || (prev?.ready ?? false),
        editing: typeof s.editing === 'string' ? s.editing : prev?.editing ?? null,
      })
    })
    return [...byKey.values()].sort((a, b) => a.name.localeCompare(b.name))
  }
}
