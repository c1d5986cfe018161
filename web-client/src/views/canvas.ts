// The CAO-DI canvas: one block per template section with its cards, an add button where the
// role may add, lock state, the private-writing drafts of this user, a type filter, the legend
// of tag colours and, while a round is open, the dots left. While a card is dragged by its
// handle, only the sections it may move to are drop targets. Drawn from CanvasModel.

import { h, reconcile, setAttr, setHidden, setOptions, setPresent, setText } from './dom'
import { createCard, typeName, type CardActions, type CardElement, type CardModel } from './card'
import { t } from '../i18n'
import type { Draft, Named, Section } from '../types'
import { TYPES } from '../types'

export interface SectionModel {
  section: Section
  locked: boolean
  canStart: boolean
  cards: CardModel[]
  drafts: Draft[]
  /** In the room's spotlight (presentation mode, the facilitator's focus). */
  spotlit: boolean
}

export interface CanvasModel {
  sections: SectionModel[]
  filter: string
  privateWriting: boolean
  votes: { title: string; left: number | null } | null
  pijlers: Named[]
  types: Named[]
  /** The board's themes (for a draft's thema label). */
  themes: Named[]
}

export interface CanvasActions extends CardActions {
  add(section: string): void
  saveDraft(section: string, text: string, labels: DraftLabels): void
  removeDraft(id: string): void
  filter(type: string): void
}

/** The labels a private draft carries (they become the revealed card's). */
export interface DraftLabels { type?: string; thema?: string; pijlers: string[] }

/** `prefix` keeps element ids unique when a second canvas is on the page (a snapshot, read-only). */
export function createCanvas(actions: CanvasActions, prefix = '') {
  const filter = h('select', { testid: 'filter-type', id: `${prefix}filter-type`, onchange: () => actions.filter(filter.value) })
  const filterLabel = h('label', { for: `${prefix}filter-type`, class: 'inline-label' })
  const legend = h('div', { class: 'legend', role: 'note' })
  const votesLeft = h('p', { testid: 'votes-left', class: 'votes-left', 'aria-live': 'polite' })
  const privateNote = h('p', { class: 'private-note', testid: 'private-note' })
  const toolbar = h('div', { class: 'toolbar' }, h('div', { class: 'filter' }, filterLabel, filter), legend)
  const grid = h('div', { class: 'sections' })
  const el = h('div', { class: 'canvas' }, toolbar, privateNote, votesLeft, grid)
  const cardEls = new Map<string, CardElement>()
  /** The card being dragged and the sections it may be dropped in (none: no drag). */
  let dragging: { id: string; targets: Set<string> } | null = null
  const dropMarks = new Map<string, (on: boolean) => void>()
  el.addEventListener('tafel-drag', (ev) => {
    const d = (ev as CustomEvent<{ id: string | null; targets: string[] }>).detail
    dragging = d.id ? { id: d.id, targets: new Set(d.targets) } : null
    for (const [section, mark] of dropMarks) mark(!!dragging?.targets.has(section))
  })
  const openEditors = new Set<string>()
  let last: CanvasModel | null = null

  function sectionBlock(first: SectionModel) {
    const id = first.section.id
    const title = h('h2', { id: `${prefix}title-${id}` })
    const hint = h('p', { class: 'hint' })
    const lockBadge = h('span', { class: 'lock-badge' })
    const addBtn = h('button', {
      type: 'button', testid: `add-card-${id}`, class: 'btn btn-add',
      onclick: () => {
        if (last?.privateWriting) {
          openEditors.add(id)
          if (last) render(last)
          draftText.focus()
        } else actions.add(id)
      },
    })
    const cards = h('div', { class: 'cards' })
    const draftText = h('textarea', { testid: 'draft-text', class: 'card-text', rows: 3 })
    const draftType = h('select', { testid: 'draft-type', class: 'select-small', id: `${prefix}draft-type-${id}` })
    const draftThema = h('select', { testid: 'draft-thema', class: 'select-small', id: `${prefix}draft-thema-${id}` })
    const draftTypeLabel = h('label', { for: `${prefix}draft-type-${id}` })
    const draftThemaLabel = h('label', { for: `${prefix}draft-thema-${id}` })
    const draftPijlers = h('fieldset', { class: 'pijler-set' })
    const draftPijlerLegend = h('legend', {})
    const draftSave = h('button', {
      type: 'button', testid: 'draft-save', class: 'btn btn-primary',
      onclick: () => {
        const text = draftText.value.trim()
        if (!text) return draftText.focus()
        const pijlers = [...draftPijlers.querySelectorAll<HTMLInputElement>('input:checked')].map((b) => b.value)
        actions.saveDraft(id, text, { type: draftType.value || undefined, thema: draftThema.value || undefined, pijlers })
        draftText.value = ''
        draftType.value = ''
        draftThema.value = ''
        for (const b of draftPijlers.querySelectorAll<HTMLInputElement>('input')) b.checked = false
        openEditors.delete(id)
        if (last) render(last)
      },
    })
    const draftCancel = h('button', {
      type: 'button', class: 'btn', onclick: () => {
        openEditors.delete(id)
        if (last) render(last)
      },
    })
    const editor = h('div', { class: 'draft-editor', testid: 'draft-editor' }, draftText,
      h('div', { class: 'draft-labels' }, h('div', { class: 'field' }, draftTypeLabel, draftType), h('div', { class: 'field' }, draftThemaLabel, draftThema), draftPijlers),
      h('div', { class: 'row-actions' }, draftSave, draftCancel))
    const draftTitle = h('h3', { class: 'drafts-title' })
    const draftList = h('ul', { class: 'drafts' })
    const drafts = h('div', { class: 'drafts-box', testid: 'drafts' }, draftTitle, draftList)
    const head = h('header', { class: 'section-head' }, title, lockBadge, addBtn)
    const dropHint = h('p', { class: 'drop-hint', testid: `drop-${id}`, hidden: true })
    const el = h('section', { testid: `section-${id}`, class: 'section', 'aria-labelledby': `${prefix}title-${id}` }, head, hint, dropHint, editor, drafts, cards)
    dropMarks.set(id, (on) => {
      setAttr(el, 'data-drop-target', on ? 'true' : null)
      el.classList.toggle('is-drop-target', on)
      setText(dropHint, t('canvas.dropHere'))
      setHidden(dropHint, !on)
    })
    const accepts = (): boolean => !!dragging?.targets.has(id)
    el.addEventListener('dragover', (ev) => {
      if (!accepts()) return
      ev.preventDefault()
      if (ev.dataTransfer) ev.dataTransfer.dropEffect = 'move'
    })
    el.addEventListener('drop', (ev) => {
      if (!dragging || !accepts()) return
      ev.preventDefault()
      const card = dragging.id
      dragging = null
      for (const mark of dropMarks.values()) mark(false)
      actions.move?.(card, id)
    })

    function update(m: SectionModel): void {
      setText(title, m.section.title)
      setText(hint, m.section.hint ?? '')
      setAttr(el, 'data-locked', m.locked ? 'true' : null)
      setAttr(el, 'data-spotlight', m.spotlit ? 'true' : null)
      el.classList.toggle('is-spotlit', m.spotlit)
      setText(lockBadge, m.locked ? t('canvas.locked') : '')
      setHidden(lockBadge, !m.locked)
      setPresent(addBtn, m.canStart)
      setText(addBtn, `+ ${t('canvas.add')}`)
      setAttr(addBtn, 'aria-label', t('canvas.addIn', { section: m.section.title }))
      setHidden(editor, !(m.canStart && openEditors.has(id)))
      setAttr(draftText, 'aria-label', t('drafts.text'))
      setText(draftSave, t('drafts.save'))
      setText(draftCancel, t('drafts.cancel'))
      if (last) {
        setText(draftTypeLabel, t('card.type'))
        setText(draftThemaLabel, t('card.thema'))
        setOptions(draftType, [['', t('card.none')], ...last.types.map((ty): [string, string] => [ty.id, ty.name])], draftType.value)
        setOptions(draftThema, [['', t('card.none')], ...last.themes.map((th): [string, string] => [th.id, th.name])], draftThema.value)
        setText(draftPijlerLegend, t('drafts.pijlers'))
        const key = last.pijlers.map((p) => p.id).join()
        if (draftPijlers.dataset.key !== key) {
          draftPijlers.dataset.key = key
          draftPijlers.replaceChildren(draftPijlerLegend, ...last.pijlers.map((p) =>
            h('label', { class: 'check' }, h('input', { type: 'checkbox', value: p.id, testid: `draft-pijler-${p.id}` }), h('span', { text: p.name }))))
        }
      }
      setHidden(drafts, m.drafts.length === 0)
      setText(draftTitle, t('drafts.title'))
      reconcile(draftList, m.drafts, (d) => d.id, (d) => {
        const text = h('span', { class: 'draft-text' })
        const remove = h('button', {
          type: 'button', class: 'btn btn-small btn-quiet', onclick: () => actions.removeDraft(d.id),
        })
        return {
          el: h('li', { testid: 'draft-item', class: 'draft' }, text, remove),
          update(d2: Draft) {
            setText(text, d2.text)
            setText(remove, '×')
            setAttr(remove, 'aria-label', t('drafts.remove'))
          },
        }
      })
      reconcile(cards, m.cards, (c) => c.card.id, (c) => {
        const card = createCard(c, actions)
        cardEls.set(c.card.id, card)
        return {
          el: card.el,
          update: card.update,
          destroy() {
            card.destroy()
            cardEls.delete(c.card.id)
          },
        }
      })
    }
    return { el, update }
  }

  function render(m: CanvasModel): void {
    last = m
    setText(filterLabel, t('canvas.filter'))
    setOptions(filter, [['all', t('canvas.filterAll')], ...TYPES.map((ty): [string, string] => [ty, typeName(ty)])], m.filter)
    const legendKey = `${m.types.map((x) => x.name).join()}|${m.pijlers.map((x) => x.name).join()}|${t('canvas.legend')}`
    if (legend.dataset.key !== legendKey) {
      legend.dataset.key = legendKey
      legend.replaceChildren(
        h('span', { class: 'legend-title', text: `${t('canvas.legend')}:` }),
        ...m.types.map((ty) => h('span', { class: `tag tag-type type-${ty.id}`, title: ty.description ?? '', text: ty.name })),
        ...m.pijlers.map((p) => h('span', { class: `tag tag-pijler pijler-${p.id}`, title: p.description ?? '', text: p.name })),
        h('span', { class: 'tag tag-thema', text: t('card.thema') }),
      )
    }
    setHidden(privateNote, !m.privateWriting)
    setText(privateNote, t('drafts.private'))
    setPresent(votesLeft, !!m.votes)
    if (m.votes) {
      const left = m.votes.left === null ? '…' : String(m.votes.left)
      const key = m.votes.left === 1 ? 'votes.left1' : 'votes.left'
      setText(votesLeft, `${t('votes.round', { title: m.votes.title })} — ${t(key, { n: left })}`)
    }
    reconcile(grid, m.sections, (s) => s.section.id, sectionBlock)
  }

  /** Poster view: the whole canvas scaled to fit the window below the header. */
  let posterOn = false
  function fitPoster(): void {
    grid.style.zoom = ''
    if (!posterOn) return
    const top = grid.getBoundingClientRect().top + window.scrollY
    const room = window.innerHeight - Math.max(0, top - window.scrollY) - 8
    const height = grid.scrollHeight
    const width = grid.scrollWidth
    const scale = Math.min(1, room / height, el.clientWidth / width)
    if (scale < 1) grid.style.zoom = String(Math.max(0.2, scale))
  }
  window.addEventListener('resize', () => fitPoster())

  return {
    el,
    update: render,
    poster(on: boolean): void {
      if (on === posterOn && !on) return
      posterOn = on
      el.classList.toggle('is-poster', on)
      if (on) window.scrollTo({ top: 0 })
      requestAnimationFrame(fitPoster)
    },
    focusCard(id: string): boolean {
      const card = cardEls.get(id)
      if (!card) return false
      card.focusText()
      return true
    },
  }
}
