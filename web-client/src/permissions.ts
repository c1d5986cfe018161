// What the user's role may do right now, computed from the template's rules, the session (locks,
// private writing; presentation mode locks nobody) and the cards this device made. It only decides which buttons
// show and which texts are editable; the server judges every update and is the authority.

import type { Card, Role, Row, Section, Session, Template } from './types'

export interface Rights {
  /** May add a card in the section directly (a Yjs write). */
  addCard(section: string): boolean
  /** May start a card in the section: directly, or as a private draft while private writing. */
  startCard(section: string): boolean
  editCard(card: Card): boolean
  removeCard(card: Card): boolean
  /** May move the card to section `to`: edit it where it is, add where it goes (as the server). */
  moveCard(card: Card, to: string): boolean
  sectionLocked(section: string): boolean
  addRow(): boolean
  editRow(row: Row): boolean
  removeRow(row: Row): boolean
  writeParty(doc: string): boolean
  vote: boolean
}

export function rights(role: Role, template: Template, session: Session, mine: Set<string>): Rights {
  const fac = role === 'facilitator'
  const participant = role === 'employer' || role === 'union' || role === 'employee'
  // Board-wide: nothing for observers; nothing for participants under a board lock.
  const frozen = !fac && (!participant || session.locks.board)
  const docLocked = (doc: string): boolean => !fac && session.locks.docs.includes(doc)
  const sections = new Map<string, Section>(template.sections.map((s) => [s.id, s]))
  const sectionLocked = (id: string): boolean => session.locks.sections.includes(id)
  const open = (doc: string, section?: string): boolean =>
    fac || (!frozen && !docLocked(doc) && !(section !== undefined && sectionLocked(section)))
  const own = (id: string): boolean => fac || mine.has(id)

  return {
    addCard(id) {
      const s = sections.get(id)
      return !!s && s.add.includes(role) && open('canvas', id) && (fac || !session.privateWriting)
    },
    startCard(id) {
      const s = sections.get(id)
      return !!s && s.add.includes(role) && open('canvas', id)
    },
    editCard(card) {
      const s = sections.get(card.section)
      if (fac) return true
      return !!s && s.edit.includes(role) && open('canvas', card.section) && (!s.edit_own_only || own(card.id))
    },
    removeCard(card) {
      const s = sections.get(card.section)
      if (fac) return true
      return !!s && s.remove.includes(role) && open('canvas', card.section) && own(card.id)
    },
    moveCard(card, to) {
      const s = sections.get(to)
      if (!s || to === card.section || !this.editCard(card)) return false
      return fac || (s.add.includes(role) && !sectionLocked(to))
    },
    sectionLocked,
    addRow() {
      return fac || (template.gap.add.includes(role) && open('gap'))
    },
    editRow(row) {
      if (fac) return true
      return template.gap.edit.includes(role) && open('gap') && (!template.gap.edit_own_only || own(row.id))
    },
    removeRow(row) {
      if (fac) return true
      return template.gap.remove.includes(role) && open('gap') && own(row.id)
    },
    writeParty(doc) {
      return fac || (participant && open(doc))
    },
    vote: participant,
  }
}
