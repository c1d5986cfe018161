// The facilitator's board list: every board the token opens, with a link to each, and a form to
// create a new board from a template.

import { h } from './dom'
import { lang, t, type Key } from '../i18n'
import type { BoardSummary, TemplateSummary } from '../types'

export interface BoardListActions {
  create(title: string, template: string): Promise<string | null>
  open(id: string): void
}

export function createBoardList(boards: BoardSummary[], templates: TemplateSummary[], actions: BoardListActions) {
  const titleInput = h('input', { id: 'board-title-input', testid: 'board-title-input', type: 'text', required: true, maxlength: 200 })
  const template = h('select', { id: 'template-select', testid: 'template-select' },
    ...templates.map((tp) => h('option', {
      value: tp.id,
      // The level only where the title does not already say it ("… (organisatie)").
      text: tp.title.toLowerCase().includes(tp.level.toLowerCase()) ? tp.title : `${tp.title} (${tp.level})`,
    })))
  const describe = h('p', { class: 'hint', testid: 'template-description', id: 'template-description' })
  const showDescription = (): void => {
    describe.textContent = templates.find((tp) => tp.id === template.value)?.description ?? ''
  }
  template.setAttribute('aria-describedby', 'template-description')
  template.addEventListener('change', showDescription)
  showDescription()
  const error = h('p', { class: 'error', role: 'alert' })
  const create = h('button', { type: 'submit', testid: 'create-board', class: 'btn btn-primary', text: t('list.create') })
  const form = h('form', { class: 'card-form' },
    h('h2', { text: t('list.new') }),
    h('label', { for: 'board-title-input', text: t('list.titleInput') }), titleInput,
    h('label', { for: 'template-select', text: t('list.template') }), template, describe,
    error, create)
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const title = titleInput.value.trim()
    if (!title) {
      titleInput.focus()
      return
    }
    create.disabled = true
    const problem = await actions.create(title, template.value)
    create.disabled = false
    if (problem) error.textContent = problem
  })
  const list = h('ul', { class: 'board-list' },
    ...boards.map((b) => {
      const link = h('a', { testid: 'open-board', href: `/?board=${encodeURIComponent(b.id)}`, text: t('list.open') })
      link.addEventListener('click', (ev) => {
        ev.preventDefault()
        actions.open(b.id)
      })
      return h('li', { testid: 'board-item', 'data-board-id': b.id, class: 'board-item' },
        h('span', { class: 'board-name', text: b.title }),
        h('span', { class: 'hint', text: `${b.template}${b.created_at ? ` · ${new Date(b.created_at * 1000).toLocaleDateString(lang() === 'en' ? 'en-GB' : 'nl-NL')}` : ''}` }),
        link)
    }))
  const steps = h('ol', {}, ...(['1', '2', '3', '4', '5', '6'] as const).map((n) => h('li', { text: t(`walk.${n}` as Key) })))
  const walkthrough = h('details', { class: 'card-form walkthrough', testid: 'walkthrough' },
    h('summary', { text: t('walk.title') }), steps, h('p', { class: 'hint', text: t('walk.more') }))
  const el = h('main', { class: 'list-page' },
    walkthrough,
    form,
    h('h1', { text: t('list.title') }),
    boards.length ? list : h('p', { class: 'empty', text: t('list.empty') }))
  return { el }
}
