// Who is in and who is out (facilitator): the board's invites (role, created, expiry, joined of
// seats, revoked) with a revoke button, and its participants (display — an employee's
// pseudonym —, role, online) with a remove button. A removed participant's token is refused
// everywhere and their open connections are closed at once (4403).

import { h, reconcile, setAttr, setHidden, setText } from './dom'
import { lang, t } from '../i18n'
import type { InviteInfo, ParticipantInfo } from '../types'

export interface PeopleActions {
  loadPeople(): void
  revokeInvite(id: string): void
  removeParticipant(id: string, display: string): void
}

function when(secs: number): string {
  return new Date(secs * 1000).toLocaleString(lang() === 'en' ? 'en-GB' : 'nl-NL', {
    day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
  })
}

export function createPeople(actions: PeopleActions) {
  const title = h('h3', {})
  const load = h('button', { type: 'button', testid: 'people-load', class: 'btn', onclick: () => actions.loadPeople() })
  const invitesTitle = h('h4', {})
  const invites = h('ul', { testid: 'invite-list', class: 'people-list' })
  const peopleTitle = h('h4', {})
  const people = h('ul', { testid: 'participant-list', class: 'people-list' })
  const body = h('div', {}, invitesTitle, invites, peopleTitle, people)
  const el = h('section', { class: 'panel-block people' }, title, load, body)

  function update(m: { invites: InviteInfo[]; participants: ParticipantInfo[] } | null): void {
    setText(title, t('fac.people'))
    setText(load, m ? t('fac.peopleRefresh') : t('fac.peopleLoad'))
    setText(invitesTitle, t('fac.inviteList'))
    setText(peopleTitle, t('fac.participantList'))
    setHidden(body, !m)
    reconcile<InviteInfo>(invites, m?.invites ?? [], (i) => i.id, () => {
      const text = h('span', {})
      const revoke = h('button', { type: 'button', class: 'btn btn-small', testid: 'invite-revoke', onclick: () => revoke.dataset.id && actions.revokeInvite(revoke.dataset.id) })
      const li = h('li', { testid: 'invite-item' }, text, revoke)
      return {
        el: li,
        update(i: InviteInfo) {
          revoke.dataset.id = i.id
          const status = i.revoked ? t('fac.inviteRevoked') : i.expired ? t('fac.inviteExpired') : t('fac.inviteOpen')
          const seats = i.seats === null ? String(i.joined) : `${i.joined}/${i.seats}`
          setText(text, t('fac.inviteLine', {
            role: t(`role.${i.role}`), created: when(i.created_at), expires: when(i.expires_at), joined: seats, status,
          }))
          setAttr(li, 'data-id', i.id)
          setText(revoke, t('fac.inviteRevoke'))
          setHidden(revoke, i.revoked || i.expired)
        },
      }
    })
    reconcile<ParticipantInfo>(people, m?.participants ?? [], (p) => p.id, () => {
      const text = h('span', {})
      const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger', testid: 'participant-remove' })
      const li = h('li', { testid: 'participant-item' }, text, remove)
      return {
        el: li,
        update(p: ParticipantInfo) {
          remove.onclick = () => actions.removeParticipant(p.id, p.display)
          const status = p.removed ? t('fac.participantRemoved') : p.online ? t('fac.online') : t('fac.offline')
          setText(text, `${p.display} · ${t(`role.${p.role}`)} · ${status}`)
          setAttr(li, 'data-id', p.id)
          setText(remove, t('fac.participantRemove'))
          setHidden(remove, p.removed || p.role === 'facilitator')
        },
      }
    })
  }
  return { el, update }
}
