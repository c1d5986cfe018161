// One card: its live text (a textarea bound to the shared text), tag chips (type, pijlers,
// thema), author, who is editing it, vote controls and totals, and the actions the user may take
// (labels, remove, move to another section by its menu, Alt+M / Alt+↑↓ or by dragging its
// handle, hide, merge into another card, copy to the canvas). Hidden and merged cards
// leave the document (the facilitator restores them from the panel's hidden list); a card an
// older server only marked `hidden` says so in words to the facilitator, and which card it was
// merged into, until the server moves it out. Drawn from a CardModel; acts through
// CardActions. Used on the canvas and in the party workspaces.

import { h, setAttr, setHidden, setOptions, setPresent, setText } from './dom'
import { t } from '../i18n'
import type { Card, Named, Section, SharedText } from '../types'
import { PIJLERS, TYPES } from '../types'

export interface CardModel {
  card: Card
  canEdit: boolean
  canRemove: boolean
  facilitator: boolean
  editingBy: string[]
  themes: Named[]
  /** Set while a voting round over this card is open and the user may vote. */
  vote: { mine: number; canAdd: boolean; canTake: boolean } | null
  /** Sections a party note may be copied to (party workspaces only). */
  copyTargets?: Section[]
  /** Cards this one may be merged into, as [id, label] (facilitator, canvas, visible cards only). */
  mergeTargets?: [string, string][]
  /** The label of the card this hidden card was merged into (facilitator only). */
  mergedLabel?: string | null
  /** In the room's spotlight (presentation mode, the facilitator's focus). */
  spotlit?: boolean
  /** Sections the user may move this card to, as [id, title] in the template's order (canvas). */
  moveTargets?: [string, string][]
  /** Every section id in the template's order (for Alt+↑/↓). */
  sectionOrder?: string[]
}

export interface CardActions {
  focus(id: string): void
  blur(id: string): void
  remove(id: string): void
  hide(id: string): void
  restore(id: string): void
  vote(id: string): void
  unvote(id: string): void
  setType(id: string, type: string | undefined): void
  setThema(id: string, thema: string | undefined): void
  setPijlers(id: string, pijlers: string[]): void
  copyTo?(id: string, section: string): void
  merge?(id: string, into: string): void
  /** The facilitator puts the card in the room's spotlight. */
  spotlight?(id: string): void
  /** Moves the card to another section (the server decides). */
  move?(id: string, section: string): void
}

export function typeName(id: string): string {
  return id.charAt(0).toUpperCase() + id.slice(1)
}

export function createCard(model: CardModel, actions: CardActions) {
  const id = model.card.id
  const textarea = h('textarea', {
    testid: 'card-text',
    class: 'card-text',
    rows: 2,
    'aria-label': t('card.text'),
    onfocus: () => actions.focus(id),
    onblur: () => actions.blur(id),
    onkeydown: (ev: Event) => onKey(ev as KeyboardEvent),
  })
  const editing = h('p', { class: 'card-editing', 'aria-live': 'polite' })
  const typeChip = h('span', { testid: 'tag-type', class: 'tag tag-type' })
  const pijlerChips = h('span', { class: 'tag-group' })
  const themaChip = h('span', { testid: 'tag-thema', class: 'tag tag-thema' })
  const sourceChip = h('span', { class: 'tag tag-source', text: t('card.source') })
  const tags = h('div', { class: 'tags' }, typeChip, pijlerChips, themaChip, sourceChip)
  const author = h('span', { testid: 'card-author', class: 'card-author' })
  const votes = h('span', { testid: 'card-votes', class: 'card-votes' })
  const myVotes = h('span', { class: 'card-myvotes' })
  const voteBtn = h('button', { type: 'button', testid: `vote-${id}`, class: 'btn btn-vote', onclick: () => actions.vote(id) })
  const unvoteBtn = h('button', { type: 'button', testid: `unvote-${id}`, class: 'btn btn-small', onclick: () => actions.unvote(id) })
  const voteBox = h('div', { class: 'vote-box' }, voteBtn, myVotes, unvoteBtn)

  const typeSelect = h('select', {
    class: 'select-small',
    testid: 'type-select',
    onchange: () => actions.setType(id, typeSelect.value || undefined),
  })
  const themaSelect = h('select', {
    class: 'select-small',
    testid: 'thema-select',
    onchange: () => actions.setThema(id, themaSelect.value || undefined),
  })
  const pijlerBoxes = PIJLERS.map((p) =>
    h('input', {
      type: 'checkbox',
      value: p,
      onchange: () => actions.setPijlers(id, pijlerBoxes.filter((b) => b.checked).map((b) => b.value)),
    }),
  )
  const typeLabel = h('label', {}, h('span', { text: t('card.type') }), typeSelect)
  const themaLabel = h('label', {}, h('span', { text: t('card.thema') }), themaSelect)
  const pijlerSet = h('fieldset', { class: 'pijler-set' }, h('legend', { text: t('card.pijlers') }),
    ...PIJLERS.map((p, i) => h('label', { class: 'check' }, pijlerBoxes[i], h('span', { text: typeName(p) }))))
  const labelsSummary = h('summary', { text: t('card.labels') })
  const labels = h('details', { class: 'card-labels' }, labelsSummary, typeLabel, themaLabel, pijlerSet)

  const removeBtn = h('button', { type: 'button', class: 'btn btn-small btn-quiet', testid: 'remove-card', onclick: () => actions.remove(id) })
  const hideBtn = h('button', { type: 'button', class: 'btn btn-small btn-quiet', testid: `hide-${id}`, onclick: () => actions.hide(id) })
  const spotBtn = h('button', { type: 'button', class: 'btn btn-small btn-quiet', testid: `spotlight-${id}`, onclick: () => actions.spotlight?.(id) })
  const restoreBtn = h('button', { type: 'button', class: 'btn btn-small', testid: `restore-${id}`, onclick: () => actions.restore(id) })
  const copySelect = h('select', { class: 'select-small', testid: 'copy-card-section' })
  const copyBtn = h('button', {
    type: 'button', class: 'btn btn-small', testid: 'copy-card',
    onclick: () => copySelect.value && actions.copyTo?.(id, copySelect.value),
  })
  const copyBox = h('div', { class: 'copy-box' }, copySelect, copyBtn)
  const status = h('p', { testid: 'card-status', class: 'card-status' })
  const mergeSelect = h('select', {
    class: 'select-small merge-select', testid: `merge-${id}`,
    onchange: () => {
      mergeBtn.disabled = !mergeSelect.value
    },
  })
  const mergeBtn = h('button', {
    type: 'button', class: 'btn btn-small', testid: `merge-go-${id}`, disabled: true,
    onclick: () => {
      if (mergeSelect.value) actions.merge?.(id, mergeSelect.value)
    },
  })
  const mergeBox = h('div', { class: 'merge-box' }, mergeSelect, mergeBtn)
  // The facilitator's moderation in one menu per card (spotlight, hide, merge), not a row of
  // buttons on every card.
  const menuSummary = h('summary', { testid: `card-menu-${id}`, class: 'btn btn-small btn-quiet' })
  const menu = h('details', { class: 'card-menu' }, menuSummary, h('div', { class: 'card-menu-body' }, spotBtn, hideBtn, mergeBox))
  // Moving: a menu of the sections the user may move the card to (also Alt+M from the text), and
  // a drag handle for the mouse (the canvas offers only those sections as drop targets).
  const moveSummary = h('summary', { testid: `move-menu-${id}`, class: 'btn btn-small btn-quiet' })
  const moveList = h('div', { class: 'card-menu-body', role: 'group' })
  const moveMenu = h('details', { class: 'card-move' }, moveSummary, moveList)
  const dragHandle = h('span', { class: 'drag-handle', testid: `drag-${id}`, draggable: 'true', 'aria-hidden': 'true', text: '⠿' })
  dragHandle.addEventListener('dragstart', (ev) => {
    ev.dataTransfer?.setData('application/x-tafel-card', id)
    ev.dataTransfer?.setData('text/plain', id)
    if (ev.dataTransfer) ev.dataTransfer.effectAllowed = 'move'
    el.classList.add('is-dragged')
    el.dispatchEvent(new CustomEvent('tafel-drag', { bubbles: true, detail: { id, targets: moves.map(([s]) => s) } }))
  })
  dragHandle.addEventListener('dragend', () => {
    el.classList.remove('is-dragged')
    el.dispatchEvent(new CustomEvent('tafel-drag', { bubbles: true, detail: { id: null, targets: [] } }))
  })
  let moves: [string, string][] = []

  function onKey(ev: KeyboardEvent): void {
    if (!ev.altKey || !moves.length) return
    if (ev.key === 'm' || ev.key === 'M' || ev.code === 'KeyM') {
      ev.preventDefault()
      moveMenu.open = true
      moveList.querySelector<HTMLButtonElement>('button')?.focus()
    } else if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      // The next section the card may go to, after (↓) or before (↑) its own in the template.
      ev.preventDefault()
      const order = currentOrder
      const here = order.indexOf(currentSection)
      const allowed = new Set(moves.map(([s]) => s))
      const step = ev.key === 'ArrowDown' ? 1 : -1
      for (let i = here + step; i >= 0 && i < order.length; i += step) {
        if (allowed.has(order[i])) return actions.move?.(id, order[i])
      }
    }
  }
  let currentOrder: string[] = []
  let currentSection = model.card.section
  const foot = h('div', { class: 'card-foot' }, author, votes, labels, removeBtn, moveMenu, menu, restoreBtn)
  const el = h('article', { testid: `card-${id}`, class: 'card' }, dragHandle, status, editing, textarea, tags, voteBox, copyBox, foot)

  let bound: SharedText | null = null
  let unbind: (() => void) | null = null

  function update(m: CardModel): void {
    const c = m.card
    if (c.text !== bound) {
      unbind?.()
      bound = c.text
      unbind = c.text ? c.text.bind(textarea) : null
      if (!c.text) textarea.value = ''
    }
    setAttr(el, 'data-section', c.section)
    setAttr(el, 'data-type', c.type ?? null)
    setAttr(el, 'data-hidden', c.hidden ? 'true' : null)
    setAttr(el, 'data-merged-into', c.hidden && c.mergedInto ? c.mergedInto : null)
    setPresent(status, c.hidden)
    if (c.hidden) {
      setText(status, c.mergedInto ? t('card.mergedInto', { target: m.mergedLabel ?? c.mergedInto }) : t('card.hidden'))
    }
    el.className = `card${c.type ? ` type-${c.type}` : ''}${c.hidden ? ' is-hidden' : ''}${m.editingBy.length ? ' is-edited' : ''}${m.spotlit ? ' is-spotlit' : ''}`
    setAttr(el, 'data-spotlight', m.spotlit ? 'true' : null)
    if (textarea.readOnly === m.canEdit) textarea.readOnly = !m.canEdit
    setAttr(textarea, 'aria-label', t('card.text'))

    setText(editing, m.editingBy.length ? t('card.editing', { name: m.editingBy.join(', ') }) : '')
    setHidden(editing, m.editingBy.length === 0)

    setText(typeChip, c.type ? typeName(c.type) : '')
    setPresent(typeChip, !!c.type)
    const pijlerKey = c.pijlers.join(',')
    if (pijlerChips.dataset.value !== pijlerKey) {
      pijlerChips.dataset.value = pijlerKey
      pijlerChips.replaceChildren(...c.pijlers.map((p) =>
        h('span', { testid: 'tag-pijler', class: `tag tag-pijler pijler-${p}`, text: typeName(p) })))
    }
    const themeName = c.thema ? m.themes.find((th) => th.id === c.thema)?.name ?? c.thema : ''
    setText(themaChip, themeName)
    setPresent(themaChip, !!c.thema)
    setHidden(sourceChip, !c.source)
    setText(sourceChip, t('card.source'))
    setHidden(tags, !c.type && !c.thema && c.pijlers.length === 0 && !c.source)

    setText(author, c.author ?? '')
    setPresent(author, !!c.author)
    setText(votes, c.votes !== undefined ? t(c.votes === 1 ? 'card.votes1' : 'card.votes', { n: c.votes }) : '')
    setPresent(votes, c.votes !== undefined)

    setPresent(voteBox, !!m.vote)
    if (m.vote) {
      setText(voteBtn, `● ${t('card.vote')}`)
      setAttr(voteBtn, 'aria-label', t('card.vote'))
      voteBtn.disabled = !m.vote.canAdd
      setText(myVotes, t('card.myVotes', { n: m.vote.mine }))
      setText(unvoteBtn, '−')
      setAttr(unvoteBtn, 'aria-label', t('card.unvote'))
      setPresent(unvoteBtn, m.vote.canTake)
    }

    setHidden(labels, !m.canEdit)
    if (m.canEdit) {
      setText(labelsSummary, t('card.labels'))
      setText(typeLabel.firstChild as HTMLElement, t('card.type'))
      setText(themaLabel.firstChild as HTMLElement, t('card.thema'))
      setOptions(typeSelect, [['', t('card.none')], ...TYPES.map((ty): [string, string] => [ty, typeName(ty)])], c.type ?? '')
      setOptions(themaSelect, [['', t('card.none')], ...m.themes.map((th): [string, string] => [th.id, th.name])], c.thema ?? '')
      for (const box of pijlerBoxes) box.checked = c.pijlers.includes(box.value)
    }

    setPresent(removeBtn, m.canRemove)
    setText(removeBtn, '×')
    setAttr(removeBtn, 'aria-label', t('card.remove'))
    setAttr(removeBtn, 'title', t('card.remove'))
    setPresent(hideBtn, m.facilitator && !c.hidden)
    setText(hideBtn, t('card.hide'))
    setPresent(spotBtn, m.facilitator && !c.hidden && !!actions.spotlight)
    setText(spotBtn, t('card.spotlight'))
    setPresent(restoreBtn, m.facilitator && c.hidden)
    setText(restoreBtn, t('card.restore'))

    const merges = m.mergeTargets ?? []
    setPresent(menu, m.facilitator && !c.hidden)
    setText(menuSummary, '⋯')
    setAttr(menuSummary, 'aria-label', t('card.menu'))
    setAttr(menuSummary, 'title', t('card.menu'))
    setPresent(mergeBox, !c.hidden && merges.length > 0)
    if (merges.length) {
      setOptions(mergeSelect, [['', t('card.mergeChoose')], ...merges])
      mergeBtn.disabled = !mergeSelect.value
    }
    setAttr(mergeSelect, 'aria-label', t('card.mergeWith'))
    setText(mergeBtn, t('card.merge'))

    moves = m.moveTargets ?? []
    currentSection = c.section
    currentOrder = m.sectionOrder ?? []
    setPresent(moveMenu, moves.length > 0 && !c.hidden)
    setPresent(dragHandle, moves.length > 0 && !c.hidden)
    setAttr(dragHandle, 'title', t('card.drag'))
    setText(moveSummary, `⇄ ${t('card.move')}`)
    setAttr(moveSummary, 'aria-label', t('card.moveLabel'))
    setAttr(moveSummary, 'title', t('card.moveLabel'))
    setAttr(moveList, 'aria-label', t('card.moveLabel'))
    const moveKey = `${moves.map(([s, title]) => `${s}=${title}`).join('|')}|${t('card.moveTo', { section: '' })}`
    if (moveList.dataset.key !== moveKey) {
      moveList.dataset.key = moveKey
      moveList.replaceChildren(...moves.map(([section, title]) => h('button', {
        type: 'button', class: 'btn btn-small', testid: `move-to-${section}`, text: t('card.moveTo', { section: title }),
        onclick: () => {
          moveMenu.open = false
          actions.move?.(id, section)
        },
      })))
    }

    const targets = m.copyTargets ?? []
    setPresent(copyBox, targets.length > 0)
    if (targets.length) setOptions(copySelect, targets.map((s): [string, string] => [s.id, s.title]))
    setAttr(copySelect, 'aria-label', t('card.copyToSection'))
    setText(copyBtn, t('card.copyTo'))
  }

  update(model)
  return {
    el,
    update,
    destroy(): void {
      unbind?.()
      if (document.activeElement === textarea) actions.blur(id)
    },
    focusText(): void {
      textarea.focus()
    },
  }
}

export type CardElement = ReturnType<typeof createCard>
