// Inviting people (facilitator): pick a role (and, if wanted, a number of seats), create an
// invite, and share its link by copying it or showing it as a QR code to scan in the room — also
// full screen ("scan to join", for the room's screen). An invite link invites a role: everyone
// who opens it joins as a person of their own.

import QRCode from 'qrcode'
import { h, setAttr, setHidden, setOptions, setText } from './dom'
import { t, type Key } from '../i18n'
import type { Role } from '../types'

export interface InvitesActions {
  create(role: Role, seats: number | null, ttl: string): void
  copied(ok: boolean): void
  showQr(shown: boolean): void
}

const INVITE_ROLES: Role[] = ['employer', 'union', 'employee', 'observer', 'facilitator']

/** Copies text: the async clipboard when allowed, else selecting the input and execCommand. */
async function copy(text: string, input: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    input.focus()
    input.select()
    try {
      return document.execCommand('copy')
    } catch {
      return false
    }
  }
}

/** How long an invite link stays valid (the server takes at most 30 days). */
const INVITE_TTLS = ['2h', '8h', '24h', '7d', '30d'] as const

export function createInvites(actions: InvitesActions) {
  const title = h('h3', {})
  const role = h('select', { id: 'invite-role', testid: 'invite-role' })
  const roleLabel = h('label', { for: 'invite-role' })
  const seats = h('input', { id: 'invite-seats', testid: 'invite-seats', type: 'number', min: 1, max: 10000, class: 'narrow' })
  const seatsLabel = h('label', { for: 'invite-seats' })
  const ttl = h('select', { id: 'invite-ttl', testid: 'invite-ttl' })
  const ttlLabel = h('label', { for: 'invite-ttl' })
  const create = h('button', {
    type: 'button', testid: 'invite-create', class: 'btn btn-primary',
    onclick: () => {
      const n = Math.round(Number(seats.value))
      actions.create(role.value as Role, seats.value && n > 0 ? n : null, ttl.value || '8h')
    },
  })
  const url = h('input', { id: 'invite-url', testid: 'invite-url', type: 'text', readOnly: true, class: 'wide' })
  const urlLabel = h('label', { for: 'invite-url' })
  const copyBtn = h('button', {
    type: 'button', testid: 'invite-copy', class: 'btn',
    onclick: async () => actions.copied(await copy(url.value, url)),
  })
  const showBtn = h('button', { type: 'button', testid: 'invite-show-qr', class: 'btn', onclick: () => actions.showQr(true) })
  const qr = h('img', { testid: 'invite-qr', class: 'qr', width: 200, height: 200 })
  const result = h('div', { class: 'invite-result' }, urlLabel, h('div', { class: 'inline' }, url, copyBtn, showBtn), qr)
  const el = h('section', { class: 'panel-block invites' }, title,
    h('div', { class: 'inline' }, roleLabel, role), h('div', { class: 'inline' }, ttlLabel, ttl),
    h('div', { class: 'inline' }, seatsLabel, seats, create), result)

  // "Scan to join", full screen for the room.
  const bigQr = h('img', { testid: 'join-qr-big', class: 'qr-big' })
  const bigTitle = h('h2', { testid: 'join-qr-role' })
  const bigHint = h('p', {})
  const closeBtn = h('button', { type: 'button', testid: 'join-qr-close', class: 'btn', onclick: () => actions.showQr(false) })
  const overlay = h('div', { testid: 'join-qr', class: 'qr-overlay', role: 'dialog', 'aria-modal': 'true' },
    h('div', { class: 'qr-overlay-inner' }, bigTitle, bigQr, bigHint, closeBtn))
  document.body.append(overlay)
  let shown = ''

  function update(invite: { url: string; role: Role } | null, qrShown: boolean): void {
    setText(title, t('fac.invites'))
    setText(roleLabel, t('fac.inviteRole'))
    setOptions(role, INVITE_ROLES.map((r): [string, string] => [r, t(`role.${r}`)]))
    setText(seatsLabel, t('fac.inviteSeats'))
    setText(ttlLabel, t('fac.inviteTtl'))
    setOptions(ttl, INVITE_TTLS.map((v): [string, string] => [v, t(`fac.ttl.${v}` as Key)]), ttl.value || '8h')
    setAttr(seats, 'placeholder', t('fac.inviteSeatsAny'))
    setText(create, t('fac.inviteCreate'))
    setText(urlLabel, t('fac.inviteUrl'))
    setText(copyBtn, t('fac.inviteCopy'))
    setText(showBtn, t('fac.inviteShow'))
    setAttr(qr, 'alt', t('fac.inviteQr'))
    setAttr(bigQr, 'alt', t('fac.inviteQr'))
    setText(bigHint, t('fac.joinQrHint'))
    setText(closeBtn, t('fac.joinQrClose'))
    setHidden(result, !invite)
    setHidden(overlay, !invite || !qrShown)
    if (invite) setText(bigTitle, t('fac.joinQrTitle', { role: t(`role.${invite.role}`) }))
    if (invite && invite.url !== shown) {
      shown = invite.url
      url.value = invite.url
      QRCode.toDataURL(invite.url, { margin: 1, width: 200, errorCorrectionLevel: 'M' })
        .then((data) => {
          if (shown === invite.url) qr.src = data
        })
        .catch(() => qr.removeAttribute('src'))
      QRCode.toDataURL(invite.url, { margin: 2, width: 640, errorCorrectionLevel: 'M' })
        .then((data) => {
          if (shown === invite.url) bigQr.src = data
        })
        .catch(() => bigQr.removeAttribute('src'))
    }
  }
  return { el, update }
}
