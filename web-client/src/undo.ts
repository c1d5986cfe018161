// Undo of the user's own last edits: one Y.UndoManager per document (canvas cards, gap rows),
// tracking only transactions with the origin OWN_EDIT — the texts this user typed, the labels,
// partijen and row order they set. Others' edits (origin: the provider) are never undone, and
// neither are additions and deletions of whole cards or rows: undoing a deletion would write the
// server's own fields (owner, author, createdAt) again, which the server refuses from a
// participant, so deletions ask for confirmation instead.

import * as Y from 'yjs'

/** The origin of an edit the user may undo. */
export const OWN_EDIT = { ownEdit: true }

export class Undo {
  private managers = new WeakMap<Y.Doc, Y.UndoManager>()

  constructor (private changed: () => void) {}

  private manager (doc: Y.Doc, root: string): Y.UndoManager {
    let m = this.managers.get(doc)
    if (!m) {
      m = new Y.UndoManager(doc.getMap(root), { trackedOrigins: new Set([OWN_EDIT]), captureTimeout: 700 })
      m.on('stack-item-added', this.changed)
      m.on('stack-item-popped', this.changed)
      this.managers.set(doc, m)
    }
    return m
  }

  /** Starts tracking a document (call again after it was replaced: a new Y.Doc, a new stack). */
  watch (doc: Y.Doc, root: string): void {
    this.manager(doc, root)
  }

  canUndo (doc: Y.Doc, root: string): boolean {
    return this.manager(doc, root).undoStack.length > 0
  }

  undo (doc: Y.Doc, root: string): void {
    this.manager(doc, root).undo()
  }
}
