// Inviting people (facilitator): pick a role, create an invite, and share its link by copying
// it or showing it as a QR code to scan in the room.

import QRCode from 'qrcode'
import { h, setAttr, setHidden, setOptions, setText } from './dom'
import { t } from '../i18n'
import type { Role } from '../types'

export interface InvitesActions {
  create(role: Role): void
  copied(ok: boolean): void
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

export function createInvites(actions: InvitesActions) {
  const title = h('h3', {})
  const role = h('select', { id: 'invite-role', testid: 'invite-role' })
  const roleLabel = h('label', { for: 'invite-role' })
  const create = h('button', { type: 'button', testid: 'invite-create', class: 'btn btn-primary', onclick: () => actions.create(role.value as Role) })
  const url = h('input', { id: 'invite-url', testid: 'invite-url', type: 'text', readOnly: true, class: 'wide' })
  const urlLabel = h('label', { for: 'invite-url' })
  const copyBtn = h('button', {
    type: 'button', testid: 'invite-copy', class: 'btn',
    onclick: async () => actions.copied(await copy(url.value, url)),
  })
  const qr = h('img', { testid: 'invite-qr', class: 'qr', width: 200, height: 200 })
  const result = h('div', { class: 'invite-result' }, urlLabel, h('div', { class: 'inline' }, url, copyBtn), qr)
  const el = h('section', { class: 'panel-block invites' }, title,
    h('div', { class: 'inline' }, roleLabel, role, create), result)
  let shown = ''

  function update(invite: { url: string } | null): void {
    setText(title, t('fac.invites'))
    setText(roleLabel, t('fac.inviteRole'))
    setOptions(role, INVITE_ROLES.map((r): [string, string] => [r, t(`role.${r}`)]))
    setText(create, t('fac.inviteCreate'))
    setText(urlLabel, t('fac.inviteUrl'))
    setText(copyBtn, t('fac.inviteCopy'))
    setAttr(qr, 'alt', t('fac.inviteQr'))
    setHidden(result, !invite)
    if (invite && invite.url !== shown) {
      shown = invite.url
      url.value = invite.url
      QRCode.toDataURL(invite.url, { margin: 1, width: 200, errorCorrectionLevel: 'M' })
        .then((data) => {
          if (shown === invite.url) qr.src = data
        })
        .catch(() => qr.removeAttribute('src'))
    }
  }
  return { el, update }
}
