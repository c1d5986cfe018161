// The session timer: mm:ss left, counted on the server's clock (`endsAt` and the estimated
// offset between the server's clock and this one), with `data-status` stopped|running|paused,
// or `ended` once a running countdown reaches 00:00: it then says "afgelopen" and flashes.

import { h, setAttr, setText } from './dom'
import { t } from '../i18n'
import type { Timer } from '../types'

export interface TimerModel {
  timer: Timer
  /** Server clock minus this clock, in ms. */
  offset: number
}

export function format(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000))
  const m = Math.floor(total / 60)
  const s = total % 60
  return `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`
}

export function remaining(m: TimerModel, now = Date.now()): number {
  const { timer } = m
  if (timer.status === 'running' && timer.endsAt !== null) return timer.endsAt - (now + m.offset)
  if (timer.status === 'paused' && timer.remainingMs !== null) return timer.remainingMs
  if (timer.status === 'stopped') return 0
  return timer.durationMs
}

export function createTimer() {
  const el = h('span', { testid: 'timer', class: 'timer', role: 'timer', 'data-status': 'stopped', text: '00:00' })
  let model: TimerModel | null = null

  function draw(): void {
    if (!model) return
    const left = remaining(model)
    const ended = model.timer.status === 'running' && left <= 0
    const status = ended ? 'ended' : model.timer.status
    setText(el, ended ? `${format(0)} ${t('status.ended')}` : format(left))
    setAttr(el, 'data-status', status)
    setAttr(el, 'aria-label', `${t('timer.label')}: ${format(left)} (${t(`status.${status}`)})`)
    el.classList.toggle('is-running', model.timer.status === 'running' && !ended)
    el.classList.toggle('is-ending', model.timer.status === 'running' && left < 60_000 && !ended)
    el.classList.toggle('is-over', ended)
  }
  const interval = setInterval(draw, 250)
  return {
    el,
    update(m: TimerModel): void {
      model = m
      draw()
    },
    destroy(): void {
      clearInterval(interval)
    },
  }
}
