// The facilitator's panel (in the DOM only for the facilitator): step, phase, timer, locks,
// presentation mode and its focus, author mode, private writing and the reveal, the ready check
// (how many participants online say they are ready), dot-voting rounds (open over the picked
// canvas sections and/or the gap rows, close, reveal; the results ranked with bars, and their
// top N made priorities),
// invites (with a full-screen "scan to join" QR code), who is in (invites and participants, to
// revoke and remove), the hidden cards and rows (with restore) and the audit log. Controls show
// the session as the server last wrote it.

import { h, setAttr, setHidden, setOptions, setText } from './dom'
import { createInvites, type InvitesActions } from './invites'
import { createAudit, type AuditActions, type AuditLine } from './audit'
import { createHidden, type HiddenActions, type HiddenEntry } from './hidden'
import { createPeople, type PeopleActions } from './people'
import { createResults, type ResultsActions, type ResultsModel } from './results'
import { t, type Key } from '../i18n'
import type { InviteInfo, ParticipantInfo, Role, Round, Section, Session } from '../types'
import { STEPS } from '../types'

export interface FacilitatorModel {
  session: Session
  sections: Section[]
  steps: { id: string; title: string }[]
  phases: string[]
  round: Round | null
  invite: { url: string; role: Role } | null
  qrShown: boolean
  people: { invites: InviteInfo[]; participants: ParticipantInfo[] } | null
  audit: AuditLine[] | null
  /** Hidden and merged cards and rows as the server holds them (null: not loaded yet). */
  hidden: HiddenEntry[] | null
  /** The focus value the presentation select shows (`doc` or `doc:section`). */
  focus: string
  /** The ready check: participants online, and how many of them are ready. */
  ready: { ready: number; total: number }
  /** The revealed rounds, ranked. */
  results: ResultsModel
}

export interface FacilitatorActions extends InvitesActions, PeopleActions, AuditActions, HiddenActions, ResultsActions {
  step(step: string): void
  phase(phase: string): void
  timer(op: 'start' | 'pause' | 'reset', seconds?: number): void
  lock(scope: 'board' | 'doc' | 'section', target: string | null, locked: boolean): void
  presentation(on: boolean, focus: string): void
  authorMode(mode: string): void
  privateWriting(on: boolean): void
  revealDrafts(): void
  /** Opens a round over the cards of the picked sections and, with `gap` picked, the gap rows. */
  openRound(budget: number, picks: string[]): void
  closeRound(): void
  revealRound(): void
}

function checkbox(testid: string, onchange: (checked: boolean) => void) {
  const box = h('input', { type: 'checkbox', testid, id: testid })
  box.addEventListener('change', () => onchange(box.checked))
  const text = h('span', {})
  return { box, text, el: h('label', { class: 'check', for: testid }, box, text) }
}

function field(label: HTMLElement, control: HTMLElement): HTMLElement {
  return h('div', { class: 'field' }, label, control)
}

const PANEL_TABS = ['session', 'voting', 'people', 'log'] as const
type PanelTab = (typeof PANEL_TABS)[number]
const TAB_TITLES: Record<PanelTab, Key> = {
  session: 'fac.tab.session', voting: 'fac.tab.voting', people: 'fac.tab.people', log: 'fac.tab.log',
}

export function createFacilitatorPanel(actions: FacilitatorActions) {
  const heading = h('h2', {})
  // Step and phase
  const step = h('select', { id: 'step-select', testid: 'step-select', onchange: () => actions.step(step.value) })
  const stepLabel = h('label', { for: 'step-select' })
  const phase = h('input', { id: 'phase-input', testid: 'phase-input', type: 'text', maxlength: 80, list: 'phase-list' })
  const phaseList = h('datalist', { id: 'phase-list' })
  const phaseLabel = h('label', { for: 'phase-input' })
  const phaseSet = h('button', { type: 'button', testid: 'phase-set', class: 'btn', onclick: () => actions.phase(phase.value.trim()) })
  phase.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') actions.phase(phase.value.trim())
  })
  // Timer
  const seconds = h('input', { id: 'timer-seconds', testid: 'timer-seconds', type: 'number', min: 1, max: 86400, value: '300', class: 'narrow' })
  const secondsLabel = h('label', { for: 'timer-seconds' })
  const start = h('button', {
    type: 'button', testid: 'timer-start', class: 'btn btn-primary',
    onclick: () => {
      const paused = last?.session.timer.status === 'paused'
      const n = Math.round(Number(seconds.value))
      actions.timer('start', paused ? undefined : n)
    },
  })
  const pause = h('button', { type: 'button', testid: 'timer-pause', class: 'btn', onclick: () => actions.timer('pause') })
  const reset = h('button', { type: 'button', testid: 'timer-reset', class: 'btn', onclick: () => actions.timer('reset') })
  // Locks and modes
  const lockBoard = checkbox('lock-board', (on) => actions.lock('board', null, on))
  const lockGap = checkbox('lock-doc-gap', (on) => actions.lock('doc', 'gap', on))
  const sectionLocks = h('div', { class: 'checks' })
  const sectionBoxes = new Map<string, ReturnType<typeof checkbox>>()
  const sectionLocksSummary = h('summary', {})
  const presentation = checkbox('presentation-toggle', (on) => actions.presentation(on, focus.value))
  const focus = h('select', {
    id: 'presentation-focus', testid: 'presentation-focus',
    onchange: () => actions.presentation(presentation.box.checked, focus.value),
  })
  const focusLabel = h('label', { for: 'presentation-focus' })
  const author = h('select', { id: 'author-mode', testid: 'author-mode', onchange: () => actions.authorMode(author.value) })
  const authorLabel = h('label', { for: 'author-mode' })
  const privateWriting = checkbox('private-writing', (on) => actions.privateWriting(on))
  const draftsIn = h('p', { testid: 'drafts-in', class: 'hint', role: 'status' })
  const reveal = h('button', { type: 'button', testid: 'reveal-drafts', class: 'btn', onclick: () => actions.revealDrafts() })
  // Voting
  const budget = h('input', { id: 'round-budget', testid: 'round-budget', type: 'number', min: 1, max: 100, value: '3', class: 'narrow' })
  const budgetLabel = h('label', { for: 'round-budget' })
  // What is votable: the cards of any canvas section, and the gap rows (Bouwstenen by default).
  const pickBoxes = new Map<string, ReturnType<typeof checkbox>>()
  const pickGap = checkbox('round-pick-gap', () => {})
  const picks = h('fieldset', { class: 'checks round-picks' })
  const picksLegend = h('legend', {})
  picks.append(picksLegend)
  const picked = (): string[] => [...[...pickBoxes].filter(([, c]) => c.box.checked).map(([id]) => id), ...(pickGap.box.checked ? ['gap'] : [])]
  const open = h('button', { type: 'button', testid: 'round-open', class: 'btn btn-primary', onclick: () => actions.openRound(Math.round(Number(budget.value)), picked()) })
  const results = createResults('results-cockpit', actions)
  const closeRound = h('button', { type: 'button', testid: 'round-close', class: 'btn', onclick: () => actions.closeRound() })
  const revealRound = h('button', { type: 'button', testid: 'round-reveal', class: 'btn', onclick: () => actions.revealRound() })
  const roundStatus = h('p', { class: 'hint', testid: 'round-status' })

  const invites = createInvites(actions)
  const peopleBlock = createPeople(actions)
  const audit = createAudit(actions)
  const hidden = createHidden(actions)

  // Ready check
  const readyCount = h('p', { testid: 'ready-count', class: 'ready-count', role: 'status' })

  const titles = {
    session: h('h3', {}), locks: h('h3', {}), voting: h('h3', {}),
  }
  // The panel's tabs: the common actions (step, timer, locks, present, reveal) on the first, so
  // they fit a laptop screen without scrolling; voting, people and the log each on their own.
  const panes: Record<PanelTab, HTMLElement> = {
    session: h('div', {},
      h('section', { class: 'panel-block panel-row' }, field(stepLabel, step),
        h('div', { class: 'field' }, secondsLabel, h('div', { class: 'inline timer-row' }, seconds, start, pause, reset))),
      h('section', { class: 'panel-block' }, titles.locks, lockBoard.el, lockGap.el,
        h('details', { class: 'section-locks' }, sectionLocksSummary, sectionLocks),
        presentation.el, field(focusLabel, focus)),
      h('section', { class: 'panel-block' }, readyCount,
        privateWriting.el, h('div', { class: 'inline' }, reveal, draftsIn)),
      h('section', { class: 'panel-block' }, titles.session,
        field(phaseLabel, h('div', { class: 'inline' }, phase, phaseSet)), phaseList,
        field(authorLabel, author))),
    voting: h('div', {},
      h('section', { class: 'panel-block' }, titles.voting, picks, field(budgetLabel, budget),
        h('div', { class: 'inline' }, open, closeRound, revealRound), roundStatus),
      results.el),
    people: h('div', {}, invites.el, peopleBlock.el),
    log: h('div', {}, hidden.el, audit.el),
  }
  let current: PanelTab = 'session'
  const tabBar = h('div', { class: 'panel-tabs', role: 'tablist' })
  const tabButtons = PANEL_TABS.map((tab) => {
    const b = h('button', {
      type: 'button', role: 'tab', class: 'panel-tab', testid: `fac-tab-${tab}`, id: `fac-tab-${tab}`,
      'aria-controls': `fac-pane-${tab}`,
      onclick: () => {
        current = tab
        showTab()
      },
    })
    tabBar.append(b)
    const pane = panes[tab]
    pane.id = `fac-pane-${tab}`
    pane.setAttribute('role', 'tabpanel')
    pane.setAttribute('aria-labelledby', `fac-tab-${tab}`)
    return b
  })
  function showTab(): void {
    PANEL_TABS.forEach((tab, i) => {
      setAttr(tabButtons[i], 'aria-selected', tab === current ? 'true' : 'false')
      setHidden(panes[tab], tab !== current)
    })
  }
  showTab()
  const el = h('aside', { testid: 'facilitator-panel', class: 'facilitator-panel', 'aria-labelledby': 'fac-heading' },
    heading, tabBar, ...PANEL_TABS.map((tab) => panes[tab]))
  heading.id = 'fac-heading'
  let last: FacilitatorModel | null = null

  function update(m: FacilitatorModel): void {
    last = m
    const s = m.session
    setText(heading, t('fac.title'))
    PANEL_TABS.forEach((tab, i) => setText(tabButtons[i], t(TAB_TITLES[tab])))
    setText(sectionLocksSummary, t('fac.sectionLocks'))
    setText(draftsIn, t(s.draftsIn === 1 ? 'fac.draftsIn1' : 'fac.draftsIn', { n: s.draftsIn }))
    setHidden(draftsIn, !s.privateWriting && s.draftsIn === 0)
    setText(titles.session, t('fac.panelLabel'))
    setText(titles.locks, t('fac.locks'))
    setText(titles.voting, t('fac.voting'))
    setText(readyCount, t('ready.count', { n: m.ready.ready, m: m.ready.total }))
    setText(stepLabel, t('fac.step'))
    const steps = m.steps.length ? m.steps : STEPS.map((id) => ({ id, title: '' }))
    setOptions(step, steps.map((st): [string, string] => [st.id, st.title ? `${st.id} — ${st.title}` : st.id]), s.step)
    setText(phaseLabel, t('fac.phase'))
    if (phaseList.childElementCount !== m.phases.length) phaseList.replaceChildren(...m.phases.map((p) => h('option', { value: p })))
    if (document.activeElement !== phase && phase.dataset.server !== s.phase) {
      phase.dataset.server = s.phase
      phase.value = s.phase
    }
    setText(phaseSet, t('fac.phaseSet'))
    setText(secondsLabel, t('fac.timerSeconds'))
    setText(start, t('fac.timerStart'))
    setText(pause, t('fac.timerPause'))
    setText(reset, t('fac.timerReset'))
    pause.disabled = s.timer.status !== 'running'
    setText(lockBoard.text, t('fac.lockBoard'))
    lockBoard.box.checked = s.locks.board
    setText(lockGap.text, t('fac.lockDoc'))
    lockGap.box.checked = s.locks.docs.includes('gap')
    for (const sec of m.sections) {
      let c = sectionBoxes.get(sec.id)
      if (!c) {
        const id = sec.id
        c = checkbox(`lock-section-${id}`, (on) => actions.lock('section', id, on))
        sectionBoxes.set(id, c)
        sectionLocks.append(c.el)
      }
      setText(c.text, sec.title)
      c.box.checked = s.locks.sections.includes(sec.id)
    }
    setText(presentation.text, t('fac.presentation'))
    presentation.box.checked = s.presentation.on
    setText(focusLabel, t('fac.focus'))
    setOptions(focus, [
      ['canvas', `${t('tab.canvas')} — ${t('fac.focusNone')}`],
      ...m.sections.map((sec): [string, string] => [`canvas:${sec.id}`, `${t('tab.canvas')} — ${sec.title}`]),
      ['poster', `${t('tab.canvas')} — ${t('fac.focusPoster')}`],
      ['gap', t('tab.gap')],
      ...(/^(card|row):/.test(m.focus) ? [[m.focus, t('fac.focusItem')] as [string, string]] : []),
    ], m.focus)
    setText(authorLabel, t('fac.authorMode'))
    setOptions(author, (['name', 'party', 'anonymous'] as const).map((a): [string, string] => [a, t(`fac.author.${a}`)]), s.authorMode)
    setText(privateWriting.text, t('fac.private'))
    privateWriting.box.checked = s.privateWriting
    setText(reveal, t('fac.reveal'))
    setText(picksLegend, t('fac.roundPicks'))
    for (const sec of m.sections) {
      if (pickBoxes.has(sec.id)) continue
      const c = checkbox(`round-pick-${sec.id}`, () => {})
      c.box.checked = sec.id === 'bouwstenen'
      pickBoxes.set(sec.id, c)
      picks.append(c.el)
    }
    for (const sec of m.sections) setText(pickBoxes.get(sec.id)!.text, sec.title)
    if (!pickGap.el.parentElement) picks.append(pickGap.el)
    setText(pickGap.text, t('fac.roundPickGap'))
    results.update(m.results)
    setText(budgetLabel, t('fac.budget'))
    setText(open, t('fac.roundOpenPicked'))
    setText(closeRound, t('fac.roundClose'))
    setText(revealRound, t('fac.roundReveal'))
    const r = m.round
    setText(roundStatus, r ? t('fac.roundStatus', { title: r.title, status: t(`round.${r.status}`), voters: r.voters }) : t('fac.noOpenRound'))
    setAttr(closeRound, 'aria-disabled', r && r.status === 'open' ? null : 'true')
    setAttr(revealRound, 'aria-disabled', r && r.status !== 'revealed' ? null : 'true')
    setHidden(roundStatus, false)
    invites.update(m.invite, m.qrShown)
    peopleBlock.update(m.people)
    hidden.update(m.hidden)
    audit.update(m.audit)
  }
  return { el, update }
}
