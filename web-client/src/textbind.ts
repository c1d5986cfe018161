// Binds a <textarea> to a Y.Text, live in both directions. A local `input` is turned into the
// minimal change (common prefix and suffix kept, the middle deleted and inserted) so concurrent
// typists merge; a remote change rewrites the value and moves the caret through the change's
// delta so it stays where the user was typing. Views get the binding as an opaque `SharedText`.

import { OWN_EDIT } from './undo'
import * as Y from 'yjs'
import type { SharedText } from './types'

const handles = new WeakMap<Y.Text, SharedText>()

/** The one handle of a Y.Text (stable, so a view can tell whether its text was replaced). */
export function sharedText(text: Y.Text): SharedText {
  let handle = handles.get(text)
  if (!handle) {
    handle = { bind: (el) => bind(el, text) }
    handles.set(text, handle)
  }
  return handle
}

/** The smallest edit that turns `before` into `after`: position, characters removed, inserted. */
export function diff(before: string, after: string): { index: number; remove: number; insert: string } {
  let start = 0
  const max = Math.min(before.length, after.length)
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++
  let end = 0
  while (
    end < max - start &&
    before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)
  ) end++
  return { index: start, remove: before.length - start - end, insert: after.slice(start, after.length - end) }
}

/** Where a caret at `pos` ends up after the change `delta`. */
function transform(pos: number, delta: { retain?: number; insert?: unknown; delete?: number }[]): number {
  let index = 0
  let result = pos
  for (const op of delta) {
    if (op.retain !== undefined) {
      index += op.retain
    } else if (op.insert !== undefined) {
      const len = typeof op.insert === 'string' ? op.insert.length : 1
      if (index < pos) result += len
      index += len
    } else if (op.delete !== undefined) {
      if (index < pos) result -= Math.min(op.delete, pos - index)
    }
    if (index > pos) break
  }
  return Math.max(0, result)
}

function bind(el: HTMLTextAreaElement, text: Y.Text): () => void {
  el.value = text.toString()
  const onInput = (): void => {
    const doc = text.doc
    if (!doc) return
    const { index, remove, insert } = diff(text.toString(), el.value)
    if (remove === 0 && insert === '') return
    doc.transact(() => {
      if (remove > 0) text.delete(index, remove)
      if (insert) text.insert(index, insert)
    }, OWN_EDIT)
  }
  const onChange = (event: Y.YTextEvent): void => {
    const value = text.toString()
    if (el.value === value) return
    const focused = document.activeElement === el
    const start = transform(el.selectionStart, event.delta)
    const end = transform(el.selectionEnd, event.delta)
    el.value = value
    if (focused) el.setSelectionRange(start, end)
  }
  el.addEventListener('input', onInput)
  text.observe(onChange)
  return () => {
    el.removeEventListener('input', onInput)
    text.unobserve(onChange)
  }
}
