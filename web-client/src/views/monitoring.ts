// The monitoring plan (step 6): per agreement (a card of the `bouwstenen` section) its indicators
// — cards of the `monitoring` section that name the agreement in `afspraak` — each with its kind
// (kwantitatief, kwalitatief), baseline, target, meetmomenten, who collects, who reports, how the
// results feed back, its status and the value measured at each moment; the agreement itself
// carries a status too. Who may change what is the canvas's model (the sections' rules, the
// locks); the server judges every field. Drawn from MonitoringModel; acts through
// MonitoringActions.

import { h, reconcile, setAttr, setOptions, setPresent, setText } from './dom'
import { t, type Key } from '../i18n'
import type { Card, Measurement, SharedText } from '../types'
import { MONITORING_TEXTS, SOORTEN, STATUSES } from '../types'

export interface IndicatorModel {
  card: Card
  canEdit: boolean
  canRemove: boolean
  /** The moments a value may be filled in for: the plan's meetmomenten, and any moment
   * already measured that is no longer planned. */
  moments: string[]
}

export interface AgreementModel {
  /** The agreement's card; null for the indicators that name no (visible) agreement. */
  card: Card | null
  label: string
  canEditStatus: boolean
  /** May add an indicator (the `monitoring` section's add right, now). */
  canAdd: boolean
  indicators: IndicatorModel[]
}

export interface MonitoringModel {
  agreements: AgreementModel[]
  /** The template has the sections the plan needs. */
  available: boolean
}

export type MonitoringField = 'soort' | 'nulmeting' | 'streefwaarde' | 'verzamelt' | 'rapporteert' | 'terugkoppeling' | 'status' | 'meetmomenten' | 'metingen'

export interface MonitoringActions {
  addIndicator(afspraak: string | undefined): void
  set(id: string, field: MonitoringField, value: unknown): void
  remove(id: string): void
  focus(id: string): void
  blur(id: string): void
}

const TEXT_KEYS: Record<(typeof MONITORING_TEXTS)[number] | 'terugkoppeling', Key> = {
  nulmeting: 'mon.nulmeting',
  streefwaarde: 'mon.streefwaarde',
  verzamelt: 'mon.verzamelt',
  rapporteert: 'mon.rapporteert',
  terugkoppeling: 'mon.terugkoppeling',
}

/** The moments as typed: separated by `;` or new lines. */
export function parseMoments(s: string): string[] {
  return s.split(/[;\n]/).map((x) => x.trim()).filter(Boolean).slice(0, 20)
}

function statusOptions(): [string, string][] {
  return [['', t('mon.statusNone')], ...STATUSES.map((s): [string, string] => [s, t(`mon.status.${s}` as Key)])]
}

/** An input that writes on change and takes the model's value whenever it is not being typed in. */
function field(el: HTMLInputElement | HTMLSelectElement, value: string): void {
  if (document.activeElement !== el && el.value !== value) el.value = value
}

function indicatorElement(first: IndicatorModel, actions: MonitoringActions) {
  const id = first.card.id
  const uid = `mon-${id}`
  const name = h('textarea', {
    testid: 'indicator-text', class: 'card-text', rows: 2, id: `${uid}-text`,
    onfocus: () => actions.focus(id), onblur: () => actions.blur(id),
  })
  const nameLabel = h('label', { for: `${uid}-text` })
  const soort = h('select', { testid: 'indicator-soort', id: `${uid}-soort`, class: 'select-small', onchange: () => actions.set(id, 'soort', soort.value || undefined) })
  const soortLabel = h('label', { for: `${uid}-soort` })
  const status = h('select', { testid: 'indicator-status', id: `${uid}-status`, class: 'select-small', onchange: () => actions.set(id, 'status', status.value || undefined) })
  const statusLabel = h('label', { for: `${uid}-status` })
  const texts = (Object.keys(TEXT_KEYS) as (keyof typeof TEXT_KEYS)[]).map((key) => {
    const input = h('input', {
      type: 'text', testid: `indicator-${key}`, id: `${uid}-${key}`, maxlength: 500,
      onchange: () => actions.set(id, key, input.value.trim() || undefined),
    })
    const label = h('label', { for: `${uid}-${key}` })
    return { key, input, label, box: h('div', { class: `mon-field mon-${key}` }, label, input) }
  })
  const moments = h('input', {
    type: 'text', testid: 'indicator-meetmomenten', id: `${uid}-meetmomenten`,
    onchange: () => actions.set(id, 'meetmomenten', parseMoments(moments.value)),
  })
  const momentsLabel = h('label', { for: `${uid}-meetmomenten` })
  const momentsHint = h('p', { class: 'hint', id: `${uid}-meetmomenten-hint` })
  setAttr(moments, 'aria-describedby', `${uid}-meetmomenten-hint`)
  const measuredTitle = h('h5', {})
  const measured = h('div', { class: 'mon-measured', testid: 'indicator-metingen' })
  const noMoments = h('p', { class: 'empty' })
  const remove = h('button', { type: 'button', class: 'btn btn-small btn-quiet', testid: 'indicator-remove', onclick: () => actions.remove(id) })
  const el = h('article', { class: 'indicator', testid: `indicator-${id}` },
    h('div', { class: 'mon-field mon-name' }, nameLabel, name),
    h('div', { class: 'mon-grid' },
      h('div', { class: 'mon-field' }, soortLabel, soort),
      ...texts.map((x) => x.box),
      h('div', { class: 'mon-field mon-moments' }, momentsLabel, moments, momentsHint),
      h('div', { class: 'mon-field' }, statusLabel, status)),
    measuredTitle, noMoments, measured, remove)
  let bound: SharedText | null = null
  let unbind: (() => void) | null = null
  let last = first
  const values = new Map<string, HTMLInputElement>()

  function writeMeasured(): void {
    const out: Measurement[] = []
    for (const moment of last.moments) {
      const v = values.get(moment)?.value.trim()
      if (v) out.push({ moment, waarde: v })
    }
    actions.set(id, 'metingen', out)
  }

  function update(m: IndicatorModel): void {
    last = m
    const c = m.card
    if (c.text !== bound) {
      unbind?.()
      bound = c.text
      unbind = c.text ? c.text.bind(name) : null
    }
    name.readOnly = !m.canEdit
    setText(nameLabel, t('mon.indicator'))
    setText(soortLabel, t('mon.soort'))
    setOptions(soort, [['', t('mon.soortNone')], ...SOORTEN.map((s): [string, string] => [s, t(`mon.soort.${s}` as Key)])], c.monitoring.soort ?? '')
    setText(statusLabel, t('mon.status'))
    setOptions(status, statusOptions(), c.monitoring.status ?? '')
    soort.disabled = !m.canEdit
    status.disabled = !m.canEdit
    for (const x of texts) {
      setText(x.label, t(TEXT_KEYS[x.key]))
      const v = x.key === 'terugkoppeling' ? c.monitoring.terugkoppeling : c.monitoring[x.key]
      field(x.input, v ?? '')
      x.input.readOnly = !m.canEdit
    }
    setText(momentsLabel, t('mon.meetmomenten'))
    setText(momentsHint, t('mon.meetmomentenHint'))
    field(moments, c.monitoring.meetmomenten.join('; '))
    moments.readOnly = !m.canEdit
    setText(measuredTitle, t('mon.metingen'))
    setText(noMoments, t('mon.noMoments'))
    setPresent(noMoments, m.moments.length === 0)
    const key = m.moments.join('\u0000')
    if (measured.dataset.moments !== key) {
      measured.dataset.moments = key
      values.clear()
      measured.replaceChildren(...m.moments.map((moment, i) => {
        const input = h('input', { type: 'text', testid: `meting-${i}`, id: `${uid}-meting-${i}`, maxlength: 500, onchange: writeMeasured })
        values.set(moment, input)
        return h('div', { class: 'mon-field' }, h('label', { for: `${uid}-meting-${i}`, text: moment }), input)
      }))
    }
    for (const moment of m.moments) {
      const input = values.get(moment)
      if (!input) continue
      field(input, c.monitoring.metingen.find((x) => x.moment === moment)?.waarde ?? '')
      input.readOnly = !m.canEdit
    }
    setText(remove, t('mon.remove'))
    setPresent(remove, m.canRemove)
  }
  update(first)
  return {
    el,
    update,
    destroy(): void {
      unbind?.()
    },
  }
}

function agreementElement(first: AgreementModel, actions: MonitoringActions, setStatus: (id: string, status: string | undefined) => void) {
  const aid = first.card?.id ?? 'none'
  const title = h('h3', { id: `mon-agreement-${aid}` })
  const status = h('select', {
    testid: 'agreement-status', id: `mon-agreement-status-${aid}`, class: 'select-small',
    onchange: () => first.card && setStatus(first.card.id, status.value || undefined),
  })
  const statusLabel = h('label', { for: `mon-agreement-status-${aid}` })
  const statusBox = h('div', { class: 'mon-field mon-agreement-status' }, statusLabel, status)
  const list = h('div', { class: 'indicators' })
  const empty = h('p', { class: 'empty' })
  const add = h('button', { type: 'button', class: 'btn btn-add', testid: 'add-indicator', onclick: () => actions.addIndicator(first.card?.id) })
  const el = h('section', { class: 'agreement', testid: `agreement-${aid}`, 'aria-labelledby': `mon-agreement-${aid}` },
    h('header', { class: 'section-head' }, title, statusBox), empty, list, add)
  function update(m: AgreementModel): void {
    setText(title, m.card ? m.label : t('mon.noAgreement'))
    setPresent(statusBox, !!m.card)
    setText(statusLabel, t('mon.agreementStatus'))
    setOptions(status, statusOptions(), m.card?.monitoring.status ?? '')
    status.disabled = !m.canEditStatus
    setText(empty, t('mon.noIndicators'))
    setPresent(empty, m.indicators.length === 0)
    reconcile(list, m.indicators, (i) => i.card.id, (i) => indicatorElement(i, actions))
    setText(add, `+ ${t('mon.add')}`)
    setPresent(add, m.canAdd)
  }
  update(first)
  return { el, update }
}

export function createMonitoring(actions: MonitoringActions & { setStatus(id: string, status: string | undefined): void }) {
  const title = h('h2', {})
  const help = h('p', { class: 'hint' })
  const empty = h('p', { class: 'empty', testid: 'monitoring-empty' })
  const unavailable = h('p', { class: 'empty' })
  const list = h('div', { class: 'agreements' })
  const el = h('div', { class: 'monitoring', testid: 'monitoring' }, title, help, unavailable, empty, list)

  function update(m: MonitoringModel): void {
    setText(title, t('mon.title'))
    setText(help, t('mon.help'))
    setText(unavailable, t('mon.unavailable'))
    setPresent(unavailable, !m.available)
    setText(empty, t('mon.noAgreements'))
    setPresent(empty, m.available && m.agreements.length === 0)
    reconcile(list, m.agreements, (a) => a.card?.id ?? '', (a) => agreementElement(a, actions, actions.setStatus))
  }
  return { el, update }
}
