// Undo of the user's own last edits: one Y.UndoManager per document (canvas cards, gap rows),
// tracking only transactions with the origin OWN_EDIT — the texts this user typed, the labels,
// partijen and row order they set. Others' edits (origin: the provider) are never undone. A
// deletion of one's own canvas card or gap row is undone through the server (`restore`):
// re-creating it here would write the server's own fields (owner, author, createdAt), which the
// server refuses from a participant, so the server kept the item when it accepted the deletion
// and writes it back under the same id. Deletions (asked for confirmation) sit in the same order as the edits: undo
// takes back whichever came last.

import * as Y from 'yjs'

/** The origin of an edit the user may undo. */
export const OWN_EDIT = { ownEdit: true }

/** A deletion to undo (item `id` of root `root`: `cards` or `rows`), and how many edit steps
 * were on the stack when it happened. */
interface Deletion { root: string; id: string; depth: number }

export class Undo {
  private managers = new WeakMap<Y.Doc, Y.UndoManager>()
  private deletions = new WeakMap<Y.Doc, Deletion[]>()

  constructor (private changed: () => void, private restore: (root: string, id: string) => Promise<void>) {}

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

  private pending (doc: Y.Doc): Deletion[] {
    let list = this.deletions.get(doc)
    if (!list) {
      list = []
      this.deletions.set(doc, list)
    }
    return list
  }

  /** Starts tracking a document (call again after it was replaced: a new Y.Doc, a new stack). */
  watch (doc: Y.Doc, root: string): void {
    this.manager(doc, root)
  }

  /** The user deleted their item `id` (the server keeps it for them to restore). */
  deleted (doc: Y.Doc, root: string, id: string): void {
    const m = this.manager(doc, root)
    // Edits after the deletion start a new step, never merge into one from before it.
    m.stopCapturing()
    this.pending(doc).push({ root, id, depth: m.undoStack.length })
    this.changed()
  }

  canUndo (doc: Y.Doc, root: string): boolean {
    return this.manager(doc, root).undoStack.length > 0 || this.pending(doc).length > 0
  }

  undo (doc: Y.Doc, root: string): void {
    const m = this.manager(doc, root)
    const list = this.pending(doc)
    const last = list[list.length - 1]
    if (last && m.undoStack.length <= last.depth) {
      list.pop()
      this.changed()
      void this.restore(last.root, last.id)
      return
    }
    m.undo()
  }
}
