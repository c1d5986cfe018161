// What a page would lose when a refusal makes it reload a document: the texts of cards, notes and
// gap rows in which this page has changes the server does not hold. A copy of the page's document
// (a Yjs update) is taken before it is dropped; once the reloaded document has synced with the
// server, each text of the copy is compared with the server's, item by item:
// - content the copy has under an id the server's state vector does not cover is an insertion the
//   server does not have (typed here and refused, or typed offline and refused on reconnect);
// - content deleted in the copy that the server holds undeleted is a refused deletion;
// and a text counts as unsaved when it has either and its string differs from the server's.
// Someone else's edit that this page had not received yet is neither, so it is never reported.
// A gap row's `partijen` (typed as a comma separated list) counts too, when the page's value was
// written under an id the server does not have and differs from the server's.

import * as Y from 'yjs'
import type { UnsavedText } from './types'

/** The Y.Text fields of a gap row (docs/schema.md). */
export const ROW_TEXT_FIELDS = ['onderwerp', 'huidig', 'gewenst', 'gap', 'oplossingen'] as const

type DeleteSet = ReturnType<typeof Y.createDeleteSetFromStructStore>

interface TextAt {
  kind: 'card' | 'row'
  id: string
  field: string
  section?: string
  text: Y.Text
}

/** Every card text and gap row text of a document. */
function texts(doc: Y.Doc): TextAt[] {
  const out: TextAt[] = []
  doc.getMap('cards').forEach((value, id) => {
    if (!(value instanceof Y.Map)) return
    const text = value.get('text')
    const section = value.get('section')
    if (text instanceof Y.Text) {
      out.push({ kind: 'card', id, field: 'text', section: typeof section === 'string' ? section : undefined, text })
    }
  })
  doc.getMap('rows').forEach((value, id) => {
    if (!(value instanceof Y.Map)) return
    for (const field of ROW_TEXT_FIELDS) {
      const text = value.get(field)
      if (text instanceof Y.Text) out.push({ kind: 'row', id, field, text })
    }
  })
  return out
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

/** Whether a document holds any non-empty card or row text (else there is nothing to keep). */
export function hasTexts(doc: Y.Doc): boolean {
  if (texts(doc).some((t) => t.text.length > 0)) return true
  let partijen = false
  doc.getMap('rows').forEach((row) => {
    if (row instanceof Y.Map && strings(row.get('partijen')).length) partijen = true
  })
  return partijen
}

/** The text at the same place in another document, or null when the card or row is not there. */
function textIn(doc: Y.Doc, at: TextAt): Y.Text | null | undefined {
  const parent = doc.getMap(at.kind === 'card' ? 'cards' : 'rows').get(at.id)
  if (!(parent instanceof Y.Map)) return null
  const text = parent.get(at.field)
  return text instanceof Y.Text ? text : undefined
}

/** Whether `text` (of the copy) has an insertion or deletion the server does not. */
function hasChangesBeyond(text: Y.Text, sv: Map<number, number>, serverDeleted: () => DeleteSet): boolean {
  let item = text._start
  while (item) {
    const { client, clock } = item.id
    const known = sv.get(client) ?? 0
    if (!item.deleted) {
      if (clock + item.length > known) return true
    } else {
      const end = Math.min(clock + item.length, known)
      if (end > clock) {
        const ds = serverDeleted()
        for (let c = clock; c < end; c++) if (!Y.isDeleted(ds, Y.createID(client, c))) return true
      }
    }
    item = item.right
  }
  return false
}

/**
 * The texts of `copy` (a Yjs update of the document as this page had it) that the server's
 * document (`server`, synced) does not hold: new or changed here, and different from the server's.
 */
export function unsavedTexts(copy: Uint8Array, server: Y.Doc): UnsavedText[] {
  const old = new Y.Doc()
  try {
    Y.applyUpdate(old, copy)
    const sv = Y.decodeStateVector(Y.encodeStateVector(server))
    let ds: DeleteSet | null = null
    const serverDeleted = (): DeleteSet => (ds ??= Y.createDeleteSetFromStructStore(server.store))
    const out: UnsavedText[] = []
    for (const at of texts(old)) {
      const mine = at.text.toString()
      if (!mine.trim()) continue
      const theirs = textIn(server, at)
      if (theirs && theirs.toString() === mine) continue
      if (!hasChangesBeyond(at.text, sv, serverDeleted)) continue
      out.push({ kind: at.kind, id: at.id, field: at.field, section: at.section, text: mine, gone: theirs === null })
    }
    old.getMap('rows').forEach((row, id) => {
      if (!(row instanceof Y.Map)) return
      const entry = row._map.get('partijen')
      const mine = strings(row.get('partijen'))
      if (!entry || entry.deleted || !mine.length || entry.id.clock < (sv.get(entry.id.client) ?? 0)) return
      const there = server.getMap('rows').get(id)
      const theirs = there instanceof Y.Map ? strings(there.get('partijen')) : null
      if (theirs && theirs.join('\n') === mine.join('\n')) return
      out.push({ kind: 'row', id, field: 'partijen', text: mine.join(', '), gone: theirs === null })
    })
    return out
  } finally {
    old.destroy()
  }
}
