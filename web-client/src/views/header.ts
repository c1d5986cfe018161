// The top of the board page: title, role badge, connection status, the user's latest notice,
// the language switch, a link back to the board list (facilitator), the session bar (step, phase,
// timer) and the tabs. Drawn from HeaderModel.

import { h, setAttr, setHidden, setText } from './dom'
import { createTimer, type TimerModel } from './timer'
import { t, type Key } from '../i18n'
import type { ConnectionState, Role, Tab } from '../types'

export interface HeaderModel {
  title: string
  role: Role
  connection: ConnectionState
  notice: string
  step: string
  stepTitle: string
  phase: string
  timer: TimerModel
  tabs: Tab[]
  active: Tab
  backToList: boolean
  presenting: boolean
  /** The poster view is on; canPoster: the tab has one (the canvas). */
  poster: boolean
  canPoster: boolean
  /** The tab has an undo (canUndo), and something of one's own to undo now (undoable). */
  canUndo: boolean
  undoable: boolean
}

export interface HeaderActions {
  switchLang(): void
  tab(tab: Tab): void
  poster(): void
  undo(): void
}

const TAB_KEYS: Record<Tab, Key> = {
  canvas: 'tab.canvas', gap: 'tab.gap', party: 'tab.party', staalkaart: 'tab.staalkaart', monitoring: 'tab.monitoring', history: 'tab.history',
}

export function createHeader(actions: HeaderActions) {
  const brand = h('span', { class: 'brand', text: 'Tafel' })
  const title = h('h1', { testid: 'board-title', class: 'board-title' })
  const role = h('span', { testid: 'role-badge', class: 'role-badge' })
  const status = h('span', { testid: 'connection-status', class: 'connection', role: 'status' })
  const lang = h('button', { type: 'button', testid: 'lang-switch', class: 'btn btn-small', onclick: () => actions.switchLang() })
  const back = h('a', { href: '/', class: 'back-link', testid: 'back-to-list' })
  const notice = h('p', { testid: 'notice', class: 'notice', role: 'status', 'aria-live': 'polite' })
  const step = h('span', { testid: 'step-indicator', class: 'pill step' })
  const phase = h('span', { testid: 'phase-indicator', class: 'pill phase' })
  const timer = createTimer()
  const presenting = h('span', { class: 'pill presenting-badge' })
  const undo = h('button', { type: 'button', testid: 'undo', class: 'btn btn-small', onclick: () => actions.undo() })
  const poster = h('button', { type: 'button', testid: 'poster-toggle', class: 'btn btn-small', onclick: () => actions.poster() })
  const tabButtons = new Map<Tab, HTMLButtonElement>()
  const tabList = h('nav', { class: 'tabs', role: 'tablist' })
  const el = h('header', { class: 'board-header' },
    h('div', { class: 'topline' }, brand, title, role, h('span', { class: 'spacer' }), status, back, lang),
    h('div', { class: 'session-bar' }, step, phase, timer.el, presenting, h('span', { class: 'spacer' }), undo, poster),
    notice,
    tabList)

  function tabButton(tab: Tab): HTMLButtonElement {
    let b = tabButtons.get(tab)
    if (!b) {
      b = h('button', {
        type: 'button', role: 'tab', testid: `tab-${tab}`, id: `tab-${tab}`, class: 'tab',
        'aria-controls': `panel-${tab}`, onclick: () => actions.tab(tab),
        onkeydown: (ev: Event) => {
          const key = (ev as KeyboardEvent).key
          if (key !== 'ArrowRight' && key !== 'ArrowLeft') return
          const all = [...tabButtons.keys()].filter((k) => !tabButtons.get(k)!.hidden)
          const next = all[(all.indexOf(tab) + (key === 'ArrowRight' ? 1 : all.length - 1)) % all.length]
          actions.tab(next)
          tabButtons.get(next)?.focus()
        },
      })
      tabButtons.set(tab, b)
      tabList.append(b)
    }
    return b
  }

  function update(m: HeaderModel): void {
    setText(title, m.title)
    document.title = `${m.title} — Tafel`
    setText(role, t(`role.${m.role}`))
    setAttr(role, 'data-role', m.role)
    setText(status, t(`conn.${m.connection}`))
    setAttr(status, 'data-state', m.connection)
    setText(lang, t('lang.switch'))
    setAttr(lang, 'aria-label', t('lang.switchLabel'))
    setText(back, `← ${t('list.back')}`)
    setHidden(back, !m.backToList)
    setText(notice, m.notice)
    setHidden(notice, !m.notice)
    setText(step, t('step.label', { step: m.step }))
    setAttr(step, 'title', m.stepTitle)
    setText(phase, m.phase ? t('phase.label', { phase: m.phase }) : t('phase.none'))
    timer.update(m.timer)
    setText(presenting, t('presenting'))
    setHidden(presenting, !m.presenting)
    setText(poster, m.poster ? t('poster.off') : t('poster.on'))
    setAttr(poster, 'aria-pressed', m.poster ? 'true' : 'false')
    setHidden(poster, !m.canPoster)
    setText(undo, `↶ ${t('undo')}`)
    setAttr(undo, 'aria-label', t('undo.label'))
    setHidden(undo, !m.canUndo)
    undo.disabled = !m.undoable
    setAttr(tabList, 'aria-label', t('tabs.label'))
    for (const tab of ['canvas', 'gap', 'party', 'monitoring', 'staalkaart', 'history'] as Tab[]) {
      const shown = m.tabs.includes(tab)
      if (!shown && !tabButtons.has(tab)) continue
      const b = tabButton(tab)
      setHidden(b, !shown)
      setText(b, t(TAB_KEYS[tab]))
      setAttr(b, 'aria-selected', m.active === tab ? 'true' : 'false')
      b.tabIndex = m.active === tab ? 0 : -1
    }
  }
  return { el, update }
}
