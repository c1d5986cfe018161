// The first-visit name prompt of an invite link: the name others will see (an employee shows
// under a pseudonym whatever they type); also the facilitator's name at sign-in.

import { h } from './dom'
import { t } from '../i18n'

export function createNamePrompt(opts: { board: string; initial: string; title?: string; help?: string; submit(name: string): Promise<string | null> }) {
  const input = h('input', { id: 'name-input', testid: 'name-input', type: 'text', maxlength: 60, autocomplete: 'name', value: opts.initial, required: true })
  const error = h('p', { class: 'error', role: 'alert' })
  const submit = h('button', { type: 'submit', testid: 'name-submit', class: 'btn btn-primary', text: t('name.submit') })
  const form = h('form', { class: 'card-form' },
    h('h1', { text: opts.title ?? t('name.title', { board: opts.board }) }),
    h('p', { class: 'hint', text: opts.help ?? t('name.help') }),
    h('label', { for: 'name-input', text: t('name.label') }),
    input, error, submit)
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const name = input.value.trim()
    if (!name || name.length > 60) {
      error.textContent = t('name.required')
      input.focus()
      return
    }
    submit.disabled = true
    const problem = await opts.submit(name)
    submit.disabled = false
    if (problem) error.textContent = problem
  })
  const el = h('main', { class: 'centered' }, form)
  queueMicrotask(() => input.focus())
  return { el }
}
